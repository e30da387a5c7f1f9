package client

import (
	"bytes"
	"testing"

	"github.com/creto-systems/creto/secret/secrettest"
)

// The client's types that carry secret values print them redacted (the
// renderings checked are secrettest's, shared with the vault).
func TestSecretValueRedacted(t *testing.T) {
	const plaintext = "sk-live-123"
	v := NewSecretValue([]byte(plaintext))
	s := Secret{Ref: SecretRef{Path: "p", Name: "n"}, Value: v}
	secrettest.AssertRedacted(t, plaintext, map[string]any{
		"value": v, "secret": s, "delegated": DelegatedSecrets{Secrets: []DelegatedSecret{{Value: v}}},
		"create": CreateSecretRequest{Requester: "planner", Ref: s.Ref, Value: v},
	})
}

// A value taken from a protobuf message is a copy, and the message's bytes
// are wiped.
func TestTakeValue(t *testing.T) {
	msg := []byte("in a protobuf message")
	taken := takeValue(msg)
	if !bytes.Equal(msg, make([]byte, len(msg))) || string(taken.Expose()) != "in a protobuf message" {
		t.Fatal("takeValue must wipe the message's bytes and keep a copy")
	}
}
