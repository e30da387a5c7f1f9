package vault

import (
	"context"

	"github.com/creto-systems/creto/services/crypto"
)

// Using a secret without handing it out: the vault computes with the value
// and returns only the result, so a caller that must prove possession of a
// key (sign a webhook, answer a challenge) never holds the key itself. A
// Wasm extension reaches this through creto:vault/v1 (hosts/vault.go),
// an agent through VaultService.ComputeMac.

// MaxMACData caps the data one MAC call covers.
const MaxMACData = 1 << 20

// MACRequest asks for the MAC of Data keyed by a secret.
type MACRequest struct {
	Ref SecretRef
	// Version 0 means the current version.
	Version uint32
	// Algorithm is a services/crypto MAC algorithm name; "" means
	// "hmac-sha256", the only one offered.
	Algorithm string
	// Data is at most MaxMACData bytes; it may be empty.
	Data []byte
}

// MACResponse is the MAC and what made it.
type MACResponse struct {
	MAC       []byte
	Version   uint32
	Algorithm string
}

// MAC computes the MAC of req.Data under a version of a secret, if caller
// may read it. The value is decrypted, used through services/crypto and
// wiped inside the vault; only the MAC leaves. The use is recorded like a
// read (operation "mac") before the MAC is returned, and a use that
// cannot be recorded returns nothing.
func (s *Service) MAC(ctx context.Context, caller string, req MACRequest) (*MACResponse, error) {
	const op = "mac"
	if err := validateCall(caller, req.Ref); err != nil {
		return nil, opError(op, "", err)
	}
	alg := crypto.DefaultMAC
	if req.Algorithm != "" {
		a, err := crypto.ParseAlgorithm(req.Algorithm)
		if err != nil || a.Kind() != crypto.KindMAC || !a.Supported() {
			return nil, opError(op, "", invalid("MAC algorithm %s is not offered", quote(req.Algorithm)))
		}
		alg = a
	}
	if len(req.Data) > MaxMACData {
		return nil, opError(op, "", invalid("data is %d bytes, limit %d", len(req.Data), MaxMACData))
	}
	if err := s.enter(ctx); err != nil {
		return nil, opError(op, req.Ref.String(), err)
	}
	defer s.life.RUnlock()
	sec, ev, err := s.getOne(ctx, caller, OpMAC, req.Ref, req.Version)
	if err != nil {
		return nil, opError(op, req.Ref.String(), s.refused(ctx, ev, err))
	}
	defer sec.Destroy()
	tag, err := s.p.HMAC(alg, sec.Value.Expose(), req.Data)
	if err != nil {
		return nil, opError(op, req.Ref.String(), s.refused(ctx, ev, err))
	}
	if err := s.auditRead(ctx, ev); err != nil {
		return nil, opError(op, req.Ref.String(), err)
	}
	return &MACResponse{MAC: tag, Version: sec.Version, Algorithm: alg.String()}, nil
}
