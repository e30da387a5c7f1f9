package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/creto-systems/creto/services/crypto"
)

func testKeys(t testing.TB, origin string) *signingKeys {
	t.Helper()
	k, _, err := createKeys(context.Background(), crypto.New(), testSealer(t), origin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.destroy)
	return k
}

func testCheckpoint(t testing.TB, k *signingKeys, size int64) []byte {
	t.Helper()
	c := Checkpoint{Origin: k.verifier.origin, Size: size, Root: tlog.RecordHash([]byte("root"))}
	n, err := signCheckpoint(c, k.ed, k.hybrid)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// sigLines splits a signed note into its text and signature lines.
func sigLines(t testing.TB, n []byte) (string, []string) {
	t.Helper()
	text, sigs, ok := strings.Cut(string(n), "\n\n")
	if !ok {
		t.Fatal("no signature block")
	}
	return text + "\n", strings.Split(strings.TrimSuffix(sigs, "\n"), "\n")
}

func TestCheckpointSignedAndOpened(t *testing.T) {
	k := testKeys(t, "audit.example.com/test")
	n := testCheckpoint(t, k, 42)
	c, err := k.verifier.Open(n)
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != 42 || c.Origin != "audit.example.com/test" || c.Root != tlog.RecordHash([]byte("root")) {
		t.Fatalf("opened %+v", c)
	}
	text, lines := sigLines(t, n)
	if text != "audit.example.com/test\n42\n"+base64.StdEncoding.EncodeToString(c.Root[:])+"\n" {
		t.Fatalf("text %q is not a C2SP checkpoint", text)
	}
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "— audit.example.com/test ") || !strings.HasPrefix(lines[1], "— audit.example.com/test ") {
		t.Fatalf("signature lines %q", lines)
	}
}

// TestStandardVerifierAcceptsCheckpoint is the interop promise: the
// Ed25519 line verifies with golang.org/x/mod/sumdb/note and the verifier
// key the log exports, and the hybrid line is an unknown key to it, not
// an error.
func TestStandardVerifierAcceptsCheckpoint(t *testing.T) {
	k := testKeys(t, "")
	n := testCheckpoint(t, k, 3)
	std, err := note.NewVerifier(k.verifier.Ed25519Key())
	if err != nil {
		t.Fatalf("note.NewVerifier rejects the exported key: %v", err)
	}
	opened, err := note.Open(n, note.VerifierList(std))
	if err != nil {
		t.Fatalf("note.Open: %v", err)
	}
	if len(opened.Sigs) != 1 || opened.Sigs[0].Hash != std.KeyHash() || len(opened.UnverifiedSigs) != 1 {
		t.Fatalf("sigs %+v unverified %+v", opened.Sigs, opened.UnverifiedSigs)
	}
	// The standard verifier rejects a tampered text too.
	bad := bytes.Replace(n, []byte("\n3\n"), []byte("\n4\n"), 1)
	if _, err := note.Open(bad, note.VerifierList(std)); err == nil {
		t.Fatal("note.Open accepted an altered size")
	}
}

