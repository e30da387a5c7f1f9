package client

import (
	"fmt"
	"log/slog"
)

// redacted is what every rendering of a SecretValue prints.
const redacted = "[REDACTED]"

// SecretValue holds a secret's bytes in memory only. It never prints
// them: every fmt verb, slog and JSON or text marshalling render
// "[REDACTED]". Expose is the one way to the bytes, so reading a secret is
// a visible call in code review. Copies of a SecretValue share its bytes;
// Destroy overwrites them for every copy. The zero value is empty.
//
// The gRPC and protobuf buffers the value crossed on its way in are
// garbage-collected, not wiped: docs/vault.md says what Go can promise.
type SecretValue struct {
	// The bytes sit behind two pointers so that a SecretValue printed
	// from an unexported field (where fmt cannot call its methods) shows
	// an address, never the bytes.
	box *valueBox
}

type valueBox struct{ b *[]byte }

// newSecretValue copies b into a new SecretValue.
func NewSecretValue(b []byte) SecretValue {
	c := append([]byte(nil), b...)
	return SecretValue{box: &valueBox{b: &c}}
}

// Expose returns the secret bytes themselves, valid until Destroy. Do not
// keep or modify them. A destroyed or zero value exposes nil.
func (v SecretValue) Expose() []byte {
	if v.box == nil || v.box.b == nil {
		return nil
	}
	return *v.box.b
}

// Destroy overwrites the bytes and drops them, for every copy of this
// value. Destroying twice is harmless.
func (v SecretValue) Destroy() {
	if v.box == nil || v.box.b == nil {
		return
	}
	clear(*v.box.b)
	v.box.b = nil
}

// clone returns an independent copy: destroying one leaves the other.
func (v SecretValue) clone() SecretValue { return NewSecretValue(v.Expose()) }

// String returns "[REDACTED]".
func (SecretValue) String() string { return redacted }

// GoString keeps %#v from printing the bytes.
func (SecretValue) GoString() string { return "client.SecretValue(" + redacted + ")" }

// Format renders "[REDACTED]" for every verb and flag.
func (v SecretValue) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, v.GoString())
		return
	}
	fmt.Fprint(f, redacted)
}

// LogValue keeps slog from printing the bytes.
func (SecretValue) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON renders the redacted string.
func (SecretValue) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText renders the redacted string.
func (SecretValue) MarshalText() ([]byte, error) { return []byte(redacted), nil }
