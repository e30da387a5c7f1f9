package hosts_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/hosts"
	"github.com/creto-systems/creto/services/nhi"
)

// BenchmarkNHIHostCall is the cost creto:nhi/v1 adds to a check: a guest
// that asks for the principal's status once against, in the same run, the
// engine's cheapest guest (continue.wasm, no host call) and the in-process
// lookup the host function makes (nhi.Service.Get).
//
// go test -run '^$' -bench NHIHostCall -benchmem ./hosts/
func BenchmarkNHIHostCall(b *testing.B) {
	ctx := context.Background()
	svc, err := nhi.Open(ctx, b.TempDir(), nhi.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	if _, err := svc.Register(ctx, nhi.AgentIdentity{ID: "bot", Type: nhi.AgentTypeService, OwnerID: "alice",
		Attributes: map[string]string{"team": "payments", "env": "prod"}}); err != nil {
		b.Fatal(err)
	}
	req := engine.Request{Principal: engine.Principal{Type: "Agent", ID: "bot"}, Action: engine.EntityRef{ID: "read"}, Resource: engine.EntityRef{Type: "Doc", ID: "d"}}
	for _, g := range []struct{ name, path, manifest string }{
		{"guest-without-host-call", filepath.Join("..", "engine", "testdata", "ext", "continue.wasm"), `{"name": "plain"}`},
		{"guest-with-nhi-status", filepath.Join("testdata", "nhi_status.wasm"), `{"name": "nhi-status", "capabilities": ["nhi"]}`},
	} {
		b.Run(g.name, func(b *testing.B) {
			e := engine.New(engine.WithHostModules(hosts.NHI{Agents: svc}))
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
			if _, err := e.RegisterExtension(ctx, module, engine.ExtensionConfig{Grants: []string{"nhi"}}); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if d, err := e.Check(ctx, req); err != nil || d.Kind != engine.Allow {
					b.Fatal(d, err)
				}
			}
		})
	}
	b.Run("nhi-get-in-process", func(b *testing.B) {
		for b.Loop() {
			if _, err := svc.Get(ctx, "bot"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
