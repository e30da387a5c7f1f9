package fuel_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/creto-systems/creto/internal/fuel"
)

// TestTruncated feeds every prefix of every accepted test module. A prefix
// that ends between sections can be a valid module, and then so must be its
// output; any other must be rejected as malformed, and none may panic.
func TestTruncated(t *testing.T) {
	rt := newRuntime(t, wazero.NewRuntimeConfigInterpreter())
	for _, name := range []string{"compute", "bulk", "allops", "tailcall", "spin", "start", "empty"} {
		module := readModule(t, name)
		accepted := 0
		for n := range len(module) {
			out, err := fuel.Instrument(module[:n])
			if err != nil {
				if !errors.Is(err, fuel.ErrMalformed) {
					t.Fatalf("%s[:%d]: err = %v, want ErrMalformed", name, n, err)
				}
				continue
			}
			accepted++
			if _, err := rt.CompileModule(context.Background(), module[:n]); err != nil {
				continue // e.g. code that uses a data segment cut off
			}
			if _, err := rt.CompileModule(context.Background(), out); err != nil {
				t.Fatalf("%s[:%d] compiles but its output does not: %v", name, n, err)
			}
		}
		t.Logf("%s: %d of %d prefixes accepted (ending between sections)", name, accepted, len(module))
	}
}

