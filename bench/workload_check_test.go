package bench_test

import (
	"context"
	"testing"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/creto-systems/creto/engine"
)

// TestWorkloadAgreesWithCedar keeps the benchmarks honest: on every
// benchmarked workload the engine and plain cedar-go reach the same
// decisions, and the workload exercises allows, denies and both paths.
func TestWorkloadAgreesWithCedar(t *testing.T) {
	for _, n := range sizes {
		for _, w := range []workload{newWorkload(n), newWorkload(n).scopeOnly()} {
			e := w.engine(t, engine.WithCache(engine.CacheConfig{}))
			p := w.plain(t)
			allows := 0
			// cedar-go takes milliseconds per request at 10,000 policies.
			reqs := w.requests[:min(len(w.requests), 1_000_000/max(n, 1000))]
			for i, r := range reqs {
				d, err := e.Check(context.Background(), r)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := cedar.Authorize(p.ps, p.entities, p.requests[i])
				if (d.Kind == engine.Allow) != bool(want) {
					t.Fatalf("%d policies, request %d: engine %v, cedar-go %v", n, i, d.Kind, want)
				}
				if d.Kind == engine.Allow {
					allows++
				}
			}
			if n >= 100 && (allows == 0 || allows == len(reqs)) {
				t.Fatalf("%d policies: %d of %d requests allowed; the workload does not discriminate", n, allows, len(reqs))
			}
		}
	}
}
