package fuel_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/creto-systems/creto/internal/fuel"
)

func f64(v float64) uint64 { return math.Float64bits(v) }

func i64(v int64) uint64 { return uint64(v) }

func i32(v int32) uint64 { return uint64(uint32(v)) }

// roundTrips are calls whose results must not change under instrumentation.
var roundTrips = []struct {
	module, fn string
	args       [][]uint64
}{
	{"compute", "noop", [][]uint64{{}}},
	{"compute", "fac", [][]uint64{{0}, {1}, {5}, {20}, {i64(-3)}}},
	{"compute", "fib", [][]uint64{{0}, {1}, {10}, {20}}},
	{"compute", "nested", [][]uint64{{0}, {1}, {7}, {30}}},
	{"compute", "dispatch", [][]uint64{{0}, {1}, {17}, {1000}}},
	{"compute", "multi", [][]uint64{{17, 5}, {100, 7}, {1, 1}, {i32(-1), 3}}},
	{"compute", "loop_n", [][]uint64{{0}, {1}, {1000}}},
	{"bulk", "memory_ops", [][]uint64{{}}},
	{"bulk", "table_ops", [][]uint64{{3}, {10}}},
	{"bulk", "fill_loop", [][]uint64{{3, 100}, {10, 65536}}},
	{"allops", "i32ops", [][]uint64{{7, 3}, {i32(-100), 9}, {0x80000000, 31}, {0, 0}}},
	{"allops", "i64ops", [][]uint64{{7, 3}, {i64(-100), 9}, {1 << 63, 63}, {0, 0}}},
	{"allops", "floatops", [][]uint64{
		{f64(3.75), f64(-1.5)}, {f64(math.Copysign(0, -1)), f64(0)}, {f64(1e300), f64(1e-300)},
		{f64(math.NaN()), f64(math.Inf(1))}, {f64(2.5), f64(math.Inf(-1))},
	}},
	{"allops", "memops", [][]uint64{{0x0123456789abcdef}, {i64(-1)}}},
	{"allops", "controlops", [][]uint64{{i32(-5)}, {0}, {7}}},
	{"tailcall", "countdown", [][]uint64{{0}, {1}, {10}, {100000}}},
}

// TestRoundTrip runs each call on a fresh instance of the original and of
// the instrumented module, on both engines, and compares results.
func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, e := range engines {
		rt := newRuntime(t, e.config())
		compiled := map[string][2]wazero.CompiledModule{}
		for _, c := range roundTrips {
			cms, ok := compiled[c.module]
			if !ok {
				orig := readModule(t, c.module)
				cms = [2]wazero.CompiledModule{compile(t, rt, orig), compile(t, rt, instrument(t, orig))}
				compiled[c.module] = cms
			}
			for _, args := range c.args {
				t.Run(fmt.Sprintf("%s/%s.%s%v", e.name, c.module, c.fn, args), func(t *testing.T) {
					want, err := instantiate(t, rt, cms[0]).ExportedFunction(c.fn).Call(ctx, args...)
					if err != nil {
						t.Fatal(err)
					}
					m := instantiate(t, rt, cms[1])
					mt := meter(t, m)
					mt.Set(ample)
					got, err := m.ExportedFunction(c.fn).Call(ctx, args...)
					if err != nil {
						t.Fatal(err)
					}
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Errorf("instrumented = %v, original = %v", got, want)
					}
					if used := ample - mt.Remaining(); used <= 0 {
						t.Errorf("call consumed %d fuel", used)
					}
				})
			}
		}
	}
}

