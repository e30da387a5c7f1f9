package crypto

import (
	"bytes"
	"crypto/ed25519"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// maxContextSize is the FIPS 204 / RFC 8032 limit on the context string,
// which all three signature algorithms share.
const maxContextSize = 255

// verifier is the parsed form of a signature public key. verify must be safe
// for concurrent use: one parsed key serves every request.
type verifier interface {
	verify(msg, context, sig []byte) bool
}

// signer is the parsed form of a signature private key. sign writes exactly
// the scheme's signature size into sig.
type signer interface {
	sign(msg, context, sig []byte) error
	destroy()
}

// DecodeSignature checks an encoded signature's header and length and
// returns its algorithm and a copy of the algorithm's own signature bytes
// (for the composite, the draft's mldsaSig || edSig), for formats that
// carry raw signatures, such as a C2SP signed note.
func DecodeSignature(sig []byte) (Algorithm, []byte, error) {
	const op = "decode signature"
	alg, body, err := decode(sig, objSignature)
	if err != nil {
		return 0, nil, opError(op, alg, err)
	}
	if err := checkRawSignature(op, alg, body); err != nil {
		return 0, nil, err
	}
	return alg, bytes.Clone(body), nil
}

// EncodeSignature wraps a raw signature made elsewhere so Verify accepts
// it. It checks only the algorithm and the length.
func EncodeSignature(alg Algorithm, raw []byte) ([]byte, error) {
	if err := checkRawSignature("encode signature", alg, raw); err != nil {
		return nil, err
	}
	return encode(objSignature, alg, raw), nil
}

func checkRawSignature(op string, alg Algorithm, raw []byte) error {
	if err := alg.require(op, KindSignature); err != nil {
		return err
	}
	s, err := asymmetricFor(op, alg)
	if err != nil {
		return err
	}
	if err := exactLength(objSignature, alg, raw, s.outputSize); err != nil {
		return opError(op, alg, err)
	}
	return nil
}

var ed25519Scheme = asymmetricScheme{
	seedSize:   ed25519.SeedSize,
	publicSize: ed25519.PublicKeySize,
	outputSize: ed25519.SignatureSize,
	newPublic: func(raw []byte) (any, error) {
		return ed25519Public(raw), nil
	},
	// The public half of k is wiped with it, so the public key is parsed
	// from its own copy.
	newPrivate: func(seed []byte) (destroyer, []byte, any) {
		k := ed25519.NewKeyFromSeed(seed)
		return ed25519Private(k), k[ed25519.SeedSize:], nil
	},
}

// ed25519Public holds the 32-byte key. Parsing does not decompress the
// point: the stdlib does that inside Verify, and an invalid point simply
// fails verification.
type ed25519Public []byte

func (p ed25519Public) verify(msg, context, sig []byte) bool {
	if len(context) == 0 {
		return ed25519.Verify(ed25519.PublicKey(p), msg, sig)
	}
	return ed25519.VerifyWithOptions(ed25519.PublicKey(p), msg, sig, &ed25519.Options{Context: string(context)}) == nil
}

// ed25519Private is the stdlib's seed || public key form; destroy clears it
// in place because the stdlib keeps no other copy.
type ed25519Private []byte

// sign uses pure Ed25519 for an empty context, so RFC 8032 vectors and other
// Ed25519 verifiers interoperate, and Ed25519ctx otherwise, so a context
// separates domains for Ed25519 exactly as it does for ML-DSA.
func (s ed25519Private) sign(msg, context, sig []byte) error {
	if len(context) == 0 {
		copy(sig, ed25519.Sign(ed25519.PrivateKey(s), msg))
		return nil
	}
	out, err := ed25519.PrivateKey(s).Sign(nil, msg, &ed25519.Options{Context: string(context)})
	if err != nil {
		return err
	}
	copy(sig, out)
	return nil
}

func (s ed25519Private) destroy() { clear(s) }

var mldsa65Scheme = asymmetricScheme{
	seedSize:   mldsa65.SeedSize,
	publicSize: mldsa65.PublicKeySize,
	outputSize: mldsa65.SignatureSize,
	newPublic: func(raw []byte) (any, error) {
		return newMLDSA65Public(raw), nil
	},
	// circl's public key from NewKeyFromSeed points into the private key's
	// matrix, which destroy wipes, so the public key is unpacked afresh.
	newPrivate: func(seed []byte) (destroyer, []byte, any) {
		pk, sk := mldsa65.NewKeyFromSeed((*[mldsa65.SeedSize]byte)(seed))
		return mldsa65Private{sk}, pk.Bytes(), nil
	},
}

// mldsa65Public keeps circl's unpacked key, whose expanded matrix A is what
// makes a verify with a cached key ~3.5x cheaper than one that unpacks.
type mldsa65Public struct{ k *mldsa65.PublicKey }

// newMLDSA65Public unpacks raw, which must be exactly PublicKeySize bytes.
// Every byte string of that size is a valid ML-DSA public key encoding.
func newMLDSA65Public(raw []byte) mldsa65Public {
	var k mldsa65.PublicKey
	k.Unpack((*[mldsa65.PublicKeySize]byte)(raw))
	return mldsa65Public{&k}
}

func (p mldsa65Public) verify(msg, context, sig []byte) bool {
	return mldsa65.Verify(p.k, msg, context, sig)
}

type mldsa65Private struct{ k *mldsa65.PrivateKey }

// sign is hedged (FIPS 204 default): fresh randomness per signature guards
// against fault and side-channel attacks on deterministic signing.
func (s mldsa65Private) sign(msg, context, sig []byte) error {
	return mldsa65.SignTo(s.k, msg, context, true, sig)
}

// destroy overwrites circl's private key in place; every field of it is an
// array, so this reaches all of the secret state.
func (s mldsa65Private) destroy() { *s.k = mldsa65.PrivateKey{} }
