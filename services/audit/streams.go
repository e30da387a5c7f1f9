package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/creto-systems/creto/internal/kv"
)

// hashStreams reads the stored tree hashes level by level in node order,
// each level by one scan in its own goroutine, for a reader that walks
// the records in order (verification, export). A record completes at
// most one node per level and in order, so checking its hashes costs a
// channel receive per level instead of a store lookup: about 50 times
// less for a full verification.
type hashStreams struct {
	ctx    context.Context
	store  kv.Store
	stop   chan struct{}
	wg     sync.WaitGroup
	levels [maxLevels]chan storedNode
}

// storedNode is one stored hash with its node index, or a read error.
type storedNode struct {
	n   int64
	h   tlog.Hash
	err error
}

func newHashStreams(ctx context.Context, store kv.Store) *hashStreams {
	return &hashStreams{ctx: ctx, store: store, stop: make(chan struct{})}
}

// next returns the stored hash of node n of level l, which must be the
// node after the one last asked for at that level (node 0 first).
func (s *hashStreams) next(l int, n int64) (tlog.Hash, error) {
	ch := s.levels[l]
	if ch == nil {
		ch = make(chan storedNode, 1024)
		s.levels[l] = ch
		s.wg.Add(1)
		go s.scan(l, ch)
	}
	got, ok := <-ch
	switch {
	case !ok:
		return tlog.Hash{}, detail(ErrMalformed, "stored tree hash (level %d) missing", l)
	case got.err != nil:
		return tlog.Hash{}, got.err
	case got.n != n:
		// The level skips node n: it is missing (a later node, or a
		// malformed entry, was found where it should be).
		return tlog.Hash{}, detail(ErrMalformed, "stored tree hash (level %d) missing", l)
	}
	return got.h, nil
}

func (s *hashStreams) scan(l int, ch chan<- storedNode) {
	defer s.wg.Done()
	defer close(ch)
	prefix := append([]byte(prefixHashes), byte(l))
	err := s.store.Scan(s.ctx, prefix, func(key, val []byte) error {
		item := storedNode{n: -1}
		if len(key) == len(prefix)+8 && len(val) == tlog.HashSize {
			item = storedNode{n: int64(binary.BigEndian.Uint64(key[len(prefix):])), h: tlog.Hash(val)}
		}
		select {
		case ch <- item:
			return nil
		case <-s.stop:
			return errStop
		}
	})
	if err != nil && !errors.Is(err, errStop) {
		select {
		case ch <- storedNode{err: err}:
		case <-s.stop:
		}
	}
}

// close stops the scans and waits for them, so none outlives its caller
// (or the store).
func (s *hashStreams) close() {
	close(s.stop)
	s.wg.Wait()
}
