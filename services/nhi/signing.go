package nhi

import (
	"context"
	"time"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/crypto"
)

// GetPublicKeys returns the agent's current public keys.
func (s *Service) GetPublicKeys(ctx context.Context, agentID string) (PublicKeys, error) {
	const op = "get public keys"
	if err := s.enter(); err != nil {
		return PublicKeys{}, opError(op, agentID, err)
	}
	defer s.life.RUnlock()
	if _, ok := s.agent(agentID); !ok {
		return PublicKeys{}, opError(op, agentID, ErrNotFound)
	}
	ring, err := s.agentRing(ctx, agentID)
	if err != nil {
		return PublicKeys{}, opError(op, agentID, err)
	}
	cur := ring.current()
	if cur.signing == nil || !cur.rec.validAt(s.nowMS()) {
		return PublicKeys{}, opError(op, agentID, detail(ErrExpired, "the current key version %d is outside its validity window; rotate the agent's keys", cur.rec.Version))
	}
	pk, err := s.publicKeys(agentID, cur)
	if err != nil {
		return PublicKeys{}, opError(op, agentID, err)
	}
	return pk, nil
}

// PublicKeyVersions returns every version of the agent's public keys that
// is still inside its validity window, newest first: the keys a verifier
// must accept during a rotation.
func (s *Service) PublicKeyVersions(ctx context.Context, agentID string) ([]PublicKeys, error) {
	const op = "get public key versions"
	if err := s.enter(); err != nil {
		return nil, opError(op, agentID, err)
	}
	defer s.life.RUnlock()
	if _, ok := s.agent(agentID); !ok {
		return nil, opError(op, agentID, ErrNotFound)
	}
	ring, err := s.agentRing(ctx, agentID)
	if err != nil {
		return nil, opError(op, agentID, err)
	}
	nowMS := s.nowMS()
	var out []PublicKeys
	for i := len(ring.versions) - 1; i >= 0; i-- {
		v := ring.versions[i]
		if v.signing == nil || !v.rec.validAt(nowMS) {
			continue
		}
		pk, err := s.publicKeys(agentID, v)
		if err != nil {
			return nil, opError(op, agentID, err)
		}
		out = append(out, pk)
	}
	return out, nil
}

// RotateKeys gives the agent a new current key version, valid for
// Config.KeyValidity. Older versions stay verifiable until their window
// ends, but never later than overlap from now: pass the time a signature
// or delegation made with an old key should go on verifying, or 0 after a
// compromise to retire the old keys at once (which also retires the
// delegations they signed). Old private signing keys are deleted.
func (s *Service) RotateKeys(ctx context.Context, agentID string, overlap time.Duration) (PublicKeys, error) {
	const op = "rotate keys"
	if err := s.enter(); err != nil {
		return PublicKeys{}, opError(op, agentID, err)
	}
	defer s.life.RUnlock()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	a, ok := s.agent(agentID)
	if !ok {
		return PublicKeys{}, opError(op, agentID, ErrNotFound)
	}
	if a.Status == StatusRevoked {
		return PublicKeys{}, opError(op, agentID, ErrRevoked)
	}
	var b kv.Batch
	v, signer, err := s.rotate(ctx, &b, agentKeyPrefix(agentID), overlap, s.cfg.KeyValidity, true)
	if err != nil {
		return PublicKeys{}, opError(op, agentID, err)
	}
	// The new signer is not cached: the ring reloads from the store on next
	// use, which keeps one code path for building rings.
	signer.Destroy()
	if err := s.store.Apply(ctx, &b); err != nil {
		return PublicKeys{}, opError(op, agentID, err)
	}
	s.invalidateRing(agentID)
	s.ents.bump()
	s.emit(ctx, Event{Kind: EventKeysRotated, AgentID: agentID, KeyVersion: v.rec.Version})
	pk, err := s.publicKeys(agentID, v)
	if err != nil {
		return PublicKeys{}, opError(op, agentID, err)
	}
	return pk, nil
}

