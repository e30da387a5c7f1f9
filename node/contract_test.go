//go:build !race

// The latency contract measures the product, which the race detector
// slows five- to twentyfold: it runs in builds without it (make test runs
// this package a second time for it).

package node

import (
	"slices"
	"sync"
	"testing"
	"time"

	authzv1 "github.com/creto-systems/creto/api/creto/authz/v1"
)

// TestAuthzCheckLatencyContract is seed §11.2's authz contract: a Check
// answers within 10 ms, here at the 99th percentile of concurrent load
// over real gRPC and mTLS.
func TestAuthzCheckLatencyContract(t *testing.T) {
	tn := startNode(t, "", nil)
	if _, err := tn.authz.CreatePolicy(bg, "", readPolicy); err != nil {
		t.Fatal(err)
	}
	const clients, perClient = 8, 1000
	var mu sync.Mutex
	var latencies []time.Duration
	var wg sync.WaitGroup
	for i := range clients {
		c := authzv1.NewAuthorizationServiceClient(tn.operator())
		// Connect first: the contract is about checks, not TLS handshakes.
		if _, err := c.ListExtensions(bg, &authzv1.ListExtensionsRequest{}); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			mine := make([]time.Duration, 0, perClient)
			for j := range perClient {
				// Distinct resources, so most checks miss the decision cache.
				req := &authzv1.CheckRequest{Principal: &authzv1.Principal{Id: "reader"}, Action: "read",
					Resource: `Document::"` + string(rune('a'+i)) + string(rune('a'+j%26)) + `"`}
				start := time.Now()
				resp, err := c.Check(bg, req)
				mine = append(mine, time.Since(start))
				if err != nil || resp.GetDecision().GetAllow() == nil {
					t.Errorf("check: %v %v", resp, err)
					return
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(latencies)
	p99 := latencies[len(latencies)*99/100]
	t.Logf("%d checks from %d clients: p50 %v, p99 %v", len(latencies), clients, latencies[len(latencies)/2], p99)
	if p99 >= 10*time.Millisecond {
		t.Fatalf("p99 %v, contract 10ms", p99)
	}
}
