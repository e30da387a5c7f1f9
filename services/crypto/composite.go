package crypto

import (
	"crypto/ed25519"
	"crypto/sha512"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// The Ed25519+ML-DSA-65 composite follows draft-ietf-lamps-pq-composite-sigs
// (id-MLDSA65-Ed25519-SHA512) in its late-2025 form, checked against the
// LAMPS working group's own test vector of October 2025 (testdata/):
//
//	M'   = Prefix || Label || len(ctx) || ctx || SHA-512(M)
//	sig  = ML-DSA-65.Sign(mldsaSK, M', ctx=Label) || Ed25519.Sign(edSK, M')
//	pk   = mldsaPK (1952) || edPK (32)
//	seed = mldsaSeed (32) || edSeed (32)
//
// Both component signatures cover M', which names the composite, so neither
// half can be stripped and passed off as a stand-alone ML-DSA-65 or Ed25519
// signature; verification requires both. The only deviation from the draft
// is the package-wide 4-byte header in front of the encodings (Raw and
// DecodeSignature give the draft's bytes).
const (
	compositePrefix = "CompositeAlgorithmSignatures2025"
	compositeLabel  = "COMPSIG-MLDSA65-Ed25519-SHA512"
	// compositeMaxMessage bounds M' so it is built in a stack buffer.
	compositeMaxMessage = len(compositePrefix) + len(compositeLabel) + 1 + maxContextSize + sha512.Size
)

// compositeLabelBytes is the ML-DSA context; a package-level copy saves a
// conversion per call.
var compositeLabelBytes = []byte(compositeLabel)

var compositeScheme = asymmetricScheme{
	seedSize:   mldsa65.SeedSize + ed25519.SeedSize,
	publicSize: mldsa65.PublicKeySize + ed25519.PublicKeySize,
	outputSize: mldsa65.SignatureSize + ed25519.SignatureSize,
	newPublic: func(raw []byte) (any, error) {
		return compositePublic{
			ml: newMLDSA65Public(raw[:mldsa65.PublicKeySize]),
			ed: ed25519Public(raw[mldsa65.PublicKeySize:]),
		}, nil
	},
	newPrivate: func(seed []byte) (destroyer, []byte, any) {
		ml, mlPub, _ := mldsa65Scheme.newPrivate(seed[:mldsa65.SeedSize])
		ed, edPub, _ := ed25519Scheme.newPrivate(seed[mldsa65.SeedSize:])
		pub := make([]byte, 0, mldsa65.PublicKeySize+ed25519.PublicKeySize)
		pub = append(append(pub, mlPub...), edPub...)
		return compositePrivate{ml: ml.(mldsa65Private), ed: ed.(ed25519Private)}, pub, nil
	},
}

// compositeMessage appends M' to dst. The context length has been checked
// by the caller.
func compositeMessage(dst, msg, context []byte) []byte {
	dst = append(dst, compositePrefix...)
	dst = append(dst, compositeLabel...)
	dst = append(dst, byte(len(context)))
	dst = append(dst, context...)
	ph := sha512.Sum512(msg)
	dst = append(dst, ph[:]...)
	clear(ph[:])
	return dst
}

type compositePublic struct {
	ml mldsa65Public
	ed ed25519Public
}

// verify checks ML-DSA first only because it is the cheaper half; both must
// pass, and a failure of either is reported the same way.
func (p compositePublic) verify(msg, context, sig []byte) bool {
	if len(context) > maxContextSize {
		return false
	}
	var buf [compositeMaxMessage]byte
	mp := compositeMessage(buf[:0], msg, context)
	ok := mldsa65.Verify(p.ml.k, mp, compositeLabelBytes, sig[:mldsa65.SignatureSize]) &&
		ed25519.Verify(ed25519.PublicKey(p.ed), mp, sig[mldsa65.SignatureSize:])
	clear(mp)
	return ok
}

type compositePrivate struct {
	ml mldsa65Private
	ed ed25519Private
}

func (s compositePrivate) sign(msg, context, sig []byte) error {
	var buf [compositeMaxMessage]byte
	mp := compositeMessage(buf[:0], msg, context)
	defer clear(mp)
	if err := mldsa65.SignTo(s.ml.k, mp, compositeLabelBytes, true, sig[:mldsa65.SignatureSize]); err != nil {
		return err
	}
	copy(sig[mldsa65.SignatureSize:], ed25519.Sign(ed25519.PrivateKey(s.ed), mp))
	return nil
}

func (s compositePrivate) destroy() {
	s.ml.destroy()
	s.ed.destroy()
}
