// Command auditcheck verifies a vault audit log's checkpoint, inclusion
// proof, hash file and record signatures with golang.org/x/mod/sumdb/note
// and .../tlog and the Go standard library, an implementation independent of
// vault's own. It prints one line per check and exits 1 at the first failure.
//
// Usage:
//
//	auditcheck [-keys KEYS] VKEY CHECKPOINT TLOG_PROOF HASHES LOG [OLD_CHECKPOINT CONSISTENCY]
//
// VKEY is the log's verifier key text (name+hash+base64); CHECKPOINT and
// OLD_CHECKPOINT are signed-note files; TLOG_PROOF a c2sp.org/tlog-proof@v1
// file; HASHES the log's stored-hash file; LOG the log itself; CONSISTENCY
// a file of base64 hashes (one per line) proving OLD_CHECKPOINT's tree is a
// prefix of CHECKPOINT's. KEYS, a file of "FIRST END FINGERPRINT BASE64-KEY
// NAME" lines (the key the vault's policy gave each name, a JSON string, for
// the runs starting in lines FIRST to END-1; END "-" while it holds), has every
// record signature checked, by the key bound to the name the record carries
// (records.go).
package main

import (
	"bytes"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func read(path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	return data
}

func hash(text string) tlog.Hash {
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(raw) != tlog.HashSize {
		fail("bad hash %q", text)
	}
	var h tlog.Hash
	copy(h[:], raw)
	return h
}

// sizePattern is a checkpoint's size: ASCII decimal without a sign or a
// leading zero (ParseInt alone takes "+3" and "03").
var sizePattern = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)

// openCheckpoint verifies the note's signature and parses its body
// (c2sp.org/tlog-checkpoint: origin, size, base64 root). The origin must be
// the key's name (docs/AUDIT.md §7): a key signs for one log.
func openCheckpoint(verifiers note.Verifiers, msg []byte) (string, int64, tlog.Hash) {
	n, err := note.Open(msg, verifiers)
	if err != nil {
		fail("checkpoint signature: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		fail("checkpoint body too short")
	}
	if lines[0] != n.Sigs[0].Name {
		fail("checkpoint origin %q is not its key's name %q", lines[0], n.Sigs[0].Name)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || !sizePattern.MatchString(lines[1]) {
		fail("checkpoint size %q", lines[1])
	}
	return lines[0], size, hash(lines[2])
}

type proof struct {
	extra  []byte
	index  int64
	hashes tlog.RecordProof
	note   []byte
}

func parseProof(text string) proof {
	head, checkpoint, found := strings.Cut(text, "\n\n")
	if !found {
		fail("tlog-proof: no blank line")
	}
	lines := strings.Split(head, "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" {
		fail("tlog-proof: bad header %q", lines[0])
	}
	lines = lines[1:]
	var p proof
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		extra, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(lines[0], "extra "))
		if err != nil {
			fail("tlog-proof: extra: %v", err)
		}
		p.extra, lines = extra, lines[1:]
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "index ") {
		fail("tlog-proof: no index line")
	}
	// A decimal number as the format writes it: ParseInt alone takes "+1",
	// "01" and "-1".
	number := strings.TrimPrefix(lines[0], "index ")
	index, err := strconv.ParseInt(number, 10, 64)
	if err != nil || !sizePattern.MatchString(number) {
		fail("tlog-proof: bad index")
	}
	p.index = index
	for _, line := range lines[1:] {
		p.hashes = append(p.hashes, hash(line))
	}
	p.note = []byte(checkpoint)
	return p
}

// fileHashes reads stored hashes at tlog.StoredHashIndex positions.
func fileHashes(data []byte) tlog.HashReaderFunc {
	return func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			off := x * tlog.HashSize
			if off+tlog.HashSize > int64(len(data)) {
				return nil, fmt.Errorf("hash %d beyond the file", x)
			}
			copy(out[i][:], data[off:off+tlog.HashSize])
		}
		return out, nil
	}
}

func indexRange(n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i)
	}
	return out
}

