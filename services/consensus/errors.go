package consensus

import (
	"errors"
	"fmt"

	"github.com/creto-systems/creto/internal/errfmt"
)

// Sentinel errors. Every error the node returns wraps at least one of them,
// so callers (and the gRPC adapter mapping them to status codes) decide
// with errors.Is rather than by parsing messages. Messages quote and bound
// caller-supplied ids and never carry payloads.
var (
	// ErrInvalidArgument: an input is empty, too large, badly formed or out
	// of range. Nothing was proposed or changed. ErrUnknownCommand,
	// ErrTooLarge and ErrIdempotencyConflict match it too.
	ErrInvalidArgument = errors.New("consensus: invalid argument")
	// ErrUnknownCommand: no handler is registered for the command type.
	ErrUnknownCommand = errors.New("consensus: unknown command type")
	// ErrTooLarge: a batch, event, payload or command exceeds its limit.
	ErrTooLarge = errors.New("consensus: too large")
	// ErrIdempotencyConflict: an idempotency key was reused for a different
	// command (another type or payload) within the idempotency window.
	ErrIdempotencyConflict = errors.New("consensus: idempotency key reused for another command")

	// ErrNotLeader: this node is a follower and the leader is known; the
	// error is a *NotLeaderError naming it, so a client can redirect.
	ErrNotLeader = errors.New("consensus: not the leader")
	// ErrUnavailable: consensus cannot serve the call now (no leader yet, a
	// new leader still loading, a leadership transfer, the node stopping).
	// Nothing was proposed; retrying later or on another node is safe. A
	// caller that needs a timestamp anyway asks with AllowLocal.
	ErrUnavailable = errors.New("consensus: unavailable")
	// ErrNoQuorum: writes are paused because no quorum of voters can be
	// reached (seed §13: split brain pauses writes). It matches
	// ErrUnavailable too.
	ErrNoQuorum = errors.New("consensus: no quorum")
	// ErrIndeterminate: the command was proposed but its outcome is unknown
	// — leadership was lost or the caller's deadline passed before it
	// committed. It may or may not be applied; retry with the same
	// idempotency key to learn which, without applying it twice.
	ErrIndeterminate = errors.New("consensus: outcome unknown")

	// ErrAccessDenied: the Authorizer refused the caller.
	ErrAccessDenied = errors.New("consensus: access denied")
	// ErrNotFound: no value is stored under the key.
	ErrNotFound = errors.New("consensus: not found")
	// ErrCorrupt: the raft log, a snapshot or the replicated state does not
	// decode or does not agree with itself; see *CorruptLogError.
	ErrCorrupt = errors.New("consensus: corrupt")
	// ErrHalted: the state machine met a log entry it cannot apply the way
	// every other node would (an unknown command type, a store failure)
	// and stopped applying, rather than diverge. The node must be fixed
	// (usually: upgraded so it knows the command type) and restarted.
	ErrHalted = errors.New("consensus: state machine halted")
	// ErrClosed: the node was closed, or removed from the cluster.
	ErrClosed = errors.New("consensus: node closed")
)

// NotLeaderError is returned for a write or a timestamp asked of a follower
// that knows the leader. It matches ErrNotLeader.
type NotLeaderError struct {
	// LeaderID and LeaderAddress name the current leader; LeaderAddress
	// is its raft address.
	LeaderID, LeaderAddress string
	// LeaderClientAddress is where clients reach the leader's API (its
	// gRPC address in creto serve), as the leader published it
	// (SetClientAddress); empty while it is not known yet.
	LeaderClientAddress string
}

func (e *NotLeaderError) Error() string {
	msg := fmt.Sprintf("consensus: not the leader; the leader is %s at %s", quote(e.LeaderID), quote(e.LeaderAddress))
	if e.LeaderClientAddress != "" {
		msg += fmt.Sprintf(", its API at %s", quote(e.LeaderClientAddress))
	}
	return msg
}

// Is makes the error match ErrNotLeader.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// CorruptLogError is returned by Open when the raft log ends before what
// the state machine has already applied: the log lost acknowledged entries
// (a truncated or damaged file beyond what the log store's own recovery
// repairs). It matches ErrCorrupt. Continuing would silently skip new
// entries as "already applied", so the node refuses to start; rebuild it
// (docs/consensus.md, "Recovering a node").
type CorruptLogError struct {
	// LastLogIndex is the last entry the log holds, SnapshotIndex the
	// state the newest snapshot holds, AppliedIndex what the state machine
	// had applied.
	LastLogIndex, SnapshotIndex, AppliedIndex uint64
}

func (e *CorruptLogError) Error() string {
	return fmt.Sprintf("consensus: the raft log ends at index %d (newest snapshot at %d) but the state machine applied up to %d: acknowledged entries are missing",
		e.LastLogIndex, e.SnapshotIndex, e.AppliedIndex)
}

// Is makes the error match ErrCorrupt.
func (e *CorruptLogError) Is(target error) bool { return target == ErrCorrupt }

// invalid wraps ErrInvalidArgument, and kind when it is non-nil, around a
// formatted explanation.
func invalid(kind error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if kind == nil {
		return fmt.Errorf("%w: %s", ErrInvalidArgument, msg)
	}
	return fmt.Errorf("%w: %w: %s", ErrInvalidArgument, kind, msg)
}

// noQuorum is the error of a write refused because the leader cannot
// reach a quorum; it matches ErrNoQuorum and ErrUnavailable.
func noQuorum(format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s", ErrUnavailable, ErrNoQuorum, fmt.Sprintf(format, args...))
}

// unavailable wraps ErrUnavailable around an explanation.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnavailable, fmt.Sprintf(format, args...))
}

// quote bounds and escapes a caller-supplied id before it reaches an error
// message, so a hostile id can neither forge log lines nor flood them.
func quote(s string) string { return errfmt.Quote(s) }
