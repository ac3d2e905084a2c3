package main

// Record signatures of a vault audit log, format v2 (docs/AUDIT.md §2-§5,
// §8), checked with the Go standard library alone:
//
//   - a line is a record when it is a JSON object with "v" 2 and "seq" its
//     line number, exactly the record members (§2: "sig" and "fragments"
//     optional) and a "time" of ASCII digits; it is signed when it has a
//     "sig" member;
//   - a signed record at line k covers the run s..k of unsigned records right
//     before it that carry its actor.key; chain(k) = SHA-256(leaf(s-1) ||
//     leaf(s) || ... || leaf(k-1)), leaf(-1) = 32 zero bytes;
//   - the actor signs "vault audit record v2\n" || chain(k) || the line
//     without its top-level ,"sig":"..." member;
//   - every other line must be covered that way, or named by the fragments
//     of the torn record that follows the run it belongs to: every line of
//     the run, or, for a run longer than maxFragments lines, its last
//     maxFragments lines, the torn record's chain then covering the whole
//     run (s = the run's first line); lines still waiting at the end are an
//     unrecovered tail.

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// maxFragments: the most lines a torn record names one by one (§8).
const maxFragments = 4096

// maxRunBytes: the most bytes (lines and their newlines) of a run of unsigned
// records one signature covers (§5).
const maxRunBytes = 16 << 20

type fragment struct {
	Length int64  `json:"length"`
	Seq    int64  `json:"seq"`
	Sha256 string `json:"sha256"`
}

type record struct {
	signed    bool
	sig       []byte
	body      []byte // the line without its top-level "sig" member
	key       string // actor.key
	action    string
	fragments []fragment
}

// readKeys reads "FINGERPRINT BASE64-KEY" lines; each key must hash to its
// fingerprint (SHA256: + unpadded base64 of SHA-256 of the raw key).
func readKeys(data []byte) map[string]ed25519.PublicKey {
	keys := map[string]ed25519.PublicKey{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(fields[len(fields)-1])
		if len(fields) != 2 || err != nil || len(raw) != ed25519.PublicKeySize {
			fail("keys: bad line %q", sc.Text())
		}
		sum := sha256.Sum256(raw)
		fp := "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
		if fp != fields[0] {
			fail("keys: %s is not the fingerprint of its key", fields[0])
		}
		keys[fp] = ed25519.PublicKey(raw)
	}
	return keys
}

// parseRecord returns the record on line seq, or nil for any other line.
// timePattern is §2's time: RE2's \d is ASCII digits only.
var timePattern = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

func parseRecord(line []byte, seq int64) *record {
	var members map[string]json.RawMessage
	if json.Unmarshal(line, &members) != nil {
		return nil
	}
	if string(members["v"]) != "2" || string(members["seq"]) != strconv.FormatInt(seq, 10) {
		return nil
	}
	required := 0
	for name := range members {
		switch name {
		case "v", "seq", "time", "actor", "action", "doc", "label", "outcome", "rules",
			"reason", "policy", "request", "host", "pid", "state":
			required++
		case "sig", "fragments":
		default:
			return nil
		}
	}
	var when string
	if required != 15 || json.Unmarshal(members["time"], &when) != nil ||
		!timePattern.MatchString(when) {
		return nil
	}
	// The actor's members by their exact names: a struct field would also
	// take "KEY" or "Key" (encoding/json matches names case-insensitively),
	// a line the library sets aside.
	var actor map[string]json.RawMessage
	var key, action string
	if json.Unmarshal(members["actor"], &actor) != nil ||
		json.Unmarshal(actor["key"], &key) != nil || key == "" ||
		json.Unmarshal(members["action"], &action) != nil {
		return nil
	}
	for name := range actor {
		if name != "name" && name != "key" {
			return nil
		}
	}
	r := &record{key: key, action: action, body: line}
	if raw, ok := members["sig"]; ok {
		var text string
		sig, err := []byte(nil), json.Unmarshal(raw, &text)
		if err == nil {
			sig, err = base64.StdEncoding.DecodeString(text)
		}
		body, found := withoutMember(line, "sig")
		if err != nil || len(sig) != ed25519.SignatureSize || !found {
			return nil
		}
		r.signed, r.sig, r.body = true, sig, body
	}
	if raw, ok := members["fragments"]; ok && json.Unmarshal(raw, &r.fragments) != nil {
		return nil
	}
	return r
}

