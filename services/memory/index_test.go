package memory

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestIndexMatchesBruteForce: after random inserts and deletes (which move
// rows around), search returns exactly what scoring every live vector
// independently returns.
func TestIndexMatchesBruteForce(t *testing.T) {
	const dims = 24
	rng := rand.New(rand.NewPCG(1, 2))
	ix := &agentIndex{}
	vecs := map[*entry][]float32{}
	var live []*entry
	randVec := func() []float32 {
		v := make([]float32, dims)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		if err := normalize(v, dims, false); err != nil {
			t.Fatal(err)
		}
		return v
	}
	base := time.Unix(1_700_000_000, 0)
	for i := range 600 {
		if len(live) > 0 && rng.IntN(3) == 0 {
			k := rng.IntN(len(live))
			ix.remove(live[k], dims)
			delete(vecs, live[k])
			live = slices.Delete(live, k, k+1)
			continue
		}
		e := &entry{mem: Memory{ID: fmt.Sprintf("%032x", i), Type: Type(1 + i%6), CreatedAt: base.Add(time.Duration(i) * time.Second)}}
		v := randVec()
		ix.add(e, v, dims)
		vecs[e] = v
		live = append(live, e)
	}
	for range 50 {
		q := randVec()
		f := &filter{types: 1<<Reasoning | 1<<Context}
		got, scored := ix.search(q, dims, f, 0.1, 10)
		var want []hit
		admitted := 0
		for _, e := range live {
			if !f.admits(&e.mem) {
				continue
			}
			admitted++
			if s := dot(q, vecs[e]); s >= 0.1 {
				want = append(want, hit{e: e, score: s})
			}
		}
		slices.SortFunc(want, func(a, b hit) int {
			if a.better(b) {
				return -1
			}
			return 1
		})
		want = want[:min(10, len(want))]
		if scored != admitted || len(got) != len(want) {
			t.Fatalf("scored %d of %d, %d results, want %d", scored, admitted, len(got), len(want))
		}
		for i := range got {
			if got[i].e != want[i].e || got[i].score != want[i].score {
				t.Fatalf("result %d differs from brute force", i)
			}
		}
	}
}

func TestDotMatchesNaive(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 256, 1537} {
		a, b := make([]float32, n), make([]float32, n)
		var want float64
		for i := range a {
			a[i], b[i] = float32(i%7)-3, float32(i%5)-2
			want += float64(a[i]) * float64(b[i])
		}
		if got := dot(a, b); float64(got) != want {
			t.Fatalf("n=%d: dot %v, want %v", n, got, want)
		}
	}
}
