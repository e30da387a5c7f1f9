package fuel_test

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/creto-systems/creto/internal/fuel"
)

// syntheticModule builds a module of n functions of type (i32) -> (i32),
// about 200 bytes each, every one with a loop, a nested block and a call to
// its predecessor: the shape of compiled code, at any size.
func syntheticModule(n int) []byte {
	var code [][]byte
	for i := range n {
		b := []byte{1, 1, 0x7F} // one i32 local
		b = append(b, 0x20, 0, 0x21, 1, 0x03, 0x40)
		for k := range 16 {
			b = append(b, 0x20, 1, 0x41, byte(k+3), 0x6C, 0x41, 7, 0x6A, 0x21, 1)
		}
		b = append(b, 0x02, 0x40, 0x20, 1, 0x41, 3, 0x71, 0x0D, 0, 0x20, 1, 0x41, 1, 0x73, 0x21, 1, 0x0B)
		b = append(b, 0x20, 0, 0x41, 1, 0x6B, 0x22, 0, 0x0D, 0, 0x0B)
		b = append(b, 0x20, 1)
		if i > 0 { // + predecessor(3)
			b = append(b, 0x41, 3, 0x10)
			b = append(b, uleb(uint64(i-1))...)
			b = append(b, 0x6A)
		}
		b = append(b, 0x0B)
		code = append(code, sized(b))
	}
	funcs := make([][]byte, n)
	for i := range funcs {
		funcs[i] = []byte{0}
	}
	return wasmModule(
		section(1, vec([]byte{0x60, 1, 0x7F, 1, 0x7F})),
		section(3, vec(funcs...)),
		section(7, vec(cat(name("last"), []byte{0}, uleb(uint64(n-1))))),
		section(10, vec(code...)),
	)
}

// TestSyntheticModule checks the benchmark's generated module: its
// instrumented form compiles and computes what the original does.
func TestSyntheticModule(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t, wazero.NewRuntimeConfigCompiler())
	orig := syntheticModule(200)
	want, err := instantiate(t, rt, compile(t, rt, orig)).ExportedFunction("last").Call(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	m := instantiate(t, rt, compile(t, rt, instrument(t, orig)))
	meter(t, m).Set(ample)
	got, err := m.ExportedFunction("last").Call(ctx, 5)
	if err != nil || got[0] != want[0] {
		t.Fatalf("instrumented = %v, %v; original = %v", got, err, want)
	}
}

func BenchmarkInstrument(b *testing.B) {
	for _, c := range []struct {
		name   string
		module []byte
	}{
		{"compute_534B", readModule(b, "compute")},
		{"allops_2KB", readModule(b, "allops")},
		{"synthetic_2MB", syntheticModule(10_000)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.module)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := fuel.Instrument(c.module); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// callBench measures fn(arg) with CallWithStack, calling before() first on
// every iteration if set.
func callBench(fn api.Function, arg uint64, before func()) func(*testing.B) {
	return func(b *testing.B) {
		ctx := context.Background()
		stack := make([]uint64, 2)
		b.ReportAllocs()
		for b.Loop() {
			if before != nil {
				before()
			}
			stack[0] = arg
			if err := fn.CallWithStack(ctx, stack); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkRuntime compares the original and the instrumented module on an
// empty call and on loop and call kernels, fuel being set before every
// instrumented call as the host would.
func BenchmarkRuntime(b *testing.B) {
	rt := newRuntime(b, wazero.NewRuntimeConfigCompiler())
	orig := readModule(b, "compute")
	plain := instantiate(b, rt, compile(b, rt, orig))
	metered := instantiate(b, rt, compile(b, rt, instrument(b, orig)))
	mt := meter(b, metered)
	refuel := func() { mt.Set(1 << 40) }
	for _, c := range []struct {
		name, fn string
		arg      uint64
	}{
		{"noop", "noop", 0},
		{"loop1000", "loop_n", 1000},       // 3-instruction loop body
		{"nested30", "nested", 30},         // 27,000 iterations of a small body
		{"dispatch1000", "dispatch", 1000}, // br_table in a loop
		{"fac1000", "fac", 1000},           // i64 multiply chain
		{"fib20", "fib", 20},               // 21,891 calls
	} {
		b.Run(c.name+"/plain", callBench(plain.ExportedFunction(c.fn), c.arg, nil))
		b.Run(c.name+"/fuel", callBench(metered.ExportedFunction(c.fn), c.arg, refuel))
	}
	b.Run("set_only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			mt.Set(1_000_000)
		}
	})

	bulkOrig := readModule(b, "bulk")
	bulkPlain := instantiate(b, rt, compile(b, rt, bulkOrig))
	bulkMetered := instantiate(b, rt, compile(b, rt, instrument(b, bulkOrig)))
	bmt := meter(b, bulkMetered)
	fill := func(m api.Module, before func()) func(*testing.B) {
		fn := m.ExportedFunction("fill_loop")
		return func(b *testing.B) {
			ctx := context.Background()
			stack := []uint64{1, 65536}
			for b.Loop() {
				if before != nil {
					before()
				}
				stack[0], stack[1] = 1, 65536
				if err := fn.CallWithStack(ctx, stack); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("fill64KiB/plain", fill(bulkPlain, nil))
	b.Run("fill64KiB/fuel", fill(bulkMetered, func() { bmt.Set(1_000_000) }))
}
