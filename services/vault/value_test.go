package vault

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const plaintext = "hunter2-SECRET"

// leaks reports whether out shows the secret in any usual rendering.
func leaks(out string) bool {
	for _, form := range []string{plaintext, fmt.Sprintf("%x", plaintext), fmt.Sprintf("%X", plaintext), fmt.Sprint([]byte(plaintext))} {
		if strings.Contains(out, form) {
			return true
		}
	}
	// Decimal byte values, as %d or %v of the raw slice print them.
	return strings.Contains(out, "104 117 110 116")
}

func TestSecretValueNeverPrints(t *testing.T) {
	v := NewSecretValue([]byte(plaintext))
	sec := Secret{Ref: ref("agents/a", "K"), Value: v, Version: 1}
	resp := DelegatedSecretsResponse{Secrets: []DelegatedSecret{{Ref: sec.Ref, Value: v}}}
	type wrapper struct {
		inner SecretValue // unexported: fmt cannot call its methods
		Outer SecretValue
	}
	args := map[string]any{
		"value": v, "pointer": &v, "secret": sec, "secret pointer": &sec, "response": resp,
		"slice": []SecretValue{v}, "map": map[string]SecretValue{"k": v}, "wrapper": wrapper{v, v},
	}
	for name, arg := range args {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
			if out := fmt.Sprintf(verb, arg); leaks(out) {
				t.Errorf("%s with %s: %s", name, verb, out)
			}
		}
		if out := fmt.Sprint(arg) + fmt.Sprintln(arg); leaks(out) {
			t.Errorf("%s with Sprint: %s", name, out)
		}
		out, err := json.Marshal(arg)
		if err != nil || leaks(string(out)) {
			t.Errorf("%s as JSON: %s %v", name, out, err)
		}
		var buf bytes.Buffer
		for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
			slog.New(h).Info("msg", "arg", arg, slog.Any("any", arg), slog.Group("g", "v", arg))
		}
		if leaks(buf.String()) {
			t.Errorf("%s through slog: %s", name, buf.String())
		}
	}
	if text, _ := v.MarshalText(); string(text) != redacted {
		t.Fatal(string(text))
	}
	if got := string(v.Expose()); got != plaintext {
		t.Fatalf("Expose: %q", got)
	}
}

func TestSecretValueDestroy(t *testing.T) {
	src := []byte(plaintext)
	v := NewSecretValue(src)
	src[0] = 'X' // NewSecretValue copied
	exposed := v.Expose()
	if string(exposed) != plaintext {
		t.Fatal("NewSecretValue aliases its input")
	}
	cp := v
	v.Destroy()
	if !bytes.Equal(exposed, make([]byte, len(plaintext))) {
		t.Fatal("Destroy left bytes behind")
	}
	if cp.Expose() != nil || cp.Len() != 0 || v.Len() != 0 {
		t.Fatal("a copy still exposes the value after Destroy")
	}
	v.Destroy() // twice is harmless
	var zero SecretValue
	zero.Destroy()
	if zero.Expose() != nil || zero.String() != redacted {
		t.Fatal("zero value")
	}
}

// The values the vault returns are its only copies: Destroy wipes them.
func TestReturnedValuesAreWiped(t *testing.T) {
	f := newFixture(t, Config{})
	r := ref("agents/a", "K")
	f.create("a", r, plaintext)
	s, err := f.svc.GetSecret(bg, "a", GetSecretRequest{Ref: r})
	must(t, err)
	b := s.Value.Expose()
	s.Destroy()
	if !bytes.Equal(b, make([]byte, len(plaintext))) {
		t.Fatal("the returned value was not wiped")
	}
}