func main() {
	keysPath := flag.String("keys", "", "file of the keys bound to names: check every record signature")
	flag.Parse()
	args := append([]string{os.Args[0]}, flag.Args()...)
	if len(args) != 6 && len(args) != 8 {
		fail("usage: auditcheck [-keys KEYS] VKEY CHECKPOINT TLOG_PROOF HASHES LOG " +
			"[OLD_CHECKPOINT CONSISTENCY]")
	}
	verifier, err := note.NewVerifier(strings.TrimSpace(string(read(args[1]))))
	if err != nil {
		fail("verifier key: %v", err)
	}
	verifiers := note.VerifierList(verifier)

	origin, size, root := openCheckpoint(verifiers, read(args[2]))
	fmt.Printf("checkpoint ok: %s size %d\n", origin, size)

	p := parseProof(string(read(args[3])))
	pOrigin, pSize, pRoot := openCheckpoint(verifiers, p.note)
	if pOrigin != origin {
		fail("proof checkpoint is for %q, not %q", pOrigin, origin)
	}
	// The extra data is the record's line, then what its signature covers
	// (docs/AUDIT.md §10): the leaf is the line's.
	line, _, _ := bytes.Cut(p.extra, []byte("\n"))
	if err := tlog.CheckRecord(p.hashes, pSize, pRoot, p.index, tlog.RecordHash(line)); err != nil {
		fail("inclusion proof: %v", err)
	}
	fmt.Printf("inclusion ok: record %d in tree of size %d\n", p.index, pSize)

	lines := bytes.Split(read(args[5]), []byte("\n"))
	if p.index >= int64(len(lines)) || !bytes.Equal(lines[p.index], line) {
		fail("proof's record is not line %d of the log", p.index)
	}
	fmt.Printf("record ok: line %d of the log\n", p.index)

	reader := fileHashes(read(args[4]))
	th, err := tlog.TreeHash(size, reader)
	if err != nil || th != root {
		fail("hash file: tree hash %v (err %v) != checkpoint root %v", th, err, root)
	}
	ours, err := tlog.ProveRecord(pSize, p.index, reader)
	if err != nil || len(ours) != len(p.hashes) {
		fail("hash file: cannot rebuild the proof: %v", err)
	}
	for i := range ours {
		if ours[i] != p.hashes[i] {
			fail("hash file: proof hash %d differs", i)
		}
	}
	// Recompute every stored hash from the log lines alone and compare
	// them with the hash file, byte for byte (same layout as tlog's).
	var stored []tlog.Hash
	mem := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if x >= int64(len(stored)) {
				return nil, fmt.Errorf("hash %d not computed yet", x)
			}
			out[i] = stored[x]
		}
		return out, nil
	})
	for i := int64(0); i < size; i++ {
		hs, err := tlog.StoredHashes(i, lines[i], mem)
		if err != nil {
			fail("log lines: %v", err)
		}
		stored = append(stored, hs...)
	}
	if th, err := tlog.TreeHash(size, mem); err != nil || th != root {
		fail("log lines: tree hash %v (err %v) != checkpoint root", th, err)
	}
	fileStored, err := reader.ReadHashes(indexRange(int64(len(stored))))
	if err != nil {
		fail("hash file: %v", err)
	}
	for i := range stored {
		if stored[i] != fileStored[i] {
			fail("hash file: stored hash %d differs from the one computed from the log", i)
		}
	}
	fmt.Printf("tree ok: %d log lines hash to the checkpoint root; %d stored hashes match\n",
		size, len(stored))

	if len(args) == 8 {
		_, oldSize, oldRoot := openCheckpoint(verifiers, read(args[6]))
		var tp tlog.TreeProof
		for _, line := range strings.Fields(string(read(args[7]))) {
			tp = append(tp, hash(line))
		}
		if err := tlog.CheckTree(tp, size, root, oldSize, oldRoot); err != nil {
			fail("consistency proof: %v", err)
		}
		fmt.Printf("consistency ok: %d is a prefix of %d\n", oldSize, size)
	}

	if *keysPath != "" {
		checkSignatures(read(args[5]), read(*keysPath))
	}
}
