// Package secret holds secret bytes — a vault value, a bearer URL — so
// that they never print. It is a leaf: it imports nothing but fmt and
// log/slog, so the vault and the Go clients share one type without the
// clients pulling the node's store into their binaries.
package secret

import (
	"fmt"
	"log/slog"
)

// redacted is what every rendering of a Value prints.
const redacted = "[REDACTED]"

// Value holds secret bytes. It never prints them: every fmt verb (%v %+v
// %#v %s %q %x …), slog and JSON or text marshalling render "[REDACTED]".
// Expose is the one way to the bytes, so reading a secret is always a
// visible call in code review.
//
// Copies of a Value share the same bytes, and Destroy overwrites them for
// every copy: call it once the value has been used (defer v.Destroy()).
// Go cannot promise more than that: the garbage collector may have copied
// the bytes before (docs/vault.md says what it can and cannot do). A
// Value is not safe for Destroy concurrent with other use. The zero value
// is an empty value.
type Value struct {
	box *box
}

// box is shared by copies of a Value, so Destroy through any copy reaches
// them all. The bytes sit behind a second pointer because of one fmt path:
// a Value in an unexported struct field cannot have its methods called,
// and a verb like %s or %q there prints the box one level deep — which
// then shows only this pointer's address, never the bytes.
type box struct{ b *[]byte }

// New copies b into a new Value. The caller still owns b and should clear
// it when done.
func New(b []byte) Value { return Wrap(append([]byte(nil), b...)) }

// Wrap takes ownership of b without copying it: for bytes the caller made
// and will not touch again, such as a plaintext just decrypted, so that
// there is only the one copy to destroy.
func Wrap(b []byte) Value { return Value{box: &box{b: &b}} }

// Expose returns the secret bytes themselves, not a copy: they are valid
// until Destroy, which overwrites them. Do not keep them past that, and do
// not modify them. A destroyed or zero value exposes nil.
func (v Value) Expose() []byte {
	if v.box == nil || v.box.b == nil {
		return nil
	}
	return *v.box.b
}

// Len returns the length of the value; 0 once destroyed.
func (v Value) Len() int { return len(v.Expose()) }

// Clone returns an independent copy: destroying one leaves the other. A
// cache hands out clones, so a caller's Destroy wipes only its own.
func (v Value) Clone() Value { return New(v.Expose()) }

// Destroy overwrites the bytes and drops them, for this value and every
// copy of it. Destroying twice is harmless.
func (v Value) Destroy() {
	if v.box == nil || v.box.b == nil {
		return
	}
	clear(*v.box.b)
	v.box.b = nil
}

// String returns "[REDACTED]".
func (Value) String() string { return redacted }

// GoString keeps %#v from printing the bytes.
func (Value) GoString() string { return "secret.Value(" + redacted + ")" }

// Format renders "[REDACTED]" for every verb and flag, so %x, %q and %d
// print nothing of the value either.
func (v Value) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, v.GoString())
		return
	}
	fmt.Fprint(f, redacted)
}

// LogValue makes slog print "[REDACTED]" with any handler.
func (Value) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON encodes the value as the string "[REDACTED]": a response
// serialized by accident carries no secret. Code that must send the bytes
// (a gRPC adapter filling a protobuf field) copies Expose() explicitly.
func (Value) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText is "[REDACTED]" too, for TOML, YAML and other text encoders.
func (Value) MarshalText() ([]byte, error) { return []byte(redacted), nil }
