//go:build !wasip1

package main_test

import (
	"context"
	"encoding/json"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/hosts"
	"github.com/creto-systems/creto/internal/guestbuild"
)

// cacheDir holds compiled code across the engines of this test run:
// compiling a Go module takes seconds, loading it from disk does not.
var cacheDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "creto-quota-cache")
	if err != nil {
		panic(err)
	}
	cacheDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func quotaModule(t testing.TB) []byte {
	t.Helper()
	m, err := guestbuild.Go(".")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestQuotaEnforcer(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	state := hosts.NewMemoryState()
	e := engine.New(engine.WithExtensionCacheDir(cacheDir), engine.WithHostModules(hosts.State{Store: state, Now: clk.Now}, hosts.Clock{Now: clk.Now}))
	defer e.Close()
	if _, err := e.CreatePolicy(ctx, "all", `permit(principal, action, resource);`); err != nil {
		t.Fatal(err)
	}
	config, _ := json.Marshal(map[string]any{"quotas": []map[string]any{
		{"id": "calls-hourly", "principal": `Agent::"metered"`, "action": "consume_quota", "limit": 3, "window": "1h"},
		{"id": "tokens", "principal": `Agent::"metered"`, "action": "generate", "limit": 1000, "cost": "tokens"},
	}})
	start := time.Now()
	if _, err := e.RegisterExtension(ctx, quotaModule(t), engine.ExtensionConfig{Config: config, Grants: []string{"state", "time", "prefilter"}}); err != nil {
		t.Fatal(err)
	}
	t.Logf("registration took %v", time.Since(start))

	check := func(principal, action, context string) engine.Decision {
		t.Helper()
		d, err := e.Check(ctx, engine.Request{
			Principal: engine.Principal{Type: "Agent", ID: principal},
			Action:    engine.EntityRef{ID: action},
			Resource:  engine.EntityRef{Type: "Tool", ID: "llm"},
			Context:   []byte(context),
		})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for i := range 3 {
		if d := check("metered", "consume_quota", ""); d.Kind != engine.Allow {
			t.Fatalf("call %d within quota: %v %s", i+1, d.Kind, d.Reason)
		}
	}
	d := check("metered", "consume_quota", "")
	if d.Kind != engine.QuotaExceeded || d.Quota.ID != "calls-hourly" || d.Quota.Limit != 3 || d.Quota.Used != 3 ||
		!d.Quota.ResetAt.Equal(time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)) {
		t.Fatalf("over quota: %+v", d)
	}
	// Unmetered principals and actions are not counted, and skip the guest.
	before := e.ListExtensions()[0].Stats.Calls
	for range 10 {
		if d := check("free", "consume_quota", ""); d.Kind != engine.Allow {
			t.Fatalf("an unmetered principal: %v", d.Kind)
		}
	}
	if after := e.ListExtensions()[0].Stats.Calls; after != before {
		t.Fatalf("the bloom pre-filter let %d unmetered calls through", after-before)
	}
	// The window rolls over.
	clk.advance(time.Hour)
	if d := check("metered", "consume_quota", ""); d.Kind != engine.Allow {
		t.Fatalf("after the window: %v", d.Kind)
	}
	// Costs come from the context.
	if d := check("metered", "generate", `{"tokens": 900}`); d.Kind != engine.Allow {
		t.Fatalf("900 tokens: %v", d.Kind)
	}
	if d := check("metered", "generate", `{"tokens": 200}`); d.Kind != engine.QuotaExceeded || d.Quota.Used != 900 {
		t.Fatalf("1100 tokens: %+v", d)
	}
	if d := check("metered", "generate", `{"tokens": 100}`); d.Kind != engine.Allow {
		t.Fatalf("the refused request was counted: %v", d.Kind)
	}
	if d := check("metered", "generate", `{"tokens": "lots"}`); d.Kind != engine.Deny || d.PolicyID != "ext:quota" {
		t.Fatalf("a malformed cost fails closed: %+v", d)
	}
}

func TestQuotaRefusesBadConfiguration(t *testing.T) {
	e := engine.New(engine.WithExtensionCacheDir(cacheDir), engine.WithHostModules(hosts.State{Store: hosts.NewMemoryState()}, hosts.Clock{}))
	defer e.Close()
	for _, cfg := range []string{`not json`, `{"quotas": [{"id": "x"}]}`, `{"quotas": [{"id": "x", "principal": "Agent::\"a\"", "action": "b", "limit": 1, "window": "forever"}]}`} {
		if _, err := e.RegisterExtension(context.Background(), quotaModule(t), engine.ExtensionConfig{Config: []byte(cfg), Grants: []string{"state", "time", "prefilter"}}); err == nil {
			t.Errorf("config %s accepted", cfg)
		}
	}
}
