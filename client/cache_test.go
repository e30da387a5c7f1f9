package client

import (
	"slices"
	"testing"
	"time"

	"github.com/creto-systems/creto/services/crypto"
)

// clock is a settable time for caches.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func testCache(ttl time.Duration, entries int, dropped *[]string) (*cache[string, []string], *clock) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	c := newCache[string](cacheConfig{enabled: true, ttl: ttl, entries: entries}, slices.Clone[[]string],
		func(v []string) { *dropped = append(*dropped, v[0]) })
	c.now = clk.now
	return c, clk
}

func TestCacheExpiry(t *testing.T) {
	var dropped []string
	c, clk := testCache(time.Minute, 10, &dropped)
	c.put("a", []string{"a"}, time.Time{})
	c.put("b", []string{"b"}, clk.t.Add(10*time.Second)) // its own expiry comes first
	clk.t = clk.t.Add(9 * time.Second)
	if _, ok := c.get("b"); !ok {
		t.Fatal("b before its expiry")
	}
	clk.t = clk.t.Add(time.Second)
	if _, ok := c.get("b"); ok {
		t.Fatal("b at its expiry")
	}
	if _, ok := c.get("a"); !ok {
		t.Fatal("a within the TTL")
	}
	clk.t = clk.t.Add(50 * time.Second)
	if _, ok := c.get("a"); ok {
		t.Fatal("a at the TTL")
	}
	c.put("c", []string{"c"}, clk.t.Add(-time.Second)) // already expired: not kept
	if _, ok := c.get("c"); ok {
		t.Fatal("an expired value was kept")
	}
	if !slices.Equal(dropped, []string{"b", "a"}) {
		t.Fatalf("dropped %v", dropped)
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	var dropped []string
	c, _ := testCache(time.Minute, 2, &dropped)
	c.put("a", []string{"a"}, time.Time{})
	c.put("b", []string{"b"}, time.Time{})
	c.get("a") // b is now the least recently used
	c.put("c", []string{"c"}, time.Time{})
	if _, ok := c.get("b"); ok {
		t.Fatal("b should have been evicted")
	}
	for _, k := range []string{"a", "c"} {
		if _, ok := c.get(k); !ok {
			t.Fatalf("%s evicted", k)
		}
	}
	c.put("a", []string{"a2"}, time.Time{}) // replacing drops the old value
	c.purge()
	if !slices.Equal(dropped, []string{"b", "a", "c", "a2"}) {
		t.Fatalf("dropped %v", dropped)
	}
	if _, ok := c.get("a"); ok {
		t.Fatal("purged")
	}
}

// Values are copied in and out: neither side can change the other's.
func TestCacheCopies(t *testing.T) {
	var dropped []string
	c, _ := testCache(time.Minute, 2, &dropped)
	v := []string{"x"}
	c.put("k", v, time.Time{})
	v[0] = "changed by the caller"
	got, _ := c.get("k")
	got[0] = "changed by a reader"
	if again, _ := c.get("k"); again[0] != "x" {
		t.Fatalf("the cache's value changed: %v", again)
	}
}

func TestCacheDisabled(t *testing.T) {
	for _, cfg := range []cacheConfig{{enabled: false, ttl: time.Minute, entries: 1}, {enabled: true, ttl: 0, entries: 1}, {enabled: true, ttl: time.Minute}} {
		c := newCache[string, int](cfg, nil, nil)
		if c != nil {
			t.Fatalf("%+v: a cache", cfg)
		}
		c.put("k", 1, time.Time{})
		if _, ok := c.get("k"); ok {
			t.Fatal("a disabled cache kept a value")
		}
		c.purge()
	}
}

// Equal requests share a key whatever their maps' order; any difference
// in what decides a check gives another key; the trace id does not.
func TestCheckKey(t *testing.T) {
	c := &AuthzClient{crypto: crypto.New(), cache: &cache[[32]byte, Decision]{}}
	base := CheckRequest{Principal: Principal{ID: "a", Attributes: map[string]any{"x": 1, "y": "z"}}, Action: "read",
		Resource: "r", Context: map[string]any{"p": 1, "q": []any{"s"}}, TraceID: "t1"}
	_, k0, err := c.encode(base)
	if err != nil {
		t.Fatal(err)
	}
	same := base
	same.Principal.Attributes = map[string]any{"y": "z", "x": 1}
	same.Context = map[string]any{"q": []any{"s"}, "p": 1}
	same.TraceID = "t2"
	if _, k, _ := c.encode(same); k != k0 {
		t.Fatal("equal requests, different keys")
	}
	for name, mutate := range map[string]func(*CheckRequest){
		"principal":  func(r *CheckRequest) { r.Principal.ID = "b" },
		"type":       func(r *CheckRequest) { r.Principal.Type = "User" },
		"attribute":  func(r *CheckRequest) { r.Principal.Attributes = map[string]any{"x": 2, "y": "z"} },
		"action":     func(r *CheckRequest) { r.Action = "write" },
		"resource":   func(r *CheckRequest) { r.Resource = "s" },
		"context":    func(r *CheckRequest) { r.Context = map[string]any{"p": 2, "q": []any{"s"}} },
		"chain":      func(r *CheckRequest) { r.DelegationChain = []EntityRef{{Type: "User", ID: "alice"}} },
		"delegation": func(r *CheckRequest) { r.DelegationID = "d" },
		// Field boundaries: "read"+"r" against "rea"+"dr".
		"boundary": func(r *CheckRequest) { r.Action, r.Resource = "rea", "dr" },
	} {
		r := base
		mutate(&r)
		if _, k, _ := c.encode(r); k == k0 {
			t.Errorf("%s: same key", name)
		}
	}
	in, _, _ := c.encode(base)
	if in.GetTraceId() != "t1" || string(in.GetContextJson()) != `{"p":1,"q":["s"]}` || in.GetPrincipal().GetAttributes().GetFields()["y"].GetStringValue() != "z" {
		t.Fatalf("wire request: %v", in)
	}
}
