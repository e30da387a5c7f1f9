package agentid

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		id, problem string
	}{
		{"planner", ""},
		{"ext:q", ""},
		{"dé-😀", ""}, // 8 bytes
		{strings.Repeat("a", 8), ""},
		{"", "is empty"},
		{strings.Repeat("a", 9), "is 9 bytes, limit 8"},
		{"a\xffb", "is not valid UTF-8"},
		{"a b", "contains a space or control character"},
		{"a\u00a0b", "contains a space or control character"}, // no-break space
		{"a\nb", "contains a space or control character"},
		{"a\x00b", "contains a space or control character"},
		{"a\u0085b", "contains a space or control character"}, // next line
	} {
		err := Check(c.id, 8)
		switch {
		case c.problem == "" && err != nil:
			t.Errorf("%q: %v", c.id, err)
		case c.problem != "" && (err == nil || err.Error() != c.problem):
			t.Errorf("%q: got %v, want %q", c.id, err, c.problem)
		}
	}
}
