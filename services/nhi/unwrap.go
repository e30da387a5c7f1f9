package nhi

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/creto-systems/creto/services/crypto"
)

// Data encrypted for an agent is wrapped to its KEM key: a service seals a
// data key with crypto.HPKESeal to the key KEMPublicKey returns, keeps the
// sealed bytes and the key version with the data, and later asks UnwrapKey
// for the data key back. The agent's private KEM key never leaves this
// service. The suite is HPKE base mode with the agent's X-Wing key,
// HKDF-SHA256 and WrapAEAD, with no associated data; the info string binds
// the wrapped key to whatever the caller says it belongs to.

// WrapAEAD is the HPKE AEAD of keys wrapped for UnwrapKey.
const WrapAEAD = crypto.AES256GCM

// ErrUnwrapFailed: a wrapped key does not open under the agent's key
// version with the given info — it was tampered with, wrapped for another
// key, or bound to other info.
var ErrUnwrapFailed = errors.New("wrapped key does not open")

// KEMPublicKey returns the agent's current KEM (X-Wing) public key and its
// version, to wrap keys for the agent. The agent must be active and
// unexpired and the key inside its validity window, so nothing new is
// encrypted to an identity that could not read it back.
func (s *Service) KEMPublicKey(ctx context.Context, agentID string) (uint32, *crypto.PublicKey, error) {
	const op = "get kem public key"
	if err := s.enter(); err != nil {
		return 0, nil, opError(op, agentID, err)
	}
	defer s.life.RUnlock()
	nowMS := s.nowMS()
	ring, err := s.usableRing(ctx, agentID, nowMS)
	if err != nil {
		return 0, nil, opError(op, agentID, err)
	}
	cur := ring.current()
	if !cur.rec.validAt(nowMS) {
		return 0, nil, opError(op, agentID, detail(ErrExpired, "the current key version %d is outside its validity window; rotate the agent's keys", cur.rec.Version))
	}
	k, err := cur.kemKey()
	if err != nil {
		return 0, nil, opError(op, agentID, err)
	}
	return cur.rec.Version, k, nil
}

// UnwrapKey opens a key wrapped (crypto.HPKESeal with WrapAEAD, no
// associated data) to the agent's KEM key of keyVersion, with the same
// info, and returns it; clear it once used. Older key versions unwrap what
// was wrapped to them for as long as the agent lives, rotation or not.
// A revoked, suspended or expired agent unwraps nothing (ErrRevoked,
// ErrSuspended, ErrExpired): revocation deletes its private keys.
//
// Like Sign, UnwrapKey acts with the agent's key without asking who wants
// it: the calling service must already have decided that its own caller
// may read what the key protects.
func (s *Service) UnwrapKey(ctx context.Context, agentID string, keyVersion uint32, wrapped, info []byte) ([]byte, error) {
	const op = "unwrap key"
	if err := s.enter(); err != nil {
		return nil, opError(op, agentID, err)
	}
	defer s.life.RUnlock()
	ring, err := s.usableRing(ctx, agentID, s.nowMS())
	if err != nil {
		return nil, opError(op, agentID, err)
	}
	v := ring.version(keyVersion)
	if v == nil {
		return nil, opError(op, agentID, detail(ErrNotFound, "no key version %d", keyVersion))
	}
	k, err := s.unsealKEM(v)
	if err != nil {
		return nil, opError(op, agentID, err)
	}
	defer k.Destroy()
	key, err := crypto.HPKEOpen(k, WrapAEAD, info, nil, wrapped)
	if err != nil {
		return nil, opError(op, agentID, ErrUnwrapFailed, err)
	}
	return key, nil
}

// usableRing returns the keys of an agent that may act at nowMS.
func (s *Service) usableRing(ctx context.Context, agentID string, nowMS int64) (*keyRing, error) {
	a, ok := s.agent(agentID)
	if !ok {
		return nil, ErrNotFound
	}
	if err := a.usableAt(nowMS); err != nil {
		return nil, err
	}
	return s.agentRing(ctx, agentID)
}

// unsealKEM opens a version's private KEM key and checks it against the
// public key on record, so a swapped or corrupted blob cannot stand in.
func (s *Service) unsealKEM(v *keyVersion) (*crypto.PrivateKey, error) {
	if len(v.rec.KEMSealed) == 0 {
		return nil, detail(ErrNotFound, "no private KEM key for key version %d", v.rec.Version)
	}
	enc, err := s.p.Decrypt(s.dek, v.rec.KEMSealed, sealLabel(v.storeID, roleKEM))
	if err != nil {
		return nil, fmt.Errorf("%w: private KEM key of version %d does not open: %w", ErrSealed, v.rec.Version, err)
	}
	defer clear(enc)
	k, err := crypto.ParsePrivateKey(enc)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(k.Public().Bytes(), v.rec.KEMPublic) {
		k.Destroy()
		return nil, fmt.Errorf("%w: private KEM key of version %d does not match its public key", ErrSealed, v.rec.Version)
	}
	return k, nil
}

// DelegationGrant verifies the delegation chain ending at the link with
// the given id (hex, as DelegationID.String writes it) exactly as
// VerifyDelegation does, and returns what it grants: the root delegator,
// the principal it empowers and the principal's permissions. A service
// that accepts delegated calls checks all three against the call.
func (s *Service) DelegationGrant(ctx context.Context, delegationID string) (root, principal string, permissions []string, err error) {
	id, err := ParseDelegationID(delegationID)
	if err != nil {
		return "", "", nil, err
	}
	c, err := s.VerifyDelegation(ctx, id)
	if err != nil {
		return "", "", nil, err
	}
	return c.Root(), c.Principal(), c.Permissions(), nil
}
