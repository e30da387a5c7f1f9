package nhi

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/internal/wire"
	"github.com/creto-systems/creto/services/crypto"
)

// Token format, version 1. A token is the base64url encoding (no padding,
// canonical) of:
//
//	offset  size  field
//	0       1     format version (1)
//	1       2     signature algorithm id, big-endian (0x0203, ed25519+ml-dsa-65)
//	3       4     node key version, big-endian
//	7       16    token id (random)
//	23      8     issued at, unix milliseconds, big-endian
//	31      8     expires at, unix milliseconds, big-endian
//	39      1     agent id length n (1..128)
//	40      n     agent id
//	40+n    3377  signature by the node key over bytes [0, 40+n), context
//	              "creto-nhi-token/v1", in the crypto package's encoding
//
// Every field has one encoding and the total length is exact, so a token
// has exactly one valid spelling.
const (
	tokenVersion      = 1
	tokenFixedSize    = 40
	tokenSignatureLen = signatureSize
	maxTokenBytes     = tokenFixedSize + MaxIDLength + tokenSignatureLen
)

// maxTokenChars bounds the text accepted before any decoding, so an
// oversize token costs nothing to reject.
var maxTokenChars = tokenEncoding.EncodedLen(maxTokenBytes)

var tokenEncoding = base64.RawURLEncoding.Strict()

// tokenID identifies one issued token, for revocation.
type tokenID [16]byte

// String returns the id in hex, the form its store key uses.
func (id tokenID) String() string { return hex.EncodeToString(id[:]) }

// tokenClaims is what a token says, once its signature is verified.
type tokenClaims struct {
	keyVersion uint32
	id         tokenID
	issuedAt   int64
	expiresAt  int64
	agentID    string
}

// tokenEntry is a verified token in the cache: its claims, with every
// check that can change over time left to be made again on each hit.
type tokenEntry struct{ claims tokenClaims }

func (c *tokenClaims) appendBody(b []byte) []byte {
	e := wire.Encoder(b)
	e.U8(tokenVersion)
	e.U16(uint16(signingAlgorithm))
	e.U32(c.keyVersion)
	e.Raw(c.id[:])
	e.I64(c.issuedAt)
	e.I64(c.expiresAt)
	e.Str8(c.agentID)
	return e
}

// parseToken decodes a token's binary form without verifying it. It
// returns the claims, the signed body and the signature.
func parseToken(b []byte) (tokenClaims, []byte, []byte, error) {
	var c tokenClaims
	d := wire.NewDecoder(b)
	if v := d.U8(); v != tokenVersion {
		d.Fail("version %d", v)
	}
	if alg := crypto.Algorithm(d.U16()); alg != signingAlgorithm {
		d.Fail("signature algorithm %v", alg)
	}
	c.keyVersion = d.U32()
	copy(c.id[:], d.Take(len(c.id)))
	c.issuedAt = d.I64()
	c.expiresAt = d.I64()
	c.agentID = d.Str8(MaxIDLength)
	bodyLen := len(b) - d.Len()
	sig := d.Take(tokenSignatureLen)
	if err := d.Finish(); err != nil {
		return c, nil, nil, err
	}
	if err := validateID("agent id", c.agentID); err != nil {
		return c, nil, nil, err
	}
	if c.expiresAt <= c.issuedAt {
		return c, nil, nil, fmt.Errorf("expires before it is issued")
	}
	return c, b[:bodyLen], sig, nil
}

