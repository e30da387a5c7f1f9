package nhi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/creto-systems/creto/services/crypto"
)

// Sealer protects the node's data key, the AES-256-GCM key every private
// key in the store is encrypted under. The service calls it once at start
// to unseal that key (and once, on first start, to seal a new one), never
// per operation, so a slow backend costs nothing on the hot path.
//
// FileSealer is the software backend. A hardware or cloud backend — a
// PKCS#11 token's AES key used through C_Encrypt/C_Decrypt with GCM, or a
// KMS Encrypt/Decrypt call whose encryption context is label — implements
// the same two methods; the node key then never exists in this process.
type Sealer interface {
	// Seal encrypts plaintext, binding it to label: Unseal must be given
	// the same label.
	Seal(ctx context.Context, plaintext, label []byte) ([]byte, error)
	// Unseal reverses Seal. A ciphertext sealed under another key or label,
	// or tampered with, must fail rather than return other bytes.
	Unseal(ctx context.Context, sealed, label []byte) ([]byte, error)
}

// FileSealer keeps the node master key in a file. It protects the store's
// contents from anyone who has the store but not the file (a copied data
// directory without the key, a backup of the store alone); it does not
// protect against anyone who can read both, such as root on the node.
type FileSealer struct {
	p   crypto.Provider
	key *crypto.SymmetricKey
}

var _ Sealer = (*FileSealer)(nil)

// nodeKeyAlgorithm is the master key's AEAD.
const nodeKeyAlgorithm = crypto.AES256GCM

// CreateFileSealer generates a new master key and writes it to path with
// mode 0600. It fails if path exists, so an existing key — and with it
// every secret in the store — is never overwritten.
func CreateFileSealer(path string) (*FileSealer, error) {
	p := crypto.New()
	key, err := p.GenerateSymmetricKey(nodeKeyAlgorithm)
	if err != nil {
		return nil, fmt.Errorf("nhi: create node key: %w", err)
	}
	enc, err := crypto.MarshalSymmetricKey(key)
	if err != nil {
		return nil, fmt.Errorf("nhi: create node key: %w", err)
	}
	defer clear(enc)
	if err := writeNewFile(path, enc); err != nil {
		key.Destroy()
		return nil, fmt.Errorf("nhi: create node key: %w", err)
	}
	return &FileSealer{p: p, key: key}, nil
}

// OpenFileSealer reads the master key at path. Like ssh with a private
// key, it refuses a file that group or others may read or write: a key
// anyone can read protects nothing. A missing file is an error matching
// fs.ErrNotExist.
func OpenFileSealer(path string) (*FileSealer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("nhi: open node key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("nhi: open node key: %w", err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("nhi: open node key: mode %v allows group or other access; chmod 600 it: %w", st.Mode().Perm(), fs.ErrPermission)
	}
	// A well-formed key file is a few dozen bytes; reading a bounded
	// amount keeps a wrong path (a log file, say) from filling memory.
	buf, err := io.ReadAll(io.LimitReader(f, 256))
	defer clear(buf)
	if err != nil {
		return nil, fmt.Errorf("nhi: open node key: %w", err)
	}
	key, err := crypto.ParseSymmetricKey(buf)
	if err != nil {
		return nil, fmt.Errorf("nhi: open node key: not a node key file: %w", ErrSealed)
	}
	if key.Algorithm() != nodeKeyAlgorithm {
		key.Destroy()
		return nil, fmt.Errorf("nhi: open node key: %v key, want %v: %w", key.Algorithm(), nodeKeyAlgorithm, ErrSealed)
	}
	return &FileSealer{p: crypto.New(), key: key}, nil
}

// Seal encrypts plaintext under the master key with label as associated
// data.
func (f *FileSealer) Seal(_ context.Context, plaintext, label []byte) ([]byte, error) {
	out, err := f.p.Encrypt(f.key, plaintext, label)
	if err != nil {
		return nil, fmt.Errorf("nhi: seal: %w", err)
	}
	return out, nil
}

// Unseal decrypts what Seal produced under the same label. Any failure
// matches ErrSealed.
func (f *FileSealer) Unseal(_ context.Context, sealed, label []byte) ([]byte, error) {
	out, err := f.p.Decrypt(f.key, sealed, label)
	if err != nil {
		return nil, fmt.Errorf("nhi: unseal: %w: %w", ErrSealed, err)
	}
	return out, nil
}

// Close wipes the master key from memory; the sealer is unusable after.
func (f *FileSealer) Close() error {
	f.key.Destroy()
	return nil
}

// writeNewFile writes data to path atomically and durably: a crash leaves
// either no file or the complete one, never a torn key.
func writeNewFile(path string, data []byte) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s exists: %w", filepath.Base(path), fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".node-key-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// Link, unlike rename, fails if path appeared meanwhile, so two
	// processes racing to create the key cannot end with different keys.
	if err := os.Link(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && runtime.GOOS != "windows" {
		return err
	}
	return nil
}
