package crypto_test

import (
	"fmt"
	"log"

	"github.com/creto-systems/creto/services/crypto"
)

// Sign with the default (composite Ed25519+ML-DSA-65) algorithm, ship the
// public key and signature as bytes, and verify on the other side with a
// key parsed once.
func Example_signVerify() {
	p := crypto.New()
	alg, err := crypto.ParseAlgorithm("ed25519+ml-dsa-65") // from config
	if err != nil {
		log.Fatal(err)
	}
	signer, err := p.GenerateKey(alg)
	if err != nil {
		log.Fatal(err)
	}
	defer signer.Destroy()

	msg := []byte(`{"delegate":"agent-7","action":"read"}`)
	context := []byte("creto-nhi-delegation/v1")
	sig, err := p.Sign(signer, msg, context)
	if err != nil {
		log.Fatal(err)
	}
	wire := signer.Public().Bytes()

	// Verifier side: parse the key once, verify as often as needed.
	pub, err := crypto.ParsePublicKey(wire)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("valid:", p.Verify(pub, msg, context, sig) == nil)
	fmt.Println("other context valid:", p.Verify(pub, msg, []byte("creto-audit/v1"), sig) == nil)
	fmt.Println(pub.Algorithm(), len(wire), "byte key,", len(sig), "byte signature")
	// Output:
	// valid: true
	// other context valid: false
	// ed25519+ml-dsa-65 1988 byte key, 3377 byte signature
}

// Encrypt for a recipient's X-Wing public key: encapsulate a shared secret,
// derive an AES-256-GCM key from it, encrypt, and send the KEM ciphertext
// with the AEAD ciphertext. The recipient reverses the steps.
func Example_kemThenAEAD() {
	p := crypto.New()
	recipient, err := p.GenerateKey(crypto.DefaultKEM)
	if err != nil {
		log.Fatal(err)
	}
	defer recipient.Destroy()
	info := []byte("creto-storage-dek/v1")
	object := []byte("quarterly report")
	objectID := []byte("bucket/reports/q3") // bound as associated data

	// Sender.
	secret, kemCT, err := p.Encapsulate(recipient.Public())
	if err != nil {
		log.Fatal(err)
	}
	key, err := p.DeriveSymmetricKey(crypto.DefaultAEAD, secret, nil, info)
	clear(secret)
	if err != nil {
		log.Fatal(err)
	}
	sealed, err := p.Encrypt(key, object, objectID)
	key.Destroy()
	if err != nil {
		log.Fatal(err)
	}

	// Recipient.
	secret, err = p.Decapsulate(recipient, kemCT)
	if err != nil {
		log.Fatal(err)
	}
	key, err = p.DeriveSymmetricKey(crypto.DefaultAEAD, secret, nil, info)
	clear(secret)
	if err != nil {
		log.Fatal(err)
	}
	defer key.Destroy()
	plain, err := p.Decrypt(key, sealed, objectID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(plain))
	_, err = p.Decrypt(key, sealed, []byte("bucket/other"))
	fmt.Println(err)
	// Output:
	// quarterly report
	// crypto: decrypt aes-256-gcm: authentication failed
}
