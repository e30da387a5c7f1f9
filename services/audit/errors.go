package audit

import (
	"errors"
	"fmt"
	"strings"

	"github.com/creto-systems/creto/internal/errfmt"
)

// Sentinel errors. Every error the package returns wraps at least one of
// them, so callers (and the gRPC adapter mapping them to status codes)
// decide with errors.Is and never by parsing messages. Messages name
// records by index and identities by id; they never carry record contents
// beyond a quoted, bounded id.
var (
	// ErrInvalidArgument: an input is empty, too large, badly formed or out
	// of range. Nothing was appended or changed.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrTooLarge: a record or batch exceeds the configured limits. Nothing
	// was appended.
	ErrTooLarge = errors.New("too large")
	// ErrNotFound: no record or checkpoint has the given index or size.
	ErrNotFound = errors.New("not found")
	// ErrAccessDenied: the caller may not log or read records of the
	// identity named.
	ErrAccessDenied = errors.New("access denied")
	// ErrMalformed: bytes that should hold a record, checkpoint, proof,
	// verifier key or export do not decode.
	ErrMalformed = errors.New("malformed")
	// ErrVerification: a record, proof, checkpoint or log failed
	// verification. A *VerificationError carries where.
	ErrVerification = errors.New("verification failed")
	// ErrSealed: the sealer did not open the log's signing keys (a wrong
	// node key, or a sealer that refused).
	ErrSealed = errors.New("signing keys do not unseal")
	// ErrUnavailable: the log cannot append: a commit failed and the log
	// stopped taking writes (restart the node), or a Logger's sink is down.
	ErrUnavailable = errors.New("audit log unavailable")
	// ErrClosed: the service or logger was closed.
	ErrClosed = errors.New("closed")
)

// VerificationError says where verification failed. Index is the first
// entry found wrong, or -1 when the failure is not tied to one entry (a
// checkpoint signature, a proof of the wrong shape). Checkpoint is the
// size of the checkpoint involved, or -1.
type VerificationError struct {
	Index      int64
	Checkpoint int64
	Reason     string
}

// Error reports the position first, so the first words of a log line say
// where to look.
func (e *VerificationError) Error() string {
	var b strings.Builder
	b.WriteString("audit: verification failed")
	if e.Index >= 0 {
		fmt.Fprintf(&b, " at entry %d", e.Index)
	}
	if e.Checkpoint >= 0 {
		fmt.Fprintf(&b, " (checkpoint of size %d)", e.Checkpoint)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// Is makes every VerificationError match ErrVerification.
func (e *VerificationError) Is(target error) bool { return target == ErrVerification }

// tampered builds a VerificationError at an entry.
func tampered(index int64, format string, args ...any) *VerificationError {
	return &VerificationError{Index: index, Checkpoint: -1, Reason: fmt.Sprintf(format, args...)}
}

// badCheckpoint builds a VerificationError about a checkpoint.
func badCheckpoint(size int64, format string, args ...any) *VerificationError {
	return &VerificationError{Index: -1, Checkpoint: size, Reason: fmt.Sprintf(format, args...)}
}

// opError builds the package's error shape, "audit: <op>[ <subject>]:
// <causes>", keeping every cause matchable with errors.Is.
func opError(op, subject string, causes ...error) error {
	return errfmt.Op("audit", op, subject, causes...)
}

// detail attaches an explanation to a sentinel without hiding it from
// errors.Is.
func detail(sentinel error, format string, args ...any) error {
	return errfmt.Detail(sentinel, format, args...)
}

// quote bounds and escapes a caller-supplied id before it goes into an
// error message, so a hostile id cannot forge log lines or flood them.
func quote(s string) string { return errfmt.Quote(s) }
