package fuel_test

//go:generate sh -c "cd testdata && for f in *.wat; do wat2wasm --enable-tail-call --enable-threads --enable-exceptions --debug-names $DOLLAR{f} -o $DOLLAR{f%.wat}.wasm; done"

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/creto-systems/creto/internal/fuel"
)

// features are the engine features the test modules may use: Wasm 2.0 plus
// tail calls.
const features = api.CoreFeaturesV2 | experimental.CoreFeaturesTailCall

// ample is fuel no test call comes near.
const ample = int64(1) << 50

type engine struct {
	name   string
	config func() wazero.RuntimeConfig
}

var engines = []engine{
	{"compiler", wazero.NewRuntimeConfigCompiler},
	{"interpreter", wazero.NewRuntimeConfigInterpreter},
}

func newRuntime(tb testing.TB, config wazero.RuntimeConfig) wazero.Runtime {
	tb.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, config.WithCoreFeatures(features))
	tb.Cleanup(func() { rt.Close(ctx) })
	return rt
}

func readModule(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".wasm"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// testModules lists the testdata modules, without extension.
func testModules(tb testing.TB) []string {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.wasm"))
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no test modules: %v", err)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = strings.TrimSuffix(filepath.Base(p), ".wasm")
	}
	return names
}

func instrument(tb testing.TB, module []byte) []byte {
	tb.Helper()
	out, err := fuel.Instrument(module)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func compile(tb testing.TB, rt wazero.Runtime, module []byte) wazero.CompiledModule {
	tb.Helper()
	cm, err := rt.CompileModule(context.Background(), module)
	if err != nil {
		tb.Fatal(err)
	}
	return cm
}

// instantiate creates an anonymous instance, so that any number can coexist
// in one runtime.
func instantiate(tb testing.TB, rt wazero.Runtime, cm wazero.CompiledModule) api.Module {
	tb.Helper()
	m, err := rt.InstantiateModule(context.Background(), cm, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func meter(tb testing.TB, m api.Module) fuel.Meter {
	tb.Helper()
	mt, err := fuel.NewMeter(m)
	if err != nil {
		tb.Fatal(err)
	}
	return mt
}

// Builders for hand-made binaries, for shapes no assembler emits.

func uleb(v uint64) []byte {
	var b []byte
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func wasmModule(sections ...[]byte) []byte {
	return cat(append([][]byte{[]byte("\x00asm\x01\x00\x00\x00")}, sections...)...)
}

func section(id byte, content ...[]byte) []byte {
	c := cat(content...)
	return cat([]byte{id}, uleb(uint64(len(c))), c)
}

func vec(items ...[]byte) []byte {
	return cat(append([][]byte{uleb(uint64(len(items)))}, items...)...)
}

func name(s string) []byte { return cat(uleb(uint64(len(s))), []byte(s)) }

// oneFunc is a module with one function of type () -> () whose body is
// code (which must include the final end), exported as "f".
func oneFunc(code ...byte) []byte {
	body := cat([]byte{0}, code) // no locals
	return wasmModule(
		section(1, vec([]byte{0x60, 0, 0})),
		section(3, vec([]byte{0})),
		section(7, vec(cat(name("f"), []byte{0, 0}))),
		section(10, vec(cat(uleb(uint64(len(body))), body))),
	)
}

// rawSection is a section as found in a binary.
type rawSection struct {
	id    byte
	name  string // custom sections only
	bytes []byte // the whole section, header included
}

// sections splits a binary the test trusts to be well formed.
func sections(tb testing.TB, module []byte) []rawSection {
	tb.Helper()
	var out []rawSection
	for pos := 8; pos < len(module); {
		start := pos
		id := module[pos]
		pos++
		size, n := readUleb(module[pos:])
		pos += n
		s := rawSection{id: id, bytes: module[start : pos+int(size)]}
		if id == 0 {
			l, n := readUleb(module[pos:])
			s.name = string(module[pos+n : pos+n+int(l)])
		}
		out = append(out, s)
		pos += int(size)
	}
	return out
}

func readUleb(b []byte) (uint64, int) {
	var v uint64
	for i, c := range b {
		v |= uint64(c&0x7F) << (7 * i)
		if c < 0x80 {
			return v, i + 1
		}
	}
	panic("truncated LEB128")
}