// IssueToken issues a bearer token for an active agent, signed by the
// node. ttl 0 means Config.DefaultTokenTTL; it may not exceed
// Config.MaxTokenTTL, and the token never outlives the agent.
func (s *Service) IssueToken(ctx context.Context, agentID string, ttl time.Duration) (string, error) {
	const op = "issue token"
	if err := s.enter(); err != nil {
		return "", opError(op, agentID, err)
	}
	defer s.life.RUnlock()
	if err := ctx.Err(); err != nil {
		return "", opError(op, agentID, err)
	}
	if ttl == 0 {
		ttl = s.cfg.DefaultTokenTTL
	}
	if ttl < time.Millisecond || ttl > s.cfg.MaxTokenTTL {
		return "", opError(op, agentID, detail(ErrInvalidArgument, "ttl %v outside 1ms..%v", ttl, s.cfg.MaxTokenTTL))
	}
	nowMS := s.nowMS()
	a, ok := s.agent(agentID)
	if !ok {
		return "", opError(op, agentID, ErrNotFound)
	}
	if err := a.usableAt(nowMS); err != nil {
		return "", opError(op, agentID, err)
	}
	ring := s.node.Load()
	cur := ring.current()
	if !cur.rec.validAt(nowMS) {
		return "", opError(op, agentID, detail(ErrExpired, "the node key is outside its validity window"))
	}
	c := tokenClaims{keyVersion: cur.rec.Version, issuedAt: nowMS, expiresAt: nowMS + ttl.Milliseconds(), agentID: agentID}
	if !a.ExpiresAt.IsZero() {
		c.expiresAt = min(c.expiresAt, a.ExpiresAt.UnixMilli())
	}
	id, err := s.p.RandomBytes(len(c.id))
	if err != nil {
		return "", opError(op, agentID, err)
	}
	copy(c.id[:], id)
	body := c.appendBody(make([]byte, 0, maxTokenBytes))
	sig, err := s.p.Sign(ring.signer, body, contextToken)
	if err != nil {
		return "", opError(op, agentID, err)
	}
	s.emit(ctx, Event{Kind: EventTokenIssued, AgentID: agentID, TokenID: c.id.String(), ExpiresAt: time.UnixMilli(c.expiresAt).UTC()})
	return tokenEncoding.EncodeToString(append(body, sig...)), nil
}

// ResolveToken verifies a token and returns the identity of its agent as it
// is now. Failures match ErrTokenMalformed, ErrTokenForged, ErrTokenExpired
// or ErrTokenRevoked (with ErrRevoked, ErrSuspended or ErrExpired when the
// agent is the cause). A token's signature is verified once; later
// resolutions of the same token hit a cache keyed by its SHA-256 but still
// check expiry and every revocation, so a revoked token or agent fails at
// once.
func (s *Service) ResolveToken(ctx context.Context, token string) (AgentIdentity, error) {
	const op = "resolve token"
	if err := s.enter(); err != nil {
		return AgentIdentity{}, opError(op, "", err)
	}
	defer s.life.RUnlock()
	if err := ctx.Err(); err != nil {
		return AgentIdentity{}, opError(op, "", err)
	}
	c, err := s.verifyToken(token)
	if err != nil {
		return AgentIdentity{}, opError(op, "", err)
	}
	a, err := s.checkClaims(&c, s.nowMS())
	if err != nil {
		return AgentIdentity{}, opError(op, "", err)
	}
	return a.clone(), nil
}

// verifyToken returns a token's claims once its signature is known good,
// from the cache or by verifying it.
func (s *Service) verifyToken(token string) (tokenClaims, error) {
	if len(token) == 0 || len(token) > maxTokenChars {
		return tokenClaims{}, detail(ErrTokenMalformed, "%d characters, want 1..%d", len(token), maxTokenChars)
	}
	digest, err := s.p.Hash(crypto.SHA256, []byte(token))
	if err != nil {
		return tokenClaims{}, err
	}
	h := [32]byte(digest)
	if e, ok := s.tokens.get(h); ok {
		return e.claims, nil
	}
	raw, err := tokenEncoding.DecodeString(token)
	if err != nil {
		return tokenClaims{}, detail(ErrTokenMalformed, "not canonical unpadded base64url")
	}
	c, body, sig, err := parseToken(raw)
	if err != nil {
		return tokenClaims{}, fmt.Errorf("%w: %w", ErrTokenMalformed, err)
	}
	v := s.node.Load().version(c.keyVersion)
	if v == nil {
		return tokenClaims{}, detail(ErrTokenForged, "unknown node key version %d", c.keyVersion)
	}
	// A retired key is not worth a verification: whatever the signature,
	// the token is dead.
	if v.signing == nil || !v.rec.validAt(s.nowMS()) {
		return tokenClaims{}, detail(ErrTokenRevoked, "the node key that signed it was retired")
	}
	if err := s.p.Verify(v.signing, body, contextToken, sig); err != nil {
		return tokenClaims{}, fmt.Errorf("%w: %w", ErrTokenForged, err)
	}
	s.tokens.put(h, tokenEntry{claims: c})
	return c, nil
}

