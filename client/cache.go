package client

import (
	"container/list"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/creto-systems/creto/services/crypto"
)

// cache is a bounded map with an expiry per entry and least-recently-used
// eviction: the authz decision cache, the memory answer cache, the vault's
// secrets and NHI's agents and keys are all one. A nil *cache is a
// disabled one: it keeps nothing.
type cache[K comparable, V any] struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	now   func() time.Time
	items map[K]*list.Element
	order *list.List // of *entry[K, V], most recently used first
	// clone copies a value as it goes in and out, so that neither the
	// caller nor the cache can change what the other holds.
	clone func(V) V
	// drop runs, under the lock, on every value that leaves the cache:
	// evicted, expired, replaced or purged (the vault wipes secrets).
	drop func(V)
}

type entry[K comparable, V any] struct {
	key     K
	val     V
	expires time.Time
}

// newCache returns a cache for cfg, or nil when cfg disables it.
func newCache[K comparable, V any](cfg cacheConfig, clone func(V) V, drop func(V)) *cache[K, V] {
	if !cfg.enabled || cfg.entries == 0 || cfg.ttl <= 0 {
		return nil
	}
	if clone == nil {
		clone = func(v V) V { return v }
	}
	if drop == nil {
		drop = func(V) {}
	}
	return &cache[K, V]{ttl: cfg.ttl, max: cfg.entries, now: time.Now, items: map[K]*list.Element{}, order: list.New(), clone: clone, drop: drop}
}

// get returns a copy of the value under k, unless it is missing or
// expired.
func (c *cache[K, V]) get(k K) (V, bool) {
	var zero V
	if c == nil {
		return zero, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return zero, false
	}
	e := el.Value.(*entry[K, V])
	if !c.now().Before(e.expires) {
		c.removeLocked(el)
		return zero, false
	}
	c.order.MoveToFront(el)
	return c.clone(e.val), true
}

// put keeps a copy of v under k until the cache's TTL has passed, or
// until expires if that is sooner (a zero expires means no sooner).
func (c *cache[K, V]) put(k K, v V, expires time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	until := c.now().Add(c.ttl)
	if !expires.IsZero() && expires.Before(until) {
		until = expires
	}
	if el, ok := c.items[k]; ok {
		c.removeLocked(el)
	}
	if !c.now().Before(until) {
		return
	}
	c.items[k] = c.order.PushFront(&entry[K, V]{key: k, val: c.clone(v), expires: until})
	for c.order.Len() > c.max {
		c.removeLocked(c.order.Back())
	}
}

// purge forgets everything.
func (c *cache[K, V]) purge() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.order.Len() > 0 {
		c.removeLocked(c.order.Back())
	}
}

func (c *cache[K, V]) removeLocked(el *list.Element) {
	e := c.order.Remove(el).(*entry[K, V])
	delete(c.items, e.key)
	c.drop(e.val)
}

// requestKey is the cache key of a request: a BLAKE3 hash of the method
// and the request's deterministic encoding, so that equal requests (maps
// included) share a key and a hash of fixed size bounds the cache's
// memory whatever the requests' sizes.
func requestKey(p crypto.Provider, method string, m proto.Message) ([32]byte, error) {
	var key [32]byte
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return key, err
	}
	sum, err := p.Hash(crypto.BLAKE3, append([]byte(method+"\x00"), b...))
	if err != nil {
		return key, err
	}
	copy(key[:], sum)
	return key, nil
}
