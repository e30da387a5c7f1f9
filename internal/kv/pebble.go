package kv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// formatVersion pins the on-disk format, so upgrading the pebble module
// never silently ratchets a node's files to a format an older binary cannot
// read; raising it is a deliberate change.
const formatVersion = pebble.FormatValueSeparation

// Open opens the store in dir, creating it if needed. Only one process may
// have a directory open at a time; a second Open fails on pebble's lock.
func Open(dir string) (Store, error) {
	db, err := pebble.Open(dir, &pebble.Options{
		FormatMajorVersion: formatVersion,
		// The audit log appends several keys per record, never deleted:
		// with pebble's 4 MiB default, flushes and L0 compactions took a
		// third of a busy node's CPU. 64 MiB (CockroachDB's figure) cut a
		// served audited decision's CPU by 32 % (bench/RESULTS.md). Pebble
		// grows memtables to this size from 256 KiB, so an idle node does
		// not pay for it.
		MemTableSize: 64 << 20,
		Logger:       slogLogger{},
	})
	if err != nil {
		return nil, fmt.Errorf("kv: open: %w", err)
	}
	s := &pebbleStore{db: db, drained: make(chan struct{})}
	return s, nil
}

type pebbleStore struct {
	db *pebble.DB
	// gate counts operations in flight; closedBit is set once Close starts.
	// pebble panics on any use after Close, so every call enters the gate,
	// and Close waits for the count to drain before closing the DB. A plain
	// RWMutex would deadlock a Scan callback that calls Get while Close is
	// waiting; the gate turns that Get into ErrClosed instead.
	gate    atomic.Int64
	drained chan struct{}
}

const closedBit = int64(1) << 62

func (s *pebbleStore) enter() error {
	for {
		n := s.gate.Load()
		if n&closedBit != 0 {
			return ErrClosed
		}
		if s.gate.CompareAndSwap(n, n+1) {
			return nil
		}
	}
}

func (s *pebbleStore) leave() {
	if s.gate.Add(-1) == closedBit {
		close(s.drained)
	}
}

// Get copies the value out because pebble's slice is only valid until
// its closer is closed.
func (s *pebbleStore) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("kv: get: %w", err)
	}
	out := clone(v)
	if err := closer.Close(); err != nil {
		return nil, fmt.Errorf("kv: get: %w", err)
	}
	return out, nil
}

// Apply validates the whole batch before building pebble's, so a bad
// operation rejects the batch without writing any of it.
func (s *pebbleStore) Apply(ctx context.Context, b *Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b == nil || len(b.ops) == 0 {
		return nil
	}
	if err := b.validate(); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	pb := s.db.NewBatch()
	defer pb.Close()
	for _, o := range b.ops {
		var err error
		if o.del {
			err = pb.Delete(o.key, nil)
		} else {
			err = pb.Set(o.key, o.value, nil)
		}
		if err != nil {
			return fmt.Errorf("kv: apply: %w", err)
		}
	}
	// Past this point the batch is handed to the commit pipeline; the
	// context is not consulted again, so a cancelled caller never leaves
	// the outcome of a commit unknown.
	if err := pb.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("kv: apply: %w", err)
	}
	return nil
}

// Scan reads through one pebble iterator, which sees the store as of its
// creation: that is what makes a scan a consistent snapshot.
func (s *pebbleStore) Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	opts := &pebble.IterOptions{}
	if len(prefix) > 0 {
		opts.LowerBound = prefix
		opts.UpperBound = PrefixEnd(prefix)
	}
	it, err := s.db.NewIterWithContext(ctx, opts)
	if err != nil {
		return fmt.Errorf("kv: scan: %w", err)
	}
	err = iterate(ctx, it, fn)
	if cerr := it.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("kv: scan: %w", cerr)
	}
	return err
}

func iterate(ctx context.Context, it *pebble.Iterator, fn func(key, value []byte) error) error {
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("kv: scan: %w", err)
		}
		if err := fn(it.Key(), v); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("kv: scan: %w", err)
	}
	return nil
}

// Close marks the store closed first, so new calls fail at once while
// calls in flight finish.
func (s *pebbleStore) Close() error {
	old := s.gate.Or(closedBit)
	if old&closedBit != 0 {
		return ErrClosed
	}
	if old == 0 {
		close(s.drained)
	}
	<-s.drained
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("kv: close: %w", err)
	}
	return nil
}

// slogLogger sends pebble's messages to the process logger instead of the
// standard library's, at debug level for its routine notices.
type slogLogger struct{}

// Infof logs at debug level: pebble's routine notices are noise in a
// node's log.
func (slogLogger) Infof(format string, args ...any) {
	slog.Debug(fmt.Sprintf(format, args...), "component", "kv")
}

// Errorf logs at error level.
func (slogLogger) Errorf(format string, args ...any) {
	slog.Error(fmt.Sprintf(format, args...), "component", "kv")
}

// Fatalf must not return: pebble calls it on invariant violations (such as
// on-disk corruption) after which continuing could lose data.
func (slogLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	slog.Error(msg, "component", "kv")
	panic("kv: " + msg)
}