// TestCompileAll compiles the output of every test module Instrument
// accepts, and checks the rejected ones are rejected for the expected reason.
func TestCompileAll(t *testing.T) {
	rejected := map[string]error{
		"simd":            fuel.ErrUnsupported,
		"threads":         fuel.ErrUnsupported,
		"exceptions":      fuel.ErrUnsupported,
		"reserved_export": fuel.ErrReservedName,
		"reserved_import": fuel.ErrReservedName,
	}
	rt := newRuntime(t, wazero.NewRuntimeConfigCompiler())
	for _, name := range testModules(t) {
		t.Run(name, func(t *testing.T) {
			out, err := fuel.Instrument(readModule(t, name))
			if want := rejected[name]; want != nil {
				if !errors.Is(err, want) {
					t.Fatalf("err = %v, want %v", err, want)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			compile(t, rt, out)
		})
	}
}

// TestTermination stops code that never ends by itself and checks that
// neither the engine nor the module suffers from it.
func TestTermination(t *testing.T) {
	ctx := context.Background()
	for _, e := range engines {
		rt := newRuntime(t, e.config())
		for _, c := range []struct {
			module, fn string
			budget     int64
		}{
			{"spin", "spin", 1_000_000}, // loop br 0 end
			// Infinite mutual recursion, with a budget that runs out before
			// the interpreter's limit of 2000 frames, which would stop it too.
			{"spin", "recurse", 3_000},
			{"tailcall", "tail_spin", 1_000_000}, // tail calls: no stack growth
		} {
			t.Run(e.name+"/"+c.fn, func(t *testing.T) {
				cm := compile(t, rt, instrument(t, readModule(t, c.module)))
				m := instantiate(t, rt, cm)
				mt := meter(t, m)
				mt.Set(c.budget)
				start := time.Now()
				_, err := m.ExportedFunction(c.fn).Call(ctx)
				elapsed := time.Since(start)
				if err == nil || !strings.Contains(err.Error(), "unreachable") {
					t.Fatalf("err = %v, want an unreachable trap", err)
				}
				if !mt.Exhausted() {
					t.Fatalf("trap not attributed to fuel: %d left", mt.Remaining())
				}
				t.Logf("%d fuel ran out after %v", c.budget, elapsed)
				if elapsed > 5*time.Second {
					t.Errorf("took %v to run out of %d fuel", elapsed, c.budget)
				}
				// The same instance keeps working once refuelled, and so does a
				// fresh one.
				for _, m := range []api.Module{m, instantiate(t, rt, cm)} {
					meter(t, m).Set(c.budget)
					res, err := m.ExportedFunction("answer").Call(ctx)
					if err != nil || res[0] != 42 {
						t.Fatalf("answer() = %v, %v after exhaustion", res, err)
					}
				}
			})
		}
	}
}

// TestStartFunction checks that a start function that never returns fails
// instantiation instead of hanging it, and that the same compiled module
// instantiates when the start function behaves.
func TestStartFunction(t *testing.T) {
	ctx := context.Background()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			rt := newRuntime(t, e.config())
			spin := true
			_, err := rt.NewHostModuleBuilder("env").
				NewFunctionBuilder().
				WithGoFunction(api.GoFunc(func(_ context.Context, stack []uint64) {
					stack[0] = 0
					if spin {
						stack[0] = 1
					}
				}), nil, []api.ValueType{api.ValueTypeI32}).
				Export("should_spin").
				Instantiate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out, err := fuel.InstrumentWith(readModule(t, "start"), fuel.Options{InitialFuel: 1_000_000})
			if err != nil {
				t.Fatal(err)
			}
			cm := compile(t, rt, out)
			start := time.Now()
			_, err = rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName(""))
			if err == nil || !strings.Contains(err.Error(), "unreachable") {
				t.Fatalf("instantiation err = %v, want an unreachable trap", err)
			}
			t.Logf("looping start function stopped after %v", time.Since(start))

			spin = false
			m := instantiate(t, rt, cm)
			mt := meter(t, m)
			if left := mt.Remaining(); left <= 0 || left >= 1_000_000 {
				t.Errorf("start function left %d of 1000000 fuel", left)
			}
			mt.Set(10)
			if res, err := m.ExportedFunction("answer").Call(ctx); err != nil || res[0] != 42 {
				t.Fatalf("answer() = %v, %v", res, err)
			}
		})
	}
}

