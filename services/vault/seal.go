package vault

import (
	"bytes"
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/internal/wire"
	"github.com/creto-systems/creto/services/crypto"
)

// The key hierarchy (docs/vault.md):
//
//	key-encryption key (KEK)   a KeyBackend's key, or HKDF of a Shamir-shared scalar
//	  └ root key               AES-256-GCM, random, stored wrapped by the KEK in "vault/seal"
//	      └ every record       secret values, metadata, delegations, access events
//
// The vault starts sealed: the root key is only ever in memory after an
// unseal, and Seal (or Close) wipes it. Rekeying — new shares or another
// backend — rewraps the root key and touches no record.

// KeyBackend protects the root key: it wraps it at Init and unwraps it at
// every unseal, and is not consulted in between, so a slow device costs
// nothing per request. nhi.FileSealer — the node's key file, mode 0600 —
// is the software backend and implements this interface. A PKCS#11 (HSM)
// or cloud KMS backend implements the same two methods with a key that
// never leaves the device, and returns an error wrapping ErrHSMUnavailable
// when the device cannot be reached.
type KeyBackend interface {
	// Seal encrypts plaintext, binding it to label.
	Seal(ctx context.Context, plaintext, label []byte) ([]byte, error)
	// Unseal reverses Seal. A ciphertext sealed under another key or
	// label, or tampered with, must fail rather than return other bytes.
	Unseal(ctx context.Context, sealed, label []byte) ([]byte, error)
}

// Seal modes, as stored in the seal record.
const (
	modeBackend = 1
	modeShamir  = 2
)

const (
	keySeal          = "vault/seal"
	rootKeyAlgorithm = crypto.AES256GCM
	initIDSize       = 16
	digestSize       = 32
)

var (
	rootKeyLabel   = []byte("creto-vault/root-key/v1")
	shareKEKInfo   = []byte("creto-vault/unseal-kek/v1")
	shareDigestTag = []byte("creto-vault/share-digest/v1")
)

// sealRecord is stored in plaintext under "vault/seal": it holds nothing
// secret, only the wrapped root key and what checks shares.
//
//	u8 version | u8 mode | 16 bytes init id | u8 threshold | u8 shares |
//	shares × 32-byte share digest | u32 length, wrapped root key | i64 created ns
type sealRecord struct {
	mode              uint8
	initID            [initIDSize]byte
	threshold, shares uint8
	digests           [][digestSize]byte
	wrapped           []byte
	created           int64
}

func encodeSealRecord(r *sealRecord) []byte {
	var e wire.Encoder
	e.U8(recordVersion)
	e.U8(r.mode)
	e.Raw(r.initID[:])
	e.U8(r.threshold)
	e.U8(r.shares)
	for _, d := range r.digests {
		e.Raw(d[:])
	}
	e.U32(uint32(len(r.wrapped)))
	e.Raw(r.wrapped)
	e.I64(r.created)
	return e
}

func decodeSealRecord(b []byte) (*sealRecord, error) {
	d := wire.NewDecoder(b)
	if v := d.U8(); v != recordVersion {
		d.Fail("record version %d", v)
	}
	r := &sealRecord{mode: d.U8()}
	copy(r.initID[:], d.Take(initIDSize))
	r.threshold, r.shares = d.U8(), d.U8()
	switch r.mode {
	case modeBackend:
		if r.threshold != 0 || r.shares != 0 {
			d.Fail("backend seal with shares")
		}
	case modeShamir:
		if r.threshold < 1 || r.threshold > r.shares {
			d.Fail("threshold %d of %d shares", r.threshold, r.shares)
		}
	default:
		d.Fail("seal mode %d", r.mode)
	}
	for range int(r.shares) {
		var dg [digestSize]byte
		copy(dg[:], d.Take(digestSize))
		r.digests = append(r.digests, dg)
	}
	r.wrapped = d.Take(int(d.U32()))
	r.created = d.I64()
	if err := finish(&d); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *sealRecord) label() []byte { return append(bytes.Clone(rootKeyLabel), r.initID[:]...) }

// SealStatus describes the seal (seed health: a sealed vault is up but
// serves nothing).
type SealStatus struct {
	Initialized bool
	Sealed      bool
	// Mode is "shamir" or "backend"; empty before Init.
	Mode string
	// Threshold and Shares are the Shamir quorum; Progress counts the
	// valid shares given towards the next unseal.
	Threshold, Shares, Progress int
}

// Status reports the seal state. It works sealed and unsealed.
func (s *Service) Status(ctx context.Context) (SealStatus, error) {
	if err := ctx.Err(); err != nil {
		return SealStatus{}, err
	}
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return SealStatus{}, opError("status", "", ErrClosed)
	}
	return s.statusLocked(), nil
}

