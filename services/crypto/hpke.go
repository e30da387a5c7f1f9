package crypto

import (
	"crypto/ecdh"
	"crypto/hpke"
)

// HPKE (RFC 9180) in base mode, single shot: a KEM to the recipient's key,
// HKDF-SHA256 to turn the shared secret into an AEAD key and nonce, and one
// AEAD message. It is how a small secret — typically a data key — is sealed
// to a KEM public key and opened only by the holder of the private key. The
// standard library's crypto/hpke does the work; this file only maps this
// package's keys onto it.
//
// The suite follows from the key: x25519 keys use DHKEM(X25519,
// HKDF-SHA256) (kem_id 0x0020), ml-kem-768 keys ML-KEM-768 (0x0041) and
// x-wing keys MLKEM768-X25519 (0x647a), all from RFC 9180 and
// draft-ietf-hpke-pq. The private key encodings are exactly the inputs those
// KEMs' DeserializePrivateKey takes (the X25519 scalar, the FIPS 203 seed
// d ‖ z, the 32-byte X-Wing seed) and the public keys their serialized
// forms, so keys made by this package work with any conforming HPKE
// implementation; hpke_test.go checks it against the draft's vectors and
// against circl's independent HPKE.

// hpkeKDFID is HKDF-SHA256, the one KDF the wrap uses.
const hpkeKDFID = 0x0001

// maxHPKEInfo bounds info and associated data; HPKE hashes info into its key
// schedule, so a caller's bug should not be able to feed it megabytes.
const maxHPKEInfo = 16 << 10

// maxHPKEPlaintext bounds what one wrap carries: keys and small secrets,
// not data, which belongs in a StreamSealer.
const maxHPKEPlaintext = 64 << 10

// hpkeKEM returns the standard library's KEM for a KEM algorithm.
func hpkeKEM(op string, alg Algorithm) (hpke.KEM, error) {
	switch alg {
	case X25519:
		return hpke.DHKEM(ecdh.X25519()), nil
	case MLKEM768:
		return hpke.MLKEM768(), nil
	case XWing:
		return hpke.MLKEM768X25519(), nil
	}
	return nil, unsupported(op, alg, KindKEM)
}

// hpkeAEAD returns the standard library's AEAD for an AEAD algorithm.
func hpkeAEAD(op string, alg Algorithm) (hpke.AEAD, error) {
	switch alg {
	case AES256GCM:
		return hpke.AES256GCM(), nil
	case ChaCha20Poly1305:
		return hpke.ChaCha20Poly1305(), nil
	}
	return nil, unsupported(op, alg, KindAEAD)
}

// HPKESuiteIDs returns the RFC 9180 identifiers (kem_id, kdf_id, aead_id)
// of the suite HPKESeal uses for a key of algorithm kem with the AEAD aead,
// so a file format can record the exact suite next to the sealed bytes.
func HPKESuiteIDs(kem, aead Algorithm) (kemID, kdfID, aeadID uint16, err error) {
	k, err := hpkeKEM("hpke suite", kem)
	if err != nil {
		return 0, 0, 0, err
	}
	a, err := hpkeAEAD("hpke suite", aead)
	if err != nil {
		return 0, 0, 0, err
	}
	return k.ID(), hpkeKDFID, a.ID(), nil
}

// HPKESeal encrypts plaintext (at most 64 KiB: a key, not data) to pub with
// HPKE base mode, HKDF-SHA256 and the AEAD aead, and returns enc ‖
// ciphertext, the KEM's encapsulated key followed by the AEAD message.
// info is bound into the key schedule and aad into the AEAD; HPKEOpen must
// be given the same of both. Each call encapsulates afresh, so sealing the
// same plaintext twice gives unrelated outputs.
func HPKESeal(pub *PublicKey, aead Algorithm, info, aad, plaintext []byte) ([]byte, error) {
	const op = "hpke seal"
	if pub == nil {
		return nil, opError(op, 0, detailError(ErrInvalidKey, "nil key"))
	}
	kem, err := hpkeKEM(op, pub.alg)
	if err != nil {
		return nil, err
	}
	suite, err := hpkeAEAD(op, aead)
	if err != nil {
		return nil, err
	}
	if err := checkHPKEInputs(info, aad, len(plaintext)); err != nil {
		return nil, opError(op, pub.alg, err)
	}
	pk, err := kem.NewPublicKey(pub.enc[headerSize:])
	if err != nil {
		return nil, opError(op, pub.alg, detailError(ErrInvalidKey, "%v", err))
	}
	enc, sender, err := hpke.NewSender(pk, hpke.HKDFSHA256(), suite, info)
	if err != nil {
		return nil, opError(op, pub.alg, detailError(ErrInvalidKey, "%v", err))
	}
	ct, err := sender.Seal(aad, plaintext)
	if err != nil {
		return nil, opError(op, pub.alg, err)
	}
	return append(enc, ct...), nil
}

// HPKEOpen reverses HPKESeal with the recipient's private key. A sealed
// message that was tampered with, made for another key, or opened with
// another info, aad or AEAD fails with ErrAuthentication; one too short to
// hold the encapsulated key and a tag with ErrMalformed.
func HPKEOpen(priv *PrivateKey, aead Algorithm, info, aad, sealed []byte) ([]byte, error) {
	const op = "hpke open"
	if err := priv.usable(op); err != nil {
		return nil, err
	}
	kem, err := hpkeKEM(op, priv.alg)
	if err != nil {
		return nil, err
	}
	suite, err := hpkeAEAD(op, aead)
	if err != nil {
		return nil, err
	}
	if err := checkHPKEInputs(info, aad, 0); err != nil {
		return nil, opError(op, priv.alg, err)
	}
	encSize, overhead := priv.scheme.outputSize, aeadSchemes[aead].overhead
	if len(sealed) < encSize+overhead {
		return nil, opError(op, priv.alg, detailError(ErrMalformed, "%d bytes, shorter than the %d-byte encapsulated key and tag", len(sealed), encSize+overhead))
	}
	sk, err := kem.NewPrivateKey(priv.seed)
	if err != nil {
		return nil, opError(op, priv.alg, detailError(ErrInvalidKey, "%v", err))
	}
	return hpkeOpen(priv.alg, sk, suite, encSize, info, aad, sealed)
}

// hpkeOpen is HPKEOpen once the key and suite are the standard library's;
// the known-answer tests enter here to use suites HPKEOpen does not offer.
func hpkeOpen(alg Algorithm, sk hpke.PrivateKey, suite hpke.AEAD, encSize int, info, aad, sealed []byte) ([]byte, error) {
	const op = "hpke open"
	// Implicit rejection in ML-KEM and X-Wing turns a tampered encapsulated
	// key into an unrelated secret, so every failure from here on — the
	// DHKEM's low-order check or the AEAD's tag — is the same to a caller:
	// the message does not open.
	r, err := hpke.NewRecipient(sealed[:encSize], sk, hpke.HKDFSHA256(), suite, info)
	if err != nil {
		return nil, opError(op, alg, ErrAuthentication)
	}
	pt, err := r.Open(aad, sealed[encSize:])
	if err != nil {
		return nil, opError(op, alg, ErrAuthentication)
	}
	return pt, nil
}

func checkHPKEInputs(info, aad []byte, plaintext int) error {
	switch {
	case len(info) > maxHPKEInfo || len(aad) > maxHPKEInfo:
		return detailError(ErrMalformed, "info or associated data over %d bytes", maxHPKEInfo)
	case plaintext > maxHPKEPlaintext:
		return detailError(ErrMalformed, "plaintext over %d bytes", maxHPKEPlaintext)
	}
	return nil
}
