package audit

import (
	"context"
	"errors"
	"fmt"
)

// Access is what a caller wants to do with the records of an identity.
type Access uint8

// Access kinds.
const (
	// AccessWrite is logging a record whose Who is the identity.
	AccessWrite Access = iota + 1
	// AccessRead is reading its records (Query, inclusion proofs).
	AccessRead
)

// String returns "write" or "read".
func (a Access) String() string {
	if a == AccessWrite {
		return "write"
	}
	return "read"
}

// Authorizer decides whether a caller may log or read records of another
// identity. The service consults it only when the caller and the
// identity differ: an agent always logs and reads its own records. An
// auditor role, or a platform service that logs on behalf of agents, is a
// grant here.
type Authorizer interface {
	// Authorize returns nil to allow caller the access to who's records.
	// who is "" for a query over every identity. Any error denies: the
	// service reports ErrAccessDenied keeping the cause, so an authorizer
	// that cannot decide fails closed.
	Authorize(ctx context.Context, caller, who string, access Access) error
}

// SelfOnly is the default Authorizer: no caller may log or read another
// identity's records.
type SelfOnly struct{}

// Authorize denies every cross-identity access.
func (SelfOnly) Authorize(context.Context, string, string, Access) error { return ErrAccessDenied }

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(ctx context.Context, caller, who string, access Access) error

// Authorize calls f.
func (f AuthorizerFunc) Authorize(ctx context.Context, caller, who string, access Access) error {
	return f(ctx, caller, who, access)
}

// SignatureVerifier checks a record's Signature: that who signed msg.
// nhi.Service implements it with each agent's hybrid key.
type SignatureVerifier interface {
	Verify(ctx context.Context, who string, msg, sig []byte) error
}

// authorize checks caller's access to who's records.
func (s *Service) authorize(ctx context.Context, caller, who string, access Access) error {
	if err := checkString("caller", caller, MaxIDLen, true, true); err != nil {
		return err
	}
	if caller == who {
		return nil
	}
	err := s.cfg.Authorizer.Authorize(ctx, caller, who, access)
	target := quote(who)
	if who == "" {
		target = "every identity"
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrAccessDenied):
		return fmt.Errorf("%w: %s may not %s the records of %s", err, quote(caller), access, target)
	default:
		return fmt.Errorf("%w: %s may not %s the records of %s: %w", ErrAccessDenied, quote(caller), access, target, err)
	}
}
