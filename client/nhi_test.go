package client_test

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	"github.com/creto-systems/creto/client"
)

func TestNHI(t *testing.T) {
	tn := startNode(t, "")
	tokens := tn.seed("planner", "worker", "helper")
	c := tn.clients(t, tn.config(tn.GRPCAddr().String())).NHI

	a, err := c.ResolveToken(bg, tokens["planner"])
	if err != nil || a.ID != "planner" || a.Status != client.AgentActive || a.Type != client.AgentService || a.OwnerID != "alice" {
		t.Fatalf("resolve: %+v %v", a, err)
	}
	// Change one character inside the signature (not the last, whose low
	// bits base64 may ignore).
	b := []byte(tokens["planner"])
	if b[len(b)-10] == 'A' {
		b[len(b)-10] = 'B'
	} else {
		b[len(b)-10] = 'A'
	}
	forged := string(b)
	if _, err := c.ResolveToken(bg, forged); !client.IsSecurityCritical(err) || client.IsRetryable(err) {
		t.Fatalf("forged token: %v", err)
	} else if strings.Contains(err.Error(), forged) {
		t.Fatalf("the token is in the error: %v", err)
	}
	if ok, err := c.IsRegistered(bg, "planner"); err != nil || !ok {
		t.Fatalf("registered: %v %v", ok, err)
	}
	if ok, err := c.IsRegistered(bg, "nobody"); err != nil || ok {
		t.Fatalf("not registered: %v %v", ok, err)
	}
	if revoked, err := c.IsRevoked(bg, "nobody"); !errors.Is(err, client.ErrNotFound) || !revoked {
		t.Fatalf("an unknown agent is an error, and never 'not revoked': %v %v", revoked, err)
	}

	reg, err := c.RegisterAgent(bg, client.Agent{ID: "new-bot", Name: "New", Type: client.AgentAssistant, OwnerID: "bob",
		Attributes: map[string]string{"tier": "gold"}})
	if err != nil || reg.ID != "new-bot" || reg.Status != client.AgentActive || reg.CreatedAt.IsZero() || reg.Attributes["tier"] != "gold" {
		t.Fatalf("register: %+v %v", reg, err)
	}
	if _, err := c.RegisterAgent(bg, client.Agent{ID: "new-bot", Type: client.AgentAssistant, OwnerID: "bob"}); !errors.Is(err, client.ErrAlreadyExists) {
		t.Fatalf("register twice: %v", err)
	}
	if _, err := c.RegisterAgent(bg, client.Agent{ID: "typeless", OwnerID: "bob"}); !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("register without a type: %v", err)
	}

	// Sign and verify with the node's keys of the agent.
	sig, err := c.Sign(bg, "planner", []byte("attest sandbox-7"))
	if err != nil || len(sig.Ed25519) != 64 || len(sig.MLDSA65) == 0 {
		t.Fatalf("sign: %v", err)
	}
	if v, err := c.Verify(bg, "planner", []byte("attest sandbox-7"), sig); err != nil || !v.Valid {
		t.Fatalf("verify: %+v %v", v, err)
	}
	if v, err := c.Verify(bg, "planner", []byte("attest sandbox-8"), sig); err != nil || v.Valid || v.Reason != "INVALID_SIGNATURE" {
		t.Fatalf("verify other data: %+v %v", v, err)
	}
	keys, err := c.GetPublicKeys(bg, "planner")
	if err != nil || keys.AgentID != "planner" || keys.Version != 1 || len(keys.Ed25519) != 32 || len(keys.MLKEM768) != 1184 {
		t.Fatalf("keys: %+v %v", keys, err)
	}

	// A chain planner → worker → helper, built by the agents themselves.
	planner, worker := agentNHI(t, tn, tokens["planner"]), agentNHI(t, tn, tokens["worker"])
	root, err := planner.CreateDelegation(bg, &nhiv1.CreateDelegationRequest{DelegateeId: "worker", Permissions: []string{"vault:read", "memory:read"}})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := worker.CreateDelegation(bg, &nhiv1.CreateDelegationRequest{DelegateeId: "helper", Permissions: []string{"vault:read"},
		ParentId: root.GetDelegation().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	chain, err := c.GetDelegationChain(bg, leaf.GetDelegation().GetId())
	if err != nil || chain.Root.ID != "planner" || len(chain.Delegations) != 2 || chain.Delegations[1].Delegatee.ID != "helper" || len(chain.Encoded) == 0 {
		t.Fatalf("chain: %+v %v", chain, err)
	}
	v, err := c.VerifyDelegation(bg, leaf.GetDelegation().GetId())
	if err != nil || !v.Valid || len(v.Chain.Delegations) != 2 {
		t.Fatalf("verify chain: %+v %v", v, err)
	}
	if v, err := c.VerifyDelegationChain(bg, chain); err != nil || !v.Valid {
		t.Fatalf("verify encoded chain: %+v %v", v, err)
	}
	if _, err := c.VerifyDelegationChain(bg, client.DelegationChain{}); !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("no encoding: %v", err)
	}

	// The client's own depth limit is stricter than the node's.
	shallow := tn.config(tn.GRPCAddr().String())
	shallow.NHI.DelegationChainMaxDepth = 1
	v, err = tn.clients(t, shallow).NHI.VerifyDelegation(bg, leaf.GetDelegation().GetId())
	if err != nil || v.Valid || v.Reason != "CHAIN_TOO_DEEP" {
		t.Fatalf("two links, max depth one: %+v %v", v, err)
	}

	if _, err := planner.RevokeDelegation(bg, &nhiv1.RevokeDelegationRequest{DelegationId: root.GetDelegation().GetId()}); err != nil {
		t.Fatal(err)
	}
	if v, err := c.VerifyDelegation(bg, leaf.GetDelegation().GetId()); err != nil || v.Valid || v.Reason != "DELEGATION_REVOKED" {
		t.Fatalf("revoked above: %+v %v", v, err)
	}
}