// TestMalformed covers hand-made binaries, each broken in one way.
func TestMalformed(t *testing.T) {
	valid := oneFunc(0x0B)
	cases := []struct {
		name   string
		module []byte
		want   error
		msg    string // a fragment of the message
	}{
		{"empty input", nil, fuel.ErrMalformed, "shorter than the 8-byte header"},
		{"bad magic", []byte("\x00wasm\x01\x00\x00"), fuel.ErrMalformed, "magic"},
		{"bad version", []byte("\x00asm\x02\x00\x00\x00"), fuel.ErrMalformed, "version"},
		{"component", []byte("\x00asm\x0d\x00\x01\x00"), fuel.ErrUnsupported, "component"},
		{"unknown section", wasmModule([]byte{14, 0}), fuel.ErrMalformed, "unknown section id 14"},
		{"sections out of order", wasmModule(section(3, vec()), section(1, vec())), fuel.ErrMalformed, "out of order"},
		{"section repeated", wasmModule(section(1, vec()), section(1, vec())), fuel.ErrMalformed, "out of order or repeated"},
		{"section size beyond input", wasmModule([]byte{1, 10, 0}), fuel.ErrMalformed, "exceeds"},
		{"section size too large", wasmModule(section(1, vec(), []byte{0})), fuel.ErrMalformed, "size mismatch"},
		{"section size too small", wasmModule([]byte{1, 2, 1, 0x60, 0, 0}), fuel.ErrMalformed, "unexpected end of section"},
		{"LEB128 longer than 5 bytes", wasmModule([]byte{1, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00}), fuel.ErrMalformed, "overflows 32 bits"},
		{"LEB128 u32 overflow", wasmModule([]byte{1, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F}), fuel.ErrMalformed, "overflows 32 bits"},
		{"vector count beyond section", wasmModule(section(1, uleb(1000))), fuel.ErrMalformed, "does not fit"},
		{"huge vector count", wasmModule(section(1, uleb(0xFFFFFFFF))), fuel.ErrMalformed, "does not fit"},
		{"invalid UTF-8 name", wasmModule(section(0, name("\xff"))), fuel.ErrMalformed, "UTF-8"},
		{"functions without code", wasmModule(section(1, vec([]byte{0x60, 0, 0})), section(3, vec([]byte{0}))), fuel.ErrMalformed, "no code section"},
		{"code count mismatch", wasmModule(section(1, vec([]byte{0x60, 0, 0})), section(10, vec([]byte{2, 0, 0x0B}))), fuel.ErrMalformed, "1 bodies for 0"},
		{"body size lies", oneFuncRaw([]byte{9, 0, 0x0B}), fuel.ErrMalformed, "body size"},
		{"body without end", oneFunc(0x01), fuel.ErrMalformed, "unexpected end of function body"},
		{"bytes after end", oneFunc(0x0B, 0x01), fuel.ErrMalformed, "after the end"},
		{"unknown opcode", oneFunc(0x27, 0x0B), fuel.ErrMalformed, "unknown opcode 0x27"},
		{"unknown 0xFC opcode", oneFunc(0xFC, 18, 0x0B), fuel.ErrMalformed, "0xFC 18"},
		{"else without if", oneFunc(0x02, 0x40, 0x05, 0x0B, 0x0B), fuel.ErrMalformed, "else"},
		{"i32.const overflow", oneFunc(0x41, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x1A, 0x0B), fuel.ErrMalformed, "s32 overflows"},
		{"i64.const too long", oneFunc(0x42, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x1A, 0x0B), fuel.ErrMalformed, "s64 overflows"},
		{"f64.const truncated", oneFunc(0x44, 0, 0, 0), fuel.ErrMalformed, "unexpected end"},
		{"block type out of range", oneFunc(0x02, 0x05, 0x0B, 0x0B), fuel.ErrMalformed, "block type index 5"},
		// An index one past the original ones would name the fuel global
		// or the fuel local once instrumented: the guest could refuel.
		{"global.set of a missing global", oneFunc(0x41, 0, 0xAC, 0x24, 0, 0x0B), fuel.ErrMalformed, "global index 0 out of range"},
		{"global.get of a missing global", oneFunc(0x23, 0, 0x1A, 0x0B), fuel.ErrMalformed, "global index 0 out of range"},
		{"local.set of a missing local", oneFunc(0x42, 0x7F, 0x21, 0, 0x0B), fuel.ErrMalformed, "local index 0 out of range"},
		{"local.get past the declared locals", oneFuncRaw(sized([]byte{1, 2, 0x7E, 0x20, 2, 0x1A, 0x0B})), fuel.ErrMalformed, "local index 2 out of range"},
		{"branch past the body", oneFunc(0x0C, 1, 0x0B), fuel.ErrMalformed, "label 1"},
		{"br_table past the body", oneFunc(0x41, 0, 0x0E, 1, 0, 1, 0x0B), fuel.ErrMalformed, "label 1"},
		{"call of a missing function", oneFunc(0x10, 1, 0x0B), fuel.ErrMalformed, "function index 1 out of range"},
		{"call_indirect of a missing type", oneFunc(0x41, 0, 0x11, 1, 0, 0x0B), fuel.ErrMalformed, "type index 1 out of range"},
		{"export of a missing global", wasmModule(section(7, vec(cat(name("g"), []byte{3, 0})))), fuel.ErrMalformed, "global index 0 out of range"},
		{"start of a missing function", wasmModule(section(8, uleb(0))), fuel.ErrMalformed, "function index 0"},
		{"2^32 locals", oneFuncRaw(sized(cat([]byte{2}, uleb(0xFFFFFFFF), []byte{0x7F, 1, 0x7F, 0x0B}))), fuel.ErrLimit, "more than 50000 locals in one function"},
		{"50001 locals", oneFuncRaw(sized(cat([]byte{2}, uleb(50000), []byte{0x7F, 1, 0x7E, 0x0B}))), fuel.ErrLimit, "more than 50000 locals in one function"},
		{"locals out of proportion", manyLocals(3, 30000), fuel.ErrLimit, "locals in a"},
		{"name map count lies", wasmModule(section(0, name("name"), []byte{1, 6}, uleb(0xFFFFFFF0), []byte{0})), fuel.ErrMalformed, "does not fit"},
		{"local name count lies", wasmModule(section(0, name("name"), []byte{2, 4, 1, 0}, uleb(1000))), fuel.ErrMalformed, "does not fit"},
		{"name subsection size lies", wasmModule(section(0, name("name"), []byte{1, 9, 0})), fuel.ErrMalformed, "exceeds"},
		{"element count lies", wasmModule(section(9, uleb(0xFFFFFFF0))), fuel.ErrMalformed, "does not fit"},
		{"element of a missing function", wasmModule(section(9, vec(cat([]byte{1, 0}, vec([]byte{0}))))), fuel.ErrMalformed, "function index 0 out of range"},
		{"element flags", wasmModule(section(9, vec([]byte{8}))), fuel.ErrMalformed, "element segment flags 8"},
		{"data size lies", wasmModule(section(11, vec(cat([]byte{1}, uleb(0xFFFFFFF0))))), fuel.ErrMalformed, "does not fit"},
		{"data flags", wasmModule(section(11, vec([]byte{3}))), fuel.ErrMalformed, "data segment flags 3"},
		{"SIMD", oneFunc(0xFD, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x1A, 0x0B), fuel.ErrUnsupported, "SIMD"},
		{"atomics", oneFunc(0xFE, 3, 0, 0x0B), fuel.ErrUnsupported, "threads"},
		{"try_table", oneFunc(0x1F, 0x40, 0, 0x0B, 0x0B), fuel.ErrUnsupported, "exception handling"},
		{"call_ref", oneFunc(0x14, 0, 0x0B), fuel.ErrUnsupported, "typed function references"},
		{"multi-memory memarg", oneFunc(0x41, 0, 0x28, 0x42, 1, 0, 0x1A, 0x0B), fuel.ErrUnsupported, "multi-memory"},
		{"memory.size of memory 1", oneFunc(0x3F, 1, 0x1A, 0x0B), fuel.ErrUnsupported, "multi-memory"},
		{"memory64", wasmModule(section(5, vec([]byte{0x04, 1}))), fuel.ErrUnsupported, "memory64"},
		{"GC type", wasmModule(section(1, vec([]byte{0x5F, 0}))), fuel.ErrUnsupported, "GC"},
		{"exnref block", oneFunc(0x02, 0x69, 0x0B, 0x0B), fuel.ErrUnsupported, "block type 0x69"},
		{"reserved export", wasmModule(section(7, vec(cat(name(fuel.GlobalName), []byte{0, 0})))), fuel.ErrReservedName, "export"},
		{"reserved import", wasmModule(section(2, vec(cat(name("env"), name(fuel.GlobalName), []byte{3, 0x7E, 1})))), fuel.ErrReservedName, "import"},
		{"already instrumented", mustInstrument(t, valid), fuel.ErrReservedName, "already instrumented"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := fuel.Instrument(c.module)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if out != nil {
				t.Errorf("output returned with an error")
			}
			var e *fuel.Error
			if !errors.As(err, &e) {
				t.Fatalf("%T is not a *fuel.Error", err)
			}
			if !strings.Contains(e.Error(), c.msg) {
				t.Errorf("message %q lacks %q", e.Error(), c.msg)
			}
			if e.Offset < 0 || e.Offset > len(c.module) {
				t.Errorf("offset %d outside the %d-byte input", e.Offset, len(c.module))
			}
		})
	}
}

