package nhi

import "sync"

// lru is a bounded least-recently-used map, safe for concurrent use. It
// holds parsed agent keys and verified tokens: both are costly to rebuild
// (an ML-DSA-65 key parse, a signature verification) and both must stay
// bounded however many agents or tokens a node sees.
type lru[K comparable, V any] struct {
	mu    sync.Mutex
	limit int
	m     map[K]*lruNode[K, V]
	ring  lruNode[K, V] // sentinel: ring.next is the most recent entry
}

type lruNode[K comparable, V any] struct {
	key        K
	val        V
	prev, next *lruNode[K, V]
}

func newLRU[K comparable, V any](limit int) *lru[K, V] {
	c := &lru[K, V]{limit: limit, m: make(map[K]*lruNode[K, V])}
	c.ring.prev, c.ring.next = &c.ring, &c.ring
	return c
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.m[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.unlink(n)
	c.pushFront(n)
	return n.val, true
}

// putIf stores v under k if keep, evaluated under the cache's lock,
// returns true. Writers invalidate with remove after bumping a generation
// counter; a reader that loaded v before that bump passes a keep that
// checks the counter, so a stale value can never land after the removal
// that was meant to evict it.
func (c *lru[K, V]) putIf(k K, v V, keep func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.limit <= 0 || (keep != nil && !keep()) {
		return
	}
	if n, ok := c.m[k]; ok {
		n.val = v
		c.unlink(n)
		c.pushFront(n)
		return
	}
	if len(c.m) >= c.limit {
		old := c.ring.prev
		c.unlink(old)
		delete(c.m, old.key)
	}
	n := &lruNode[K, V]{key: k, val: v}
	c.m[k] = n
	c.pushFront(n)
}

func (c *lru[K, V]) put(k K, v V) { c.putIf(k, v, nil) }

func (c *lru[K, V]) remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.m[k]; ok {
		c.unlink(n)
		delete(c.m, k)
	}
}

// drain empties the cache and hands every value to fn, so Close can wipe
// cached private keys.
func (c *lru[K, V]) drain(fn func(V)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, n := range c.m {
		fn(n.val)
		delete(c.m, k)
	}
	c.ring.prev, c.ring.next = &c.ring, &c.ring
}

func (c *lru[K, V]) unlink(n *lruNode[K, V]) {
	n.prev.next = n.next
	n.next.prev = n.prev
}

func (c *lru[K, V]) pushFront(n *lruNode[K, V]) {
	n.prev = &c.ring
	n.next = c.ring.next
	c.ring.next.prev = n
	c.ring.next = n
}
