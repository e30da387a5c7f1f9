package memory

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the service returns wraps at least one of
// them, so callers (and a gRPC adapter mapping them to status codes)
// decide with errors.Is rather than by parsing messages. A call that fails
// with any of them stored, changed and deleted nothing.
var (
	// ErrNotFound: no live memory has the id (it never existed, was
	// deleted or has expired), or an agent has no reasoning for an action.
	ErrNotFound = errors.New("memory: not found")
	// ErrAccessDenied: the caller may not read or write the agent's
	// memories.
	ErrAccessDenied = errors.New("memory: access denied")
	// ErrInvalidArgument: an input is empty, too large or out of range.
	// ErrDimensionMismatch, ErrInvalidVector and ErrLimitExceeded all
	// match it too, so one check covers every kind of bad input.
	ErrInvalidArgument = errors.New("memory: invalid argument")
	// ErrDimensionMismatch: an embedding's length is not the index's
	// dimension.
	ErrDimensionMismatch = errors.New("memory: embedding dimension mismatch")
	// ErrInvalidVector: an embedding holds NaN or ±Inf, or is all zeros
	// and so has no direction to compare.
	ErrInvalidVector = errors.New("memory: invalid embedding vector")
	// ErrLimitExceeded: a query asked for more results than
	// Config.MaxQueryLimit, or a batch is larger than Config.MaxBatch.
	ErrLimitExceeded = errors.New("memory: limit exceeded")
	// ErrEmbeddingFailed: the embedder could not embed a text; for
	// ExternalEmbedder, the request carried text but no embedding.
	ErrEmbeddingFailed = errors.New("memory: embedding failed")
	// ErrIndexMismatch: the store was built with another embedder model or
	// dimension, whose vectors cannot be compared with this one's.
	ErrIndexMismatch = errors.New("memory: store built with another embedder")
	// ErrCorrupt: a stored record does not decode.
	ErrCorrupt = errors.New("memory: corrupt record")
	// ErrClosed: the service was closed.
	ErrClosed = errors.New("memory: service closed")
)

// invalid wraps ErrInvalidArgument, plus a more specific sentinel when
// kind is non-nil, around a formatted explanation.
func invalid(kind error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if kind == nil {
		return fmt.Errorf("%w: %s", ErrInvalidArgument, msg)
	}
	return fmt.Errorf("%w: %w: %s", ErrInvalidArgument, kind, msg)
}

// quote bounds and escapes a caller-supplied id before it reaches an
// error message, so a hostile id can neither forge log lines nor flood
// them.
func quote(s string) string {
	const limit = 64
	if len(s) > limit {
		return fmt.Sprintf("%q…", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}
