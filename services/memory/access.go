package memory

import (
	"context"
	"errors"
	"fmt"
)

// Access is what a caller wants to do with an agent's memories.
type Access uint8

// Access kinds. Write covers Store and Delete.
const (
	AccessRead Access = iota + 1
	AccessWrite
)

// String returns "read" or "write".
func (a Access) String() string {
	if a == AccessWrite {
		return "write"
	}
	return "read"
}

// Authorizer decides whether one agent may access another's memories. The
// service consults it only when the caller and the owner differ: an agent
// always has its own memories. An implementation backed by NHI delegations
// grants an approver or a supervising agent read access to the agents it
// oversees.
type Authorizer interface {
	// Authorize returns nil to allow caller the access to owner's
	// memories. Any error denies it: the service reports ErrAccessDenied,
	// keeping the cause, so an authorizer that cannot decide fails closed.
	Authorize(ctx context.Context, caller, owner string, access Access) error
}

// SelfOnly is the default Authorizer: no agent may access another's
// memories.
type SelfOnly struct{}

// Authorize denies every cross-agent access.
func (SelfOnly) Authorize(context.Context, string, string, Access) error {
	return ErrAccessDenied
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(ctx context.Context, caller, owner string, access Access) error

// Authorize calls f.
func (f AuthorizerFunc) Authorize(ctx context.Context, caller, owner string, access Access) error {
	return f(ctx, caller, owner, access)
}

// authorize checks caller's access to owner's memories.
func (s *Service) authorize(ctx context.Context, caller, owner string, access Access) error {
	if err := validateAgent("caller", caller); err != nil {
		return err
	}
	if caller == owner {
		return nil
	}
	err := s.cfg.Authorizer.Authorize(ctx, caller, owner, access)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrAccessDenied):
		return fmt.Errorf("%w: %s may not %s the memories of %s", err, quote(caller), access, quote(owner))
	default:
		return fmt.Errorf("%w: %s may not %s the memories of %s: %w", ErrAccessDenied, quote(caller), access, quote(owner), err)
	}
}
