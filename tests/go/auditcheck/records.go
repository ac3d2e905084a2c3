package main

// Record signatures of a vault audit log, format v2 (docs/AUDIT.md §2-§5,
// §8), checked with the Go standard library alone:
//
//   - a line is a record when it is exactly the canonical encoding (§3) of
//     a JSON object holding the record's members, each with a value §2
//     allows, and "seq" is its line number (parseRecord); it is signed when
//     it has a "sig" member;
//   - a signed record at line k covers the run s..k of unsigned records right
//     before it that carry its actor.key; chain(k) = SHA-256(leaf(s-1) ||
//     leaf(s) || ... || leaf(k-1)), leaf(-1) = 32 zero bytes;
//   - the actor signs "vault audit record v2\n" || chain(k) || the
//     canonical JSON of the record without "sig";
//   - every other line must be covered that way, or named by the fragments
//     of the torn record that follows the run it belongs to: every line of
//     the run, or, for a run longer than maxFragments lines, its last
//     maxFragments lines, the torn record's chain then covering the whole
//     run (s = the run's first line); lines still waiting at the end are an
//     unrecovered tail. A torn record naming lines when none are pending
//     sets nothing aside: a finding printed, not a failure.

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// maxFragments: the most lines a torn record names one by one (§8).
const maxFragments = 4096

// maxRunBytes: the most bytes (lines and their newlines) of a run of unsigned
// records one signature covers (§5).
const maxRunBytes = 16 << 20

type fragment struct {
	Length int64
	Seq    int64
	Sha256 string
}

type record struct {
	signed    bool
	sig       []byte
	body      []byte  // the line without its top-level "sig" member
	key       string  // actor.key
	name      *string // actor.name, nil when null
	action    string
	fragments []fragment
}

// binding: the key that signs for a name over a range of lines (§15): a
// record whose run starts at line s is the name's only when first <= s <
// end (end < 0: still in force).
type binding struct {
	name       *string // nil for records that carry no name (null)
	first, end int64
	key        ed25519.PublicKey
}

// readKeys reads "FIRST END FINGERPRINT BASE64-KEY NAME" lines, fields
// separated by one space and NAME the rest of the line, a JSON string (null
// for records that carry none: a name may hold spaces); END "-" while the
// binding holds. Each key must hash to its fingerprint (SHA256: + unpadded
// base64 of SHA-256 of the raw key). Bindings are looked up by
// fingerprint.
func readKeys(data []byte) map[string][]binding {
	keys := map[string][]binding{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		fields := strings.SplitN(line, " ", 5)
		if len(fields) != 5 {
			fail("keys: bad line %q (FIRST END FINGERPRINT KEY NAME)", line)
		}
		var name *string
		errName := json.Unmarshal([]byte(fields[4]), &name)
		raw, err := base64.StdEncoding.DecodeString(fields[3])
		first, errFirst := strconv.ParseInt(fields[0], 10, 64)
		end, errEnd := int64(-1), error(nil)
		if fields[1] != "-" {
			end, errEnd = strconv.ParseInt(fields[1], 10, 64)
		}
		// FIRST and END are written as a checkpoint's size is (no sign, no
		// leading zero), which ParseInt alone would not hold them to.
		written := sizePattern.MatchString(fields[0]) &&
			(fields[1] == "-" || sizePattern.MatchString(fields[1]))
		if !written || errName != nil || err != nil || len(raw) != ed25519.PublicKeySize ||
			errFirst != nil || errEnd != nil || first < 0 || (end >= 0 && end <= first) {
			fail("keys: bad line %q", line)
		}
		sum := sha256.Sum256(raw)
		fp := "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
		if fp != fields[2] {
			fail("keys: %s is not the fingerprint of its key", fields[2])
		}
		keys[fp] = append(keys[fp], binding{name, first, end, ed25519.PublicKey(raw)})
	}
	return keys
}

