package errfmt

import (
	"errors"
	"strings"
	"testing"
)

var (
	errA = errors.New("not found")
	errB = errors.New("expired")
)

func TestOp(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
		is   []error
	}{
		{Op("nhi", "revoke", "", errA), "nhi: revoke: not found", []error{errA}},
		{Op("nhi", "revoke", "mailer", errA), `nhi: revoke "mailer": not found`, []error{errA}},
		{Op("audit", "log", "x\ny", errA, errB), `audit: log "x\ny": not found: expired`, []error{errA, errB}},
		{Op("audit", "close", ""), "audit: close", nil},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("%q, want %q", got, c.want)
		}
		for _, s := range c.is {
			if !errors.Is(c.err, s) {
				t.Errorf("%q does not match %v", c.err, s)
			}
		}
	}
	if errors.Is(Op("nhi", "get", "", errA), errB) {
		t.Error("matches a cause it does not carry")
	}
}

func TestDetail(t *testing.T) {
	err := Detail(errA, "agent %s, %d tries", Quote("a"), 3)
	if err.Error() != `not found: agent "a", 3 tries` || !errors.Is(err, errA) {
		t.Fatalf("%v", err)
	}
	// The explanation is text, not a format: a % in an argument stays.
	if err := Detail(errA, "%s", "100%d"); err.Error() != "not found: 100%d" {
		t.Fatalf("%v", err)
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":                      `""`,
		"mailer":                `"mailer"`,
		"a\"b":                  `"a\"b"`,
		"line\nforged: INFO ok": `"line\nforged: INFO ok"`,
		"\x1b[31mred":           `"\x1b[31mred"`,
		strings.Repeat("x", 64): `"` + strings.Repeat("x", 64) + `"`,
		strings.Repeat("x", 65): `"` + strings.Repeat("x", 64) + `"…`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
	if got := Quote(strings.Repeat("y", 1<<20)); len(got) > 70 || strings.ContainsAny(got, "\n\r") {
		t.Errorf("a 1 MiB id quotes to %d bytes", len(got))
	}
}
