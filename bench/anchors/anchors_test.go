// Package anchors measures Creto's extension call beside the Wasm plug-in
// systems it is compared with (Extism, waPC), in one run on one machine.
// It is a separate module so those SDKs never become dependencies of
// Creto itself. Run: cd bench/anchors && go test -bench . -benchmem
package anchors

import (
	"context"
	_ "embed"
	"os"
	"testing"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
	wapc "github.com/wapc/wapc-go"
	wapcwazero "github.com/wapc/wapc-go/engines/wazero"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
)

//go:embed testdata/extism_echo.wasm
var extismEcho []byte

//go:embed testdata/wapc_echo.wasm
var wapcEcho []byte

// request is what each system is handed: for Creto a real check request
// (encoded into the guest as about 200 bytes), for the anchors a payload
// of the same order.
var (
	request = engine.Request{
		Principal: engine.Principal{Type: "Agent", ID: "agent-7"},
		Action:    engine.EntityRef{ID: "read"},
		Resource:  engine.EntityRef{Type: "Doc", ID: "plan"},
		Context:   []byte(`{"risk":3,"channel":"api","region":"eu-west-1","amount":1200}`),
		TraceID:   "4bf92f3577b34da6a3ce929d0e0e4736",
	}
	payload = make([]byte, 256)
)

// BenchmarkCreto is one guest evaluation through the engine, minus the
// Cedar part: the check with a "continue" guest, and the same check
// without it, so the difference is the extension call (encoding, pool,
// fuel, call, result).
func BenchmarkCreto(b *testing.B) {
	ctx := context.Background()
	raw, err := os.ReadFile("../../engine/testdata/ext/continue.wasm")
	if err != nil {
		b.Fatal(err)
	}
	m, err := abi.ParseManifest([]byte(`{"name": "continue"}`))
	if err != nil {
		b.Fatal(err)
	}
	module, err := abi.WriteManifest(raw, m)
	if err != nil {
		b.Fatal(err)
	}
	for _, withGuest := range []bool{false, true} {
		name := "check_cedar_only"
		if withGuest {
			name = "check_with_continue_guest"
		}
		b.Run(name, func(b *testing.B) {
			e := engine.New()
			defer e.Close()
			if _, err := e.CreatePolicy(ctx, "all", `permit(principal, action, resource);`); err != nil {
				b.Fatal(err)
			}
			if withGuest {
				if _, err := e.RegisterExtension(ctx, module, engine.ExtensionConfig{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if d, _ := e.Check(ctx, request); d.Kind != engine.Allow {
					b.Fatal(d.Kind)
				}
			}
		})
	}
}

// BenchmarkExtism is Extism's go-sdk calling a raw-WAT plug-in.
func BenchmarkExtism(b *testing.B) {
	ctx := context.Background()
	m := extism.Manifest{Wasm: []extism.Wasm{extism.WasmData{Data: extismEcho}}}
	cp, err := extism.NewCompiledPlugin(ctx, m, extism.PluginConfig{RuntimeConfig: wazero.NewRuntimeConfigCompiler()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	p, err := cp.Instance(ctx, extism.PluginInstanceConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("call_noop", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := p.Call("noop", nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("call_echo_256B", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, out, err := p.Call("echo", payload); err != nil || len(out) != len(payload) {
				b.Fatal(err, len(out))
			}
		}
	})
}

// BenchmarkWaPC is wapc-go on wazero invoking a raw-WAT guest.
func BenchmarkWaPC(b *testing.B) {
	ctx := context.Background()
	mod, err := wapcwazero.Engine().New(ctx, wapc.NoOpHostCallHandler, wapcEcho, &wapc.ModuleConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer mod.Close(ctx)
	inst, err := mod.Instantiate(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("invoke_echo_256B", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if out, err := inst.Invoke(ctx, "echo", payload); err != nil || len(out) != len(payload) {
				b.Fatal(err, len(out))
			}
		}
	})
}
