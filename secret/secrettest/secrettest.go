// Package secrettest checks that secrets do not print: every package
// whose types carry secret.Values proves with AssertRedacted that its own
// structs render them redacted, with one list of renderings kept here.
package secrettest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// verbs are the fmt verbs a careless log line might use.
var verbs = []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"}

// Render returns v as every fmt verb, fmt.Sprint and Sprintln, JSON, and
// slog's text and JSON handlers (as an attribute, slog.Any and in a group)
// print it, one rendering per line.
func Render(v any) string {
	var out []string
	for _, verb := range verbs {
		out = append(out, fmt.Sprintf(verb, v))
	}
	out = append(out, fmt.Sprint(v), fmt.Sprintln(v))
	if b, err := json.Marshal(v); err == nil {
		out = append(out, string(b))
	} else {
		out = append(out, "json: "+err.Error())
	}
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		slog.New(h).Info("msg", "arg", v, slog.Any("any", v), slog.Group("g", "v", v))
	}
	out = append(out, buf.String())
	return strings.Join(out, "\n")
}

// Leaks reports whether out shows plaintext in any usual encoding: as
// is, in hex either case, or as the decimal bytes %v and %d print for a
// byte slice.
func Leaks(out, plaintext string) bool {
	if plaintext == "" {
		return false
	}
	dec := strings.Trim(fmt.Sprint([]byte(plaintext)), "[]")
	for _, form := range []string{plaintext, fmt.Sprintf("%x", plaintext), fmt.Sprintf("%X", plaintext), dec} {
		if strings.Contains(out, form) {
			return true
		}
	}
	return false
}

// AssertRedacted fails t for every value, by name, whose rendering shows
// plaintext; values carrying a secret must also say "[REDACTED]"
// somewhere, so that a rendering which merely drops the field is noticed.
func AssertRedacted(t testing.TB, plaintext string, values map[string]any) {
	t.Helper()
	for name, v := range values {
		out := Render(v)
		if Leaks(out, plaintext) {
			t.Errorf("%s leaks the secret:\n%s", name, out)
		}
		if !strings.Contains(out, "[REDACTED]") {
			t.Errorf("%s does not say it was redacted:\n%s", name, out)
		}
	}
}
