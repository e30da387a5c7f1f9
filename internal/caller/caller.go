// Package caller carries the authenticated caller of a request through a
// context.Context, from the node's authentication interceptor to the
// services' gRPC adapters, which pass its id to the services as the
// "caller" argument every service call takes.
package caller

import (
	"context"
	"errors"
	"fmt"
)

// Kind says how a caller proved who it is.
type Kind uint8

// Caller kinds.
const (
	// Operator is a human or a trusted workload (an agent platform's
	// policy enforcement point) identified by a client certificate the
	// node's CA signed.
	Operator Kind = iota + 1
	// Agent is an agent identified by an NHI token.
	Agent
	// Node is another node of the cluster, identified by a node
	// certificate (spiffe://…/node/<id>) the node's CA signed. Nodes call
	// each other to join the cluster and to reach its leader; they act
	// only as themselves.
	Node
)

// String returns the Cedar entity type the node's meta-policies see the
// caller as: "Operator", "Agent" or "Node".
func (k Kind) String() string {
	switch k {
	case Operator:
		return "Operator"
	case Agent:
		return "Agent"
	case Node:
		return "Node"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Identity is an authenticated caller.
type Identity struct {
	Kind Kind
	// ID is the certificate's identity (its URI SAN's last path element or
	// its common name) for an operator, the agent id for an agent, the
	// node id for a node.
	ID string
}

// String returns the identity as a Cedar entity reference,
// `Operator::"ci"` or `Agent::"planner"`, the form logs and audit records
// name callers by.
func (id Identity) String() string { return fmt.Sprintf("%s::%q", id.Kind, id.ID) }

type key struct{}

// With returns a context carrying id.
func With(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// From returns the caller ctx carries. ok is false for a context no
// authentication interceptor has seen, which adapters must treat as
// unauthenticated.
func From(ctx context.Context) (id Identity, ok bool) {
	id, ok = ctx.Value(key{}).(Identity)
	return id, ok
}

// ErrNotAllowed is returned by Acting when an agent names another agent
// as the identity it acts as, or a node names any agent.
var ErrNotAllowed = errors.New("an agent may act only as itself")

// Acting returns the agent id a service should treat as the caller of a
// request that names agent as its requester. An agent caller always acts
// as itself: naming another agent is ErrNotAllowed, and an empty name
// means itself. An operator — the agent platform's trusted workload —
// acts as the agent it names, which must then be non-empty.
func Acting(ctx context.Context, agent string) (string, error) {
	who, ok := From(ctx)
	switch {
	case !ok:
		return "", ErrUnauthenticated
	case who.Kind == Agent && (agent == "" || agent == who.ID):
		return who.ID, nil
	case who.Kind == Agent:
		return "", fmt.Errorf("%w: %s named %q", ErrNotAllowed, who, agent)
	case who.Kind != Operator:
		return "", fmt.Errorf("%w: %s acts for no agent", ErrNotAllowed, who)
	case agent == "":
		return "", ErrNoAgent
	}
	return agent, nil
}

// Errors of Acting.
var (
	// ErrUnauthenticated: the context carries no caller.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrNoAgent: an operator's request names no agent to act as.
	ErrNoAgent = errors.New("the request names no agent to act as")
)
