package bench_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/hosts"
	"github.com/creto-systems/creto/internal/guestbuild"
)

// BenchmarkQuotaEnforcer: a check by a principal that has a quota (so the
// bloom filter lets it through to the Go guest, which counts through the
// host's state), against a principal without one (filtered natively), on
// top of a cached Cedar allow.
func BenchmarkQuotaEnforcer(b *testing.B) {
	ctx := context.Background()
	e := engine.New(engine.WithHostModules(hosts.State{Store: hosts.NewMemoryState()}, hosts.Clock{}))
	defer e.Close()
	if _, err := e.CreatePolicy(ctx, "all", `permit(principal, action, resource);`); err != nil {
		b.Fatal(err)
	}
	config, _ := json.Marshal(map[string]any{"quotas": []map[string]any{
		{"id": "calls", "principal": `Agent::"metered"`, "action": "consume_quota", "limit": int64(1) << 60, "window": "24h"},
	}})
	module, err := guestbuild.Go("../extensions/quota")
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := e.RegisterExtension(ctx, module, engine.ExtensionConfig{Config: config, Grants: []string{"state", "time", "prefilter"}}); err != nil {
		b.Fatal(err)
	}
	b.Logf("registering the %d-byte Go module took %v", len(module), time.Since(start))
	request := func(principal string) engine.Request {
		return engine.Request{Principal: engine.Principal{Type: "Agent", ID: principal},
			Action: engine.EntityRef{ID: "consume_quota"}, Resource: engine.EntityRef{Type: "Tool", ID: "llm"}}
	}
	for _, who := range []string{"metered", "unmetered"} {
		b.Run(who, func(b *testing.B) {
			r := request(who)
			if d, _ := e.Check(ctx, r); d.Kind != engine.Allow {
				b.Fatal(d.Kind, d.Reason)
			}
			b.ReportAllocs()
			for b.Loop() {
				e.Check(ctx, r)
			}
		})
	}
}
