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
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	m := cedar.RecordMap{}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return m, skipSpace(b, i+1) == len(b)
	}
	for {
		key, next, ok := plainString(b, i)
		if !ok {
			return nil, false
		}
		if _, dup := m[cedar.String(key)]; dup {
			return nil, false // Cedar rejects duplicate names; let it say so
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return nil, false
		}
		var v cedar.Value
		switch c := b[i]; {
		case c == '"':
			s, next, ok := plainString(b, i)
			if !ok {
				return nil, false
			}
			v, i = cedar.String(s), next
		case c == 't' && hasPrefix(b[i:], "true"):
			v, i = cedar.Boolean(true), i+4
		case c == 'f' && hasPrefix(b[i:], "false"):
			v, i = cedar.Boolean(false), i+5
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			num := string(b[i:j])
			n, err := strconv.ParseInt(num, 10, 64)
			if err != nil || num == "-0" || (len(num) > 1 && num[0] == '0') || (len(num) > 2 && num[:2] == "-0") {
				return nil, false
			}
			v, i = cedar.Long(n), j
		default:
			return nil, false
		}
		m[cedar.String(key)] = v
		i = skipSpace(b, i)
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return m, skipSpace(b, i+1) == len(b)
		default:
			return nil, false
		}
	}
}

// plainString reads a JSON string starting at b[i] == '"' that has no escape
// sequences and is valid UTF-8.
func plainString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s := b[i+1 : j]
			return string(s), j + 1, utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return "", 0, false
		}
	}
	return "", 0, false
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
