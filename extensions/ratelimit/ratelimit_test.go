//go:build !wasip1

package main_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/hosts"
	"github.com/creto-systems/creto/internal/guestbuild"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func TestTokenBucket(t *testing.T) {
	ctx := context.Background()
	module, err := guestbuild.Go(".")
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	e := engine.New(engine.WithHostModules(hosts.State{Store: hosts.NewMemoryState(), Now: clk.Now}))
	defer e.Close()
	if _, err := e.CreatePolicy(ctx, "all", `permit(principal, action, resource);`); err != nil {
		t.Fatal(err)
	}
	config, _ := json.Marshal(map[string]any{"limits": []map[string]any{
		{"id": "messages", "principal_type": "Agent", "action": "send_message", "rate": 2, "per": "1s", "burst": 3},
	}})
	if _, err := e.RegisterExtension(ctx, module, engine.ExtensionConfig{Config: config, Grants: []string{"state"}}); err != nil {
		t.Fatal(err)
	}
	send := func(agent string) engine.Decision {
		d, err := e.Check(ctx, engine.Request{Principal: engine.Principal{Type: "Agent", ID: agent},
			Action: engine.EntityRef{ID: "send_message"}, Resource: engine.EntityRef{Type: "Topic", ID: "t"}})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for i := range 3 { // the burst
		if d := send("chatty"); d.Kind != engine.Allow {
			t.Fatalf("message %d: %v", i+1, d.Kind)
		}
	}
	d := send("chatty")
	if d.Kind != engine.RateLimited || d.RateLimit.RetryAfter != 500*time.Millisecond || d.RateLimit.Remaining != 0 {
		t.Fatalf("past the burst: %+v", d)
	}
	if d := send("quiet"); d.Kind != engine.Allow {
		t.Fatalf("another agent has its own bucket: %v", d.Kind)
	}
	clk.advance(500 * time.Millisecond) // refills one token at 2/s
	if d := send("chatty"); d.Kind != engine.Allow {
		t.Fatalf("after refill: %v", d.Kind)
	}
	if d := send("chatty"); d.Kind != engine.RateLimited {
		t.Fatalf("the refill was one token: %v", d.Kind)
	}
	before := e.ListExtensions()[0].Stats.Calls
	if d, _ := e.Check(ctx, engine.Request{Principal: engine.Principal{Type: "Agent", ID: "chatty"},
		Action: engine.EntityRef{ID: "read"}, Resource: engine.EntityRef{Type: "Topic", ID: "t"}}); d.Kind != engine.Allow {
		t.Fatalf("an unlimited action: %v", d.Kind)
	}
	if e.ListExtensions()[0].Stats.Skipped == 0 || e.ListExtensions()[0].Stats.Calls != before+1 {
		t.Fatalf("stats: %+v", e.ListExtensions()[0].Stats)
	}
}
