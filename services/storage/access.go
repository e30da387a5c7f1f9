package storage

import (
	"context"
	"fmt"
	"slices"

	"github.com/creto-systems/creto/services/crypto"
)

// Identity is what storage needs from the identity service. *nhi.Service
// satisfies it; the interface keeps storage free of NHI's types.
type Identity interface {
	// KEMPublicKey returns the agent's current KEM public key and its
	// version. It fails for an agent that is unknown, revoked, suspended
	// or expired.
	KEMPublicKey(ctx context.Context, agentID string) (version uint32, key *crypto.PublicKey, err error)
	// UnwrapKey opens a key wrapped with crypto.HPKESeal (wrapAEAD, no
	// associated data) to the agent's KEM key of keyVersion, bound to
	// info. The private key stays inside the identity service.
	UnwrapKey(ctx context.Context, agentID string, keyVersion uint32, wrapped, info []byte) ([]byte, error)
	// DelegationGrant verifies the delegation chain ending at the link
	// delegationID and returns its root delegator, the principal it
	// empowers and the principal's permissions.
	DelegationGrant(ctx context.Context, delegationID string) (root, principal string, permissions []string, err error)
}

// Sealer protects the node secret presigned URLs are signed with and
// content hashes are keyed from. *nhi.FileSealer satisfies it; pass the
// node's sealer, the one NHI uses. It is called once, at Open.
type Sealer interface {
	// Seal encrypts plaintext, binding it to label.
	Seal(ctx context.Context, plaintext, label []byte) ([]byte, error)
	// Unseal reverses Seal; a tampered ciphertext or another label fails.
	Unseal(ctx context.Context, sealed, label []byte) ([]byte, error)
}

// authorize lets caller use owner's object ref with permission perm: the
// owner always may; anyone else needs a delegation chain, verified by the
// identity service now, whose root is the owner, whose principal is the
// caller and which grants perm. Anything else — including a delegation
// that cannot be verified — is *AccessDeniedError.
func (s *Service) authorize(ctx context.Context, caller Caller, owner string, ref StorageRef, perm string) error {
	if err := validateAgent("caller", caller.Agent); err != nil {
		return err
	}
	if caller.Agent == owner {
		return nil
	}
	deny := func(cause error) error {
		return &AccessDeniedError{Agent: caller.Agent, Ref: ref, Permission: perm, Cause: cause}
	}
	if caller.Delegation == "" {
		return deny(nil)
	}
	root, principal, perms, err := s.ids.DelegationGrant(ctx, caller.Delegation)
	switch {
	case err != nil:
		return deny(err)
	case principal != caller.Agent:
		return deny(fmt.Errorf("the delegation empowers %s, not the caller", quote(principal)))
	case root != owner:
		return deny(fmt.Errorf("the delegation comes from %s, not the owner", quote(root)))
	case !slices.Contains(perms, perm):
		return deny(fmt.Errorf("the delegation does not grant %s", perm))
	}
	return nil
}
