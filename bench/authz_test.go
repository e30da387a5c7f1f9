package bench_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/creto-systems/creto/engine"
)

var sizes = []int{1, 100, 1000, 10000}

// BenchmarkCheck compares an uncached engine check (request validation and
// JSON context handling included) with plain cedar.Authorize over the whole
// policy set on a prebuilt request.
func BenchmarkCheck(b *testing.B) {
	for _, n := range sizes {
		benchEngineAndCedar(b, n, newWorkload(n))
	}
}

// BenchmarkCheckScopeOnly is BenchmarkCheck on the workload with every
// condition removed (pure RBAC): the path where the engine decides from
// scopes alone, with no cedar.Authorize call and no context decoding.
func BenchmarkCheckScopeOnly(b *testing.B) {
	for _, n := range sizes[1:] {
		w := newWorkload(n).scopeOnly()
		if strings.Contains(w.policies, "when") || strings.Contains(w.policies, "unless") {
			b.Fatal("conditions left in the scope-only workload")
		}
		benchEngineAndCedar(b, n, w)
	}
}

// benchEngineAndCedar runs the engine (cache off) and plain cedar-go on the
// same workload, side by side.
func benchEngineAndCedar(b *testing.B, n int, w workload) {
	ctx := context.Background()
	b.Run(fmt.Sprintf("policies=%d/engine", n), func(b *testing.B) {
		e := w.engine(b, engine.WithCache(engine.CacheConfig{}))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := e.Check(ctx, w.requests[i%len(w.requests)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run(fmt.Sprintf("policies=%d/cedar-go", n), func(b *testing.B) {
		p := w.plain(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			cedar.Authorize(p.ps, p.entities, p.requests[i%len(p.requests)])
			i++
		}
	})
}

// BenchmarkCheckCached is the seed's 168 ns headline: a repeated Allow
// served from the decision cache.
func BenchmarkCheckCached(b *testing.B) {
	ctx := context.Background()
	w := newWorkload(1000)
	e := w.engine(b)
	var req engine.Request
	for _, r := range w.requests {
		if d, _ := e.Check(ctx, r); d.Kind == engine.Allow {
			req = r
			break
		}
	}
	if d, _ := e.Check(ctx, req); !d.Cached {
		b.Fatal("no cacheable allow in the workload")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Check(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckBatch measures throughput of 1,000-request batches over all
// cores, uncached, at 1,000 policies.
func BenchmarkCheckBatch(b *testing.B) {
	ctx := context.Background()
	w := newWorkload(1000)
	e := w.engine(b, engine.WithCache(engine.CacheConfig{}))
	batch := w.requests[:1000]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.CheckBatch(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "decisions/s")
}

// BenchmarkUpdatePolicy replaces one policy in a 10,000-policy store.
func BenchmarkUpdatePolicy(b *testing.B) {
	ctx := context.Background()
	w := newWorkload(10000)
	e := w.engine(b)
	id := e.ListPolicies()[5000].ID
	texts := []string{
		`permit(principal in Team::"team1", action == Action::"act1", resource in Folder::"folder1");`,
		`permit(principal in Team::"team2", action == Action::"act2", resource in Folder::"folder2");`,
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := e.UpdatePolicy(ctx, id, texts[i%2], 0); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkMemoryPerPolicy reports heap bytes per loaded policy at 10,000
// policies, for the engine (snapshot, index, compiled policy) and for a
// plain cedar.PolicySet.
func BenchmarkMemoryPerPolicy(b *testing.B) {
	w := newWorkload(10000)
	measure := func(b *testing.B, load func() any) {
		for b.Loop() {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			keep := load()
			runtime.GC()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(keep)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/10000, "B/policy")
		}
	}
	b.Run("engine", func(b *testing.B) {
		measure(b, func() any { return w.engine(b) })
	})
	b.Run("cedar-go", func(b *testing.B) {
		measure(b, func() any {
			ps, err := cedar.NewPolicySetFromBytes("bench.cedar", []byte(w.policies))
			if err != nil {
				b.Fatal(err)
			}
			return ps
		})
	})
}
