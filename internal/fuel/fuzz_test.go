package fuel_test

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/creto-systems/creto/internal/fuel"
)

// FuzzInstrument checks that Instrument never panics, that its errors are
// typed, and that it never turns a module wazero accepts into one wazero
// rejects.
func FuzzInstrument(f *testing.F) {
	for _, name := range testModules(f) {
		f.Add(readModule(f, name))
	}
	f.Add(oneFunc(0x0B))
	rt := newRuntime(f, wazero.NewRuntimeConfigCompiler())
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, module []byte) {
		out, err := fuel.Instrument(module)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		cm, err := rt.CompileModule(ctx, module)
		if err != nil {
			return
		}
		cm.Close(ctx)
		cm, err = rt.CompileModule(ctx, out)
		if err != nil {
			t.Fatalf("input compiles, output does not: %v", err)
		}
		cm.Close(ctx)
	})
}
