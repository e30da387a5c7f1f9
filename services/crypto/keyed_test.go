package crypto

import (
	"bytes"
	"slices"
	"testing"
)

// BLAKE3's official keyed_hash vectors (test_vectors.json: the key is
// "whats the Elvish word for friend", input byte i is i mod 251; the first
// 32 bytes of the XOF output).
func TestKeyedHashKnownAnswers(t *testing.T) {
	key := []byte("whats the Elvish word for friend")
	for _, v := range []struct {
		n    int
		want string
	}{
		{0, "92b2b75604ed3c761f9d6f62392c8a9227ad0ea3f09573e783f1498a4ed60d26"},
		{1, "6d7878dfff2f485635d39013278ae14f1454b8c0a3a2d34bc1ab38228a80c95b"},
		{1023, "c951ecdf03288d0fcc96ee3413563d8a6d3589547f2c2fb36d9786470f1b9d6e"},
		{1024, "75c46f6f3d9eb4f55ecaaee480db732e6c2105546f1e675003687c31719c7ba4"},
		{1025, "357dc55de0c7e382c900fd6e320acc04146be01db6a8ce7210b7189bd664ea69"},
	} {
		h, err := NewKeyedHash(BLAKE3, key)
		mustNoErr(t, err)
		for chunk := range slices.Chunk(blake3Input(v.n), 100) {
			h.Write(chunk)
		}
		if got := h.Sum(nil); !bytes.Equal(got, unhex(t, v.want)) {
			t.Errorf("keyed blake3(%d bytes) = %x", v.n, got)
		}
	}
}

func TestKeyedHashSeparatesKeys(t *testing.T) {
	sum := func(key byte) []byte {
		h, err := NewKeyedHash(BLAKE3, bytes.Repeat([]byte{key}, KeyedHashKeySize))
		mustNoErr(t, err)
		h.Write([]byte("the same file"))
		return h.Sum(nil)
	}
	plain, err := New().Hash(BLAKE3, []byte("the same file"))
	mustNoErr(t, err)
	if a, b := sum(1), sum(2); bytes.Equal(a, b) || bytes.Equal(a, plain) {
		t.Fatal("keyed digests of one input coincide across keys or with the unkeyed digest")
	}
}

func TestKeyedHashBadInputs(t *testing.T) {
	_, err := NewKeyedHash(BLAKE3, make([]byte, 31))
	wantErr(t, err, ErrInvalidKey)
	_, err = NewKeyedHash(SHA256, make([]byte, 32))
	wantErr(t, err, ErrUnsupportedAlgorithm)
	_, err = NewKeyedHash(AES256GCM, make([]byte, 32))
	wantErr(t, err, ErrUnsupportedAlgorithm)
}
