package vault

import (
	"fmt"
	"log/slog"
)

// redacted is what every rendering of a SecretValue prints.
const redacted = "[REDACTED]"

// SecretValue holds a secret's bytes. It never prints them: every fmt verb
// (%v %+v %#v %s %q %x …), slog and JSON or text marshalling render
// "[REDACTED]". Expose is the one way to the bytes, so reading a secret is
// always a visible call in code review.
//
// Copies of a SecretValue share the same bytes, and Destroy overwrites
// them for every copy: call it once the value has been used (defer
// v.Destroy()). docs/vault.md lists what Go can and cannot promise about
// wiping memory. A SecretValue is not safe for Destroy concurrent with
// other use. The zero value is an empty value.
type SecretValue struct {
	box *valueBox
}

// valueBox is shared by copies of a SecretValue, so Destroy through any
// copy reaches them all. The bytes sit behind a second pointer because of
// one fmt path: a SecretValue in an unexported struct field cannot have its
// methods called, and a bad verb (%s, %q) there prints the box one level
// deep — which then shows only this pointer's address.
type valueBox struct{ b *[]byte }

// NewSecretValue copies b into a new SecretValue. The caller still owns b
// and should clear it when done.
func NewSecretValue(b []byte) SecretValue {
	return wrapValue(append([]byte(nil), b...))
}

// wrapValue takes ownership of b without copying it, for plaintexts the
// vault decrypts (the one copy there is).
func wrapValue(b []byte) SecretValue { return SecretValue{box: &valueBox{b: &b}} }

// Expose returns the secret bytes themselves, not a copy: they are valid
// until Destroy, which overwrites them. Do not keep them past that, and do
// not modify them. A destroyed or zero value exposes nil.
func (v SecretValue) Expose() []byte {
	if v.box == nil || v.box.b == nil {
		return nil
	}
	return *v.box.b
}

// Len returns the length of the value; 0 once destroyed.
func (v SecretValue) Len() int { return len(v.Expose()) }

// Destroy overwrites the bytes and drops them, for this value and every
// copy of it. Destroying twice is harmless.
func (v SecretValue) Destroy() {
	if v.box == nil || v.box.b == nil {
		return
	}
	clear(*v.box.b)
	v.box.b = nil
}

// String returns "[REDACTED]".
func (v SecretValue) String() string { return redacted }

// GoString keeps %#v from printing the bytes.
func (v SecretValue) GoString() string { return "vault.SecretValue(" + redacted + ")" }

// Format renders "[REDACTED]" for every verb and flag, so %x, %q and %d
// print nothing of the value either.
func (v SecretValue) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, v.GoString())
		return
	}
	fmt.Fprint(f, redacted)
}

// LogValue makes slog print "[REDACTED]" with any handler.
func (v SecretValue) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON encodes the value as the string "[REDACTED]": a response
// serialized by accident carries no secret. The gRPC adapter copies
// Expose() into the protobuf field explicitly.
func (v SecretValue) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText is "[REDACTED]" too, for TOML, YAML and other text encoders.
func (v SecretValue) MarshalText() ([]byte, error) { return []byte(redacted), nil }
