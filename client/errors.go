package client

import (
	"context"
	"errors"
	"fmt"
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
	ErrInternal:       codes.Internal,
}

// Error is every error a client returns: which service and method failed,
// the sentinel it stands for, and what the node said. Match it with
// errors.Is(err, ErrDelegationExpired) and read it with errors.As.
type Error struct {
	// Service is the client's service: "authz", "nhi", "memory" or "vault".
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
	// caller: the caller's own context ended the call, so it says nothing
	// about the service and never counts against its circuit breaker.
	caller bool
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
	if e.cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.cause}
}

// Retryable reports what the seed's is_retryable does: the service was
// unavailable or too slow, so the same call may succeed later.
func (e *Error) Retryable() bool {
	return errors.Is(e.Kind, ErrUnavailable) || (e.Kind == ErrTimeout && !e.caller)
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
// client's own timeout, or faulting. A denial, a bad request or a missing
// object is the service working.
func failure(err error) bool {
	var e *Error
	if !errors.As(err, &e) || e.caller {
		return false
	}
	return errors.Is(e.Kind, ErrUnavailable) || e.Kind == ErrTimeout || e.Kind == ErrInternal
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
	return &Error{Service: service, Method: method, Kind: k, Code: kindCodes[k], Message: fmt.Sprintf(format, args...)}
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
