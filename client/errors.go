package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// kind is a sentinel error that may belong to a broader one, so that
// errors.Is(err, ErrUnavailable) holds for a sealed vault or an open
// circuit as well as for a node that cannot be reached.
type kind struct {
	msg    string
	parent error
}

func (k *kind) Error() string { return k.msg }

func (k *kind) Unwrap() error { return k.parent }

func newKind(msg string, parent error) error { return &kind{msg: msg, parent: parent} }

// Sentinel errors. Every error a client returns is an *Error whose Kind is
// one of them, so callers decide with errors.Is and never by parsing
// messages. They mirror the seed's error enums (AuthzError, VaultError,
// MemoryError, NhiError): docs/clients.md has the table.
var (
	// ErrUnavailable: the service cannot be reached or said it cannot
	// serve (gRPC UNAVAILABLE). Retryable.
	ErrUnavailable = newKind("service unavailable", nil)
	// ErrCircuitOpen: the client's circuit breaker refused the call
	// without sending it, because the service failed repeatedly. It is an
	// ErrUnavailable; the client does not retry it.
	ErrCircuitOpen = newKind("circuit breaker open", ErrUnavailable)
	// ErrSealed: the vault is sealed until operators unseal it. It is an
	// ErrUnavailable.
	ErrSealed = newKind("vault sealed", ErrUnavailable)
	// ErrHSMUnavailable: the vault's key backend cannot be reached. It is
	// an ErrUnavailable.
	ErrHSMUnavailable = newKind("HSM unavailable", ErrUnavailable)
	// ErrTimeout: no answer within the client's timeout_ms, or the node
	// ran out of time (gRPC DEADLINE_EXCEEDED). Retryable.
	ErrTimeout = newKind("timeout", nil)
	// ErrCanceled: the caller's own context was canceled. It is never
	// counted against the service.
	ErrCanceled = newKind("canceled", nil)

	// ErrInvalidRequest: the request is malformed; nothing was changed.
	ErrInvalidRequest = newKind("invalid request", nil)
	// ErrNotFound: no such policy, agent, memory, secret, delegation …
	ErrNotFound = newKind("not found", nil)
	// ErrPolicyNotFound: no such policy. It is an ErrNotFound.
	ErrPolicyNotFound = newKind("policy not found", ErrNotFound)
	// ErrDelegationNotFound: no such vault delegation. It is an
	// ErrNotFound.
	ErrDelegationNotFound = newKind("delegation not found", ErrNotFound)
	// ErrAlreadyExists: the id or name is taken.
	ErrAlreadyExists = newKind("already exists", nil)
	// ErrConflict: a version (etag) or check-and-set did not match.
	ErrConflict = newKind("version conflict", nil)
	// ErrFailedPrecondition: the service refused the call in its current
	// state for a reason no more specific sentinel names.
	ErrFailedPrecondition = newKind("failed precondition", nil)
	// ErrDenied: the node refused the caller (gRPC PERMISSION_DENIED): the
	// meta-policies, or the service's own access rules. Security-critical.
	ErrDenied = newKind("access denied", nil)
	// ErrUnauthenticated: no valid certificate or token; for NHI, a token
	// that is forged, expired or revoked. Security-critical.
	ErrUnauthenticated = newKind("unauthenticated", nil)
	// ErrResourceExhausted: a quota or a size limit.
	ErrResourceExhausted = newKind("resource exhausted", nil)
	// ErrUnsupported: the node does not serve this method (an older node).
	ErrUnsupported = newKind("not supported by the node", nil)
	// ErrInternal: a fault of the node or an answer the client cannot use.
	ErrInternal = newKind("internal error", nil)

	// ErrExtension: an authorization extension could not be registered
	// (an invalid module, an import not granted, extensions disabled …).
	ErrExtension = newKind("extension error", nil)

	// ErrDelegationExpired: a vault or NHI delegation is past its expiry.
	ErrDelegationExpired = newKind("delegation expired", nil)
	// ErrDelegationExhausted: a vault delegation's uses are spent.
	ErrDelegationExhausted = newKind("delegation exhausted", nil)
	// ErrDelegationRevoked: a delegation was revoked. Security-critical.
	ErrDelegationRevoked = newKind("delegation revoked", nil)
	// ErrDelegationInvalid: an NHI delegation chain is forged, widened,
	// cyclic, too deep, broken or malformed. Security-critical.
	ErrDelegationInvalid = newKind("delegation invalid", nil)
	// ErrSecretExpired: the secret version is past its expiry.
	ErrSecretExpired = newKind("secret expired", nil)
	// ErrAgentInactive: the NHI agent is revoked, suspended or expired.
	// Security-critical.
	ErrAgentInactive = newKind("agent inactive", nil)
	// ErrEmbeddingFailed: the memory service could not embed the content.
	ErrEmbeddingFailed = newKind("embedding failed", nil)

	// ErrQuotaExceeded: the owner's storage quota would be passed. It is
	// an ErrResourceExhausted; a *QuotaExceededError carries the figures.
	ErrQuotaExceeded = newKind("quota exceeded", ErrResourceExhausted)
	// ErrTooLarge: an object, record or batch passes a size limit. It is
	// an ErrInvalidRequest; a *TooLargeError carries the sizes when the
	// node gave them.
	ErrTooLarge = newKind("too large", ErrInvalidRequest)
	// ErrHashMismatch: what storage read does not match the content hash
	// it recorded: the object is damaged. Not retryable.
	ErrHashMismatch = newKind("hash mismatch", nil)
	// ErrEncryptionFailed: storage could not encrypt the object, usually
	// because its owner has no usable key (unknown, revoked, suspended).
	ErrEncryptionFailed = newKind("encryption failed", nil)
	// ErrDecryptionFailed: a stored object does not decrypt: its key does
	// not unwrap (its owner was revoked) or its data was tampered with.
	ErrDecryptionFailed = newKind("decryption failed", nil)
	// ErrRetained: the object is under compliance retention, which no one
	// can shorten, delete or modify it through. It is an
	// ErrFailedPrecondition.
	ErrRetained = newKind("under retention", ErrFailedPrecondition)
	// ErrNotLeader: a consensus follower refused a call that needs the
	// leader. The consensus client follows the redirect itself; it is an
	// ErrFailedPrecondition.
	ErrNotLeader = newKind("not the leader", ErrFailedPrecondition)
	// ErrIndeterminate: consensus proposed the call but cannot say whether
	// it committed (leadership was lost). The consensus client retries it
	// with the same idempotency key, which the node answers with the
	// first outcome. Retryable.
	ErrIndeterminate = newKind("outcome unknown", nil)
)

