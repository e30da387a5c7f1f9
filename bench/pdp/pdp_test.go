package pdp

import (
	"context"
	"testing"
)

// TestSameDecisions keeps the comparison meaningful: every served PDP,
// in every configuration, reaches the reference decision on each request
// of the mix and each batch — the same allows, the same default denies,
// and the risky-delete forbid with its reason — and the mix exercises all
// three outcomes.
func TestSameDecisions(t *testing.T) {
	w, all := servers(t)
	count := map[outcome]int{}
	for _, q := range w.mix {
		count[w.decide(q)]++
	}
	for _, o := range []outcome{allowed, denied, forbidden} {
		if count[o] < len(w.mix)/10 {
			t.Fatalf("the mix has %d %v outcomes of %d: it does not discriminate", count[o], o, len(w.mix))
		}
	}
	t.Logf("mix of %d requests: %d allowed, %d denied by default, %d forbidden", len(w.mix), count[allowed], count[denied], count[forbidden])
	ctx := context.Background()
	for _, s := range all {
		t.Run(s.name, func(t *testing.T) {
			for i, q := range w.mix {
				want := w.decide(q)
				got, err := s.d.explain(ctx, i)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				allow, err := s.d.check(ctx, i, i)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if got != want || allow != (want == allowed) {
					t.Errorf("request %d %+v: %v (allowed %v), want %v", i, q, got, allow, want)
				}
			}
			bd, ok := s.d.(batcher)
			if !ok {
				return
			}
			for j, qs := range w.batches {
				got, err := bd.batch(ctx, j, j)
				if err != nil {
					t.Fatalf("batch %d: %v", j, err)
				}
				if len(got) != len(qs) {
					t.Fatalf("batch %d: %d decisions for %d requests", j, len(got), len(qs))
				}
				for i, q := range qs {
					if want := w.decide(q) == allowed; got[i] != want {
						t.Errorf("batch %d request %d %+v: allowed %v, want %v", j, i, q, got[i], want)
					}
				}
			}
		})
	}
}
