package hosts

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
)

// Size limits of creto:state/v1 (SPEC.md §6.3).
const (
	MaxStateKey   = 256
	MaxStateValue = 64 << 10
)

// StateStore keeps extension state. Keys arrive already namespaced by
// extension. Add must be atomic: concurrent instances of one extension
// count through it.
type StateStore interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, value []byte) error
	// Add adds delta to the counter at key and returns the new value. With
	// window > 0 the counter belongs to the window containing now (windows
	// start at multiples of window since the Unix epoch) and restarts from
	// zero in each new window.
	Add(ctx context.Context, key string, delta int64, window time.Duration, now time.Time) (int64, error)
	// Take takes one token from the token bucket at key, which refills at
	// rate tokens per second up to burst. It reports whether a token was
	// taken, how many remain, and when the next one will be available.
	Take(ctx context.Context, key string, rate float64, burst int64, now time.Time) (Bucket, error)
}

// Bucket is the outcome of StateStore.Take.
type Bucket struct {
	Taken      bool
	Remaining  int64
	RetryAfter time.Duration // zero when a token was taken
}

// State is creto:state/v1: a key-value store and counters private to each
// extension. Counters live on the host, never in guest memory, so every
// pooled instance of an extension sees the same counts.
type State struct {
	Store StateStore
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

var _ engine.HostModule = State{}

// Capability implements engine.HostModule.
func (State) Capability() string { return abi.CapabilityState }

// Functions implements engine.HostModule. Every key is prefixed with the
// extension's name, so extensions cannot read or change each other's state.
func (s State) Functions(ext string) []engine.HostFunction {
	now := s.Now
	if now == nil {
		now = time.Now
	}
	prefix := "ext/" + ext + "/"
	// i32 arguments arrive in the low 32 bits of a stack slot; the upper
	// bits are not defined.
	key := func(m api.Module, ptr, n uint64) (string, bool) {
		if uint32(n) > MaxStateKey {
			return "", false
		}
		b, ok := engine.GuestBytes(m, uint32(ptr), uint32(n))
		return prefix + string(b), ok
	}
	fail := func(stack []uint64, code int64) { stack[0] = uint64(code) }
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	return []engine.HostFunction{
		{Name: "get", Params: []api.ValueType{i32, i32, i32, i32}, Results: []api.ValueType{i32},
			Func: func(ctx context.Context, m api.Module, stack []uint64) {
				k, ok := key(m, stack[0], stack[1])
				if !ok {
					fail(stack, abi.EInvalid)
					return
				}
				v, found, err := s.Store.Get(ctx, k)
				switch {
				case err != nil:
					fail(stack, abi.EUnavailable)
				case !found:
					fail(stack, abi.ENotFound)
				default:
					stack[0] = uint64(engine.PutResult(m, uint32(stack[2]), uint32(stack[3]), v))
				}
			}},
		{Name: "set", Params: []api.ValueType{i32, i32, i32, i32}, Results: []api.ValueType{i32},
			Func: func(ctx context.Context, m api.Module, stack []uint64) {
				k, ok := key(m, stack[0], stack[1])
				v, vok := engine.GuestBytes(m, uint32(stack[2]), uint32(stack[3]))
				if !ok || !vok || len(v) > MaxStateValue {
					fail(stack, abi.EInvalid)
					return
				}
				if err := s.Store.Set(ctx, k, append([]byte(nil), v...)); err != nil {
					fail(stack, abi.EUnavailable)
					return
				}
				stack[0] = 0
			}},
		{Name: "add", Params: []api.ValueType{i32, i32, i64, i64}, Results: []api.ValueType{i64},
			Func: func(ctx context.Context, m api.Module, stack []uint64) {
				k, ok := key(m, stack[0], stack[1])
				window := time.Duration(int64(stack[3]))
				if !ok || window < 0 {
					fail(stack, abi.EInvalid)
					return
				}
				v, err := s.Store.Add(ctx, k, int64(stack[2]), window, now())
				if err != nil {
					fail(stack, abi.EUnavailable)
					return
				}
				stack[0] = uint64(v)
			}},
		{Name: "take", Params: []api.ValueType{i32, i32, i64, i64, i32}, Results: []api.ValueType{i32},
			Func: func(ctx context.Context, m api.Module, stack []uint64) {
				k, ok := key(m, stack[0], stack[1])
				rateMilli, burst := int64(stack[2]), int64(stack[3])
				if !ok || rateMilli <= 0 || burst <= 0 {
					fail(stack, abi.EInvalid)
					return
				}
				b, err := s.Store.Take(ctx, k, float64(rateMilli)/1000, burst, now())
				if err != nil {
					fail(stack, abi.EUnavailable)
					return
				}
				var out [16]byte
				binary.LittleEndian.PutUint64(out[:], uint64(b.Remaining))
				binary.LittleEndian.PutUint64(out[8:], uint64(b.RetryAfter))
				if !m.Memory().Write(uint32(stack[4]), out[:]) {
					fail(stack, abi.EInvalid)
					return
				}
				stack[0] = 0
				if !b.Taken {
					stack[0] = 1
				}
			}},
	}
}

// MemoryState is a StateStore in memory: for tests, demos and state that
// may be lost on restart.
type MemoryState struct {
	mu       sync.Mutex
	values   map[string][]byte
	counters map[string]counter
	buckets  map[string]bucket
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

type counter struct {
	window int64 // index of the window the value belongs to
	value  int64
}

// NewMemoryState returns an empty in-memory store.
func NewMemoryState() *MemoryState {
	return &MemoryState{values: map[string][]byte{}, counters: map[string]counter{}, buckets: map[string]bucket{}}
}

// Get implements StateStore.
func (s *MemoryState) Get(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.values[key]
	return v, ok, nil
}

// Set implements StateStore.
func (s *MemoryState) Set(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values[key] = value
	return nil
}

// Add implements StateStore.
func (s *MemoryState) Add(_ context.Context, key string, delta int64, window time.Duration, now time.Time) (int64, error) {
	w := windowIndex(now, window)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counters[key]
	if c.window != w {
		c = counter{window: w}
	}
	c.value += delta
	s.counters[key] = c
	return c.value, nil
}

// Take implements StateStore.
func (s *MemoryState) Take(_ context.Context, key string, rate float64, burst int64, now time.Time) (Bucket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.buckets[key]
	if !ok {
		b = bucket{tokens: float64(burst), at: now}
	}
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = min(float64(burst), b.tokens+elapsed.Seconds()*rate)
		b.at = now
	}
	var out Bucket
	if b.tokens >= 1 {
		b.tokens--
		out.Taken = true
	} else {
		out.RetryAfter = time.Duration((1 - b.tokens) / rate * float64(time.Second))
	}
	out.Remaining = int64(b.tokens)
	s.buckets[key] = b
	return out, nil
}

// windowIndex numbers the window now falls in; 0 for unwindowed counters.
func windowIndex(now time.Time, window time.Duration) int64 {
	if window <= 0 {
		return 0
	}
	return now.UnixNano()/int64(window) + 1
}
