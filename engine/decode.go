package engine

import (
	"strconv"
	"unicode/utf8"

	cedar "github.com/cedar-policy/cedar-go"
)

// decodeObject decodes a JSON object into a Cedar record; empty input is {}.
// A flat object of plain strings, integers and booleans (the usual shape of
// a request context) is decoded directly, three times faster than
// cedar-go's general decoder; anything else (nesting, escapes, entity or
// extension forms, null, fractions) goes through cedar-go's decoder, so the
// result and the errors are always Cedar's.
func decodeObject(b []byte) (cedar.Record, error) {
	if len(b) == 0 {
		return cedar.Record{}, nil
	}
	if m, ok := decodeFlat(b); ok {
		if len(m) == 0 {
			return cedar.Record{}, nil
		}
		return cedar.NewRecord(m), nil
	}
	var rec cedar.Record
	if err := rec.UnmarshalJSON(b); err != nil {
		return cedar.Record{}, err
	}
	return rec, nil
}

// decodeFlat handles the flat case of decodeObject and reports false for
// anything it does not fully understand.
func decodeFlat(b []byte) (cedar.RecordMap, bool) {
	m := cedar.RecordMap{}
	ok := scanFlat(b, func(key string, v cedar.Value) bool {
		m[cedar.String(key)] = v
		return true
	})
	return m, ok
}

// isFlatObject reports whether b is a flat object decodeFlat takes: such
// input is a valid Cedar record, and scanning it is much cheaper than
// decoding it.
func isFlatObject(b []byte) bool { return scanFlat(b, nil) }

// maxFlatMembers bounds the objects the fast path takes, so its duplicate
// check (Cedar rejects duplicate names; the general decoder says so) stays
// a few comparisons.
const maxFlatMembers = 16

// scanFlat parses a flat JSON object, handing each member to visit when
// visit is non-nil; visit returning false stops the scan with false.
func scanFlat(b []byte, visit func(key string, v cedar.Value) bool) bool {
	var keys [maxFlatMembers][]byte
	n := 0
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		key, next, ok := plainString(b, i)
		if !ok || n == maxFlatMembers {
			return false
		}
		for _, k := range keys[:n] {
			if string(k) == string(key) {
				return false
			}
		}
		keys[n] = key
		n++
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return false
		}
		var v cedar.Value
		switch c := b[i]; {
		case c == '"':
			s, next, ok := plainString(b, i)
			if !ok {
				return false
			}
			if visit != nil {
				v = cedar.String(string(s))
			}
			i = next
		case c == 't' && hasPrefix(b[i:], "true"):
			v, i = cedar.Boolean(true), i+4
		case c == 'f' && hasPrefix(b[i:], "false"):
			v, i = cedar.Boolean(false), i+5
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			n, ok := plainInt(b[i:j])
			if !ok {
				return false
			}
			v, i = cedar.Long(n), j
		default:
			return false
		}
		if visit != nil && !visit(string(key), v) {
			return false
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

// plainInt parses a JSON integer that is also a Cedar Long: no leading
// zeros, no -0, in range.
func plainInt(num []byte) (int64, bool) {
	digits := num
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || (digits[0] == '0' && (len(digits) > 1 || len(num) > 1)) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(num), 10, 64)
	return n, err == nil
}

// plainString reads a JSON string starting at b[i] == '"' that has no escape
// sequences and is valid UTF-8.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s := b[i+1 : j]
			return s, j + 1, utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func hasPrefix(b []byte, s string) bool {
	return len(b) >= len(s) && string(b[:len(s)]) == s
}
