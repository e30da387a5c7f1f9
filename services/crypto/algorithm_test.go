package crypto

import (
	"encoding/json"
	"testing"
)

// The identifiers are written into stored keys and signatures: this table
// pins them so a renumbering or renaming cannot slip through review.
func TestAlgorithmIdentifiersAreStable(t *testing.T) {
	want := []struct {
		alg  Algorithm
		id   uint16
		name string
		kind Kind
	}{
		{AES256GCM, 0x0101, "aes-256-gcm", KindAEAD},
		{ChaCha20Poly1305, 0x0102, "chacha20-poly1305", KindAEAD},
		{Ed25519, 0x0201, "ed25519", KindSignature},
		{MLDSA65, 0x0202, "ml-dsa-65", KindSignature},
		{Ed25519MLDSA65, 0x0203, "ed25519+ml-dsa-65", KindSignature},
		{X25519, 0x0301, "x25519", KindKEM},
		{MLKEM768, 0x0302, "ml-kem-768", KindKEM},
		{XWing, 0x0303, "x-wing", KindKEM},
		{SHA256, 0x0401, "sha-256", KindHash},
		{SHA3_256, 0x0402, "sha3-256", KindHash},
		{BLAKE3, 0x0403, "blake3", KindHash},
		{HMACSHA256, 0x0501, "hmac-sha256", KindMAC},
		{HKDFSHA256, 0x0601, "hkdf-sha256", KindKDF},
	}
	all := Algorithms()
	if len(all) != len(want) {
		t.Fatalf("Algorithms() has %d entries, the pinned table %d", len(all), len(want))
	}
	for i, w := range want {
		if all[i] != w.alg || uint16(w.alg) != w.id || w.alg.String() != w.name || w.alg.Kind() != w.kind {
			t.Errorf("entry %d: got %v (%#04x, %v), want %s (%#04x, %v)", i, all[i], uint16(all[i]), all[i].Kind(), w.name, w.id, w.kind)
		}
		got, err := ParseAlgorithm(w.name)
		if err != nil || got != w.alg {
			t.Errorf("ParseAlgorithm(%q) = %v, %v", w.name, got, err)
		}
	}
}

func TestParseAlgorithmRejectsUnknownNames(t *testing.T) {
	for _, name := range []string{"", "AES-256-GCM", "aes-128-gcm", "sha1", "md5", "ml-dsa-44", " ed25519", "ed25519 ", "rsa", "x-wing2"} {
		_, err := ParseAlgorithm(name)
		wantErr(t, err, ErrUnsupportedAlgorithm)
	}
}

func TestParseAlgorithmAlias(t *testing.T) {
	a, err := ParseAlgorithm("x25519+ml-kem-768")
	if err != nil || a != XWing || a.String() != "x-wing" {
		t.Fatalf("alias: got %v, %v", a, err)
	}
}

func TestAlgorithmText(t *testing.T) {
	type config struct {
		Sign Algorithm `json:"sign"`
		KEM  Algorithm `json:"kem"`
	}
	b, err := json.Marshal(config{Sign: DefaultSignature, KEM: DefaultKEM})
	mustNoErr(t, err)
	if string(b) != `{"sign":"ed25519+ml-dsa-65","kem":"x-wing"}` {
		t.Fatalf("json: %s", b)
	}
	var c config
	mustNoErr(t, json.Unmarshal(b, &c))
	if c.Sign != Ed25519MLDSA65 || c.KEM != XWing {
		t.Fatalf("round trip: %+v", c)
	}
	wantErr(t, json.Unmarshal([]byte(`{"sign":"dsa"}`), &c), ErrUnsupportedAlgorithm)
	// The zero value is never an algorithm: an unset config field must fail.
	_, err = json.Marshal(config{})
	wantErr(t, err, ErrUnsupportedAlgorithm)
	if Algorithm(0).Supported() || Algorithm(0xffff).String() != "algorithm(0xffff)" {
		t.Fatal("zero or unknown algorithm treated as supported")
	}
}

// Every operation refuses an algorithm of the wrong kind instead of falling
// back to something else.
func TestWrongKindIsRejected(t *testing.T) {
	p := New()
	sigKey, err := p.GenerateKey(Ed25519)
	mustNoErr(t, err)
	kemKey, err := p.GenerateKey(X25519)
	mustNoErr(t, err)

	checks := map[string]func() error{
		"GenerateKey(aead)":         func() error { _, err := p.GenerateKey(AES256GCM); return err },
		"GenerateKey(hash)":         func() error { _, err := p.GenerateKey(SHA256); return err },
		"GenerateKey(zero)":         func() error { _, err := p.GenerateKey(0); return err },
		"GenerateSymmetricKey(sig)": func() error { _, err := p.GenerateSymmetricKey(Ed25519); return err },
		"DeriveSymmetricKey(kem)":   func() error { _, err := p.DeriveSymmetricKey(XWing, []byte("s"), nil, nil); return err },
		"Hash(aead)":                func() error { _, err := p.Hash(AES256GCM, nil); return err },
		"Hash(unknown)":             func() error { _, err := p.Hash(0x04ff, nil); return err },
		"NewHash(mac)":              func() error { _, err := p.NewHash(HMACSHA256); return err },
		"HMAC(hash)":                func() error { _, err := p.HMAC(SHA256, nil, nil); return err },
		"VerifyHMAC(kdf)":           func() error { return p.VerifyHMAC(HKDFSHA256, nil, nil, nil) },
		"HKDF(mac)":                 func() error { _, err := p.HKDF(HMACSHA256, []byte("s"), nil, nil, 32); return err },
		"Nonce(sig)":                func() error { _, err := p.Nonce(Ed25519); return err },
		"NewPublicKey(aead)":        func() error { _, err := NewPublicKey(AES256GCM, make([]byte, 32)); return err },
		"NewPrivateKey(hash)":       func() error { _, err := NewPrivateKey(BLAKE3, make([]byte, 32)); return err },
		"NewSymmetricKey(kem)":      func() error { _, err := NewSymmetricKey(X25519, make([]byte, 32)); return err },
		"EncodeSignature(kem)":      func() error { _, err := EncodeSignature(X25519, make([]byte, 32)); return err },
		"Sign(kem key)":             func() error { _, err := p.Sign(kemKey, []byte("m"), nil); return err },
		"Encapsulate(sig key)":      func() error { _, _, err := p.Encapsulate(sigKey.Public()); return err },
		"Decapsulate(sig key)":      func() error { _, err := p.Decapsulate(sigKey, make([]byte, 36)); return err },
	}
	for name, f := range checks {
		t.Run(name, func(t *testing.T) { wantErr(t, f(), ErrUnsupportedAlgorithm) })
	}
	wantErr(t, p.Verify(kemKey.Public(), []byte("m"), nil, nil), ErrInvalidSignature, ErrUnsupportedAlgorithm)
}