func mustInstrument(t *testing.T, module []byte) []byte {
	out, err := fuel.Instrument(module)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// manyLocals is a module of n functions declaring locals i32 locals each
// and doing nothing else.
func manyLocals(n int, locals uint64) []byte {
	body := sized(cat([]byte{1}, uleb(locals), []byte{0x7F, 0x0B}))
	funcs, bodies := make([][]byte, n), make([][]byte, n)
	for i := range n {
		funcs[i], bodies[i] = []byte{0}, body
	}
	return wasmModule(section(1, vec([]byte{0x60, 0, 0})), section(3, vec(funcs...)), section(10, vec(bodies...)))
}

// sized prefixes b with its length.
func sized(b []byte) []byte { return cat(uleb(uint64(len(b))), b) }

// oneFuncRaw is oneFunc with the code section's single entry given raw,
// size included.
func oneFuncRaw(entry []byte) []byte {
	return wasmModule(
		section(1, vec([]byte{0x60, 0, 0})),
		section(3, vec([]byte{0})),
		section(10, vec(entry)),
	)
}

// TestErrorLocation checks that an error names the section, the function
// (in the function index space, imports first) and the offending byte.
func TestErrorLocation(t *testing.T) {
	module := wasmModule(
		section(1, vec([]byte{0x60, 0, 0})),
		section(2, vec(cat(name("env"), name("f"), []byte{0, 0}))),
		section(3, vec([]byte{0}, []byte{0})),
		section(10, vec([]byte{2, 0, 0x0B}, []byte{4, 0, 0x01, 0xFD, 0x0B})),
	)
	_, err := fuel.Instrument(module)
	var e *fuel.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v", err)
	}
	if e.Section != "code" || e.Func != 2 || e.Offset != bytes.IndexByte(module, 0xFD) {
		t.Errorf("got section %q, func %d, offset %d; want code, 2, %d", e.Section, e.Func, e.Offset, bytes.IndexByte(module, 0xFD))
	}
	want := "fuel: unsupported feature: code section, func 2, offset 0x"
	if !strings.HasPrefix(e.Error(), want) {
		t.Errorf("message %q, want prefix %q", e.Error(), want)
	}
}

