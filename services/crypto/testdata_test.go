package crypto

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// unhex decodes a hex literal from a test vector; whitespace is allowed so
// long vectors can be wrapped.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex in test vector: %v", err)
	}
	return b
}

// loadJSON reads a vector file from testdata.
func loadJSON(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// wantErr fails unless err matches every sentinel.
func wantErr(t testing.TB, err error, sentinels ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %v", sentinels)
	}
	for _, s := range sentinels {
		if !errors.Is(err, s) {
			t.Fatalf("error %q does not match %q", err, s)
		}
	}
}

// mustNoErr keeps setup lines short.
func mustNoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var (
	signatureAlgorithms = []Algorithm{Ed25519, MLDSA65, Ed25519MLDSA65}
	kemAlgorithms       = []Algorithm{X25519, MLKEM768, XWing}
	aeadAlgorithms      = []Algorithm{AES256GCM, ChaCha20Poly1305}
	hashAlgorithms      = []Algorithm{SHA256, SHA3_256, BLAKE3}
	asymmetric          = append(append([]Algorithm{}, signatureAlgorithms...), kemAlgorithms...)
)

// flip returns a copy of b with bit 0 of byte i inverted.
func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1
	return c
}