func (s *Service) statusLocked() SealStatus {
	st := SealStatus{Sealed: s.root == nil}
	if r := s.sealRec; r != nil {
		st.Initialized = true
		st.Mode = map[uint8]string{modeBackend: "backend", modeShamir: "shamir"}[r.mode]
		st.Threshold, st.Shares, st.Progress = int(r.threshold), int(r.shares), len(s.progress)
	}
	return st
}

// InitShamir creates the vault's root key and splits the key that wraps it
// into shares, any threshold of which unseal the vault (1 <= threshold <=
// shares <= 255). The shares are returned this once and stored nowhere:
// hand one to each operator. The vault stays sealed until unsealed with
// them. A second Init fails with ErrAlreadyInitialized.
func (s *Service) InitShamir(ctx context.Context, threshold, shares int) ([]string, error) {
	const op = "init"
	if threshold < 1 || threshold > shares || shares > crypto.MaxKeyShares {
		return nil, opError(op, "", invalid("need 1 <= threshold (%d) <= shares (%d) <= %d", threshold, shares, crypto.MaxKeyShares))
	}
	var out []string
	err := s.initialize(ctx, func(rec *sealRecord, root []byte) error {
		kek, split, err := crypto.SplitKey(rootKeyAlgorithm, threshold, shares, rec.initID[:], shareKEKInfo)
		if err != nil {
			return err
		}
		defer kek.Destroy()
		defer func() {
			for i := range split {
				split[i].Destroy()
			}
		}()
		if rec.wrapped, err = s.p.Encrypt(kek, root, rec.label()); err != nil {
			return err
		}
		rec.mode, rec.threshold, rec.shares = modeShamir, uint8(threshold), uint8(shares)
		for _, sh := range split {
			rec.digests = append(rec.digests, s.shareDigest(rec.initID, sh))
			out = append(out, encodeShare(rec.initID, uint8(threshold), sh))
		}
		return nil
	})
	if err != nil {
		return nil, opError(op, "", err)
	}
	s.cfg.Log.Info("vault initialized", "component", "vault", "mode", "shamir", "threshold", threshold, "shares", shares)
	return out, nil
}

// InitWithBackend creates the vault's root key and has b wrap it (an HSM,
// a KMS, or the node's key file). The vault stays sealed until
// UnsealWithBackend. A second Init fails with ErrAlreadyInitialized.
func (s *Service) InitWithBackend(ctx context.Context, b KeyBackend) error {
	const op = "init"
	if b == nil {
		return opError(op, "", invalid("nil key backend"))
	}
	err := s.initialize(ctx, func(rec *sealRecord, root []byte) error {
		wrapped, err := b.Seal(ctx, root, rec.label())
		if err != nil {
			return fmt.Errorf("key backend: %w", err)
		}
		rec.mode, rec.wrapped = modeBackend, wrapped
		return nil
	})
	if err != nil {
		return opError(op, "", err)
	}
	s.cfg.Log.Info("vault initialized", "component", "vault", "mode", "backend")
	return nil
}

// initialize generates the root key, lets wrap fill in the seal record,
// and stores it. The root key is wiped again: Init leaves the vault
// sealed, so the first unseal proves the shares (or backend) work.
func (s *Service) initialize(ctx context.Context, wrap func(rec *sealRecord, root []byte) error) error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.sealRec != nil {
		return ErrAlreadyInitialized
	}
	// Another process sharing the store may have initialized it.
	if _, err := s.store.Get(ctx, []byte(keySeal)); err == nil {
		return ErrAlreadyInitialized
	} else if !errors.Is(err, kv.ErrNotFound) {
		return err
	}
	rec := &sealRecord{created: s.clock.now().UnixNano()}
	id, err := s.p.RandomBytes(initIDSize)
	if err != nil {
		return err
	}
	copy(rec.initID[:], id)
	root, err := s.p.GenerateSymmetricKey(rootKeyAlgorithm)
	if err != nil {
		return err
	}
	defer root.Destroy()
	enc, err := crypto.MarshalSymmetricKey(root)
	if err != nil {
		return err
	}
	defer clear(enc)
	if err := wrap(rec, enc); err != nil {
		return err
	}
	var b kv.Batch
	b.Set([]byte(keySeal), encodeSealRecord(rec))
	if err := s.store.Apply(ctx, &b); err != nil {
		return err
	}
	s.sealRec = rec
	return nil
}

