package engine

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// CacheConfig sets up the allow-only decision cache (seed §2.6).
type CacheConfig struct {
	// Enabled turns the cache on.
	Enabled bool
	// TTL bounds how long an Allow is reused.
	TTL time.Duration
	// MaxEntries bounds the cache's size; the oldest entries go first.
	MaxEntries int
}

// DefaultCacheConfig matches the seed's [authz] defaults.
var DefaultCacheConfig = CacheConfig{Enabled: true, TTL: 60 * time.Second, MaxEntries: 10000}

const cacheShards = 16

// decisionCache remembers Allow decisions only: a stale Deny would be a
// nuisance, but a stale Allow after a policy tightened would be a hole, so
// every entry is tied to the policy epoch and entity revision it was made
// under and dies with them.
type decisionCache struct {
	ttl    int64 // nanoseconds
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu      sync.RWMutex
	entries map[uint64]*cacheEntry
	fifo    []uint64 // insertion order, for eviction
	next    int
	hits    atomic.Uint64
	misses  atomic.Uint64
	_       [64]byte // keep shards on separate cache lines
}

type cacheEntry struct {
	key       []byte
	epoch     uint64
	entityRev uint64
	expires   int64
	decision  Decision
}

func newDecisionCache(cfg CacheConfig) *decisionCache {
	c := &decisionCache{ttl: int64(cfg.TTL), seed: maphash.MakeSeed()}
	per := max(cfg.MaxEntries/cacheShards, 1)
	for i := range c.shards {
		c.shards[i].entries = make(map[uint64]*cacheEntry, per)
		c.shards[i].fifo = make([]uint64, 0, per)
	}
	return c
}

func (c *decisionCache) get(key []byte, epoch, entityRev uint64, now int64) (Decision, uint64, bool) {
	h := maphash.Bytes(c.seed, key)
	s := &c.shards[h%cacheShards]
	s.mu.RLock()
	e := s.entries[h]
	ok := e != nil && e.epoch == epoch && e.entityRev == entityRev && now < e.expires && bytes.Equal(e.key, key)
	var d Decision
	if ok {
		d = e.decision
	}
	s.mu.RUnlock()
	if ok {
		s.hits.Add(1)
	} else {
		s.misses.Add(1)
	}
	return d, h, ok
}

func (c *decisionCache) put(h uint64, key []byte, epoch, entityRev uint64, now int64, d Decision) {
	e := &cacheEntry{key: bytes.Clone(key), epoch: epoch, entityRev: entityRev, expires: now + c.ttl, decision: d}
	s := &c.shards[h%cacheShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.entries[h]; !exists {
		if len(s.fifo) < cap(s.fifo) {
			s.fifo = append(s.fifo, h)
		} else {
			delete(s.entries, s.fifo[s.next])
			s.fifo[s.next] = h
			s.next = (s.next + 1) % len(s.fifo)
		}
	}
	s.entries[h] = e
}

// purge drops everything; called when policies change so dead entries do
// not hold memory until they are evicted.
func (c *decisionCache) purge() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.entries)
		s.fifo, s.next = s.fifo[:0], 0
		s.mu.Unlock()
	}
}

func (c *decisionCache) stats() CacheStats {
	var st CacheStats
	for i := range c.shards {
		s := &c.shards[i]
		st.Hits += s.hits.Load()
		st.Misses += s.misses.Load()
		s.mu.RLock()
		st.Entries += len(s.entries)
		s.mu.RUnlock()
	}
	return st
}

// CacheStats counts the decision cache's work since the engine started.
type CacheStats struct {
	Hits, Misses uint64
	Entries      int
}

// appendKey encodes every field a decision depends on, each length-prefixed
// so no two different requests share an encoding. The trace id is left out:
// it never changes a decision.
func appendKey(b []byte, r *Request) []byte {
	b = appendField(b, r.Principal.Type)
	b = appendField(b, r.Principal.ID)
	b = appendField(b, r.Principal.Attributes)
	b = binary.AppendUvarint(b, uint64(len(r.Delegation)))
	for _, d := range r.Delegation {
		b = appendField(b, d.Type)
		b = appendField(b, d.ID)
	}
	a := r.actionRef()
	b = appendField(b, a.Type)
	b = appendField(b, a.ID)
	b = appendField(b, r.Resource.Type)
	b = appendField(b, r.Resource.ID)
	return appendField(b, r.Context)
}

func appendField[T ~string | ~[]byte](b []byte, s T) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
