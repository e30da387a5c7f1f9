package crypto

import (
	"crypto/hkdf"
	"crypto/sha256"

	"github.com/cloudflare/circl/dh/x25519"
	"github.com/cloudflare/circl/kem/mlkem/mlkem768"
	"github.com/cloudflare/circl/kem/xwing"
)

// sharedSecretSize is the same for all three KEMs.
const sharedSecretSize = 32

// encapsulator is the parsed form of a KEM public key. seed is the
// encapsulation randomness (fresh per call in production, fixed in
// known-answer tests); ct and ss are exactly the scheme's sizes.
type encapsulator interface {
	encapsulate(seed, ct, ss []byte) error
}

// decapsulator is the parsed form of a KEM private key.
type decapsulator interface {
	decapsulate(ct, ss []byte) error
	destroy()
}

// X25519 is DHKEM(X25519, HKDF-SHA256) from RFC 9180 §4.1 rather than a raw
// Diffie-Hellman output, so the shared secret is bound to both public keys
// and the KEM interface is the same as for the post-quantum schemes.
var x25519Scheme = asymmetricScheme{
	seedSize:      x25519.Size,
	publicSize:    x25519.Size,
	outputSize:    x25519.Size,
	encapSeedSize: x25519.Size,
	newPublic: func(raw []byte) (any, error) {
		return x25519Public{(*x25519.Key)(raw)}, nil
	},
	newPrivate: func(seed []byte) (destroyer, []byte, any) {
		s := &x25519Private{}
		copy(s.sk[:], seed)
		x25519.KeyGen(&s.pk, &s.sk)
		return s, s.pk[:], nil
	},
}

// dhkemSuiteID is "KEM" || I2OSP(0x0020, 2), the RFC 9180 suite id of
// DHKEM(X25519, HKDF-SHA256).
const dhkemSuiteID = "KEM\x00\x20"

// dhkemExtractAndExpand is RFC 9180's ExtractAndExpand(dh, enc || pkR),
// writing the 32-byte shared secret to ss and wiping the intermediate PRK.
func dhkemExtractAndExpand(ss, dh, enc, pkR []byte) error {
	ikm := make([]byte, 0, len("HPKE-v1")+len(dhkemSuiteID)+len("eae_prk")+len(dh))
	ikm = append(append(append(append(ikm, "HPKE-v1"...), dhkemSuiteID...), "eae_prk"...), dh...)
	prk, err := hkdf.Extract(sha256.New, ikm, nil)
	clear(ikm)
	if err != nil {
		return err
	}
	info := make([]byte, 0, 2+len("HPKE-v1")+len(dhkemSuiteID)+len("shared_secret")+len(enc)+len(pkR))
	info = append(info, 0, sharedSecretSize)
	info = append(append(append(append(append(info, "HPKE-v1"...), dhkemSuiteID...), "shared_secret"...), enc...), pkR...)
	out, err := hkdf.Expand(sha256.New, prk, string(info), sharedSecretSize)
	clear(prk)
	if err != nil {
		return err
	}
	copy(ss, out)
	clear(out)
	return nil
}

type x25519Public struct{ pkR *x25519.Key }

type x25519Private struct{ sk, pk x25519.Key }

// encapsulate uses seed as the ephemeral secret key. A low-order recipient
// key makes the DH output zero, which RFC 9180 requires to be an error.
func (p x25519Public) encapsulate(seed, ct, ss []byte) error {
	var skE, pkE, dh x25519.Key
	copy(skE[:], seed)
	x25519.KeyGen(&pkE, &skE)
	ok := x25519.Shared(&dh, &skE, p.pkR)
	clear(skE[:])
	defer clear(dh[:])
	if !ok {
		return detailError(ErrInvalidKey, "low-order x25519 public key")
	}
	copy(ct, pkE[:])
	return dhkemExtractAndExpand(ss, dh[:], pkE[:], p.pkR[:])
}