// reasonKinds maps the node's ErrorInfo reasons (internal/rpcerr tables of
// each service) to the sentinel they stand for. A reason not listed falls
// back to the gRPC code.
var reasonKinds = map[string]error{
	"SEALED":               ErrSealed,
	"HSM_UNAVAILABLE":      ErrHSMUnavailable,
	"POLICY_NOT_FOUND":     ErrPolicyNotFound,
	"DELEGATION_NOT_FOUND": ErrDelegationNotFound,
	"VERSION_CONFLICT":     ErrConflict,
	"CAS_MISMATCH":         ErrConflict,
	"DELEGATION_EXPIRED":   ErrDelegationExpired,
	"DELEGATION_EXHAUSTED": ErrDelegationExhausted,
	"DELEGATION_REVOKED":   ErrDelegationRevoked,
	"DELEGATION_FORGED":    ErrDelegationInvalid,
	"DELEGATION_WIDENED":   ErrDelegationInvalid,
	"DELEGATION_CYCLE":     ErrDelegationInvalid,
	"DELEGATION_MALFORMED": ErrDelegationInvalid,
	"CHAIN_TOO_DEEP":       ErrDelegationInvalid,
	"CHAIN_BROKEN":         ErrDelegationInvalid,
	"SECRET_EXPIRED":       ErrSecretExpired,
	"AGENT_REVOKED":        ErrAgentInactive,
	"AGENT_SUSPENDED":      ErrAgentInactive,
	"EXPIRED":              ErrAgentInactive,
	"EMBEDDING_FAILED":     ErrEmbeddingFailed,
	"INVALID_EXTENSION":    ErrExtension,
	"UNKNOWN_IMPORT":       ErrExtension,
	"IMPORT_NOT_GRANTED":   ErrExtension,
	"ABI_VERSION":          ErrExtension,
	"EXTENSIONS_DISABLED":  ErrExtension,
	"EXTENSION_NOT_FOUND":  ErrNotFound,
	"EXTENSION_EXISTS":     ErrAlreadyExists,
	"QUOTA_EXCEEDED":       ErrQuotaExceeded,
	"TOO_LARGE":            ErrTooLarge,
	"HASH_MISMATCH":        ErrHashMismatch,
	"ENCRYPTION_FAILED":    ErrEncryptionFailed,
	"DECRYPTION_FAILED":    ErrDecryptionFailed,
	"RETAINED":             ErrRetained,
	"NOT_LEADER":           ErrNotLeader,
	"INDETERMINATE":        ErrIndeterminate,
	"IDEMPOTENCY_CONFLICT": ErrConflict,
	// The caller's reference names a content hash the version does not
	// have: the object changed, nothing is damaged.
	"REFERENCE_HASH_MISMATCH": ErrConflict,
}

