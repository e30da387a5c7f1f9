package hosts_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/hosts"
	"github.com/creto-systems/creto/services/audit"
	"github.com/creto-systems/creto/services/audit/feed"
)

// BenchmarkAuditHostEmit is the cost creto:audit/v1 adds to a check: a
// guest that emits one event per check (audit_emit.wasm, which then
// denies) against, in the same run, the engine's cheapest guest
// (continue.wasm, no host call), both uncached, and the in-process work the host function
// does (feed.Extension, Record.Validate, Logger.Emit). The Logger writes
// to a real log behind; what it cannot keep up with is dropped and
// counted, as on a node.
//
// go test -run '^$' -bench AuditHostEmit -benchmem ./hosts/
func BenchmarkAuditHostEmit(b *testing.B) {
	ctx := context.Background()
	req := engine.Request{Principal: engine.Principal{Type: "Agent", ID: "payments-bot"}, Action: engine.EntityRef{ID: "pay"},
		Resource: engine.EntityRef{Type: "Invoice", ID: "inv-9"}, TraceID: "trace-9"}
	for _, g := range []struct{ name, path, manifest string }{
		{"guest-without-host-call", filepath.Join("..", "engine", "testdata", "ext", "continue.wasm"), `{"name": "plain"}`},
		{"guest-emitting-once", filepath.Join("testdata", "audit_emit.wasm"), `{"name": "hook", "capabilities": ["audit"]}`},
	} {
		b.Run(g.name, func(b *testing.B) {
			_, logger := auditLog(b)
			// No decision cache: the emitting guest's denials are never
			// cached, so the anchor's allows must not be either.
			e := engine.New(engine.WithHostModules(hosts.Audit{Events: logger, PerSecond: 1 << 30}), engine.WithCache(engine.CacheConfig{}))
			defer e.Close()
			if _, err := e.CreatePolicy(ctx, "all", `permit (principal, action, resource);`); err != nil {
				b.Fatal(err)
			}
			module, err := os.ReadFile(g.path)
			if err != nil {
				b.Fatal(err)
			}
			m, err := abi.ParseManifest([]byte(g.manifest))
			if err != nil {
				b.Fatal(err)
			}
			if module, err = abi.WriteManifest(module, m); err != nil {
				b.Fatal(err)
			}
			if _, err := e.RegisterExtension(ctx, module, engine.ExtensionConfig{Grants: []string{abi.CapabilityAudit}}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if d, err := e.Check(ctx, req); err != nil || (d.Kind != engine.Allow && d.Reason != "0") {
					b.Fatal(d, err)
				}
			}
		})
	}
	b.Run("emit-in-process", func(b *testing.B) {
		_, logger := auditLog(b)
		rep := feed.Reported{What: "payment.flagged", Resource: "inv-9", Why: "over the limit", Outcome: audit.Denied, Context: map[string]string{"rule": "r1"}}
		b.ReportAllocs()
		for b.Loop() {
			r := feed.Extension(ctx, "hook", rep)
			if err := r.Validate(); err != nil {
				b.Fatal(err)
			}
			if err := logger.Emit(ctx, audit.Event{Class: audit.Ordinary, Record: r}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
