package vault

import (
	"bytes"
	"testing"

	"github.com/creto-systems/creto/secret/secrettest"
)

const plaintext = "hunter2-SECRET"

// The vault's types that carry values print them redacted (the checks of
// every rendering are secrettest's, shared with the clients).
func TestSecretValueNeverPrints(t *testing.T) {
	v := NewSecretValue([]byte(plaintext))
	sec := Secret{Ref: ref("agents/a", "K"), Value: v, Version: 1}
	resp := DelegatedSecretsResponse{Secrets: []DelegatedSecret{{Ref: sec.Ref, Value: v}}}
	secrettest.AssertRedacted(t, plaintext, map[string]any{
		"secret": sec, "secret pointer": &sec, "response": resp, "create": CreateSecretRequest{Ref: sec.Ref, Value: v},
	})
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