// UnsealWithBackend opens the root key with b and unseals the vault. It is
// a no-op on an unsealed vault. A backend that cannot open the root key
// (another key file, a tampered seal record) yields ErrUnsealFailed; one
// whose device is down, ErrHSMUnavailable. The vault stays sealed on any
// error.
func (s *Service) UnsealWithBackend(ctx context.Context, b KeyBackend) error {
	const op = "unseal"
	if b == nil {
		return opError(op, "", invalid("nil key backend"))
	}
	s.life.Lock()
	defer s.life.Unlock()
	if err := s.checkUnsealable(); err != nil {
		return opError(op, "", err)
	}
	if s.root != nil {
		return nil
	}
	if s.sealRec.mode != modeBackend {
		return opError(op, "", fmt.Errorf("%w: the vault was initialized with Shamir shares", ErrUnsealFailed))
	}
	root, err := b.Unseal(ctx, s.sealRec.wrapped, s.sealRec.label())
	if err != nil {
		if errors.Is(err, ErrHSMUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return opError(op, "", err)
		}
		return opError(op, "", fmt.Errorf("%w: %w", ErrUnsealFailed, err))
	}
	defer clear(root)
	if err := s.unsealWith(ctx, root); err != nil {
		return opError(op, "", err)
	}
	return nil
}

// SubmitUnsealShares adds shares towards the Shamir quorum and unseals the
// vault once threshold valid shares have been given, over one call or
// several (each operator may submit their own). A call is all or nothing:
// if any of its shares is malformed, from another vault, a duplicate, or
// not one of Init's shares, the call adds none of them and returns a
// *ShareError. Submitting to an unsealed vault is a no-op.
func (s *Service) SubmitUnsealShares(ctx context.Context, shares ...string) (SealStatus, error) {
	const op = "unseal"
	s.life.Lock()
	defer s.life.Unlock()
	if err := s.checkUnsealable(); err != nil {
		return SealStatus{}, opError(op, "", err)
	}
	if s.root != nil {
		return s.statusLocked(), nil
	}
	rec := s.sealRec
	if rec.mode != modeShamir {
		return s.statusLocked(), opError(op, "", fmt.Errorf("%w: the vault was initialized with a key backend", ErrUnsealFailed))
	}
	var accepted []crypto.KeyShare
	wipe := func() {
		for i := range accepted {
			accepted[i].Destroy()
		}
	}
	for pos, text := range shares {
		sh, err := s.checkShare(rec, text, accepted)
		if err != nil {
			wipe()
			return s.statusLocked(), opError(op, "", &ShareError{Position: pos, Reason: err})
		}
		accepted = append(accepted, sh)
	}
	s.progress = append(s.progress, accepted...)
	if len(s.progress) < int(rec.threshold) {
		return s.statusLocked(), nil
	}
	err := s.unsealShares(ctx, rec)
	s.resetProgress()
	if err != nil {
		return s.statusLocked(), opError(op, "", err)
	}
	return s.statusLocked(), nil
}

// ResetUnseal discards the shares given so far.
func (s *Service) ResetUnseal() {
	s.life.Lock()
	defer s.life.Unlock()
	s.resetProgress()
}

func (s *Service) resetProgress() {
	for i := range s.progress {
		s.progress[i].Destroy()
	}
	s.progress = nil
}

// checkShare parses a share and checks it against the seal record and the
// shares already held (progress and pending).
func (s *Service) checkShare(rec *sealRecord, text string, pending []crypto.KeyShare) (crypto.KeyShare, error) {
	initID, threshold, sh, err := s.decodeShare(text)
	if err != nil {
		return sh, err
	}
	if initID != rec.initID || threshold != rec.threshold || sh.Index > rec.shares {
		sh.Destroy()
		return sh, ErrShareForeign
	}
	for _, held := range [][]crypto.KeyShare{s.progress, pending} {
		for _, h := range held {
			if h.Index == sh.Index {
				sh.Destroy()
				return sh, ErrShareDuplicate
			}
		}
	}
	if s.shareDigest(rec.initID, sh) != rec.digests[sh.Index-1] {
		sh.Destroy()
		return sh, ErrShareWrong
	}
	return sh, nil
}

// unsealShares combines the first threshold shares into the KEK and opens
// the root key.
func (s *Service) unsealShares(ctx context.Context, rec *sealRecord) error {
	kek, err := crypto.CombineKey(rootKeyAlgorithm, int(rec.threshold), s.progress[:rec.threshold], rec.initID[:], shareKEKInfo)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnsealFailed, err)
	}
	defer kek.Destroy()
	root, err := s.p.Decrypt(kek, rec.wrapped, rec.label())
	if err != nil {
		// Every share matched its digest, so the seal record itself was
		// altered.
		return fmt.Errorf("%w: the shares do not open the root key: %w", ErrUnsealFailed, err)
	}
	defer clear(root)
	return s.unsealWith(ctx, root)
}

func (s *Service) checkUnsealable() error {
	switch {
	case s.closed:
		return ErrClosed
	case s.sealRec == nil:
		return ErrNotInitialized
	}
	return nil
}

