package client_test

import (
	"errors"
	"testing"
	"time"

	"github.com/creto-systems/creto/client"
)

// Seed §11.2's memory contract: a stored memory is found by a query, with
// a relevance score in [0, 1].
func TestContractMemoryQueryScores(t *testing.T) {
	tn := startNode(t, "")
	c := tn.clients(t, tn.config(tn.GRPCAddr().String())).Memory
	if _, err := c.Store(bg, client.StoreRequest{Agent: "test-agent", Content: "Test memory content", Type: client.Context}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Query(bg, client.QueryRequest{Agent: "test-agent", Query: "test", Limit: 10})
	if err != nil || res.Degraded != nil || len(res.Memories) == 0 {
		t.Fatalf("query: %+v %v", res, err)
	}
	for _, m := range res.Memories {
		if m.Relevance < 0 || m.Relevance > 1 || m.Content != "Test memory content" || m.AgentID != "test-agent" {
			t.Fatalf("scored memory: %+v", m)
		}
	}
}

func TestMemory(t *testing.T) {
	tn := startNode(t, "")
	c := tn.clients(t, tn.config(tn.GRPCAddr().String())).Memory

	ids, err := c.StoreBatch(bg, []client.StoreRequest{
		{Agent: "payments", Type: client.Reasoning, Content: "Invoice 42 matches PO-991, so I will pay Acme",
			Metadata: map[string]string{"action_id": "pay-42", "confidence": "0.8"}},
		{Agent: "payments", Type: client.ToolResult, Content: "bank API: Acme account verified", Metadata: map[string]string{"action_id": "pay-42"}},
		{Agent: "payments", Type: client.Observation, Content: "a short-lived note", TTL: time.Hour},
	})
	if err != nil || len(ids) != 3 {
		t.Fatalf("store batch: %v %v", ids, err)
	}
	m, found, err := c.Get(bg, "payments", ids[2])
	if err != nil || !found || m.Content != "a short-lived note" || m.Type != client.Observation || m.ExpiresAt.IsZero() {
		t.Fatalf("get: %+v %v %v", m, found, err)
	}
	r, err := c.GetReasoning(bg, "payments", "pay-42")
	if err != nil || !r.Found || len(r.Steps) != 1 || len(r.Related) != 1 || r.Confidence == nil || *r.Confidence != 0.8 {
		t.Fatalf("reasoning: %+v %v", r, err)
	}
	if r, err := c.GetReasoning(bg, "payments", "no-such-action"); err != nil || r.Found {
		t.Fatalf("no reasoning is None, not an error: %+v %v", r, err)
	}

	// Only reasoning and tool results, and a threshold no memory reaches.
	res, err := c.Query(bg, client.QueryRequest{Agent: "payments", Query: "pay Acme", Types: []client.MemoryType{client.Reasoning}})
	if err != nil || len(res.Memories) != 1 || res.Memories[0].Type != client.Reasoning || !res.Exact {
		t.Fatalf("typed query: %+v %v", res, err)
	}
	none := float32(0.99)
	if res, err := c.Query(bg, client.QueryRequest{Agent: "payments", Query: "pay Acme", RelevanceThreshold: &none}); err != nil || len(res.Memories) != 0 {
		t.Fatalf("threshold: %+v %v", res, err)
	}

	// A limit over max_query_limit never leaves the client.
	attempts := c.Stats().Attempts
	if _, err := c.Query(bg, client.QueryRequest{Agent: "payments", Query: "x", Limit: 101}); !errors.Is(err, client.ErrInvalidRequest) || c.Stats().Attempts != attempts {
		t.Fatalf("limit: %v", err)
	}
	// A bad request is the node's, not a degradation.
	if res, err := c.Query(bg, client.QueryRequest{Agent: "payments"}); !errors.Is(err, client.ErrInvalidRequest) || res.Degraded != nil {
		t.Fatalf("no query text: %+v %v", res, err)
	}
	if _, err := c.Store(bg, client.StoreRequest{Agent: "payments", Content: "no type"}); !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("store without a type: %v", err)
	}

	if err := c.Delete(bg, "payments", ids[2]); err != nil {
		t.Fatal(err)
	}
	if _, found, err := c.Get(bg, "payments", ids[2]); err != nil || found {
		t.Fatalf("deleted: %v %v", found, err)
	}
	if err := c.Delete(bg, "payments", ids[2]); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
}

// An agent reads another agent's memories only through a grant; the
// refusal is an error, never a degraded empty answer.
func TestMemoryDeniedIsNotDegraded(t *testing.T) {
	tn := startNode(t, "")
	tokens := tn.seed("payments", "approver")
	c := tn.clients(t, tn.agentConfig(tn.GRPCAddr().String()), client.WithBearerToken(tokens["approver"])).Memory
	res, err := c.Query(bg, client.QueryRequest{Agent: "payments", Query: "wire transfer"})
	if !errors.Is(err, client.ErrDenied) || res.Degraded != nil {
		t.Fatalf("another agent's memories: %+v %v", res, err)
	}
	oc, err := c.OversightContext(bg, client.OversightRequest{Agent: "payments", Action: "wire transfer"})
	if !errors.Is(err, client.ErrDenied) || oc.Degraded != nil {
		t.Fatalf("another agent's oversight context: %+v %v", oc, err)
	}
	if s := c.Stats(); s.Fallbacks != 0 || s.Breaker != "closed" {
		t.Fatalf("%+v", s)
	}
}

// A deleted memory is never served from the degradation cache.
func TestMemoryDeletePurgesCache(t *testing.T) {
	tn := startNode(t, "")
	proxy := newProxy(t, tn.GRPCAddr().String())
	cfg := tn.config(tn.GRPCAddr().String())
	cfg.Memory.Endpoint = proxy.Listen
	c := tn.clients(t, cfg).Memory
	id, err := c.Store(bg, client.StoreRequest{Agent: "payments", Type: client.Context, Content: "the customer's home address is 1 Main St"})
	if err != nil {
		t.Fatal(err)
	}
	q := client.QueryRequest{Agent: "payments", Query: "home address"}
	if res, err := c.Query(bg, q); err != nil || len(res.Memories) != 1 {
		t.Fatalf("query: %+v %v", res, err)
	}
	if err := c.Delete(bg, "payments", id); err != nil {
		t.Fatal(err)
	}
	proxy.Stop()
	res, err := c.Query(bg, q)
	if err != nil || res.Degraded == nil || len(res.Memories) != 0 {
		t.Fatalf("after delete, memory down: %+v %v", res, err)
	}
}
