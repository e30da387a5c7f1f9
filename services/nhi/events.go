package nhi

import (
	"context"
	"time"
)

// EventKind names a change to the identity registry. The names are what
// the audit log records as the event ("what").
type EventKind string

// Event kinds, one per kind of change.
const (
	EventAgentRegistered   EventKind = "nhi.agent_registered"
	EventAgentUpdated      EventKind = "nhi.agent_updated"
	EventAgentRevoked      EventKind = "nhi.agent_revoked"
	EventKeysRotated       EventKind = "nhi.keys_rotated"
	EventNodeKeyRotated    EventKind = "nhi.node_key_rotated"
	EventTokenIssued       EventKind = "nhi.token_issued"
	EventTokenRevoked      EventKind = "nhi.token_revoked"
	EventDelegationCreated EventKind = "nhi.delegation_created"
	EventDelegationRevoked EventKind = "nhi.delegation_revoked"
)

// Event describes one change after it is committed (Config.Events). It
// never carries a token, a signature or key material: a token is named by
// its id, which proves nothing to anyone who holds it, and keys by their
// version. Fields that do not apply to the kind are zero.
type Event struct {
	Kind EventKind
	// At is when the change was made, on the service's clock.
	At time.Time
	// AgentID is the agent changed, the agent a token is for, or a
	// delegation's delegator. Empty for a node key rotation.
	AgentID string
	// OwnerID and Type describe a registered agent.
	OwnerID string
	Type    AgentType
	// Status is an updated agent's status.
	Status AgentStatus
	// KeyVersion is the new key version of a rotation.
	KeyVersion uint32
	// TokenID is the id of an issued or revoked token.
	TokenID string
	// DelegationID, DelegateeID and Permissions describe a delegation.
	DelegationID string
	DelegateeID  string
	Permissions  []string
	// ExpiresAt is when an issued token or a created delegation expires.
	ExpiresAt time.Time
	// Revoked is how many links a delegation revocation revoked (the link
	// and those below it).
	Revoked int
}

// EventHandler receives the service's events (Config.Events).
type EventHandler interface {
	// HandleEvent is called after each committed change, on the caller's
	// goroutine and often with the service's write lock held: it must
	// not block (the audit Logger's Emit never does).
	HandleEvent(ctx context.Context, e Event)
}

// EventHandlerFunc adapts a function to EventHandler.
type EventHandlerFunc func(ctx context.Context, e Event)

// HandleEvent calls f.
func (f EventHandlerFunc) HandleEvent(ctx context.Context, e Event) { f(ctx, e) }

// emit tells Config.Events of a committed change.
func (s *Service) emit(ctx context.Context, e Event) {
	if s.cfg.Events == nil {
		return
	}
	e.At = s.now().UTC()
	s.cfg.Events.HandleEvent(ctx, e)
}
