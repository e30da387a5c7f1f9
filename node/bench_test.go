package node

import (
	"fmt"
	"testing"
	"time"

	memoryv1 "github.com/creto-systems/creto/api/creto/memory/v1"
	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	"github.com/creto-systems/creto/services/memory"
)

// BenchmarkNHIGetAgent and BenchmarkMemoryQuery measure what serving a
// call costs: the same call in process (the anchor) and over gRPC with
// mTLS on loopback, as an operator (client certificate) and as an agent
// (bearer token, resolved from the node's token cache on every call), in
// one run.
//
// go test -run '^$' -bench 'NHIGetAgent|MemoryQuery' -benchmem ./node/
func BenchmarkNHIGetAgent(b *testing.B) {
	tn := startNode(b, "", nil)
	agent := nhiv1.NewNhiServiceClient(tn.agent("bot"))
	op := nhiv1.NewNhiServiceClient(tn.operator())
	req := &nhiv1.GetAgentRequest{Id: "bot"}
	b.Run("in-process", func(b *testing.B) {
		for b.Loop() {
			if _, err := tn.nhi.Get(bg, "bot"); err != nil {
				b.Fatal(err)
			}
		}
	})
	for name, c := range map[string]nhiv1.NhiServiceClient{"grpc-operator": op, "grpc-agent": agent} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.GetAgent(bg, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMemoryQuery queries 1,000 memories of one agent, as the owner
// and as another agent reading through an NHI grant (FindGrant on every
// call).
func BenchmarkMemoryQuery(b *testing.B) {
	tn := startNode(b, "", nil)
	owner := tn.agent("payments")
	reader := memoryv1.NewMemoryServiceClient(tn.agent("approver"))
	reqs := make([]memory.StoreRequest, 1000)
	for i := range reqs {
		reqs[i] = memory.StoreRequest{Agent: "payments", Type: memory.Observation,
			Content: fmt.Sprintf("invoice %d from vendor %d for %d EUR, order PO-%d", i, i%37, 100+i*7, 900+i)}
	}
	if _, err := tn.memory.StoreBatch(bg, "payments", reqs); err != nil {
		b.Fatal(err)
	}
	if _, err := tn.nhi.CreateDelegation(bg, "payments", "approver", []string{"memory:read"}, time.Time{}, nil); err != nil {
		b.Fatal(err)
	}
	q := memory.Query{Agent: "payments", Text: "invoice from vendor 5"}
	wire := &memoryv1.QueryRequest{Agent: agentRef("payments"), Query: q.Text}
	b.Run("in-process", func(b *testing.B) {
		for b.Loop() {
			if _, err := tn.memory.Query(bg, "payments", q); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("in-process-through-grant", func(b *testing.B) {
		for b.Loop() {
			if _, err := tn.memory.Query(bg, "approver", q); err != nil {
				b.Fatal(err)
			}
		}
	})
	for name, c := range map[string]memoryv1.MemoryServiceClient{
		"grpc-owner":         memoryv1.NewMemoryServiceClient(owner),
		"grpc-through-grant": reader,
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				res, err := c.Query(bg, wire)
				if err != nil || len(res.GetResults()) == 0 {
					b.Fatal(res, err)
				}
			}
		})
	}
}