// codeKinds maps a gRPC code to its sentinel when no reason is more
// specific.
var codeKinds = map[codes.Code]error{
	codes.Unavailable:        ErrUnavailable,
	codes.DeadlineExceeded:   ErrTimeout,
	codes.Canceled:           ErrCanceled,
	codes.InvalidArgument:    ErrInvalidRequest,
	codes.OutOfRange:         ErrInvalidRequest,
	codes.NotFound:           ErrNotFound,
	codes.AlreadyExists:      ErrAlreadyExists,
	codes.Aborted:            ErrConflict,
	codes.FailedPrecondition: ErrFailedPrecondition,
	codes.PermissionDenied:   ErrDenied,
	codes.Unauthenticated:    ErrUnauthenticated,
	codes.ResourceExhausted:  ErrResourceExhausted,
	codes.Unimplemented:      ErrUnsupported,
}

// kindCodes is the inverse for errors the client raises itself, so every
// *Error carries a code a caller can log or map to HTTP.
var kindCodes = map[error]codes.Code{
	ErrUnavailable:    codes.Unavailable,
	ErrCircuitOpen:    codes.Unavailable,
	ErrTimeout:        codes.DeadlineExceeded,
	ErrCanceled:       codes.Canceled,
	ErrInvalidRequest: codes.InvalidArgument,
	ErrTooLarge:       codes.InvalidArgument,
	ErrInternal:       codes.Internal,
}

// Error is every error a client returns: which service and method failed,
// the sentinel it stands for, and what the node said. Match it with
// errors.Is(err, ErrDelegationExpired) and read it with errors.As.
type Error struct {
	// Service is the client's service: "authz", "nhi", "memory", "vault",
	// "storage", "audit" or "consensus".
	Service string
	// Method is the RPC, for example "GetSecret".
	Method string
	// Kind is the sentinel the error stands for.
	Kind error
	// Code is the gRPC code the node answered with, or the code the client
	// gives an error it raised itself (Unavailable for an open circuit).
	Code codes.Code
	// Reason is the node's google.rpc.ErrorInfo reason, such as
	// "DELEGATION_EXPIRED"; empty when the node gave none.
	Reason string
	// Message is the node's message (or the client's), at most
	// maxMessage bytes. The node writes its messages never to carry
	// secrets; ids in them are quoted and bounded.
	Message string
	// Metadata is the ErrorInfo's metadata, such as a quota's "used" and
	// "limit".
	Metadata map[string]string
	// Attempts is how many times the call was sent (0: refused by the
	// client before sending).
	Attempts int

	cause error
	// detail is the typed error carrying the figures of the node's
	// ErrorInfo (*QuotaExceededError, *TooLargeError), for errors.As.
	detail error
	// caller: the caller's own context ended the call, so it says nothing
	// about the service and never counts against its circuit breaker.
	caller bool
	// local: the client raised the error without the node answering —
	// nothing was sent, or nothing of what was sent can have been applied
	// (a refused connection, an open circuit, a request refused before
	// sending).
	local bool
}

// QuotaExceededError is the detail of an ErrQuotaExceeded error (seed
// StorageError::QuotaExceeded): how much the owner has stored, in flight
// included, and its quota, as the node's ErrorInfo gave them. Reach it
// with errors.As.
type QuotaExceededError struct {
	Used, Limit int64
	// Unit is what they count: "bytes".
	Unit string
}

// Error reads "quota exceeded: <used>/<limit> <unit>".
func (e *QuotaExceededError) Error() string {
	return fmt.Sprintf("quota exceeded: %d/%d %s", e.Used, e.Limit, e.Unit)
}

// TooLargeError is the detail of an ErrTooLarge error (seed
// StorageError::TooLarge): the size and the limit it passed. For a stream
// of unknown length, Size is how much had been sent when the limit was
// passed. Reach it with errors.As.
type TooLargeError struct {
	Size, Max int64
}

// Error reads "too large: <size> > <max> bytes".
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("too large: %d > %d bytes", e.Size, e.Max)
}

// detailOf builds the typed detail of a reason whose ErrorInfo metadata
// carries figures; nil when it carries none or they do not parse.
func detailOf(reason string, md map[string]string) error {
	num := func(k string) (int64, bool) {
		n, err := strconv.ParseInt(md[k], 10, 64)
		return n, err == nil
	}
	switch reason {
	case "QUOTA_EXCEEDED":
		used, ok1 := num("used")
		limit, ok2 := num("limit")
		if ok1 && ok2 {
			return &QuotaExceededError{Used: used, Limit: limit, Unit: md["unit"]}
		}
	case "TOO_LARGE":
		size, ok1 := num("size")
		limit, ok2 := num("max")
		if ok1 && ok2 {
			return &TooLargeError{Size: size, Max: limit}
		}
	}
	return nil
}