// checkClaims makes the checks whose answer changes over time: expiry,
// the signing key's window, token revocation and the agent's status.
func (s *Service) checkClaims(c *tokenClaims, nowMS int64) (*AgentIdentity, error) {
	if nowMS >= c.expiresAt {
		return nil, ErrTokenExpired
	}
	if v := s.node.Load().version(c.keyVersion); v == nil || !v.rec.validAt(nowMS) {
		return nil, detail(ErrTokenRevoked, "the node key that signed it was retired")
	}
	s.revokedMu.RLock()
	_, revoked := s.revokedTokens[c.id]
	s.revokedMu.RUnlock()
	if revoked {
		return nil, detail(ErrTokenRevoked, "token %s was revoked", c.id)
	}
	a, ok := s.agent(c.agentID)
	if !ok {
		return nil, fmt.Errorf("%w: %w", ErrTokenRevoked, ErrNotFound)
	}
	err := a.usableAt(nowMS)
	switch {
	case err == nil:
		return a, nil
	case errors.Is(err, ErrExpired):
		return nil, fmt.Errorf("%w: agent %s: %w", ErrTokenExpired, quote(a.ID), err)
	default:
		return nil, fmt.Errorf("%w: agent %s: %w", ErrTokenRevoked, quote(a.ID), err)
	}
}

// RevokeToken revokes one token until it expires. The token must be
// genuine (a forged one is rejected, so the revocation list only ever
// holds ids this node issued); revoking an expired or already revoked
// token is a no-op.
func (s *Service) RevokeToken(ctx context.Context, token string) error {
	const op = "revoke token"
	if err := s.enter(); err != nil {
		return opError(op, "", err)
	}
	defer s.life.RUnlock()
	c, err := s.verifyToken(token)
	if err != nil {
		return opError(op, "", err)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	nowMS := s.nowMS()
	s.revokedMu.RLock()
	_, done := s.revokedTokens[c.id]
	s.revokedMu.RUnlock()
	if done || nowMS >= c.expiresAt {
		return nil
	}
	var b kv.Batch
	b.Set(revokedTokenKey(c.id), binary.BigEndian.AppendUint64(nil, uint64(c.expiresAt)))
	// Entries of tokens that have expired since are dropped in the same
	// commit, which keeps the list as short as the tokens still alive.
	var expired []tokenID
	s.revokedMu.RLock()
	for id, exp := range s.revokedTokens {
		if nowMS >= exp {
			expired = append(expired, id)
			b.Delete(revokedTokenKey(id))
		}
	}
	s.revokedMu.RUnlock()
	if err := s.store.Apply(ctx, &b); err != nil {
		return opError(op, "", err)
	}
	s.revokedMu.Lock()
	s.revokedTokens[c.id] = c.expiresAt
	for _, id := range expired {
		delete(s.revokedTokens, id)
	}
	s.revokedMu.Unlock()
	s.ents.bump()
	s.emit(ctx, Event{Kind: EventTokenRevoked, AgentID: c.agentID, TokenID: c.id.String()})
	return nil
}

func revokedTokenKey(id tokenID) []byte {
	return []byte(prefixRevokedTokens + id.String())
}

// loadRevokedTokens reads the revocation list, skipping (and deleting)
// entries whose tokens have expired.
func (s *Service) loadRevokedTokens(ctx context.Context) error {
	nowMS := s.nowMS()
	var b kv.Batch
	err := s.store.Scan(ctx, []byte(prefixRevokedTokens), func(key, val []byte) error {
		raw, err := hex.DecodeString(string(key[len(prefixRevokedTokens):]))
		if err != nil || len(raw) != len(tokenID{}) || len(val) != 8 {
			return fmt.Errorf("revoked token record %s is corrupt", quote(string(key)))
		}
		exp := int64(binary.BigEndian.Uint64(val))
		if nowMS >= exp {
			b.Delete(key)
			return nil
		}
		s.revokedTokens[tokenID(raw)] = exp
		return nil
	})
	if err != nil {
		return err
	}
	return s.store.Apply(ctx, &b)
}
