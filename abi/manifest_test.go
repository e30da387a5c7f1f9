package abi_test

import (
	"errors"
	"testing"

	"github.com/creto-systems/creto/abi"
)

// emptyModule is the smallest valid module: the header alone.
var emptyModule = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

func TestManifestRoundTrip(t *testing.T) {
	m, err := abi.ParseManifest([]byte(`{"name": "quota", "capabilities": ["state", "prefilter"], "prefilter": {"bloom": "principal"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if *m.Priority != abi.DefaultPriority || m.OnError != "deny" || m.Limits.Fuel != abi.DefaultFuel || m.Limits.MemoryPages != abi.DefaultMemoryPages {
		t.Fatalf("defaults: %+v", m)
	}
	mod, err := abi.WriteManifest(emptyModule, m)
	if err != nil {
		t.Fatal(err)
	}
	m.Name = "quota2"
	if mod, err = abi.WriteManifest(mod, m); err != nil { // replaces, not duplicates
		t.Fatal(err)
	}
	got, err := abi.ReadManifest(mod)
	if err != nil || got.Name != "quota2" || got.Prefilter.Bloom != "principal" {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestManifestErrors(t *testing.T) {
	for name, text := range map[string]string{
		"typo":                `{"name": "x", "priorty": 1}`,
		"bad name":            `{"name": "Has Spaces"}`,
		"no name":             `{}`,
		"negative priority":   `{"name": "x", "priority": -1}`,
		"bloom without grant": `{"name": "x", "prefilter": {"bloom": "principal"}}`,
		"unknown bloom":       `{"name": "x", "capabilities": ["prefilter"], "prefilter": {"bloom": "everything"}}`,
		"bad on_error":        `{"name": "x", "on_error": "retry"}`,
		"huge memory":         `{"name": "x", "limits": {"memory_pages": 100000}}`,
		"not json":            `name: x`,
		"trailing":            `{"name": "x"} {}`,
	} {
		if _, err := abi.ParseManifest([]byte(text)); !errors.Is(err, abi.ErrManifest) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := abi.ReadManifest(emptyModule); !errors.Is(err, abi.ErrManifest) {
		t.Errorf("no manifest: %v", err)
	}
	if _, err := abi.ReadManifest([]byte("not wasm")); !errors.Is(err, abi.ErrManifest) {
		t.Errorf("not wasm: %v", err)
	}
	lying := append(append([]byte(nil), emptyModule...), 0x00, 0x7f, 0x01) // size 127, 1 byte present
	if _, err := abi.ReadManifest(lying); !errors.Is(err, abi.ErrManifest) {
		t.Errorf("lying size: %v", err)
	}
}

func FuzzReadManifest(f *testing.F) {
	m, _ := abi.ParseManifest([]byte(`{"name": "x"}`))
	mod, _ := abi.WriteManifest(emptyModule, m)
	f.Add(mod)
	f.Add(emptyModule)
	f.Fuzz(func(t *testing.T, b []byte) {
		abi.ReadManifest(b) // must not panic
	})
}