// maxMessage bounds the node's message kept in an Error.
const maxMessage = 512

// Error reads "creto client: <service> <method>: <kind>: <message>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("creto client: ")
	b.WriteString(e.Service)
	if e.Method != "" {
		b.WriteString(" ")
		b.WriteString(e.Method)
	}
	b.WriteString(": ")
	b.WriteString(e.Kind.Error())
	if e.Message != "" && e.Message != e.Kind.Error() {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Unwrap returns the sentinel and the underlying cause (a gRPC status
// error, or the caller's context.Canceled / context.DeadlineExceeded).
func (e *Error) Unwrap() []error {
	out := []error{e.Kind}
	for _, err := range []error{e.detail, e.cause} {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// Retryable reports what the seed's is_retryable does: the service was
// unavailable or too slow, so the same call may succeed later.
// An indeterminate consensus outcome is retryable too: the only call the
// node answers so, OrderEvents, is always sent with an idempotency key.
func (e *Error) Retryable() bool {
	return errors.Is(e.Kind, ErrUnavailable) || (e.Kind == ErrTimeout && !e.caller) || e.Kind == ErrIndeterminate
}

// SecurityCritical reports what the seed's is_security_critical does,
// extended to every service: the error is a refusal on security grounds
// (a denial, a missing policy, a bad credential, a revoked or forged
// delegation, an inactive agent) that a caller must surface, never retry
// around.
func (e *Error) SecurityCritical() bool {
	for _, k := range []error{ErrDenied, ErrPolicyNotFound, ErrUnauthenticated, ErrDelegationRevoked, ErrDelegationInvalid, ErrAgentInactive} {
		if errors.Is(e.Kind, k) {
			return true
		}
	}
	return false
}

// IsRetryable reports whether err is an *Error that Retryable says may
// succeed if tried again later.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable()
}

// IsSecurityCritical reports whether err is an *Error that
// SecurityCritical says is a refusal on security grounds.
func IsSecurityCritical(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.SecurityCritical()
}

// failure reports whether err is evidence that the service is unwell, the
// only errors a circuit breaker counts: unavailable, too slow under the
// client's own timeout, faulting, or unable to tell whether it applied a
// call (consensus lost its leader). A denial, a bad request or a missing
// object is the service working.
func failure(err error) bool {
	var e *Error
	if !errors.As(err, &e) || e.caller {
		return false
	}
	return errors.Is(e.Kind, ErrUnavailable) || e.Kind == ErrTimeout || e.Kind == ErrInternal || e.Kind == ErrIndeterminate
}

// excluded reports whether err must not count for or against the service
// at all: the caller ended the call.
func excluded(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.caller
}

// kindOf returns the sentinel err stands for (ErrInternal for an error
// that is not an *Error).
func kindOf(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ErrInternal
}

// localError is an error the client raises without asking the node.
func localError(service, method string, k error, format string, args ...any) *Error {
	return &Error{Service: service, Method: method, Kind: k, Code: kindCodes[k], Message: fmt.Sprintf(format, args...), local: true}
}

// decode turns what an RPC returned into an *Error. ctx is the caller's
// context: when it is done, the call ended because of the caller.
func decode(ctx context.Context, service, method string, err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	st, ok := status.FromError(err)
	if !ok {
		// Not from gRPC: a context error of the client's own wait for a
		// connection, or an unexpected error (Unknown, so ErrInternal).
		st = status.FromContextError(err)
	}
	if cerr := ctx.Err(); cerr != nil && (st.Code() == codes.Canceled || st.Code() == codes.DeadlineExceeded) {
		k := ErrCanceled
		if errors.Is(cerr, context.DeadlineExceeded) {
			k = ErrTimeout
		}
		return &Error{Service: service, Method: method, Kind: k, Code: status.FromContextError(cerr).Code(),
			Message: "the caller's context ended the call", cause: cerr, caller: true}
	}
	out := &Error{Service: service, Method: method, Code: st.Code(), Message: bound(st.Message()), cause: err}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			out.Reason, out.Metadata = info.GetReason(), info.GetMetadata()
			out.detail = detailOf(out.Reason, out.Metadata)
			break
		}
	}
	switch {
	case reasonKinds[out.Reason] != nil:
		out.Kind = reasonKinds[out.Reason]
	case codeKinds[out.Code] != nil:
		out.Kind = codeKinds[out.Code]
	default:
		out.Kind = ErrInternal
	}
	return out
}

// bound cuts a message to maxMessage bytes on a rune boundary.
func bound(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

// quote bounds and escapes a caller-supplied id before it goes into a
// message, so a hostile id cannot forge log lines or flood them.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
