package engine_test

import (
	"context"
	"fmt"

	"github.com/creto-systems/creto/engine"
)

// A permit annotated with @oversight turns an Allow into RequiresOversight.
func Example() {
	ctx := context.Background()
	e := engine.New()
	defer e.Close()

	_, err := e.CreatePolicy(ctx, "", `
		@id("transfers")
		@oversight("two-person") @approvers("cfo, controller") @timeout("1h")
		permit(principal is Agent, action == Action::"transfer_funds", resource)
		when { context.amount > 10000 };`)
	if err != nil {
		panic(err)
	}

	d, err := e.Check(ctx, engine.Request{
		Principal: engine.Principal{Type: "Agent", ID: "ledger-bot"},
		Action:    engine.EntityRef{ID: "transfer_funds"},
		Resource:  engine.EntityRef{Type: "Account", ID: "ops"},
		Context:   []byte(`{"amount": 25000}`),
	})
	fmt.Println(d.Kind, d.PolicyID, d.Oversight.Approvers, err)
	// Output: requires_oversight transfers [cfo controller] <nil>
}

// A forbid's @reason becomes the Deny's reason.
func ExampleEngine_Check_deny() {
	ctx := context.Background()
	e := engine.New()
	defer e.Close()
	_, err := e.ApplyPolicies(ctx,
		engine.Change{Op: engine.OpCreate, ID: "tools", Text: `permit(principal in Team::"ops", action, resource);`},
		engine.Change{Op: engine.OpCreate, ID: "no-prod-deletes", Text: `
			@reason("deleting production data needs a human")
			forbid(principal, action == Action::"delete", resource in Env::"prod");`},
	)
	if err != nil {
		panic(err)
	}
	d, _ := e.Check(ctx, engine.Request{
		Principal: engine.Principal{Type: "Team", ID: "ops"},
		Action:    engine.EntityRef{ID: "delete"},
		Resource:  engine.EntityRef{Type: "Env", ID: "prod"},
	})
	fmt.Printf("%s by %s: %s\n", d.Kind, d.PolicyID, d.Reason)
	// Output: deny by no-prod-deletes: deleting production data needs a human
}

// The delegation chain is visible to policies as context.delegation.
func ExampleRequest_delegation() {
	ctx := context.Background()
	e := engine.New()
	defer e.Close()
	if _, err := e.CreatePolicy(ctx, "on-behalf-of-alice", `
		permit(principal is Agent, action == Action::"send_email", resource)
		when { context has delegation && context.delegation.origin == User::"alice" };`); err != nil {
		panic(err)
	}
	r := engine.Request{
		Principal:  engine.Principal{Type: "Agent", ID: "mailer"},
		Delegation: []engine.EntityRef{{Type: "User", ID: "alice"}, {Type: "Agent", ID: "planner"}},
		Action:     engine.EntityRef{ID: "send_email"},
		Resource:   engine.EntityRef{Type: "Mailbox", ID: "outbound"},
	}
	d, _ := e.Check(ctx, r)
	fmt.Println("for alice:", d.Kind)
	r.Delegation = nil
	d, _ = e.Check(ctx, r)
	fmt.Println("on its own:", d.Kind)
	// Output:
	// for alice: allow
	// on its own: deny
}
