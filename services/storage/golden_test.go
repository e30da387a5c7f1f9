package storage

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
)

// TestHeaderGolden pins the envelope header byte for byte, field by field
// as envelope.go documents it: stored objects must keep opening, and the
// header is bound into both the wrapped key's and the stream's info, so a
// change here is a format change, not a refactoring.
func TestHeaderGolden(t *testing.T) {
	h := validHeader()
	h.wrapped = []byte("wrapped!")
	want := hex.EncodeToString([]byte("CRSO")) + "01" + "00" + // magic, version, flags
		"0101" + "0303" + // aes-256-gcm, x-wing
		"647a" + "0001" + "0002" + // HPKE: X-Wing, HKDF-SHA256, AES-256-GCM
		"00100000" + "00000003" + // segment size, key version
		strings.Repeat("01", 32) + hex.EncodeToString([]byte("prefix7")) + // salt, nonce prefix
		"05" + hex.EncodeToString([]byte("alice")) +
		"07" + hex.EncodeToString([]byte("default")) +
		"000e" + hex.EncodeToString([]byte("reports/q3.pdf")) +
		"20" + hex.EncodeToString([]byte("0123456789abcdef0123456789abcdef")) +
		"0008" + hex.EncodeToString([]byte("wrapped!"))
	enc := h.encode()
	if got := hex.EncodeToString(enc); got != want {
		t.Fatalf("header\n got %s\nwant %s", got, want)
	}
	if !bytes.HasPrefix(h.dekInfo(), []byte(dekLabel)) || !bytes.Equal(h.dekInfo()[len(dekLabel):], enc[:len(enc)-2-len(h.wrapped)]) {
		t.Fatal("the wrapped key's info is not the label and the header before the wrapped key")
	}
	back, n, err := decodeHeader(append(bytes.Clone(enc), "segments"...))
	if err != nil || n != len(enc) {
		t.Fatalf("decode: %v (length %d of %d)", err, n, len(enc))
	}
	if !reflect.DeepEqual(back, h) {
		t.Fatalf("decodes to %+v", back)
	}
}
