package vault

import (
	"errors"
	"fmt"

	"github.com/creto-systems/creto/internal/errfmt"
)

// Sentinel errors. Every error the service returns wraps at least one of
// them, so callers (and the gRPC adapter mapping them to status codes)
// decide with errors.Is and never by parsing messages. A call that fails
// with any of them changed nothing, unless the error says otherwise
// (ErrAuditFailed on a write recorded by an external recorder; see
// docs/vault.md). Messages name secrets, agents and delegations by
// quoted, length-bounded ids and never carry values or shares.
var (
	// ErrNotFound: no secret (or version) has the reference. Deleted and
	// destroyed versions match it too, together with ErrSecretDeleted or
	// ErrSecretDestroyed.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: CreateSecret named a secret that exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrAccessDenied: the caller may not do this to the secret, or (for
	// GetDelegatedSecrets) no delegation covers the request: wrong
	// delegatee, wrong sandbox, or a reference outside the delegation.
	// *AccessDeniedError carries the details.
	ErrAccessDenied = errors.New("access denied")
	// ErrInvalidArgument: an input is empty, too large, badly formed, of
	// an unknown type or out of range.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrCASMismatch: an update's check-and-set version is not the
	// secret's current version. *CASMismatchError carries both.
	ErrCASMismatch = errors.New("check-and-set version mismatch")
	// ErrSecretExpired: the requested version is past its expiry.
	ErrSecretExpired = errors.New("secret expired")
	// ErrSecretDeleted: the version is soft-deleted; UndeleteSecret
	// restores it. Matches ErrNotFound too.
	ErrSecretDeleted = errors.New("secret version deleted")
	// ErrSecretDestroyed: the version's value was destroyed for good.
	// Matches ErrNotFound too.
	ErrSecretDestroyed = errors.New("secret version destroyed")

	// ErrDelegationNotFound: no delegation has the id.
	ErrDelegationNotFound = errors.New("delegation not found")
	// ErrDelegationExpired: the delegation is past its expiry.
	ErrDelegationExpired = errors.New("delegation expired")
	// ErrDelegationExhausted: the delegation's uses (single_use, max_uses)
	// are spent.
	ErrDelegationExhausted = errors.New("delegation exhausted (max uses reached)")
	// ErrDelegationRevoked: the delegator revoked the delegation.
	ErrDelegationRevoked = errors.New("delegation revoked")

	// ErrSealed: the vault is sealed (or not yet initialized); no secret
	// can be read or written until it is unsealed.
	ErrSealed = errors.New("sealed")
	// ErrNotInitialized: the vault has no root key yet; Init creates one.
	// Matches ErrSealed too.
	ErrNotInitialized = errors.New("not initialized")
	// ErrAlreadyInitialized: Init was called on an initialized vault.
	ErrAlreadyInitialized = errors.New("already initialized")
	// ErrInvalidShare: an unseal share is malformed, belongs to another
	// vault, repeats one already given, or is not one of the shares Init
	// produced. *ShareError names which. The share is not counted.
	ErrInvalidShare = errors.New("invalid unseal share")
	// ErrUnsealFailed: the key backend (or the share quorum) did not open
	// the root key: another key file, another vault, or a tampered seal
	// record.
	ErrUnsealFailed = errors.New("unseal failed")
	// ErrHSMUnavailable: the key backend's device cannot be reached. A
	// KeyBackend returns it (wrapped) and the vault stays sealed.
	ErrHSMUnavailable = errors.New("HSM unavailable")

	// ErrAuditFailed: the access recorder could not record the access, so
	// the vault refused it (fail closed).
	ErrAuditFailed = errors.New("access could not be recorded")
	// ErrCorrupt: a stored record did not decrypt or decode: it was
	// altered, or written under another root key. Nothing from it is
	// returned.
	ErrCorrupt = errors.New("corrupt record")
	// ErrNoGenerator: RotateSecret got no value and the secret's type has
	// no generator. Matches ErrInvalidArgument too.
	ErrNoGenerator = errors.New("no generator for the secret type")
	// ErrUnavailable: the configured access recorder cannot be queried.
	ErrUnavailable = errors.New("unavailable")
	// ErrClosed: the service was closed.
	ErrClosed = errors.New("service closed")
)

