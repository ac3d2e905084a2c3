package main

// The record members and the values they may hold (docs/AUDIT.md §2), as
// the vault's reader applies them: a line whose members break any of these
// rules is not a record, however it is signed.

import (
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// maxLine: the longest line that may be a record, in bytes (§2).
const maxLine = 524288

// maxName: the most characters (code points) of an actor's name (§2).
const maxName = 64

// Patterns of §2. RE2's \d is ASCII digits only, as §2's time requires.
var (
	timePattern        = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)
	fingerprintPattern = regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}$`)
	hex64Pattern       = regexp.MustCompile(`^[0-9a-f]{64}$`)
	requestPattern     = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// recordMembers: the members every record has; "sig" and "fragments" are
// the only others a record may have.
var recordMembers = []string{"v", "seq", "time", "actor", "action", "doc", "label", "outcome",
	"rules", "reason", "policy", "request", "host", "pid", "state"}

// isOutcome: one of §2's outcomes.
func isOutcome(v any) bool {
	switch v {
	case "allowed", "denied", "error", "done", "failed":
		return true
	}
	return false
}

// validMembers applies §2 to a parsed line: exactly the record's members,
// each holding a value its row allows; a torn record (and only it) lists
// fragments, naming the lines just before it, and is signed.
func validMembers(m object) bool {
	for name := range m {
		if name != "sig" && name != "fragments" && !contains(recordMembers, name) {
			return false
		}
	}
	for _, name := range recordMembers {
		if _, ok := m[name]; !ok {
			return false
		}
	}
	_, signed := m["sig"]
	_, listed := m["fragments"]
	torn := m["action"] == "torn"
	return m["v"] == json.Number("2") && isCount(m["seq"]) &&
		matches(timePattern, m["time"]) && validActor(m["actor"]) &&
		isText(m["action"]) && (m["doc"] == nil || isText(m["doc"])) &&
		validLabel(m["label"]) && isOutcome(m["outcome"]) && isTextList(m["rules"]) &&
		isString(m["reason"]) && (m["policy"] == nil || matches(hex64Pattern, m["policy"])) &&
		matches(requestPattern, m["request"]) && isText(m["host"]) && isCount(m["pid"]) &&
		validState(m["state"]) && (!signed || signature(m["sig"]) != nil) &&
		listed == torn && (!torn || (signed && validFragments(m["fragments"], m["seq"])))
}

func contains(list []string, s string) bool {
	for _, item := range list {
		if item == s {
			return true
		}
	}
	return false
}

func isString(v any) bool {
	_, ok := v.(string)
	return ok
}

// isText: a non-empty string.
func isText(v any) bool {
	s, ok := v.(string)
	return ok && s != ""
}

func matches(pattern *regexp.Regexp, v any) bool {
	s, ok := v.(string)
	return ok && pattern.MatchString(s)
}

// isCount: an integer >= 0 (the canonical form allows only integers).
func isCount(v any) bool {
	n, ok := v.(json.Number)
	return ok && n[0] != '-'
}

// isTextList: an array of non-empty strings.
func isTextList(v any) bool {
	list, ok := v.([]any)
	if !ok {
		return false
	}
	for _, item := range list {
		if !isText(item) {
			return false
		}
	}
	return true
}

// isSortedSet: an array of non-empty strings in strictly increasing order
// (byte order: code point order for UTF-8), so sorted and unique.
func isSortedSet(v any) bool {
	if !isTextList(v) {
		return false
	}
	list := v.([]any)
	for i := 1; i < len(list); i++ {
		if list[i-1].(string) >= list[i].(string) {
			return false
		}
	}
	return true
}

// validActor: {"key": a key fingerprint, "name": null or a printable name of
// 1 to 64 characters}. Printable is Python's str.isprintable: letters,
// marks, numbers, punctuation, symbols and the ASCII space -- unicode.IsPrint
// (each by the Unicode version of its library).
func validActor(v any) bool {
	actor, ok := v.(object)
	if !ok || len(actor) != 2 || !matches(fingerprintPattern, actor["key"]) {
		return false
	}
	name, present := actor["name"]
	if !present || name == nil {
		return present
	}
	text, ok := name.(string)
	if !ok || text == "" || utf8.RuneCountInString(text) > maxName {
		return false
	}
	for _, r := range text {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// validLabel: null, or exactly {"caveats", "compartments", "level"}: a
// non-empty level and sorted, unique names.
func validLabel(v any) bool {
	if v == nil {
		return true
	}
	label, ok := v.(object)
	return ok && len(label) == 3 && isText(label["level"]) &&
		isSortedSet(label["caveats"]) && isSortedSet(label["compartments"])
}

// validState: null, or an object whose member names are non-empty strings
// (the values inside are any JSON the canonical form allows: no floats).
func validState(v any) bool {
	if v == nil {
		return true
	}
	state, ok := v.(object)
	if !ok {
		return false
	}
	for name := range state {
		if name == "" {
			return false
		}
	}
	return true
}

// signature returns the 64 bytes "sig" holds in base64, or nil. The text
// must be the bytes' own encoding: with padding, without line breaks (which
// encoding/base64 skips) and with the unused last bits zero (which it
// ignores unless strict).
func signature(v any) []byte {
	text, ok := v.(string)
	if !ok {
		return nil
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(text)
	if err != nil || len(sig) != 64 || base64.StdEncoding.EncodeToString(sig) != text {
		return nil
	}
	return sig
}

// validFragments: a non-empty array of {"length", "seq", "sha256"} naming,
// in order, the lines just before the record at seq (§8).
func validFragments(v any, seq any) bool {
	list, ok := v.([]any)
	at, err := strconv.ParseInt(string(seq.(json.Number)), 10, 64)
	if !ok || len(list) == 0 || err != nil {
		return false
	}
	for i, item := range list {
		f, ok := item.(object)
		want := json.Number(strconv.FormatInt(at-int64(len(list)-i), 10))
		if !ok || len(f) != 3 || !isCount(f["seq"]) || f["seq"] != want || !isCount(f["length"]) ||
			!matches(hex64Pattern, f["sha256"]) {
			return false
		}
	}
	return true
}
