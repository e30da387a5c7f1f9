package nhi_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/services/nhi"
)

// Register two agents, authenticate one with a token, let an agent of
// alice's delegate to it, and decide a request carrying the chain with a
// Cedar policy that reads context.delegation.
func Example() {
	ctx := context.Background()
	svc, done := openExample(ctx)
	defer done()

	// Alice's planning assistant, and a mail agent run by IT.
	for _, a := range []nhi.AgentIdentity{
		{ID: "planner", Name: "Trip planner", Type: nhi.AgentTypeAssistant, OwnerID: "alice"},
		{ID: "mailer", Name: "Outbound mail", Type: nhi.AgentTypeService, OwnerID: "it-ops"},
	} {
		if _, err := svc.Register(ctx, a); err != nil {
			panic(err)
		}
	}

	// The mailer authenticates with a token.
	token, err := svc.IssueToken(ctx, "mailer", 15*time.Minute)
	if err != nil {
		panic(err)
	}
	caller, err := svc.ResolveToken(ctx, token)
	if err != nil {
		panic(err)
	}
	fmt.Println("token resolves to:", caller.ID)

	// Alice's planner delegates sending email to the mailer for an hour.
	d, err := svc.CreateDelegation(ctx, "planner", "mailer", []string{"send_email"}, time.Time{}, nil)
	if err != nil {
		panic(err)
	}
	chain, err := svc.VerifyDelegation(ctx, d.ID())
	if err != nil {
		panic(err)
	}
	refs, err := chain.EntityRefs() // [Agent::"planner"]
	if err != nil {
		panic(err)
	}

	// The engine sees agents through NHI; the policy follows the chain
	// back to its origin and reads the origin agent's owner and status.
	e := engine.New(engine.WithEntities(svc.Entities(nil)))
	defer e.Close()
	_, err = e.CreatePolicy(ctx, "mail-for-alice", `
		permit (principal is Agent, action == Action::"send_email", resource)
		when {
			principal.status == "active" &&
			context has delegation &&
			context.delegation.origin.owner == User::"alice" &&
			context.delegation.origin.status == "active"
		};`)
	if err != nil {
		panic(err)
	}
	req := engine.Request{
		Principal:  engine.Principal{Type: "Agent", ID: caller.ID},
		Delegation: refs,
		Action:     engine.EntityRef{ID: "send_email"},
		Resource:   engine.EntityRef{Type: "Mailbox", ID: "outbound"},
	}
	dec, _ := e.Check(ctx, req)
	fmt.Println("mailer for alice's planner:", dec.Kind)

	// Revoking the planner breaks the chain and is visible to the engine
	// at once.
	if err := svc.Revoke(ctx, "planner"); err != nil {
		panic(err)
	}
	_, err = svc.VerifyDelegation(ctx, d.ID())
	fmt.Println("chain revoked:", errors.Is(err, nhi.ErrDelegationRevoked))
	dec, _ = e.Check(ctx, req)
	fmt.Println("with the old chain:", dec.Kind)

	// Output:
	// token resolves to: mailer
	// mailer for alice's planner: allow
	// chain revoked: true
	// with the old chain: deny
}

// Agents sign with their hybrid key; signatures keep verifying across a
// key rotation for the overlap the rotation grants.
func ExampleService_Sign() {
	ctx := context.Background()
	svc, done := openExample(ctx)
	defer done()
	if _, err := svc.Register(ctx, nhi.AgentIdentity{ID: "runner", Type: nhi.AgentTypeService, OwnerID: "ci"}); err != nil {
		panic(err)
	}

	msg := []byte("sandbox 7 runs image sha256:9f86d0…")
	sig, err := svc.Sign(ctx, "runner", msg)
	if err != nil {
		panic(err)
	}
	keys, err := svc.RotateKeys(ctx, "runner", 24*time.Hour)
	if err != nil {
		panic(err)
	}
	fmt.Println("key version:", keys.Version, keys.Signing.Algorithm(), keys.KEM.Algorithm())
	fmt.Println("old signature:", svc.Verify(ctx, "runner", msg, sig))
	fmt.Println("other message:", errors.Is(svc.Verify(ctx, "runner", []byte("other"), sig), nhi.ErrInvalidSignature))
	// Output:
	// key version: 2 ed25519+ml-dsa-65 x-wing
	// old signature: <nil>
	// other message: true
}

// A token can be revoked on its own, before it expires.
func ExampleService_RevokeToken() {
	ctx := context.Background()
	svc, done := openExample(ctx)
	defer done()
	if _, err := svc.Register(ctx, nhi.AgentIdentity{ID: "scraper", Type: nhi.AgentTypeAutonomous, OwnerID: "bob"}); err != nil {
		panic(err)
	}
	token, err := svc.IssueToken(ctx, "scraper", 0) // Config.DefaultTokenTTL
	if err != nil {
		panic(err)
	}
	if err := svc.RevokeToken(ctx, token); err != nil {
		panic(err)
	}
	_, err = svc.ResolveToken(ctx, token)
	fmt.Println(errors.Is(err, nhi.ErrTokenRevoked))
	// Output: true
}

// openExample opens a service in a fresh directory; done closes it and
// removes the directory.
func openExample(ctx context.Context) (svc *nhi.Service, done func()) {
	dir, err := os.MkdirTemp("", "nhi-example")
	if err != nil {
		panic(err)
	}
	svc, err = nhi.Open(ctx, dir, nhi.Config{})
	if err != nil {
		panic(err)
	}
	return svc, func() {
		svc.Close()
		os.RemoveAll(dir)
	}
}
