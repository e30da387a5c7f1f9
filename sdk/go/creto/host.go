//go:build wasip1

package creto

import (
	"time"
	"unsafe"
)

// Host functions (abi/SPEC.md §6). Only those an extension calls end up
// among its imports, so a module requests exactly what it uses.

//go:wasmimport creto:log/v1 write
func hostLog(level, ptr, n uint32)

//go:wasmimport creto:request/v1 context
func hostContext(ptr, n uint32) int32

//go:wasmimport creto:time/v1 now
func hostNow() int64

//go:wasmimport creto:state/v1 get
func hostStateGet(keyPtr, keyLen, outPtr, outCap uint32) int32

//go:wasmimport creto:state/v1 set
func hostStateSet(keyPtr, keyLen, valPtr, valLen uint32) int32

//go:wasmimport creto:state/v1 add
func hostStateAdd(keyPtr, keyLen uint32, delta, windowNS int64) int64

//go:wasmimport creto:state/v1 take
func hostStateTake(keyPtr, keyLen uint32, rateMilli, burst int64, outPtr uint32) int32

//go:wasmimport creto:prefilter/v1 add
func hostPrefilterAdd(keyPtr, keyLen uint32) int32

//go:wasmimport creto:prefilter/v1 reset
func hostPrefilterReset() int32

//go:wasmimport creto:prefilter/v1 commit
func hostPrefilterCommit() int32

// Log levels.
const (
	Debug = iota
	Info
	Warn
	Error
)

// Log writes a line to the engine's log (rate-limited, capped at 1 KiB).
func Log(level int, msg string) { hostLog(uint32(level), ptr(msg), uint32(len(msg))) }

// Now is the node's clock (capability "time").
func Now() time.Time { return time.Unix(0, hostNow()) }

// ErrHost is returned when a host function fails; Code is the ABI's errno.
type ErrHost struct{ Code int64 }

func (e ErrHost) Error() string {
	switch e.Code {
	case -1:
		return "host: denied"
	case -2:
		return "host: not found"
	case -3:
		return "host: deadline"
	case -4:
		return "host: invalid argument"
	case -5:
		return "host: unavailable"
	}
	return "host: error"
}

// The ABI's error codes (SPEC.md §6), matchable with errors.Is.
var (
	// ErrDenied: not allowed (the capability's scope, another identity's
	// secret or object).
	ErrDenied = ErrHost{Code: -1}
	// ErrNotFound: no such key, agent, secret or object.
	ErrNotFound = ErrHost{Code: -2}
	// ErrDeadline: the check's deadline passed.
	ErrDeadline = ErrHost{Code: -3}
	// ErrInvalid: bad arguments (a bad name, an oversize value).
	ErrInvalid = ErrHost{Code: -4}
	// ErrUnavailable: the backing service cannot answer.
	ErrUnavailable = ErrHost{Code: -5}
)

// StateAdd adds delta to a counter (capability "state") and returns its new
// value; with window > 0 the counter restarts in every window.
func StateAdd(key string, delta int64, window time.Duration) (int64, error) {
	v := hostStateAdd(ptr(key), uint32(len(key)), delta, int64(window))
	if v < 0 && v >= -5 {
		return 0, ErrHost{Code: v}
	}
	return v, nil
}

// Take takes one token from a host-side token bucket refilled at rate
// tokens per second up to burst (capability "state"). It reports whether a
// token was taken, the tokens left and, when none was, how long until the
// next one.
func Take(key string, rate float64, burst int64) (taken bool, remaining int64, retryAfter time.Duration, err error) {
	var out [2]int64
	n := hostStateTake(ptr(key), uint32(len(key)), int64(rate*1000), burst, uint32(uintptr(unsafe.Pointer(&out[0]))))
	if n < 0 {
		return false, 0, 0, ErrHost{Code: int64(n)}
	}
	return n == 0, out[0], time.Duration(out[1]), nil
}

// StateGet reads a value (capability "state").
func StateGet(key string) ([]byte, error) {
	return fetch(256, func(out, n uint32) int32 { return hostStateGet(ptr(key), uint32(len(key)), out, n) })
}

// StateSet writes a value (capability "state").
func StateSet(key string, value []byte) error {
	if n := hostStateSet(ptr(key), uint32(len(key)), bytesPtr(value), uint32(len(value))); n < 0 {
		return ErrHost{Code: int64(n)}
	}
	return nil
}

// Prefilter manages the host-side bloom filter (capability "prefilter"):
// Reset, Add the keys the extension cares about, then Commit.
type Prefilter struct{}

// Reset starts a new, empty filter.
func (Prefilter) Reset() error { return check(hostPrefilterReset()) }

// Add adds a key (see abi/SPEC.md §6.5 for its form).
func (Prefilter) Add(key string) error { return check(hostPrefilterAdd(ptr(key), uint32(len(key)))) }

// Commit publishes the filter.
func (Prefilter) Commit() error { return check(hostPrefilterCommit()) }

func check(n int32) error {
	if n < 0 {
		return ErrHost{Code: int64(n)}
	}
	return nil
}

// pull fetches a variable-length value with the ABI's retry convention,
// nil on an error.
func pull(get func(ptr, n uint32) int32) []byte {
	b, _ := fetch(1024, get)
	return b
}

// fetch calls get with a buffer of size bytes and, when the result is
// longer (the return convention: nothing was written), again with one of
// the length it reported. The result is a copy the caller owns.
func fetch(size int, get func(ptr, n uint32) int32) ([]byte, error) {
	out := make([]byte, size)
	for {
		n := get(bytesPtr(out), uint32(len(out)))
		switch {
		case n < 0:
			return nil, ErrHost{Code: int64(n)}
		case int(n) <= len(out):
			return out[:n:n], nil
		}
		out = make([]byte, n)
	}
}

func ptr(s string) uint32 {
	if len(s) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s))))
}

func bytesPtr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}