// keyFor returns the key bound to name (nil: no name) and fingerprint for
// a run starting at line start, or nil: a record carrying another's name,
// or a key used outside its lines (revoked, or not yet given), is no one's.
func keyFor(keys map[string][]binding, name *string, fp string, start int64) ed25519.PublicKey {
	for _, b := range keys[fp] {
		same := (b.name == nil) == (name == nil) && (name == nil || *b.name == *name)
		if same && b.first <= start && (b.end < 0 || start < b.end) {
			return b.key
		}
	}
	return nil
}

// parseRecord returns the record on line seq, or nil for any other line:
// a line is a record when it is the canonical encoding of what it holds
// (§3, canonical.go), holds exactly a record's members with the values §2
// allows (members.go) and has "seq" its line number. Any other line waits
// to be covered or set aside (§8).
func parseRecord(line []byte, seq int64) *record {
	if len(line) > maxLine {
		return nil
	}
	m := parseCanonical(line)
	if m == nil || m["seq"] != json.Number(strconv.FormatInt(seq, 10)) || !validMembers(m) {
		return nil
	}
	actor := m["actor"].(object)
	r := &record{key: actor["key"].(string), action: m["action"].(string), body: line}
	if name, named := actor["name"].(string); named {
		r.name = &name
	}
	if raw, signed := m["sig"]; signed {
		// §4: the signature covers the canonical JSON of the record without
		// "sig".
		unsigned := object{}
		for name, value := range m {
			if name != "sig" {
				unsigned[name] = value
			}
		}
		r.signed, r.sig = true, signature(raw)
		r.body, _ = appendCanonical(nil, unsigned)
	}
	if list, torn := m["fragments"].([]any); torn {
		for _, item := range list {
			f := item.(object)
			r.fragments = append(r.fragments, fragment{
				Length: count(f["length"]),
				Seq:    count(f["seq"]),
				Sha256: f["sha256"].(string),
			})
		}
	}
	return r
}

// count returns the value of an integer >= 0; -1 for one beyond int64,
// which no line's length or number reaches.
func count(v any) int64 {
	n, err := strconv.ParseInt(string(v.(json.Number)), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// checkRecords applies the reading rules to every complete line and checks
// every signature; it returns (signed, covered unsigned, set aside, pending).
func checkRecords(lines [][]byte, keys map[string][]binding) (int, int, int, int) {
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
		// The signer must be the key bound to the name the record carries
		// at the run's first line, as must every record of its run (§15).
		key := keyFor(keys, r.name, r.key, int64(start))
		if key == nil {
			fail("signature: record %d (%s) is signed by no key bound to %s at line %d",
				i, r.key, nameOf(r), start)
		}
		if !long && r.action != "torn" {
			for _, j := range pending[s:] {
				p := records[j]
				if keyFor(keys, p.name, p.key, int64(start)) == nil {
					fail("signature: record %d (%s) carries %s, bound to no such key at line %d",
						j, p.key, nameOf(p), start)
				}
			}
		}
		message := append([]byte("vault audit record v2\n"), h.Sum(nil)...)
		if !ed25519.Verify(key, append(message, r.body...), r.sig) {
			fail("signature: record %d (%s) does not verify", i, r.key)
		}
		signed++
		if r.action == "torn" && len(pending) == 0 && len(r.fragments) > 0 {
			// Lines named when none are pending: no interrupted write's, and
			// no line is damaged; the record sets nothing aside (§8). Said of
			// its signer, and the check goes on.
			fmt.Printf("finding: torn record %d (%s) names %d lines from line %d, none "+
				"pending: it sets nothing aside\n", i, r.key, len(r.fragments), i-len(r.fragments))
		} else if r.action == "torn" {
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

// nameOf is the name a record carries, quoted, or "no name".
func nameOf(r *record) string {
	if r.name == nil {
		return "no name"
	}
	return strconv.Quote(*r.name)
}

func checkSignatures(log []byte, keysFile []byte) {
	lines := bytes.Split(log, []byte("\n"))
	lines = lines[:len(lines)-1] // bytes after the last newline are no line
	signed, covered, aside, pending := checkRecords(lines, readKeys(keysFile))
	fmt.Printf("signatures ok: %d signed records cover %d unsigned; %d lines set aside, "+
		"%d pending\n", signed, covered, aside, pending)
}