// AccessDeniedError is the seed's AccessDenied{agent, secret}: who was
// refused what. It matches ErrAccessDenied.
type AccessDeniedError struct {
	Agent  string
	Ref    SecretRef
	Access Access
	// Reason says why, for logs: "not the owner", "wrong sandbox", …
	Reason string
	// Cause is the Authorizer's error, if it gave one.
	Cause error
}

// Error says who was refused what, and why.
func (e *AccessDeniedError) Error() string {
	msg := fmt.Sprintf("access denied: agent %s may not %s %s", quote(e.Agent), e.Access, e.Ref)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.Cause != nil && !errors.Is(e.Cause, ErrAccessDenied) {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

// Is makes the error match ErrAccessDenied.
func (e *AccessDeniedError) Is(target error) bool { return target == ErrAccessDenied }

// Unwrap returns the Authorizer's error.
func (e *AccessDeniedError) Unwrap() error { return e.Cause }

// CASMismatchError reports a failed check-and-set. It matches
// ErrCASMismatch.
type CASMismatchError struct {
	Ref SecretRef
	// Expected is the version the caller named; 0 meant "must not exist".
	Expected uint32
	// Current is the secret's current version; 0 if it does not exist.
	Current uint32
}

// Error names both versions.
func (e *CASMismatchError) Error() string {
	return fmt.Sprintf("%s: check-and-set expected version %d, current is %d", e.Ref, e.Expected, e.Current)
}

// Is makes the error match ErrCASMismatch.
func (e *CASMismatchError) Is(target error) bool { return target == ErrCASMismatch }

// ShareError says which unseal share was refused and why. It matches
// ErrInvalidShare and the reason.
type ShareError struct {
	// Position is the share's position in the call's argument list.
	Position int
	// Reason is one of ErrShareMalformed, ErrShareForeign,
	// ErrShareDuplicate, ErrShareWrong.
	Reason error
}

// The reasons a share is refused (ShareError.Reason).
var (
	// ErrShareMalformed: the share does not decode or its checksum fails
	// (a typo).
	ErrShareMalformed = errors.New("malformed share")
	// ErrShareForeign: the share belongs to another vault, or to an
	// earlier initialization of this one.
	ErrShareForeign = errors.New("share of another vault")
	// ErrShareDuplicate: a share with the same index was already given.
	ErrShareDuplicate = errors.New("duplicate share")
	// ErrShareWrong: the share is well formed and names this vault, but is
	// not one of the shares Init produced (altered or forged).
	ErrShareWrong = errors.New("share does not match")
)

// Error names the share by position, never by content.
func (e *ShareError) Error() string {
	return fmt.Sprintf("unseal share %d: %v", e.Position, e.Reason)
}

// Is makes the error match ErrInvalidShare.
func (e *ShareError) Is(target error) bool { return target == ErrInvalidShare }

// Unwrap returns the reason.
func (e *ShareError) Unwrap() error { return e.Reason }

// opError builds the package's error shape, "vault: <op>[ <subject>]: <cause>",
// keeping the cause matchable with errors.Is and errors.As.
func opError(op, subject string, cause error) error {
	prefix := "vault: " + op
	if subject != "" {
		prefix += " " + subject
	}
	return fmt.Errorf("%s: %w", prefix, cause)
}

// invalid wraps ErrInvalidArgument around an explanation.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, args...))
}

// quote bounds and escapes a caller-supplied string before it reaches an
// error message, so a hostile id can neither forge log lines nor flood
// them.
func quote(s string) string { return errfmt.Quote(s) }
