package client_test

import (
	"errors"
	"testing"
	"time"

	vaultv1 "github.com/creto-systems/creto/api/creto/vault/v1"
	"github.com/creto-systems/creto/client"
)

var apiKey = client.SecretRef{Path: "agents/planner/api-keys", Name: "OPENAI_API_KEY"}

func createKey(t *testing.T, c *client.VaultClient) {
	t.Helper()
	if _, err := c.CreateSecret(bg, client.CreateSecretRequest{Requester: "planner", Ref: apiKey, Value: client.NewSecretValue([]byte("sk-live-123")),
		Metadata: client.SecretMetadata{Type: client.APIKey, Labels: map[string]string{"team": "ml"}}}); err != nil {
		t.Fatal(err)
	}
}

// Seed §11.2's vault contract: delegated secrets are bound to the sandbox
// and memory-only.
func TestContractVaultDelegation(t *testing.T) {
	tn := startNode(t, "")
	c := tn.clients(t, tn.config(tn.GRPCAddr().String())).Vault
	createKey(t, c)
	resp, err := c.GetDelegatedSecrets(bg, client.GetDelegatedSecretsRequest{Requester: "planner", SandboxID: "sandbox-42",
		Refs: []client.SecretRef{apiKey}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Destroy()
	s := resp.Secrets[0]
	if !s.Restrictions.MemoryOnly || s.Restrictions.BoundSandbox != "sandbox-42" || string(s.Value.Expose()) != "sk-live-123" || resp.DelegationID == "" {
		t.Fatalf("delegated secret: %+v", resp)
	}
}

func TestVaultDelegation(t *testing.T) {
	tn := startNode(t, "")
	c := tn.clients(t, tn.config(tn.GRPCAddr().String())).Vault
	createKey(t, c)

	s, err := c.GetSecret(bg, "planner", apiKey, "")
	if err != nil || string(s.Value.Expose()) != "sk-live-123" || s.Version != "1" || s.Metadata.Type != client.APIKey ||
		s.Metadata.Labels["team"] != "ml" || s.FromCache {
		t.Fatalf("get: %+v %v", s, err)
	}
	db := client.SecretRef{Path: "agents/planner/db", Name: "PASSWORD"}
	if _, err := c.CreateSecret(bg, client.CreateSecretRequest{Requester: "planner", Ref: db, Value: client.NewSecretValue([]byte("hunter2")),
		Metadata: client.SecretMetadata{Type: client.Password}}); err != nil {
		t.Fatal(err)
	}
	ss, err := c.GetSecrets(bg, "planner", []client.SecretRef{db, apiKey})
	if err != nil || len(ss) != 2 || string(ss[0].Value.Expose()) != "hunter2" || ss[1].Ref != apiKey {
		t.Fatalf("get secrets: %+v %v", ss, err)
	}
	if _, err := c.GetSecrets(bg, "planner", []client.SecretRef{db, db}); !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("a secret listed twice: %v", err)
	}

	// require_memory_only: the delegation is memory-only though not asked.
	d, err := c.CreateDelegation(bg, client.CreateDelegationRequest{Delegator: "planner", Delegatee: "runtime",
		Secrets: []client.SecretRef{apiKey}, TTL: 15 * time.Minute, Restrictions: client.DelegationRestrictions{SingleUse: true}})
	if err != nil || !d.Restrictions.MemoryOnly || d.Restrictions.MaxUses != 1 || d.Status != client.DelegationActive || d.Delegatee != "runtime" {
		t.Fatalf("delegation: %+v %v", d, err)
	}
	fetch := client.GetDelegatedSecretsRequest{Requester: "runtime", SandboxID: "sandbox-7", Refs: []client.SecretRef{apiKey}, DelegationID: d.ID}
	got, err := c.GetDelegatedSecrets(bg, fetch)
	if err != nil || string(got.Secrets[0].Value.Expose()) != "sk-live-123" || got.Secrets[0].Restrictions.BoundSandbox != "sandbox-7" {
		t.Fatalf("fetch: %+v %v", got, err)
	}
	got.Destroy()
	if _, err := c.GetDelegatedSecrets(bg, fetch); !errors.Is(err, client.ErrDelegationExhausted) {
		t.Fatalf("second fetch of a single-use delegation: %v", err)
	}

	d2, err := c.CreateDelegation(bg, client.CreateDelegationRequest{Delegator: "planner", Delegatee: "runtime", Secrets: []client.SecretRef{apiKey}})
	if err != nil || d2.ExpiresAt.Sub(d2.CreatedAt) != time.Hour {
		t.Fatalf("default TTL of an hour: %+v %v", d2, err)
	}
	if err := c.RevokeDelegation(bg, "planner", d2.ID); err != nil {
		t.Fatal(err)
	}
	fetch.DelegationID = d2.ID
	if _, err := c.GetDelegatedSecrets(bg, fetch); !errors.Is(err, client.ErrDelegationRevoked) || !client.IsSecurityCritical(err) {
		t.Fatalf("revoked delegation: %v", err)
	}

	// TTLs past max_delegation_ttl_seconds never leave the client.
	attempts := c.Stats().Attempts
	for _, ttl := range []time.Duration{25 * time.Hour, -time.Second} {
		if _, err := c.CreateDelegation(bg, client.CreateDelegationRequest{Delegator: "planner", Delegatee: "runtime",
			Secrets: []client.SecretRef{apiKey}, TTL: ttl}); !errors.Is(err, client.ErrInvalidRequest) {
			t.Fatalf("TTL %v: %v", ttl, err)
		}
	}
	if c.Stats().Attempts != attempts {
		t.Fatal("an invalid TTL was sent")
	}
	if _, err := c.GetSecret(bg, "runtime", apiKey, ""); !errors.Is(err, client.ErrDenied) {
		t.Fatalf("another agent's secret without a grant: %v", err)
	}
}

// A sealed vault is unavailable: its calls fail as ErrSealed, count
// against its circuit, its health is Unhealthy — and reads fall back to
// the secrets read before it was sealed.
func TestVaultSealed(t *testing.T) {
	tn := startNode(t, "")
	cfg := tn.config(tn.GRPCAddr().String())
	cfg.Vault.MaxRetries, cfg.Vault.FailureThreshold = new(int), 2
	clients := tn.clients(t, cfg)
	c := clients.Vault
	createKey(t, c)
	if _, err := c.GetSecret(bg, "planner", apiKey, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := vaultv1.NewVaultAdminServiceClient(tn.operator()).Seal(bg, &vaultv1.SealRequest{}); err != nil {
		t.Fatal(err)
	}
	if h := c.Health(bg); h.Status != client.Unhealthy || h.Reason != "the node reports NOT_SERVING" {
		t.Fatalf("sealed health: %+v", h)
	}
	if r := clients.Health(bg); r.Status != client.Unhealthy || r.Reason != "critical service unavailable: vault" {
		t.Fatalf("a sealed vault makes the platform unhealthy: %+v", r)
	}
	ref := client.SecretRef{Path: "agents/planner/db", Name: "PASSWORD"}
	if _, err := c.GetSecret(bg, "planner", ref, ""); !errors.Is(err, client.ErrSealed) || !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("sealed: %v", err)
	}
	s, err := c.GetSecret(bg, "planner", apiKey, "")
	if err != nil || !s.FromCache || string(s.Value.Expose()) != "sk-live-123" {
		t.Fatalf("cached while sealed: %+v %v", s, err)
	}
	if st := c.Stats(); st.Breaker != "open" {
		t.Fatalf("two sealed answers, threshold two: %+v", st)
	}
	if s, err := c.GetSecret(bg, "planner", apiKey, ""); err != nil || !s.FromCache {
		t.Fatalf("cached while the circuit is open: %+v %v", s, err)
	}
}
