package fuel_test

import (
	"context"
	"fmt"
	"strings"
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

// meteringHarness wraps a function body (code only, its final end
// included) into a module with a memory, a table, a global and a passive
// data segment, so that fuzzed code can reach every instruction family.
// The function has type (i32) -> (i32) and two i32 locals.
func meteringHarness(code []byte) []byte {
	body := cat([]byte{1, 2, 0x7F}, code)
	return wasmModule(
		section(1, vec([]byte{0x60, 1, 0x7F, 1, 0x7F})),
		section(3, vec([]byte{0})),
		section(4, vec([]byte{0x70, 0, 2})),
		section(5, vec([]byte{1, 1, 2})),
		section(6, vec([]byte{0x7F, 1, 0x41, 0, 0x0B})),
		section(7, vec(cat(name("f"), []byte{0, 0}))),
		section(9, vec(cat([]byte{0, 0x41, 0, 0x0B}, vec([]byte{0})))),
		section(12, uleb(1)),
		section(10, vec(sized(body))),
		section(11, vec(cat([]byte{1}, name("fuzz")))),
	)
}

// meteringSeeds are bodies for meteringHarness, one per kind of control
// flow that metering must stop or preserve.
var meteringSeeds = [][]byte{
	{0x20, 0, 0x0B}, // local.get 0
	{0x03, 0x40, 0x0C, 0, 0x0B, 0x41, 0, 0x0B},                                  // loop br 0 end; i32.const 0
	{0x03, 0x40, 0x20, 0, 0x41, 1, 0x6B, 0x22, 0, 0x0D, 0, 0x0B, 0x20, 0, 0x0B}, // count down
	{0x20, 0, 0x10, 0, 0x0B},                                                    // infinite recursion
	{0x41, 0, 0x20, 0, 0x41, 0xFF, 0xFF, 0x03, 0xFC, 11, 0, 0x41, 7, 0x0B},      // memory.fill
	{0x41, 0, 0x41, 0, 0x41, 4, 0xFC, 8, 0, 0, 0x41, 0, 0x28, 2, 0, 0x0B},       // memory.init; i32.load
	{0x20, 0, 0x41, 0, 0x11, 0, 0, 0x0B},                                        // call_indirect to itself
	{0x02, 0x40, 0x20, 0, 0x0E, 1, 0, 0, 0x0B, 0x41, 9, 0x0B},                   // br_table
	{0x20, 0, 0x41, 0, 0x6D, 0x0B},                                              // division by zero
	{0x20, 0, 0x0F, 0x0B},                                                       // return
}

// FuzzMetering runs fuzzed function bodies, instrumented, with little fuel:
// every run must end, and one that ends without running out must behave
// exactly as the original.
func FuzzMetering(f *testing.F) {
	for _, code := range meteringSeeds {
		f.Add(code, uint32(3))
	}
	rt := newRuntime(f, wazero.NewRuntimeConfigCompiler())
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, code []byte, arg uint32) {
		orig := meteringHarness(code)
		out, err := fuel.Instrument(orig)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		origCM, err := rt.CompileModule(ctx, orig)
		if err != nil {
			return
		}
		defer origCM.Close(ctx)
		cm, err := rt.CompileModule(ctx, out)
		if err != nil {
			t.Fatalf("input compiles, output does not: %v", err)
		}
		defer cm.Close(ctx)
		config := wazero.NewModuleConfig().WithName("")
		m, err := rt.InstantiateModule(ctx, cm, config)
		if err != nil {
			return // e.g. an element segment out of bounds
		}
		defer m.Close(ctx)
		mt := meter(t, m)
		mt.Set(20_000)
		got, gotErr := m.ExportedFunction("f").Call(ctx, uint64(arg))
		if mt.Exhausted() {
			return
		}
		o, err := rt.InstantiateModule(ctx, origCM, config)
		if err != nil {
			t.Fatalf("instrumented instance ran, original fails to instantiate: %v", err)
		}
		defer o.Close(ctx)
		want, wantErr := o.ExportedFunction("f").Call(ctx, uint64(arg))
		if firstLine(gotErr) != firstLine(wantErr) || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("instrumented: %v, %v; original: %v, %v", got, gotErr, want, wantErr)
		}
	})
}

func firstLine(err error) string {
	if err == nil {
		return ""
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// TestMeteringSeeds checks that every seed is a valid module, so that the
// fuzz target starts from code that gets past the engine.
func TestMeteringSeeds(t *testing.T) {
	rt := newRuntime(t, wazero.NewRuntimeConfigCompiler())
	for i, code := range meteringSeeds {
		if _, err := rt.CompileModule(context.Background(), meteringHarness(code)); err != nil {
			t.Errorf("seed %d: %v", i, err)
		}
	}
}