func (s *x25519Private) decapsulate(ct, ss []byte) error {
	var dh x25519.Key
	defer clear(dh[:])
	if !x25519.Shared(&dh, &s.sk, (*x25519.Key)(ct)) {
		return detailError(ErrMalformed, "low-order x25519 ephemeral key")
	}
	return dhkemExtractAndExpand(ss, dh[:], ct, s.pk[:])
}

func (s *x25519Private) destroy() { clear(s.sk[:]) }

var mlkem768Scheme = asymmetricScheme{
	seedSize:      mlkem768.KeySeedSize,
	publicSize:    mlkem768.PublicKeySize,
	outputSize:    mlkem768.CiphertextSize,
	encapSeedSize: mlkem768.EncapsulationSeedSize,
	newPublic: func(raw []byte) (any, error) {
		var k mlkem768.PublicKey
		if err := k.Unpack(raw); err != nil {
			return nil, detailError(ErrInvalidKey, "ml-kem-768 encapsulation key check: %v", err)
		}
		return mlkem768Public{&k}, nil
	},
	// The public key shares only circl's public-key object with sk, which
	// destroy leaves alone, so it is reused rather than parsed again.
	newPrivate: func(seed []byte) (destroyer, []byte, any) {
		pk, sk := mlkem768.NewKeyFromSeed(seed)
		pub := make([]byte, mlkem768.PublicKeySize)
		pk.Pack(pub)
		return mlkem768Private{sk}, pub, mlkem768Public{pk}
	},
}

type mlkem768Public struct{ k *mlkem768.PublicKey }

func (p mlkem768Public) encapsulate(seed, ct, ss []byte) error {
	p.k.EncapsulateTo(ct, ss, seed)
	return nil
}

type mlkem768Private struct{ k *mlkem768.PrivateKey }

// decapsulate never fails on a well-sized ciphertext: ML-KEM's implicit
// rejection turns a tampered one into an unrelated shared secret, which the
// AEAD keyed from it then rejects.
func (s mlkem768Private) decapsulate(ct, ss []byte) error {
	s.k.DecapsulateTo(ss, ct)
	return nil
}

// destroy can only drop circl's internal pointers: the expanded secret
// vector lives in an unexported heap object this package cannot overwrite.
func (s mlkem768Private) destroy() { *s.k = mlkem768.PrivateKey{} }

var xwingScheme = asymmetricScheme{
	seedSize:      xwing.SeedSize,
	publicSize:    xwing.PublicKeySize,
	outputSize:    xwing.CiphertextSize,
	encapSeedSize: xwing.EncapsulationSeedSize,
	newPublic: func(raw []byte) (any, error) {
		var k xwing.PublicKey
		if err := k.Unpack(raw); err != nil {
			return nil, detailError(ErrInvalidKey, "x-wing ml-kem encapsulation key check: %v", err)
		}
		return xwingPublic{&k}, nil
	},
	// As for ML-KEM-768, the public key shares nothing destroy wipes.
	newPrivate: func(seed []byte) (destroyer, []byte, any) {
		sk, pk := xwing.DeriveKeyPair(seed)
		pub := make([]byte, xwing.PublicKeySize)
		pk.Pack(pub)
		return xwingPrivate{sk}, pub, xwingPublic{pk}
	},
}

type xwingPublic struct{ k *xwing.PublicKey }

func (p xwingPublic) encapsulate(seed, ct, ss []byte) error {
	p.k.EncapsulateTo(ct, ss, seed)
	return nil
}

type xwingPrivate struct{ k *xwing.PrivateKey }

// decapsulate, like ML-KEM's, has implicit rejection and cannot fail.
func (s xwingPrivate) decapsulate(ct, ss []byte) error {
	s.k.DecapsulateTo(ss, ct)
	return nil
}

// destroy zeroes the seed and X25519 scalars; the ML-KEM part has the same
// limit as mlkem768Private.destroy.
func (s xwingPrivate) destroy() { *s.k = xwing.PrivateKey{} }
