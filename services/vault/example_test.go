package vault_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/vault"
)

// Operators unseal the vault with two of three shares; an agent stores an
// API key and lets a sandboxed worker fetch it exactly once; every access
// is in the log; sealing shuts everything.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "vault-example")
	defer os.RemoveAll(dir)
	store, err := kv.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	v, err := vault.Open(ctx, store, vault.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	shares, _ := v.InitShamir(ctx, 2, 3) // returned once: one per operator
	v.SubmitUnsealShares(ctx, shares[0])
	st, _ := v.SubmitUnsealShares(ctx, shares[2])
	fmt.Println("sealed:", st.Sealed)

	key := vault.SecretRef{Path: "agents/planner/api-keys", Name: "OPENAI_API_KEY"}
	_, err = v.CreateSecret(ctx, "planner", vault.CreateSecretRequest{
		Ref: key, Value: vault.NewSecretValue([]byte("sk-live-123")), Metadata: vault.SecretMetadata{Type: vault.TypeAPIKey},
	})
	if err != nil {
		log.Fatal(err)
	}
	_, err = v.CreateDelegation(ctx, "planner", vault.CreateDelegationRequest{
		Delegatee: "worker", Secrets: []vault.SecretRef{key}, TTL: 15 * time.Minute,
		Restrictions: vault.DelegationRestrictions{SingleUse: true},
	})
	if err != nil {
		log.Fatal(err)
	}

	fetch := vault.GetDelegatedSecretsRequest{SandboxID: "sandbox-7", Refs: []vault.SecretRef{key}}
	resp, err := v.GetDelegatedSecrets(ctx, "worker", fetch)
	if err != nil {
		log.Fatal(err)
	}
	s := resp.Secrets[0]
	fmt.Printf("%s: %v (%d bytes), sandbox %s, memory only %v\n", s.Ref.Name, s.Value, s.Value.Len(), s.Restrictions.BoundSandbox, s.Restrictions.MemoryOnly)
	resp.Destroy() // once injected

	_, err = v.GetDelegatedSecrets(ctx, "worker", fetch)
	fmt.Println("second fetch exhausted:", errors.Is(err, vault.ErrDelegationExhausted))
	_, err = v.GetSecret(ctx, "worker", vault.GetSecretRequest{Ref: key})
	fmt.Println("direct read denied:", errors.Is(err, vault.ErrAccessDenied))

	events, _ := v.GetAccessLog(ctx, "planner", vault.GetAccessLogRequest{Ref: key})
	for _, ev := range events.Events {
		line := fmt.Sprint(ev.Agent, " ", ev.Operation, " ", ev.Outcome)
		if ev.Reason != "" {
			line += ": " + ev.Reason
		}
		fmt.Println(line)
	}

	v.Seal(ctx)
	_, err = v.GetSecret(ctx, "planner", vault.GetSecretRequest{Ref: key})
	fmt.Println("sealed read:", errors.Is(err, vault.ErrSealed))
	// Output:
	// sealed: false
	// OPENAI_API_KEY: [REDACTED] (11 bytes), sandbox sandbox-7, memory only true
	// second fetch exhausted: true
	// direct read denied: true
	// planner create allowed
	// planner create_delegation allowed
	// worker delegated_get allowed
	// worker delegated_get failed: delegation_exhausted
	// worker get denied: access_denied
	// sealed read: true
}
