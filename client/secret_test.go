package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// A secret's bytes never reach a format verb, a log or JSON, even nested
// in the structs that carry them.
func TestSecretValueRedacted(t *testing.T) {
	v := NewSecretValue([]byte("sk-live-123"))
	s := Secret{Ref: SecretRef{Path: "p", Name: "n"}, Value: v}
	d := DelegatedSecrets{Secrets: []DelegatedSecret{{Value: v}}}
	create := CreateSecretRequest{Requester: "planner", Ref: s.Ref, Value: v}
	hidden := struct{ v SecretValue }{v} // an unexported field fmt cannot call methods on
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
		out = append(out, fmt.Sprintf(verb, v), fmt.Sprintf(verb, s), fmt.Sprintf(verb, d), fmt.Sprintf(verb, hidden), fmt.Sprintf(verb, create))
	}
	var logged bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&logged, nil), slog.NewJSONHandler(&logged, nil)} {
		slog.New(h).Info("read", "value", v, "secret", s, "request", create)
	}
	out = append(out, logged.String())
	for _, x := range []any{v, s, d, create} {
		b, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	all := strings.Join(out, "\n")
	for _, leak := range []string{"sk-live-123", fmt.Sprintf("%x", "sk-live-123"), "115 107 45"} {
		if strings.Contains(strings.ToLower(all), strings.ToLower(leak)) {
			t.Fatalf("leaked %q in:\n%s", leak, all)
		}
	}
	if !strings.Contains(all, redacted) {
		t.Fatal("nothing says it was redacted")
	}
}

func TestSecretValueDestroy(t *testing.T) {
	b := []byte("sk-live-123")
	v := NewSecretValue(b)
	if &v.Expose()[0] == &b[0] {
		t.Fatal("newSecretValue kept the caller's bytes")
	}
	c := v.clone()
	exposed := v.Expose()
	copyOf := v // copies share the bytes
	v.Destroy()
	if copyOf.Expose() != nil || !bytes.Equal(exposed, make([]byte, len(exposed))) {
		t.Fatalf("destroy did not wipe: %q", exposed)
	}
	v.Destroy() // twice is harmless
	if string(c.Expose()) != "sk-live-123" {
		t.Fatal("a clone is independent of the value it was cloned from")
	}
	var zero SecretValue
	zero.Destroy()
	if zero.Expose() != nil {
		t.Fatal("zero value")
	}
	msg := []byte("in a protobuf message")
	taken := takeValue(msg)
	if !bytes.Equal(msg, make([]byte, len(msg))) || string(taken.Expose()) != "in a protobuf message" {
		t.Fatal("takeValue must wipe the message's bytes and keep a copy")
	}
}
