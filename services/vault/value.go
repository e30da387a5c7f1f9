package vault

import "github.com/creto-systems/creto/secret"

// SecretValue holds a secret's bytes and never prints them: it is
// secret.Value, shared with the Go clients, so a value read here or
// through a client redacts the same way. Expose is the one way to the
// bytes; Destroy overwrites them for every copy (defer v.Destroy()).
type SecretValue = secret.Value

// NewSecretValue copies b into a new SecretValue. The caller still owns b
// and should clear it when done.
func NewSecretValue(b []byte) SecretValue { return secret.New(b) }
