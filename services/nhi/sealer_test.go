package nhi

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestFileSealer(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "node.key")
	_, err := OpenFileSealer(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("open missing: %v, want fs.ErrNotExist", err)
	}
	s, err := CreateFileSealer(path)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal(ctx, []byte("data key"), []byte("label"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := CreateFileSealer(path); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("create over an existing key: %v, want fs.ErrExist", err)
	}

	s, err = OpenFileSealer(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if pt, err := s.Unseal(ctx, sealed, []byte("label")); err != nil || string(pt) != "data key" {
		t.Fatalf("unseal after reopen: %q, %v", pt, err)
	}
	_, err = s.Unseal(ctx, sealed, []byte("other label"))
	wantErr(t, "wrong label", err, ErrSealed)
	sealed[len(sealed)-1] ^= 1
	_, err = s.Unseal(ctx, sealed, []byte("label"))
	wantErr(t, "tampered", err, ErrSealed)

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileSealer(path); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("world-readable key: %v, want fs.ErrPermission", err)
	}
	junk := filepath.Join(t.TempDir(), "junk")
	if err := os.WriteFile(junk, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = OpenFileSealer(junk)
	wantErr(t, "junk key file", err, ErrSealed)
}

func TestOpenRefusesAnotherNodeKey(t *testing.T) {
	e := newEnv(t)
	e.register("a", "alice")
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(e.dir, "node.key")
	original, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}

	// A lost key file is not silently replaced by a new one.
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	_, err = open(context.Background(), e.dir, Config{}, e.clock.Now)
	wantErr(t, "missing node.key", err, ErrSealed)
	if _, err := os.Stat(keyPath); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a failed open created a node key: %v", err)
	}

	// Another node's key does not open this store.
	other, err := CreateFileSealer(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	_, err = open(context.Background(), e.dir, Config{}, e.clock.Now)
	wantErr(t, "another node's key", err, ErrSealed)

	// The right key does.
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, original, 0o600); err != nil {
		t.Fatal(err)
	}
	e.open()
	if _, err := e.s.Sign(context.Background(), "a", []byte("m")); err != nil {
		t.Fatalf("sign after reopening with the right key: %v", err)
	}
}
