package client

import "github.com/creto-systems/creto/secret"

// SecretValue holds a secret's bytes in memory only and never prints them:
// it is secret.Value, the vault's own type, so every fmt verb, slog and
// JSON or text marshalling render "[REDACTED]". Expose is the one way to
// the bytes; copies share them, and Destroy overwrites them for every copy.
// The zero value is empty.
//
// The gRPC and protobuf buffers the value crossed on its way in are
// garbage-collected, not wiped: docs/vault.md says what Go can promise.
type SecretValue = secret.Value

// NewSecretValue copies b into a new SecretValue.
func NewSecretValue(b []byte) SecretValue { return secret.New(b) }

// takeValue moves a value out of a protobuf message: the client's copy is
// a SecretValue, and the message's bytes are wiped.
func takeValue(b []byte) SecretValue {
	v := secret.New(b)
	clear(b)
	return v
}
