package main

// The canonical serialisation of records (docs/AUDIT.md §3), by hand:
// encoding/json's output is not it (it writes <, >, &, U+2028 and U+2029 as
// \u003c ... \u2029, U+0008 as \u0008, and reads a duplicate member name or
// invalid UTF-8 without a word). A line is read as one JSON value, encoded
// again by §3's rules and compared with the line byte for byte: a line that
// differs in any byte -- whitespace, member order, a duplicate name, 2.0 for
// 2, an escape where §3 writes the character itself -- is not a record.

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"sort"
	"unicode/utf8"
)

// object is a parsed JSON object; the other values parse as nil, bool,
// string, json.Number (the number's text, never a float) and []any.
type object map[string]any

// maxIntegerDigits: the vault's reader (Python's json) refuses an integer
// of more decimal digits (Python's int_max_str_digits), so a line holding
// one is not a record.
const maxIntegerDigits = 4300

// integerPattern: §3's integers -- decimal, no "+", no leading zero, no
// fraction or exponent. "-0" matches, yet reads as 0, whose encoding is "0".
var integerPattern = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

var errDuplicate = errors.New("a member name given twice")

// maxDepth: objects and arrays nest at most this deep in a record, the
// record itself at depth 1 (§3).
const maxDepth = 64

// parseCanonical returns the JSON object line holds when line is exactly
// that object's canonical encoding (§3), else nil.
func parseCanonical(line []byte) object {
	if !utf8.Valid(line) { // encoding/json would read each bad byte as U+FFFD
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	value, err := readValue(dec, 1)
	obj, isObject := value.(object)
	if err != nil || !isObject {
		return nil
	}
	encoded, ok := appendCanonical(nil, obj)
	if !ok || !bytes.Equal(encoded, line) {
		return nil
	}
	return obj
}

// readValue reads the next JSON value from dec, refusing an object that
// names a member twice (encoding/json would keep the last one).
// depth is the nesting an object or array read here would have.
func readValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	delim, isDelim := tok.(json.Delim)
	if !isDelim {
		return tok, nil // a string, json.Number, bool or nil
	}
	if depth > maxDepth {
		return nil, errors.New("nested too deep")
	}
	var value any
	switch delim {
	case '{':
		obj := object{}
		for dec.More() {
			tok, err := dec.Token()
			name, isName := tok.(string)
			if err != nil || !isName {
				return nil, errors.New("an object member without a name")
			}
			if _, seen := obj[name]; seen {
				return nil, errDuplicate
			}
			if obj[name], err = readValue(dec, depth+1); err != nil {
				return nil, err
			}
		}
		value = obj
	case '[':
		list := []any{}
		for dec.More() {
			item, err := readValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			list = append(list, item)
		}
		value = list
	default:
		return nil, errors.New("a closing bracket out of place")
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return nil, err
	}
	return value, nil
}

// appendCanonical appends the canonical encoding of value (§3) to buf; false
// when value holds what no record may: a number that is not an integer, or
// an integer too long for the vault's reader.
func appendCanonical(buf []byte, value any) ([]byte, bool) {
	switch v := value.(type) {
	case nil:
		return append(buf, "null"...), true
	case bool:
		if v {
			return append(buf, "true"...), true
		}
		return append(buf, "false"...), true
	case string:
		return appendString(buf, v), true
	case json.Number:
		text := string(v)
		digits := len(text)
		if text != "" && text[0] == '-' {
			digits--
		}
		if !integerPattern.MatchString(text) || text == "-0" || digits > maxIntegerDigits {
			return nil, false
		}
		return append(buf, text...), true
	case []any:
		buf = append(buf, '[')
		for i, item := range v {
			if i > 0 {
				buf = append(buf, ',')
			}
			var ok bool
			if buf, ok = appendCanonical(buf, item); !ok {
				return nil, false
			}
		}
		return append(buf, ']'), true
	case object:
		// Member names in byte order, at every depth: for UTF-8 text that
		// is code point order, the order Python's sort_keys writes.
		names := make([]string, 0, len(v))
		for name := range v {
			names = append(names, name)
		}
		sort.Strings(names)
		buf = append(buf, '{')
		for i, name := range names {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(appendString(buf, name), ':')
			var ok bool
			if buf, ok = appendCanonical(buf, v[name]); !ok {
				return nil, false
			}
		}
		return append(buf, '}'), true
	}
	return nil, false
}

// appendString appends s as §3 writes a string: `"` and `\` escaped, the
// five controls with a short escape as \b \f \n \r \t, the other code
// points below U+0020 as \u00xx (lowercase hex), everything else -- U+007F,
// U+2028, U+2029, any other character -- as its raw UTF-8 bytes.
func appendString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		case '\b':
			buf = append(buf, `\b`...)
		case '\f':
			buf = append(buf, `\f`...)
		case '\n':
			buf = append(buf, `\n`...)
		case '\r':
			buf = append(buf, `\r`...)
		case '\t':
			buf = append(buf, `\t`...)
		default:
			if c < 0x20 {
				buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			} else {
				buf = append(buf, c)
			}
		}
	}
	return append(buf, '"')
}