func TestVerifierKeysRoundTrip(t *testing.T) {
	k := testKeys(t, "log.example/x")
	v, err := ParseVerifier(k.verifier.Ed25519Key(), k.verifier.HybridKey())
	if err != nil {
		t.Fatal(err)
	}
	if !v.Equal(k.verifier) || v.Origin() != "log.example/x" {
		t.Fatal("parsed verifier differs")
	}
	if _, err := v.Open(testCheckpoint(t, k, 1)); err != nil {
		t.Fatal(err)
	}
	other := testKeys(t, "log.example/y")
	for name, keys := range map[string][2]string{
		"swapped":        {k.verifier.HybridKey(), k.verifier.Ed25519Key()},
		"different logs": {k.verifier.Ed25519Key(), other.verifier.HybridKey()},
		"bad key id":     {badKeyID(k.verifier.Ed25519Key()), k.verifier.HybridKey()},
		"garbage":        {"x", "y"},
		"truncated":      {k.verifier.Ed25519Key()[:len(k.verifier.Ed25519Key())-4], k.verifier.HybridKey()},
	} {
		if _, err := ParseVerifier(keys[0], keys[1]); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// badKeyID replaces a verifier key's key ID with another.
func badKeyID(vkey string) string {
	parts := strings.SplitN(vkey, "+", 3)
	if parts[1] == "00000000" {
		parts[1] = "00000001"
	} else {
		parts[1] = "00000000"
	}
	return strings.Join(parts, "+")
}

func TestForgedCheckpoints(t *testing.T) {
	k := testKeys(t, "log.example/a")
	other := testKeys(t, "log.example/a") // same name, other keys
	good := testCheckpoint(t, k, 10)
	text, lines := sigLines(t, good)
	join := func(text string, lines ...string) []byte {
		return []byte(text + "\n" + strings.Join(lines, "\n") + "\n")
	}
	alter := func(from, to string) []byte {
		return join(strings.Replace(text, from, to, 1), lines...)
	}
	root := base64.StdEncoding.EncodeToString(make([]byte, 32))
	wrongOrigin, err := note.Sign(&note.Note{Text: "log.example/b\n10\n" + root + "\n"}, k.ed, k.hybrid)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		note []byte
		want string
	}{
		"other keys":       {testCheckpoint(t, other, 10), "not signed by this log's keys"},
		"hybrid stripped":  {join(text, lines[0]), "hybrid ed25519+ml-dsa-65 signature line is missing"},
		"ed25519 stripped": {join(text, lines[1]), "Ed25519 signature line is missing"},
		"size altered":     {alter("\n10\n", "\n11\n"), "signature does not verify"},
		"root altered":     {alter(text[len(text)-10:], "AAAAAAAA=\n"), "signature does not verify"},
		"wrong origin":     {wrongOrigin, "origin"},
		"not a note":       {[]byte("hello"), "not a signed note"},
		"oversized":        {bytes.Repeat([]byte("a"), maxNoteSize+1), "limit"},
	}
	for name, c := range cases {
		_, err := k.verifier.Open(c.note)
		var ve *VerificationError
		if !errors.Is(err, ErrVerification) || !errors.As(err, &ve) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want a verification error about %q", name, err, c.want)
		}
	}
	// A witness's extra signature line is ignored, not an error.
	witness := testKeys(t, "witness.example")
	cosigned, err := note.Sign(&note.Note{Text: text}, k.ed, k.hybrid, witness.ed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.verifier.Open(cosigned); err != nil {
		t.Fatalf("a cosigned checkpoint: %v", err)
	}
}

func TestParseCheckpointTextStrict(t *testing.T) {
	root := base64.StdEncoding.EncodeToString(make([]byte, 32))
	ok := []string{
		"o\n0\n" + root + "\n",
		"o\n12\n" + root + "\n",
		"o\n12\n" + root + "\next one\next two\n",
	}
	for _, s := range ok {
		if _, err := parseCheckpointText(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	bad := []string{
		"",
		"o\n12\n" + root, // no final newline
		"o\n12\n",
		"\n12\n" + root + "\n",
		"o o\n12\n" + root + "\n",
		"o\n012\n" + root + "\n",
		"o\n+12\n" + root + "\n",
		"o\n-1\n" + root + "\n",
		"o\n99999999999999999999\n" + root + "\n",
		"o\n12\n" + root[:len(root)-4] + "\n",
		"o\n12\n" + base64.StdEncoding.EncodeToString(make([]byte, 33)) + "\n",
		"o\n12\n" + base64.RawStdEncoding.EncodeToString(make([]byte, 32)) + "\n",
		"o\n12\n" + root + "\n\n",
	}
	for _, s := range bad {
		if _, err := parseCheckpointText(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
