package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/creto-systems/creto/internal/kv"
)

// maxLevels is the height of the tallest tree an int64 size allows.
const maxLevels = 64

// The tree's stored hashes are those tlog.StoredHashes produces for each
// record, kept in the store under a level-first key,
// "audit/h/" + level (1 byte) + node index (8 bytes, big-endian), so one
// level is one contiguous key range and can be loaded with one scan.
func hashKey(level int, n int64) []byte {
	k := make([]byte, 0, len(prefixHashes)+9)
	k = append(k, prefixHashes...)
	k = append(k, byte(level))
	return binary.BigEndian.AppendUint64(k, uint64(n))
}

// tree is the Merkle tree's in-memory state: its size, the last node of
// every level (all an append or a root needs), and every node of the
// levels from pin up (what proofs need besides a few leaves), within the
// configured memory budget. The levels below pin are read from the store.
type tree struct {
	size   int64
	last   [maxLevels]tlog.Hash
	pin    int
	levels [maxLevels]hashList
	budget int64 // hashes the pinned levels may hold
}

// hashList is one pinned level: its hashes in chunks of a fixed size, so
// the memory taken is the hashes themselves — an appended slice would
// hold up to twice the budget each time it doubles.
type hashList struct {
	chunks [][]tlog.Hash
	n      int64
}

const hashChunk = 4096

func (h *hashList) len() int64 { return h.n }

func (h *hashList) at(i int64) tlog.Hash { return h.chunks[i/hashChunk][i%hashChunk] }

func (h *hashList) append(hs ...tlog.Hash) {
	for _, x := range hs {
		if h.n%hashChunk == 0 {
			h.chunks = append(h.chunks, make([]tlog.Hash, 0, hashChunk))
		}
		c := &h.chunks[len(h.chunks)-1]
		*c = append(*c, x)
		h.n++
	}
}

// nodesFrom counts the nodes of every level from pin up in a tree of size
// leaves.
func nodesFrom(pin int, size int64) int64 {
	var n int64
	for l := pin; l < maxLevels && size>>l > 0; l++ {
		n += size >> l
	}
	return n
}

// lastIndex is the index of the last complete node of level l, or -1.
func lastIndex(size int64, l int) int64 { return size>>l - 1 }

// load reads the tree of the given size from the store: the pinned levels
// in one scan each, the last node of each level below.
func (t *tree) load(ctx context.Context, store kv.Store, size int64) error {
	t.size = size
	t.pin = 0
	for nodesFrom(t.pin, size) > t.budget {
		t.pin++
	}
	for l := 0; l < maxLevels && size>>l > 0; l++ {
		if l < t.pin {
			h, err := getHash(ctx, store, l, lastIndex(size, l))
			if err != nil {
				return err
			}
			t.last[l] = h
			continue
		}
		want := size >> l
		var nodes hashList
		prefix := append([]byte(prefixHashes), byte(l))
		err := store.Scan(ctx, prefix, func(key, val []byte) error {
			if nodes.len() == want {
				return errStop // nodes past the committed size: left by no commit we know of, ignored
			}
			if len(key) != len(prefix)+8 || len(val) != tlog.HashSize ||
				int64(binary.BigEndian.Uint64(key[len(prefix):])) != nodes.len() {
				return detail(ErrMalformed, "stored hash level %d node %d is missing or malformed", l, nodes.len())
			}
			nodes.append(tlog.Hash(val))
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return err
		}
		if nodes.len() != want {
			return detail(ErrMalformed, "level %d has %d stored hashes, a tree of %d records needs %d", l, nodes.len(), size, want)
		}
		t.levels[l] = nodes
		t.last[l] = nodes.at(want - 1)
	}
	return nil
}

// publish makes a committed append visible: the new size and frontier,
// and the new nodes of the pinned levels. It then unpins the lowest
// levels while the pinned nodes exceed the budget. The caller holds the
// write lock.
func (t *tree) publish(size int64, last *[maxLevels]tlog.Hash, added *[maxLevels][]tlog.Hash) {
	t.size = size
	t.last = *last
	for l := t.pin; l < maxLevels; l++ {
		t.levels[l].append(added[l]...)
	}
	for nodesFrom(t.pin, size) > t.budget && t.pin < maxLevels-1 {
		t.levels[t.pin] = hashList{}
		t.pin++
	}
}

// errStop ends a scan early; it never leaves the package.
var errStop = errors.New("stop")

func getHash(ctx context.Context, store kv.Store, l int, n int64) (tlog.Hash, error) {
	v, err := store.Get(ctx, hashKey(l, n))
	if errors.Is(err, kv.ErrNotFound) {
		return tlog.Hash{}, detail(ErrMalformed, "stored hash level %d node %d is missing", l, n)
	}
	if err != nil {
		return tlog.Hash{}, err
	}
	if len(v) != tlog.HashSize {
		return tlog.Hash{}, detail(ErrMalformed, "stored hash level %d node %d is %d bytes", l, n, len(v))
	}
	return tlog.Hash(v), nil
}

// hashReader serves tlog's stored-hash reads for proofs and roots of any
// committed size: pinned levels and frontier nodes from memory, the rest
// from the store.
func (s *Service) hashReader(ctx context.Context) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		var fromStore []int
		s.mu.RLock()
		t := &s.t
		for i, ix := range indexes {
			l, n := tlog.SplitStoredHashIndex(ix)
			switch {
			case l >= t.pin && n < t.levels[l].len():
				out[i] = t.levels[l].at(n)
			case n == lastIndex(t.size, l):
				out[i] = t.last[l]
			default:
				fromStore = append(fromStore, i)
			}
		}
		s.mu.RUnlock()
		for _, i := range fromStore {
			l, n := tlog.SplitStoredHashIndex(indexes[i])
			h, err := getHash(ctx, s.store, l, n)
			if err != nil {
				return nil, err
			}
			out[i] = h
		}
		return out, nil
	})
}

// frontierReader serves the reads of an append or a root at size: only
// the last node of each level, which is all tlog asks for then.
func frontierReader(size int64, last *[maxLevels]tlog.Hash) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, ix := range indexes {
			l, n := tlog.SplitStoredHashIndex(ix)
			if n != lastIndex(size, l) {
				return nil, fmt.Errorf("audit: internal error: hash level %d node %d is not on the frontier of a tree of %d", l, n, size)
			}
			out[i] = last[l]
		}
		return out, nil
	})
}
