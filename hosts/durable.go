package hosts

import (
	"context"
	"encoding/binary"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/creto-systems/creto/internal/kv"
)

// Key prefixes of extension state in the node's store.
const (
	statePrefix   = "state/"
	valuePrefix   = statePrefix + "v/"
	counterPrefix = statePrefix + "c/"
	bucketPrefix  = statePrefix + "b/"
)

// DurableState keeps extension state in the node's store (internal/kv).
// Values are written through: Set returns once the value is on disk.
// Counters and token buckets are served from memory and written behind
// every flush interval, so a metered check never waits for an fsync; a
// crash loses at most the increments of the last interval (an extension
// then under-counts, never over-counts, by that much). Close flushes.
type DurableState struct {
	mem   *MemoryState
	store kv.Store

	mu    sync.Mutex // guards dirty
	dirty map[string]bool
	stop  chan struct{}
	done  chan struct{}
}

var _ StateStore = (*DurableState)(nil)

// OpenDurableState loads the state kept in store and starts writing
// counters behind every interval (100 ms when zero).
func OpenDurableState(ctx context.Context, store kv.Store, interval time.Duration) (*DurableState, error) {
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	d := &DurableState{mem: NewMemoryState(), store: store, dirty: map[string]bool{},
		stop: make(chan struct{}), done: make(chan struct{})}
	err := store.Scan(ctx, []byte(statePrefix), func(k, v []byte) error {
		key := string(k)
		switch {
		case strings.HasPrefix(key, valuePrefix):
			d.mem.values[key[len(valuePrefix):]] = append([]byte(nil), v...)
		case strings.HasPrefix(key, counterPrefix) && len(v) == 16:
			d.mem.counters[key[len(counterPrefix):]] = counter{window: int64(le.Uint64(v)), value: int64(le.Uint64(v[8:]))}
		case strings.HasPrefix(key, bucketPrefix) && len(v) == 16:
			d.mem.buckets[key[len(bucketPrefix):]] = bucket{tokens: math.Float64frombits(le.Uint64(v)), at: time.Unix(0, int64(le.Uint64(v[8:])))}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	go d.writeBehind(interval)
	return d, nil
}

var le = binary.LittleEndian

// Get implements StateStore.
func (d *DurableState) Get(ctx context.Context, key string) ([]byte, bool, error) {
	return d.mem.Get(ctx, key)
}

// Set implements StateStore, durably.
func (d *DurableState) Set(ctx context.Context, key string, value []byte) error {
	var b kv.Batch
	b.Set([]byte(valuePrefix+key), value)
	if err := d.store.Apply(ctx, &b); err != nil {
		return err
	}
	return d.mem.Set(ctx, key, value)
}

// Add implements StateStore; the new value is written behind.
func (d *DurableState) Add(ctx context.Context, key string, delta int64, window time.Duration, now time.Time) (int64, error) {
	v, err := d.mem.Add(ctx, key, delta, window, now)
	d.markDirty(counterPrefix + key)
	return v, err
}

// Take implements StateStore; the bucket is written behind.
func (d *DurableState) Take(ctx context.Context, key string, rate float64, burst int64, now time.Time) (Bucket, error) {
	b, err := d.mem.Take(ctx, key, rate, burst, now)
	d.markDirty(bucketPrefix + key)
	return b, err
}

func (d *DurableState) markDirty(key string) {
	d.mu.Lock()
	d.dirty[key] = true
	d.mu.Unlock()
}

func (d *DurableState) writeBehind(interval time.Duration) {
	defer close(d.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			// A failed flush keeps its keys dirty for the next one.
			_ = d.Flush(context.Background())
		}
	}
}

// Flush writes every counter and bucket changed since the last flush.
func (d *DurableState) Flush(ctx context.Context) error {
	d.mu.Lock()
	dirty := d.dirty
	d.dirty = map[string]bool{}
	d.mu.Unlock()
	if len(dirty) == 0 {
		return nil
	}
	var b kv.Batch
	var buf [16]byte
	d.mem.mu.Lock()
	for key := range dirty {
		switch {
		case strings.HasPrefix(key, counterPrefix):
			c := d.mem.counters[key[len(counterPrefix):]]
			le.PutUint64(buf[:], uint64(c.window))
			le.PutUint64(buf[8:], uint64(c.value))
		default:
			bk := d.mem.buckets[key[len(bucketPrefix):]]
			le.PutUint64(buf[:], math.Float64bits(bk.tokens))
			le.PutUint64(buf[8:], uint64(bk.at.UnixNano()))
		}
		b.Set([]byte(key), buf[:])
	}
	d.mem.mu.Unlock()
	if err := d.store.Apply(ctx, &b); err != nil {
		d.mu.Lock()
		for key := range dirty {
			d.dirty[key] = true
		}
		d.mu.Unlock()
		return err
	}
	return nil
}

// Close stops writing behind and flushes what is left. It does not close
// the store, which belongs to the node.
func (d *DurableState) Close(ctx context.Context) error {
	close(d.stop)
	<-d.done
	return d.Flush(ctx)
}