// TestSectionsPreserved checks what the output keeps: every section other
// than those the instrumentation extends is byte-identical and in the same
// order, DWARF sections are dropped, and added sections respect the order.
func TestSectionsPreserved(t *testing.T) {
	rewritten := map[byte]bool{6: true, 7: true, 10: true}
	for _, mod := range []string{"compute", "bulk", "allops", "empty", "start"} {
		t.Run(mod, func(t *testing.T) {
			module := cat(readModule(t, mod),
				section(0, name(".debug_info"), []byte{1, 2, 3}),
				section(0, name("keep.me"), []byte{4, 5, 6}))
			out := mustInstrument(t, module)
			var kept, got []rawSection
			for _, s := range sections(t, module) {
				if !rewritten[s.id] && s.name != ".debug_info" {
					kept = append(kept, s)
				}
			}
			lastRank := 0
			rank := map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}
			for _, s := range sections(t, out) {
				if s.name == ".debug_info" {
					t.Error(".debug_info kept")
				}
				if s.id != 0 {
					if rank[s.id] <= lastRank {
						t.Errorf("section %d out of order", s.id)
					}
					lastRank = rank[s.id]
				}
				if !rewritten[s.id] {
					got = append(got, s)
				}
			}
			if len(got) != len(kept) {
				t.Fatalf("%d sections kept, want %d", len(got), len(kept))
			}
			for i := range kept {
				if !bytes.Equal(got[i].bytes, kept[i].bytes) {
					t.Errorf("section %d (id %d %q) changed", i, kept[i].id, kept[i].name)
				}
			}
			if last := sections(t, out); last[len(last)-1].name != "keep.me" {
				t.Errorf("trailing custom section moved")
			}
		})
	}
}

// TestNoPanicOnCorruption flips bytes of valid modules. Whatever the result,
// Instrument must return normally, with a typed error or a module.
func TestNoPanicOnCorruption(t *testing.T) {
	for _, name := range []string{"compute", "bulk", "allops", "tailcall"} {
		module := readModule(t, name)
		mutated := make([]byte, len(module))
		for i := range module {
			for _, v := range []byte{0x00, 0x0B, 0x7F, 0x80, 0xFF} {
				copy(mutated, module)
				mutated[i] = v
				if _, err := fuel.Instrument(mutated); err != nil && !typed(err) {
					t.Fatalf("%s with byte %d = %#x: untyped error %v", name, i, v, err)
				}
			}
		}
	}
}

func typed(err error) bool {
	for _, kind := range []error{fuel.ErrMalformed, fuel.ErrUnsupported, fuel.ErrReservedName, fuel.ErrLimit} {
		if errors.Is(err, kind) {
			return true
		}
	}
	return false
}

// TestLocalsWithinLimits checks that the locals limits refuse nothing
// reasonable: a function may declare MaxFunctionLocals, and a module as many
// locals in total as it has bytes.
func TestLocalsWithinLimits(t *testing.T) {
	for _, module := range [][]byte{manyLocals(1, fuel.MaxFunctionLocals), manyLocals(1000, 10)} {
		if _, err := fuel.Instrument(module); err != nil {
			t.Error(err)
		}
	}
}