// consumed runs one call on a fresh instance and returns the fuel it used.
func consumed(t *testing.T, rt wazero.Runtime, cm wazero.CompiledModule, fn string, args ...uint64) int64 {
	t.Helper()
	m := instantiate(t, rt, cm)
	mt := meter(t, m)
	mt.Set(ample)
	if _, err := m.ExportedFunction(fn).Call(context.Background(), args...); err != nil {
		t.Fatal(err)
	}
	return ample - mt.Remaining()
}

// TestDeterministic checks that fuel use depends only on the call: the same
// on both engines, on a reused instance, and exactly linear in loop counts.
func TestDeterministic(t *testing.T) {
	ctx := context.Background()
	var byEngine []int64
	for _, e := range engines {
		rt := newRuntime(t, e.config())
		cm := compile(t, rt, instrument(t, readModule(t, "compute")))
		fib := consumed(t, rt, cm, "fib", 20)
		if again := consumed(t, rt, cm, "fib", 20); again != fib {
			t.Errorf("%s: fib(20) used %d then %d", e.name, fib, again)
		}
		m := instantiate(t, rt, cm)
		mt := meter(t, m)
		for range 3 {
			mt.Set(ample)
			if _, err := m.ExportedFunction("fib").Call(ctx, 20); err != nil {
				t.Fatal(err)
			}
			if used := ample - mt.Remaining(); used != fib {
				t.Errorf("%s: fib(20) on a reused instance used %d, want %d", e.name, used, fib)
			}
		}
		c0, c1, c1000 := consumed(t, rt, cm, "loop_n", 0), consumed(t, rt, cm, "loop_n", 1), consumed(t, rt, cm, "loop_n", 1000)
		if c1000-c0 != 1000*(c1-c0) {
			t.Errorf("%s: loop_n used %d, %d, %d fuel for 0, 1, 1000 iterations: not linear", e.name, c0, c1, c1000)
		}
		byEngine = append(byEngine, fib, c1000)
		t.Logf("%s: fib(20) = %d fuel, loop_n(1000) = %d fuel", e.name, fib, c1000)
	}
	if fmt.Sprint(byEngine[:2]) != fmt.Sprint(byEngine[2:]) {
		t.Errorf("engines disagree: %v", byEngine)
	}
}

// TestExactBudget checks the boundary: a call given exactly the fuel it
// needs completes; one unit less traps.
func TestExactBudget(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t, wazero.NewRuntimeConfigCompiler())
	cm := compile(t, rt, instrument(t, readModule(t, "compute")))
	need := consumed(t, rt, cm, "fac", 20)
	m := instantiate(t, rt, cm)
	mt := meter(t, m)
	mt.Set(need)
	if _, err := m.ExportedFunction("fac").Call(ctx, 20); err != nil {
		t.Fatalf("with exactly %d fuel: %v", need, err)
	}
	if mt.Remaining() != 0 || mt.Exhausted() {
		t.Errorf("%d left, want 0", mt.Remaining())
	}
	mt.Set(need - 1)
	if _, err := m.ExportedFunction("fac").Call(ctx, 20); err == nil {
		t.Fatalf("with %d fuel the call completed", need-1)
	}
	if !mt.Exhausted() {
		t.Errorf("%d left after running out", mt.Remaining())
	}
}

