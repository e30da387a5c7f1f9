package hosts_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/creto-systems/creto/hosts"
	"github.com/creto-systems/creto/internal/kv"
)

func TestWindowedCounters(t *testing.T) {
	ctx := context.Background()
	s := hosts.NewMemoryState()
	t0 := time.Date(2026, 1, 1, 10, 59, 0, 0, time.UTC)
	add := func(key string, delta int64, w time.Duration, at time.Time) int64 {
		v, err := s.Add(ctx, key, delta, w, at)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if add("k", 2, time.Hour, t0) != 2 || add("k", 3, time.Hour, t0.Add(30*time.Second)) != 5 {
		t.Fatal("counting within a window")
	}
	if v := add("k", 1, time.Hour, t0.Add(time.Minute)); v != 1 {
		t.Fatalf("a new window (11:00) must restart the counter: %d", v)
	}
	if add("plain", 7, 0, t0) != 7 || add("plain", 1, 0, t0.Add(48*time.Hour)) != 8 {
		t.Fatal("an unwindowed counter never resets")
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				s.Add(ctx, "race", 1, 0, t0)
			}
		})
	}
	wg.Wait()
	if v := add("race", 0, 0, t0); v != 8000 {
		t.Fatalf("concurrent adds lost counts: %d", v)
	}
}

func TestTokenBucketRefill(t *testing.T) {
	ctx := context.Background()
	s := hosts.NewMemoryState()
	t0 := time.Unix(1_000, 0)
	take := func(at time.Time) hosts.Bucket {
		b, err := s.Take(ctx, "b", 4, 2, at) // 4 tokens/s, burst 2
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if b := take(t0); !b.Taken || b.Remaining != 1 {
		t.Fatalf("a new bucket starts full: %+v", b)
	}
	take(t0)
	if b := take(t0); b.Taken || b.RetryAfter != 250*time.Millisecond {
		t.Fatalf("empty: %+v", b)
	}
	if b := take(t0.Add(250 * time.Millisecond)); !b.Taken {
		t.Fatalf("refilled after 250 ms: %+v", b)
	}
	if b := take(t0.Add(time.Hour)); !b.Taken || b.Remaining != 1 {
		t.Fatalf("refill is capped at the burst: %+v", b)
	}
}

func TestDurableStateSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t0 := time.Unix(1_800_000_000, 0)
	open := func() (kv.Store, *hosts.DurableState) {
		store, err := kv.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		s, err := hosts.OpenDurableState(ctx, store, time.Hour) // flushes only on Close here
		if err != nil {
			t.Fatal(err)
		}
		return store, s
	}
	store, s := open()
	for range 5 {
		s.Add(ctx, "ext/quota/calls", 1, time.Hour, t0)
	}
	s.Add(ctx, "ext/quota/forever", 42, 0, t0)
	s.Take(ctx, "ext/rl/bot", 1, 3, t0)
	if err := s.Set(ctx, "ext/x/config", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	store.Close()

	store, s = open()
	defer store.Close()
	defer s.Close(ctx)
	if v, _ := s.Add(ctx, "ext/quota/calls", 0, time.Hour, t0.Add(time.Minute)); v != 5 {
		t.Fatalf("a windowed counter after restart: %d", v)
	}
	if v, _ := s.Add(ctx, "ext/quota/calls", 0, time.Hour, t0.Add(2*time.Hour)); v != 0 {
		t.Fatalf("the window still rolls over after restart: %d", v)
	}
	if v, _ := s.Add(ctx, "ext/quota/forever", 1, 0, t0); v != 43 {
		t.Fatalf("an unwindowed counter after restart: %d", v)
	}
	if b, _ := s.Take(ctx, "ext/rl/bot", 1, 3, t0); !b.Taken || b.Remaining != 1 {
		t.Fatalf("a bucket after restart: %+v", b)
	}
	if v, ok, _ := s.Get(ctx, "ext/x/config"); !ok || string(v) != "v1" {
		t.Fatalf("a value after restart: %q %v", v, ok)
	}
}
