package bench_test

import (
	"context"
	"os"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
)

func extensionModule(b *testing.B, file, manifest string) []byte {
	b.Helper()
	raw, err := os.ReadFile("../engine/testdata/ext/" + file + ".wasm")
	if err != nil {
		b.Fatal(err)
	}
	m, err := abi.ParseManifest([]byte(manifest))
	if err != nil {
		b.Fatal(err)
	}
	mod, err := abi.WriteManifest(raw, m)
	if err != nil {
		b.Fatal(err)
	}
	return mod
}

// BenchmarkExtensionCheck measures what one extension adds to a cached
// Cedar allow: a pre-filter miss (the guest is never entered) and a full
// guest call that returns "continue" (request encoding into guest memory,
// fuel reset, the call, the result), against the same check with no
// extension. The anchor rows call the same guest through raw wazero.
func BenchmarkExtensionCheck(b *testing.B) {
	ctx := context.Background()
	req := engine.Request{
		Principal: engine.Principal{Type: "Agent", ID: "agent-7"},
		Action:    engine.EntityRef{ID: "read"},
		Resource:  engine.EntityRef{Type: "Doc", ID: "plan"},
		Context:   []byte(`{"risk":3,"channel":"api"}`),
	}
	newEngine := func(b *testing.B) *engine.Engine {
		e := engine.New()
		b.Cleanup(func() { e.Close() })
		if _, err := e.CreatePolicy(ctx, "all", `permit(principal, action, resource);`); err != nil {
			b.Fatal(err)
		}
		return e
	}
	run := func(b *testing.B, e *engine.Engine) {
		if d, _ := e.Check(ctx, req); d.Kind != engine.Allow {
			b.Fatal(d.Kind)
		}
		b.ReportAllocs()
		for b.Loop() {
			e.Check(ctx, req)
		}
	}
	b.Run("cedar-only", func(b *testing.B) { run(b, newEngine(b)) })
	b.Run("prefilter-miss", func(b *testing.B) {
		e := newEngine(b)
		if _, err := e.RegisterExtension(ctx, extensionModule(b, "continue", `{"name": "x", "prefilter": {"actions": ["Action::\"pay\""]}}`), engine.ExtensionConfig{}); err != nil {
			b.Fatal(err)
		}
		run(b, e)
	})
	b.Run("guest-continue", func(b *testing.B) {
		e := newEngine(b)
		if _, err := e.RegisterExtension(ctx, extensionModule(b, "continue", `{"name": "x"}`), engine.ExtensionConfig{}); err != nil {
			b.Fatal(err)
		}
		run(b, e)
	})
	b.Run("raw-wazero-call", func(b *testing.B) {
		fn, _ := rawGuest(b)
		stack := []uint64{0}
		b.ReportAllocs()
		for b.Loop() {
			stack[0] = 100
			if err := fn.CallWithStack(ctx, stack); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw-wazero-write-and-call", func(b *testing.B) {
		fn, mem := rawGuest(b)
		r0 := abi.Request{Principal: abi.Ref{Type: "Agent", ID: "agent-7"}, Action: abi.Ref{Type: "Action", ID: "read"},
			Resource: abi.Ref{Type: "Doc", ID: "plan"}, Context: req.Context, Attributes: []byte("{}"), Outcome: abi.KindAllow}
		stack := []uint64{0}
		b.ReportAllocs()
		for b.Loop() {
			buf, _ := mem.Read(4096, 65536)
			stack[0] = uint64(len(abi.AppendRequest(buf[:0], &r0)))
			if err := fn.CallWithStack(ctx, stack); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// rawGuest instantiates the "continue" guest on a bare wazero runtime: the
// anchor with no engine around it.
func rawGuest(b *testing.B) (api.Function, api.Memory) {
	ctx := context.Background()
	raw, err := os.ReadFile("../engine/testdata/ext/continue.wasm")
	if err != nil {
		b.Fatal(err)
	}
	r := wazero.NewRuntime(ctx)
	b.Cleanup(func() { r.Close(ctx) })
	mod, err := r.Instantiate(ctx, raw)
	if err != nil {
		b.Fatal(err)
	}
	return mod.ExportedFunction("creto_evaluate"), mod.Memory()
}