// TestBulkPricing checks that bulk memory operations pay for their length,
// so a loop of large fills cannot buy gigabytes of work with little fuel.
func TestBulkPricing(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t, wazero.NewRuntimeConfigCompiler())
	cm := compile(t, rt, instrument(t, readModule(t, "bulk")))
	small := consumed(t, rt, cm, "fill_loop", 10, 16)
	large := consumed(t, rt, cm, "fill_loop", 10, 65536)
	if want := int64(10 * (65536 - 16) / fuel.BulkBytesPerUnit); large-small != want {
		t.Errorf("10 fills of 64 KiB cost %d more than 10 of 16 B, want %d", large-small, want)
	}
	m := instantiate(t, rt, cm)
	mt := meter(t, m)
	mt.Set(large - 1)
	if _, err := m.ExportedFunction("fill_loop").Call(ctx, 10, 65536); err == nil || !mt.Exhausted() {
		t.Errorf("fills ran on %d fuel, needing %d: err = %v", large-1, large, err)
	}
}

// TestHostHelpers covers the package-level helpers and the errors for
// modules without fuel.
func TestHostHelpers(t *testing.T) {
	rt := newRuntime(t, wazero.NewRuntimeConfigCompiler())
	orig := readModule(t, "compute")
	plain := instantiate(t, rt, compile(t, rt, orig))
	if _, err := fuel.NewMeter(plain); !errors.Is(err, fuel.ErrNotInstrumented) {
		t.Errorf("NewMeter(plain) err = %v", err)
	}
	if err := fuel.Set(plain, 1); !errors.Is(err, fuel.ErrNotInstrumented) {
		t.Errorf("Set(plain) err = %v", err)
	}
	if _, err := fuel.Remaining(plain); !errors.Is(err, fuel.ErrNotInstrumented) {
		t.Errorf("Remaining(plain) err = %v", err)
	}
	m := instantiate(t, rt, compile(t, rt, instrument(t, orig)))
	if left, err := fuel.Remaining(m); err != nil || left != fuel.DefaultInitialFuel {
		t.Errorf("fresh instance holds %d, %v; want %d", left, err, fuel.DefaultInitialFuel)
	}
	if err := fuel.Set(m, 123); err != nil {
		t.Fatal(err)
	}
	if left, _ := fuel.Remaining(m); left != 123 {
		t.Errorf("Remaining = %d after Set(123)", left)
	}
	if err := fuel.Set(m, -5); err != nil {
		t.Fatal(err)
	}
	if left, _ := fuel.Remaining(m); left != 0 {
		t.Errorf("Remaining = %d after Set(-5), want 0", left)
	}
}

// TestHostFunctionSeesFuel checks the fuel is in the global whenever the
// guest calls out, and that a host function can price its own work by
// lowering it: the guest picks the new value up when the call returns.
func TestHostFunctionSeesFuel(t *testing.T) {
	const hostPrice = 1000
	ctx := context.Background()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			rt := newRuntime(t, e.config())
			var seen []int64
			_, err := rt.NewHostModuleBuilder("env").
				NewFunctionBuilder().
				WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, m api.Module, _ []uint64) {
					mt := meter(t, m)
					seen = append(seen, mt.Remaining())
					mt.Set(mt.Remaining() - hostPrice)
				}), nil, nil).
				Export("tick").
				Instantiate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			m := instantiate(t, rt, compile(t, rt, instrument(t, readModule(t, "hostcall"))))
			mt := meter(t, m)
			mt.Set(100_000)
			if _, err := m.ExportedFunction("run").Call(ctx, 1000); err == nil || !mt.Exhausted() {
				t.Fatalf("1000 priced host calls ran on 100000 fuel: err = %v", err)
			}
			if len(seen) < 2 || len(seen) > 100 {
				t.Fatalf("%d host calls before exhaustion, want 2..100", len(seen))
			}
			step := seen[0] - seen[1]
			for i := 1; i < len(seen); i++ {
				if seen[i-1]-seen[i] != step {
					t.Fatalf("host saw %v: uneven steps", seen)
				}
			}
			if step <= hostPrice {
				t.Errorf("each iteration cost %d, want the host's %d plus the loop's", step, hostPrice)
			}
			t.Logf("%d host calls, %d fuel apart", len(seen), step)
		})
	}
}
