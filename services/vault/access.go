package vault

import (
	"context"
	"errors"
)

// Access is what a caller wants to do with a secret.
type Access uint8

// Access kinds.
const (
	// AccessRead reads a value: GetSecret, GetSecrets, and
	// GetDelegatedSecrets for one's own secrets.
	AccessRead Access = iota + 1
	// AccessWrite creates, updates, rotates, deletes, undeletes and
	// destroys.
	AccessWrite
	// AccessMetadata reads metadata, versions, listings and rotation
	// schedules: never a value, and never a use of a delegation.
	AccessMetadata
	// AccessDelegate creates delegations over the secret.
	AccessDelegate
	// AccessAudit reads the secret's access log.
	AccessAudit
)

var accessNames = [...]string{"", "read", "write", "read the metadata of", "delegate", "read the access log of"}

// String returns the access as a verb phrase ("read", "write", …).
func (a Access) String() string {
	if a > 0 && int(a) < len(accessNames) {
		return accessNames[a]
	}
	return "access"
}

// AccessRequest is one decision an Authorizer makes.
type AccessRequest struct {
	// Agent asks for the access; it is not the owner.
	Agent string
	Ref   SecretRef
	// Owner is the secret's owner; for a secret that does not exist yet,
	// the agent whose namespace its path is in, or "".
	Owner  string
	Access Access
}

// Authorizer decides accesses to secrets by agents other than their
// owner. The owner of a secret is the agent whose namespace
// ("agents/<id>/…") it lives in, or else the agent that created it; the
// owner has every access, and every other agent has none unless the
// Authorizer grants it. An implementation backed by Cedar policies (the
// engine) or NHI delegation chains grants a platform agent write access
// to provision agents' secrets, an auditor AccessAudit, and so on.
type Authorizer interface {
	// Authorize returns nil to allow the access. Any error denies it: the
	// vault reports *AccessDeniedError, keeping the cause, so an
	// authorizer that cannot decide fails closed.
	Authorize(ctx context.Context, req AccessRequest) error
}

// OwnerOnly is the default Authorizer: only owners access their secrets.
type OwnerOnly struct{}

// Authorize denies every access by a non-owner.
func (OwnerOnly) Authorize(context.Context, AccessRequest) error { return ErrAccessDenied }

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(ctx context.Context, req AccessRequest) error

// Authorize calls f.
func (f AuthorizerFunc) Authorize(ctx context.Context, req AccessRequest) error { return f(ctx, req) }

// ownerOf returns the owner of the secret m describes, or, if it does not
// exist (m nil), of its namespace.
func ownerOf(ref SecretRef, m *metaRecord) string {
	if m != nil {
		return m.owner
	}
	return namespaceOwner(ref.Path)
}

// authorize checks agent's access to the secret m describes (nil: not
// there). Owners pass without asking the Authorizer.
func (s *Service) authorize(ctx context.Context, agent string, ref SecretRef, m *metaRecord, access Access) error {
	owner := ownerOf(ref, m)
	if agent == owner {
		return nil
	}
	err := s.cfg.Authorizer.Authorize(ctx, AccessRequest{Agent: agent, Ref: ref, Owner: owner, Access: access})
	if err == nil {
		return nil
	}
	reason := "not the owner"
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		reason = "the authorizer did not answer"
	}
	cause := err
	if err == ErrAccessDenied {
		cause = nil
	}
	return &AccessDeniedError{Agent: agent, Ref: ref, Access: access, Reason: reason, Cause: cause}
}