// unsealWith installs the root key and loads the state that lives in
// memory while unsealed. The caller holds the life lock.
func (s *Service) unsealWith(ctx context.Context, rootEnc []byte) error {
	root, err := crypto.ParseSymmetricKey(rootEnc)
	if err != nil || root.Algorithm() != rootKeyAlgorithm {
		root.Destroy()
		return fmt.Errorf("%w: the unwrapped root key does not parse", ErrUnsealFailed)
	}
	s.root = root
	if err := s.loadState(ctx); err != nil {
		s.sealLocked()
		return err
	}
	s.cfg.Log.Info("vault unsealed", "component", "vault")
	return nil
}

// Seal wipes the root key and everything decrypted from it: every
// operation fails with ErrSealed until the next unseal. Operations in
// flight finish first. Sealing a sealed vault is a no-op.
func (s *Service) Seal(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.life.Lock()
	defer s.life.Unlock()
	if err := s.checkUnsealable(); err != nil {
		return opError("seal", "", err)
	}
	if s.root != nil {
		s.sealLocked()
		s.cfg.Log.Info("vault sealed", "component", "vault")
	}
	return nil
}

// sealLocked drops the keys and the unsealed state; the caller holds the
// life lock.
func (s *Service) sealLocked() {
	s.root.Destroy()
	s.root = nil
	s.dropState()
	s.resetProgress()
}

// shareDigest is what the seal record keeps per share: SHA-256 over a
// label, the init id, the index and the value. It names a wrong share
// without revealing anything a brute force could use (the value is 252
// random bits), and, unlike a Feldman commitment, stays sound against a
// quantum adversary.
func (s *Service) shareDigest(initID [initIDSize]byte, sh crypto.KeyShare) [digestSize]byte {
	msg := make([]byte, 0, len(shareDigestTag)+initIDSize+1+crypto.KeyShareSize)
	msg = append(append(append(append(msg, shareDigestTag...), initID[:]...), sh.Index), sh.Value()...)
	defer clear(msg)
	sum, _ := s.p.Hash(crypto.SHA256, msg) // SHA-256 is always supported
	return [digestSize]byte(sum)
}

// A share travels as text: base32 (RFC 4648, no padding, case-insensitive;
// spaces and dashes ignored) of
//
//	u8 format (1) | 16 bytes init id | u8 threshold | u8 index | 32 bytes value |
//	4 bytes checksum = SHA-256(the bytes before it)[:4]
//
// The checksum catches typos before any share is compared; the init id
// names the vault a share belongs to.
const (
	shareFormat  = 1
	shareBodyLen = 1 + initIDSize + 1 + 1 + crypto.KeyShareSize
	shareLen     = shareBodyLen + 4
)

var shareEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func encodeShare(initID [initIDSize]byte, threshold uint8, sh crypto.KeyShare) string {
	b := make([]byte, 0, shareLen)
	b = append(append(b, shareFormat), initID[:]...)
	b = append(append(append(b, threshold), sh.Index), sh.Value()...)
	sum, _ := crypto.New().Hash(crypto.SHA256, b)
	b = append(b, sum[:4]...)
	defer clear(b)
	return strings.ToLower(shareEncoding.EncodeToString(b))
}

func (s *Service) decodeShare(text string) (initID [initIDSize]byte, threshold uint8, sh crypto.KeyShare, err error) {
	// Only the base32 alphabet, in either case, and separators: a
	// look-alike character from elsewhere in Unicode is a typo.
	clean := make([]byte, 0, len(text))
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == ' ' || c == '-' || c == '\n' || c == '\t' || c == '\r':
		case c >= 'a' && c <= 'z':
			clean = append(clean, c-'a'+'A')
		case (c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7'):
			clean = append(clean, c)
		default:
			return initID, 0, sh, ErrShareMalformed
		}
	}
	if len(clean) != shareEncoding.EncodedLen(shareLen) {
		return initID, 0, sh, ErrShareMalformed
	}
	b, derr := shareEncoding.DecodeString(string(clean))
	defer clear(b)
	if derr != nil || len(b) != shareLen || b[0] != shareFormat {
		return initID, 0, sh, ErrShareMalformed
	}
	sum, _ := s.p.Hash(crypto.SHA256, b[:shareBodyLen])
	if !bytes.Equal(sum[:4], b[shareBodyLen:]) {
		return initID, 0, sh, ErrShareMalformed
	}
	copy(initID[:], b[1:])
	threshold = b[1+initIDSize]
	index := b[2+initIDSize]
	if index == 0 {
		return initID, 0, sh, ErrShareMalformed
	}
	sh, err = crypto.NewKeyShare(index, b[3+initIDSize:shareBodyLen])
	if err != nil {
		return initID, 0, sh, ErrShareMalformed
	}
	return initID, threshold, sh, nil
}
