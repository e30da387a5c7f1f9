package storage

import (
	"errors"
	"fmt"
	"time"

	"github.com/creto-systems/creto/internal/errfmt"
)

// Sentinel errors (seed §3.4 StorageError, plus what this implementation
// needs). Every error the service returns wraps at least one of them, so
// callers — and the gRPC adapter mapping them to status codes — decide with
// errors.Is and never by parsing messages. Errors that carry data are typed
// structs (errors.As) that also match their sentinel. A call that fails
// stored, changed and deleted nothing.
var (
	// ErrNotFound: no live version matches the reference (it never
	// existed, was deleted or has expired).
	ErrNotFound = errors.New("storage: not found")
	// ErrAccessDenied: the caller is not the owner and holds no verified
	// delegation from the owner granting the permission.
	ErrAccessDenied = errors.New("storage: access denied")
	// ErrQuotaExceeded: the owner's stored and in-flight bytes would pass
	// its quota. See QuotaExceededError.
	ErrQuotaExceeded = errors.New("storage: quota exceeded")
	// ErrTooLarge: the object passes max_object_size_bytes. See
	// TooLargeError.
	ErrTooLarge = errors.New("storage: object too large")
	// ErrEncryptionFailed: the object could not be encrypted, typically
	// because the owner has no usable KEM key (unknown, revoked,
	// suspended or expired agent).
	ErrEncryptionFailed = errors.New("storage: encryption failed")
	// ErrDecryptionFailed: the stored object does not decrypt: its data
	// key does not unwrap (the owner was revoked, or the envelope was
	// tampered with) or a segment fails authentication (tampered,
	// reordered, truncated, extended or spliced data).
	ErrDecryptionFailed = errors.New("storage: decryption failed")
	// ErrHashMismatch: the content hash of what was read differs from the
	// one recorded, or from the one the caller's reference names. See
	// HashMismatchError.
	ErrHashMismatch = errors.New("storage: hash mismatch")
	// ErrRetained: the version is under compliance retention, which no
	// one — its owner included — can shorten, or delete or modify the
	// version through. See RetainedError.
	ErrRetained = errors.New("storage: retained")
	// ErrInvalidArgument: an input is empty, too large, badly formed or
	// out of range.
	ErrInvalidArgument = errors.New("storage: invalid argument")
	// ErrCorrupt: a stored record or object file does not decode, or does
	// not match its record.
	ErrCorrupt = errors.New("storage: corrupt")
	// ErrClosed: the service was closed (the seed's Unavailable).
	ErrClosed = errors.New("storage: service closed")
)

// NotFoundError is ErrNotFound for one reference.
type NotFoundError struct{ Ref StorageRef }

func (e *NotFoundError) Error() string { return fmt.Sprintf("storage: object not found: %v", e.Ref) }

// Is makes the error match ErrNotFound.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// AccessDeniedError is ErrAccessDenied with the agent, the reference and
// the permission it lacked; Cause, when set, is why a delegation was not
// accepted.
type AccessDeniedError struct {
	Agent      string
	Ref        StorageRef
	Permission string
	Cause      error
}

func (e *AccessDeniedError) Error() string {
	msg := fmt.Sprintf("storage: access denied for agent %s to %v (%s)", quote(e.Agent), e.Ref, e.Permission)
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

// Is makes the error match ErrAccessDenied.
func (e *AccessDeniedError) Is(target error) bool { return target == ErrAccessDenied }

// Unwrap returns the cause, so errors.Is also matches it.
func (e *AccessDeniedError) Unwrap() error { return e.Cause }

// QuotaExceededError is ErrQuotaExceeded with the owner's figures: Used
// counts stored bytes and bytes of stores in flight, before the write that
// was refused.
type QuotaExceededError struct {
	Owner       string
	Used, Limit int64
}

func (e *QuotaExceededError) Error() string {
	return fmt.Sprintf("storage: quota exceeded for %s: %d/%d bytes", quote(e.Owner), e.Used, e.Limit)
}

// Is makes the error match ErrQuotaExceeded.
func (e *QuotaExceededError) Is(target error) bool { return target == ErrQuotaExceeded }

// TooLargeError is ErrTooLarge. For a stream of unknown length, Size is
// how much had arrived when the limit was passed.
type TooLargeError struct{ Size, Max int64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("storage: object too large: %d > %d bytes", e.Size, e.Max)
}

// Is makes the error match ErrTooLarge.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// HashMismatchError is ErrHashMismatch with both hashes in hex.
type HashMismatchError struct{ Expected, Actual string }

func (e *HashMismatchError) Error() string {
	return fmt.Sprintf("storage: hash mismatch: expected %s, got %s", e.Expected, e.Actual)
}

// Is makes the error match ErrHashMismatch.
func (e *HashMismatchError) Is(target error) bool { return target == ErrHashMismatch }

// RetainedError is ErrRetained with the end of the retention period.
type RetainedError struct {
	Ref   StorageRef
	Until time.Time
}

func (e *RetainedError) Error() string {
	return fmt.Sprintf("storage: %v is under compliance retention until %s", e.Ref, e.Until.Format(time.RFC3339))
}

// Is makes the error match ErrRetained.
func (e *RetainedError) Is(target error) bool { return target == ErrRetained }

// invalid wraps ErrInvalidArgument around an explanation.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, args...))
}

// corrupt wraps ErrCorrupt around an explanation.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// quote bounds and escapes a caller-supplied string before it reaches an
// error message, so a hostile id or key can neither forge log lines nor
// flood them.
func quote(s string) string { return errfmt.Quote(s) }