// GetAgent answers from the cache for cache_agent_ttl_seconds — which is
// why access decisions ask IsRevoked, which never does.
func TestNHIAgentCache(t *testing.T) {
	tn := startNode(t, "")
	tn.seed("planner")
	cached := tn.clients(t, tn.config(tn.GRPCAddr().String())).NHI
	uncachedCfg := tn.config(tn.GRPCAddr().String())
	uncachedCfg.NHI.CacheEnabled = new(bool)
	uncached := tn.clients(t, uncachedCfg).NHI

	for _, c := range []*client.NHIClient{cached, uncached} {
		if a, err := c.GetAgent(bg, "planner"); err != nil || a.Status != client.AgentActive {
			t.Fatalf("get: %+v %v", a, err)
		}
	}
	if _, err := nhiv1.NewNhiServiceClient(tn.operator()).UpdateAgent(bg, &nhiv1.UpdateAgentRequest{
		Agent:      &nhiv1.AgentIdentity{Id: "planner", Status: nhiv1.AgentStatus_AGENT_STATUS_SUSPENDED},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"status"}}}); err != nil {
		t.Fatal(err)
	}
	attempts := cached.Stats().Attempts
	if a, err := cached.GetAgent(bg, "planner"); err != nil || a.Status != client.AgentActive || cached.Stats().Attempts != attempts {
		t.Fatalf("cached get: %+v %v", a, err)
	}
	if a, err := uncached.GetAgent(bg, "planner"); err != nil || a.Status != client.AgentSuspended {
		t.Fatalf("uncached get: %+v %v", a, err)
	}
	if revoked, err := cached.IsRevoked(bg, "planner"); err != nil || revoked {
		t.Fatalf("suspended is not revoked: %v %v", revoked, err)
	}
	// The cache hands out copies.
	a, _ := cached.GetAgent(bg, "planner")
	a.Attributes = map[string]string{"x": "y"}
	if b, _ := cached.GetAgent(bg, "planner"); b.Attributes["x"] == "y" {
		t.Fatal("the cache shares its value")
	}
}

func agentNHI(t *testing.T, tn *testNode, token string) nhiv1.NhiServiceClient {
	t.Helper()
	return nhiv1.NewNhiServiceClient(tn.agentConn(token))
}