// RotateNodeKey gives the node a new token-signing key. Tokens signed by
// the old key keep resolving until overlap from now; pass at least the
// longest token lifetime for a planned rotation, or 0 after a compromise
// to invalidate every outstanding token.
func (s *Service) RotateNodeKey(ctx context.Context, overlap time.Duration) error {
	const op = "rotate node key"
	if err := s.enter(); err != nil {
		return opError(op, "", err)
	}
	defer s.life.RUnlock()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	ring, err := s.rotateNodeRing(ctx, overlap)
	if err != nil {
		return opError(op, "", err)
	}
	// The old ring's signer is not wiped here: a token being issued may
	// still hold it. It goes to the garbage collector.
	s.node.Store(ring)
	s.ents.bump()
	s.emit(ctx, Event{Kind: EventNodeKeyRotated, KeyVersion: ring.current().rec.Version})
	return nil
}

// Sign signs msg with the agent's current hybrid (ed25519+ml-dsa-65) key.
// The agent must be active and unexpired, and its current key inside its
// validity window. The signature is in the crypto package's encoding.
func (s *Service) Sign(ctx context.Context, agentID string, msg []byte) ([]byte, error) {
	const op = "sign"
	if err := s.enter(); err != nil {
		return nil, opError(op, agentID, err)
	}
	defer s.life.RUnlock()
	signer, _, err := s.currentSigner(ctx, agentID, s.nowMS())
	if err != nil {
		return nil, opError(op, agentID, err)
	}
	sig, err := s.p.Sign(signer, msg, contextAgentMessage)
	if err != nil {
		return nil, opError(op, agentID, err)
	}
	return sig, nil
}

// currentSigner returns the agent's current signing key and its version,
// after checking that the agent may sign at nowMS.
func (s *Service) currentSigner(ctx context.Context, agentID string, nowMS int64) (signer *crypto.PrivateKey, version uint32, err error) {
	a, ok := s.agent(agentID)
	if !ok {
		return nil, 0, ErrNotFound
	}
	if err := a.usableAt(nowMS); err != nil {
		return nil, 0, err
	}
	ring, err := s.agentRing(ctx, agentID)
	if err != nil {
		return nil, 0, err
	}
	cur := ring.current()
	if cur.signing == nil || !cur.rec.validAt(nowMS) {
		return nil, 0, detail(ErrExpired, "the current key version %d is outside its validity window; rotate the agent's keys", cur.rec.Version)
	}
	k, err := s.signerFor(ring)
	if err != nil {
		return nil, 0, err
	}
	return k, cur.rec.Version, nil
}

// Verify checks a signature Sign made. Every key version still inside its
// validity window is accepted, newest first, so signatures survive a
// rotation for the overlap the rotation granted. A revoked agent's
// signatures no longer verify. Any failure matches ErrInvalidSignature,
// except an unknown agent (ErrNotFound) or a revoked one (ErrRevoked).
func (s *Service) Verify(ctx context.Context, agentID string, msg, sig []byte) error {
	const op = "verify"
	if err := s.enter(); err != nil {
		return opError(op, agentID, err)
	}
	defer s.life.RUnlock()
	a, ok := s.agent(agentID)
	if !ok {
		return opError(op, agentID, ErrNotFound)
	}
	if a.Status == StatusRevoked {
		return opError(op, agentID, ErrRevoked)
	}
	ring, err := s.agentRing(ctx, agentID)
	if err != nil {
		return opError(op, agentID, err)
	}
	nowMS := s.nowMS()
	var last error
	for i := len(ring.versions) - 1; i >= 0; i-- {
		v := ring.versions[i]
		if v.signing == nil || !v.rec.validAt(nowMS) {
			continue
		}
		if last = s.p.Verify(v.signing, msg, contextAgentMessage, sig); last == nil {
			return nil
		}
	}
	if last == nil {
		return opError(op, agentID, ErrInvalidSignature, detail(ErrExpired, "no key version is inside its validity window"))
	}
	return opError(op, agentID, ErrInvalidSignature, last)
}
