package secret_test

import (
	"bytes"
	"go/build"
	"testing"

	"github.com/creto-systems/creto/secret"
	"github.com/creto-systems/creto/secret/secrettest"
)

const plaintext = "hunter2-SECRET"

// A Value never prints, however it is reached: directly, through a
// pointer, in a slice, a map, a struct's exported field, or an unexported
// one fmt cannot call methods on.
func TestValueNeverPrints(t *testing.T) {
	v := secret.New([]byte(plaintext))
	type wrapper struct {
		inner secret.Value // unexported: fmt cannot call its methods
		Outer secret.Value
	}
	secrettest.AssertRedacted(t, plaintext, map[string]any{
		"value": v, "pointer": &v, "slice": []secret.Value{v}, "map": map[string]secret.Value{"k": v},
		"wrapper": wrapper{v, v}, "wrapper pointer": &wrapper{v, v},
	})
	hidden := struct{ v secret.Value }{v}
	if out := secrettest.Render(hidden); secrettest.Leaks(out, plaintext) {
		t.Fatalf("an unexported field leaks:\n%s", out)
	}
	if text, _ := v.MarshalText(); string(text) != "[REDACTED]" {
		t.Fatal(string(text))
	}
	if got := string(v.Expose()); got != plaintext {
		t.Fatalf("Expose: %q", got)
	}
}

// The checker finds what it looks for: the raw bytes leak in every form
// it knows.
func TestCheckerCatchesLeaks(t *testing.T) {
	for name, v := range map[string]any{"bytes": []byte(plaintext), "string": plaintext, "struct": struct{ B []byte }{[]byte(plaintext)}} {
		if !secrettest.Leaks(secrettest.Render(v), plaintext) {
			t.Errorf("%s: a raw secret was not caught", name)
		}
	}
	if secrettest.Leaks("nothing here", plaintext) || secrettest.Leaks("anything", "") {
		t.Error("false positive")
	}
}

func TestDestroy(t *testing.T) {
	src := []byte(plaintext)
	v := secret.New(src)
	src[0] = 'X' // New copied
	exposed := v.Expose()
	if string(exposed) != plaintext || v.Len() != len(plaintext) {
		t.Fatal("New aliases its input")
	}
	clone := v.Clone()
	cp := v // copies share the bytes
	v.Destroy()
	if !bytes.Equal(exposed, make([]byte, len(plaintext))) {
		t.Fatal("Destroy left bytes behind")
	}
	if cp.Expose() != nil || cp.Len() != 0 || v.Len() != 0 {
		t.Fatal("a copy still exposes the value after Destroy")
	}
	if string(clone.Expose()) != plaintext {
		t.Fatal("a clone is independent of the value it was cloned from")
	}
	v.Destroy() // twice is harmless
	var zero secret.Value
	zero.Destroy()
	if zero.Expose() != nil || zero.String() != "[REDACTED]" || zero.Clone().Expose() != nil {
		t.Fatal("zero value")
	}
}

// Wrap owns its argument: no second copy to forget to wipe.
func TestWrap(t *testing.T) {
	b := []byte(plaintext)
	v := secret.Wrap(b)
	if &v.Expose()[0] != &b[0] {
		t.Fatal("Wrap copied")
	}
	v.Destroy()
	if !bytes.Equal(b, make([]byte, len(plaintext))) {
		t.Fatal("Destroy did not wipe the wrapped bytes")
	}
}

// The package stays a leaf: the clients import it, and it must not bring
// anything of the node's (its store, its services) into their binaries.
func TestLeaf(t *testing.T) {
	pkg, err := build.Default.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if imp != "fmt" && imp != "log/slog" {
			t.Errorf("secret imports %s", imp)
		}
	}
}