// withoutMember removes a top-level member (and the comma before it) from a
// JSON object, using the decoder's offsets: nested members are never touched.
func withoutMember(line []byte, name string) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var value json.RawMessage
		if dec.Decode(&value) != nil {
			return nil, false
		}
		if key, _ := tok.(string); key == name && start > 1 {
			out := append([]byte{}, line[:start]...)
			return append(out, line[dec.InputOffset():]...), true
		}
	}
	return nil, false
}

// checkRecords applies the reading rules to every complete line and checks
// every signature; it returns (signed, covered unsigned, set aside, pending).
func checkRecords(lines [][]byte, keys map[string]ed25519.PublicKey) (int, int, int, int) {
	leaves := make([][32]byte, len(lines))
	for i, line := range lines {
		leaves[i] = sha256.Sum256(append([]byte{0}, line...))
	}
	records := make([]*record, len(lines))
	var pending []int
	signed, covered, aside := 0, 0, 0
	for i, line := range lines {
		r := parseRecord(line, int64(i))
		records[i] = r
		if r == nil || !r.signed {
			pending = append(pending, i)
			continue
		}
		s := len(pending)
		for s > 0 {
			p := records[pending[s-1]]
			if p == nil || p.signed || p.key != r.key {
				break
			}
			s--
		}
		start := i - (len(pending) - s)
		long := r.action == "torn" && len(pending) > maxFragments
		if long { // a long run: the torn record's chain covers all of it
			start = pending[0]
		}
		h := sha256.New()
		if start > 0 {
			h.Write(leaves[start-1][:])
		} else {
			h.Write(make([]byte, 32))
		}
		for j := start; j < i; j++ {
			h.Write(leaves[j][:])
		}
		key, ok := keys[r.key]
		message := append([]byte("vault audit record v2\n"), h.Sum(nil)...)
		if !ok || !ed25519.Verify(key, append(message, r.body...), r.sig) {
			fail("signature: record %d (%s) does not verify", i, r.key)
		}
		signed++
		if r.action == "torn" {
			named := pending
			if long {
				named = pending[len(pending)-maxFragments:]
			}
			if len(r.fragments) != len(named) {
				fail("torn record %d names %d lines, not the %d before it", i,
					len(r.fragments), len(named))
			}
			for n, f := range r.fragments {
				sum := sha256.Sum256(lines[named[n]])
				if f.Seq != int64(named[n]) || f.Length != int64(len(lines[named[n]])) ||
					f.Sha256 != hex.EncodeToString(sum[:]) {
					fail("torn record %d does not name line %d", i, named[n])
				}
			}
			aside += len(pending)
		} else {
			if s > 0 || len(pending) > maxFragments {
				fail("line %d is neither covered by a signature nor set aside", pending[0])
			}
			size := 0
			for _, j := range pending {
				size += len(lines[j]) + 1
			}
			if size > maxRunBytes {
				fail("line %d starts a run of unsigned records larger than one signature covers",
					pending[0])
			}
			covered += len(pending)
		}
		pending = nil
	}
	return signed, covered, aside, len(pending)
}

func checkSignatures(log []byte, keysFile []byte) {
	lines := bytes.Split(log, []byte("\n"))
	lines = lines[:len(lines)-1] // bytes after the last newline are no line
	signed, covered, aside, pending := checkRecords(lines, readKeys(keysFile))
	fmt.Printf("signatures ok: %d signed records cover %d unsigned; %d lines set aside, "+
		"%d pending\n", signed, covered, aside, pending)
}
