package vault

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/crypto"
)

// Store layout. Every key of this service starts with "vault/";
// docs/vault.md describes the values. Everything but the seal record is
// encrypted under the root key, bound to its key.
const (
	prefixMeta        = "vault/m/" // + path \x00 name: metaRecord
	prefixValue       = "vault/v/" // + path \x00 name \x00 u32 version: the value
	prefixDelegations = "vault/d/" // + 16-byte id: delegationRecord
	prefixLog         = "vault/l/" // + path \x00 name \x00 u32 day u64 ns u32 boot u32 seq: AccessEvent
)

// Service is the node's secret vault (seed §5). It is safe for concurrent
// use. It starts sealed; see InitShamir, InitWithBackend,
// SubmitUnsealShares and UnsealWithBackend.
type Service struct {
	cfg   settings
	store kv.Store
	p     crypto.Provider
	clock clock

	// life guards the seal state. Every operation holds a read lock for
	// its duration; init, unseal, Seal and Close take the write lock, so
	// keys are never wiped under an operation in flight. Public methods
	// never call each other, so the read lock is never taken twice.
	life     sync.RWMutex
	closed   bool
	sealRec  *sealRecord          // nil until initialized
	root     *crypto.SymmetricKey // nil while sealed
	progress []crypto.KeyShare    // Shamir shares given so far

	// writeMu serialises secret writes, so a check-and-set is atomic.
	writeMu sync.Mutex

	// Unsealed state, loaded at unseal and dropped at seal.
	dlg      delegations
	schedule rotationSchedule

	// Access-log keys: the boot id and a counter make keys written in the
	// same nanosecond (or by a restarted process) distinct.
	bootID uint32
	logSeq atomic.Uint32

	stop chan struct{}
	done chan struct{}
}

// Open starts the vault on the node's store. It is sealed: nothing can be
// read or written until it is initialized (once per store) and unsealed.
// The store stays the caller's: Close does not close it. Open also starts
// the scheduler that runs due rotations while the vault is unsealed.
func Open(ctx context.Context, store kv.Store, cfg Config) (*Service, error) {
	return open(ctx, store, cfg, realClock{})
}

func open(ctx context.Context, store kv.Store, cfg Config, clk clock) (*Service, error) {
	st, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if st.Log == nil {
		st.Log = slog.Default()
	}
	s := &Service{cfg: st, store: store, p: crypto.New(), clock: clk}
	boot, err := s.p.RandomBytes(4)
	if err != nil {
		return nil, err
	}
	s.bootID = binary.BigEndian.Uint32(boot)
	raw, err := store.Get(ctx, []byte(keySeal))
	switch {
	case errors.Is(err, kv.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("vault: open: %w", err)
	default:
		if s.sealRec, err = decodeSealRecord(raw); err != nil {
			return nil, fmt.Errorf("vault: open: seal record: %w", err)
		}
	}
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.schedulerLoop()
	return s, nil
}

// Close stops the scheduler and seals the vault, wiping its keys (as far
// as Go allows; see docs/vault.md). Calls after Close fail with
// ErrClosed; the store stays open for its owner.
func (s *Service) Close() error {
	s.life.Lock()
	if s.closed {
		s.life.Unlock()
		return opError("close", "", ErrClosed)
	}
	s.closed = true
	s.sealLocked()
	s.life.Unlock()
	close(s.stop)
	<-s.done
	return nil
}

// enter admits an operation on an unsealed vault; the caller must defer
// s.life.RUnlock() when it returns nil.
func (s *Service) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.life.RLock()
	var err error
	switch {
	case s.closed:
		err = ErrClosed
	case s.sealRec == nil:
		err = fmt.Errorf("%w: %w", ErrSealed, ErrNotInitialized)
	case s.root == nil:
		err = ErrSealed
	default:
		return nil
	}
	s.life.RUnlock()
	return err
}

// loadState reads what the vault keeps in memory while unsealed. A record
// that does not decrypt is left out and logged: its delegation cannot be
// used and its secret is not rotated, which fails closed, while the rest
// of the vault stays available.
func (s *Service) loadState(ctx context.Context) error {
	s.dlg.reset()
	s.schedule.reset()
	err := s.store.Scan(ctx, []byte(prefixDelegations), func(key, val []byte) error {
		r, err := openRecord(s, key, val, decodeDelegation)
		if err != nil {
			slog.Error("vault: unusable delegation record", "component", "vault", "err", err)
			return nil
		}
		s.dlg.add(r)
		return nil
	})
	if err != nil {
		return err
	}
	return s.store.Scan(ctx, []byte(prefixMeta), func(key, val []byte) error {
		m, err := openRecord(s, key, val, decodeMeta)
		if err != nil {
			slog.Error("vault: unusable secret record", "component", "vault", "err", err)
			return nil
		}
		s.schedule.update(m)
		return nil
	})
}

func (s *Service) dropState() {
	s.dlg.reset()
	s.schedule.reset()
}

// sealValue encrypts plaintext under the root key, bound to the store key
// it will be written under, so a record moved to another key (another
// secret, another version, another delegation) no longer decrypts.
func (s *Service) sealValue(key, plaintext []byte) ([]byte, error) {
	return s.p.Encrypt(s.root, plaintext, key)
}

// openValue decrypts a record; any failure is ErrCorrupt and returns
// nothing.
func (s *Service) openValue(key, ciphertext []byte) ([]byte, error) {
	pt, err := s.p.Decrypt(s.root, ciphertext, key)
	if err != nil {
		return nil, &corruptError{key: key, cause: err}
	}
	return pt, nil
}

// openRecord decrypts and decodes a record.
func openRecord[T any](s *Service, key, ciphertext []byte, decode func([]byte) (T, error)) (T, error) {
	var zero T
	pt, err := s.openValue(key, ciphertext)
	if err != nil {
		return zero, err
	}
	v, err := decode(pt)
	if err != nil {
		return zero, &corruptError{key: key, cause: err}
	}
	return v, nil
}

// corruptError names the store key of a record that failed to open. It
// matches ErrCorrupt.
type corruptError struct {
	key   []byte
	cause error
}

// Error names the record by its store key.
func (e *corruptError) Error() string {
	return fmt.Sprintf("corrupt record %s", quote(printableKey(e.key)))
}

// Is makes the error match ErrCorrupt.
func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }

// Unwrap returns why the record did not open: an authentication failure,
// or the decoder's complaint.
func (e *corruptError) Unwrap() error { return e.cause }

// printableKey shows a store key with its separators and binary suffixes
// made visible.
func printableKey(k []byte) string {
	out := make([]rune, 0, len(k))
	for _, c := range string(k) {
		if c < 0x20 || c == 0x7f {
			c = '·'
		}
		out = append(out, c)
	}
	return string(out)
}

// clock is the service's time source and tick source, injectable so tests
// move time and fire the scheduler without sleeping.
type clock interface {
	now() time.Time
	// ticker returns a channel that fires every d, and a stop function.
	ticker(d time.Duration) (<-chan time.Time, func())
}

type realClock struct{}

func (realClock) now() time.Time { return time.Now() }

func (realClock) ticker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}
