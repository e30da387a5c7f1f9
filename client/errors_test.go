package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func statusWith(code codes.Code, reason string, md map[string]string) error {
	st := status.New(code, "the node's message")
	if reason != "" {
		st, _ = st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: "creto.vault.v1.VaultService", Metadata: md})
	}
	return st.Err()
}

// The node's statuses decode to the sentinels of the seed's enums: by
// reason first, then by code.
func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		code              codes.Code
		reason            string
		kind              error
		retryable, secure bool
		fails             bool // counted by the circuit breaker
	}{
		{codes.Unavailable, "", ErrUnavailable, true, false, true},
		{codes.Unavailable, "SEALED", ErrSealed, true, false, true},
		{codes.Unavailable, "HSM_UNAVAILABLE", ErrHSMUnavailable, true, false, true},
		{codes.Unavailable, "SHUTTING_DOWN", ErrUnavailable, true, false, true},
		{codes.DeadlineExceeded, "", ErrTimeout, true, false, true},
		{codes.Internal, "", ErrInternal, false, false, true},
		{codes.DataLoss, "CORRUPT", ErrInternal, false, false, true},
		{codes.Unknown, "", ErrInternal, false, false, true},
		{codes.InvalidArgument, "INVALID_REQUEST", ErrInvalidRequest, false, false, false},
		{codes.NotFound, "POLICY_NOT_FOUND", ErrPolicyNotFound, false, true, false},
		{codes.NotFound, "NOT_FOUND", ErrNotFound, false, false, false},
		{codes.NotFound, "DELEGATION_NOT_FOUND", ErrDelegationNotFound, false, false, false},
		{codes.PermissionDenied, "ACCESS_DENIED", ErrDenied, false, true, false},
		{codes.PermissionDenied, "", ErrDenied, false, true, false},
		{codes.Unauthenticated, "TOKEN_EXPIRED", ErrUnauthenticated, false, true, false},
		{codes.FailedPrecondition, "DELEGATION_EXPIRED", ErrDelegationExpired, false, false, false},
		{codes.FailedPrecondition, "DELEGATION_EXHAUSTED", ErrDelegationExhausted, false, false, false},
		{codes.FailedPrecondition, "DELEGATION_REVOKED", ErrDelegationRevoked, false, true, false},
		{codes.FailedPrecondition, "DELEGATION_FORGED", ErrDelegationInvalid, false, true, false},
		{codes.InvalidArgument, "CHAIN_TOO_DEEP", ErrDelegationInvalid, false, true, false},
		{codes.FailedPrecondition, "AGENT_SUSPENDED", ErrAgentInactive, false, true, false},
		{codes.FailedPrecondition, "SECRET_EXPIRED", ErrSecretExpired, false, false, false},
		{codes.FailedPrecondition, "CAS_MISMATCH", ErrConflict, false, false, false},
		{codes.FailedPrecondition, "VERSION_CONFLICT", ErrConflict, false, false, false},
		{codes.FailedPrecondition, "EMBEDDING_FAILED", ErrEmbeddingFailed, false, false, false},
		{codes.FailedPrecondition, "SOMETHING_NEW", ErrFailedPrecondition, false, false, false},
		{codes.InvalidArgument, "INVALID_EXTENSION", ErrExtension, false, false, false},
		{codes.AlreadyExists, "EXTENSION_EXISTS", ErrAlreadyExists, false, false, false},
		{codes.ResourceExhausted, "QUOTA_EXCEEDED", ErrQuotaExceeded, false, false, false},
		{codes.ResourceExhausted, "", ErrResourceExhausted, false, false, false},
		{codes.Unimplemented, "", ErrUnsupported, false, false, false},
		{codes.InvalidArgument, "TOO_LARGE", ErrTooLarge, false, false, false},
		{codes.DataLoss, "HASH_MISMATCH", ErrHashMismatch, false, false, false},
		{codes.DataLoss, "DECRYPTION_FAILED", ErrDecryptionFailed, false, false, false},
		{codes.FailedPrecondition, "ENCRYPTION_FAILED", ErrEncryptionFailed, false, false, false},
		{codes.FailedPrecondition, "REFERENCE_HASH_MISMATCH", ErrConflict, false, false, false},
		{codes.FailedPrecondition, "RETAINED", ErrRetained, false, false, false},
		{codes.FailedPrecondition, "NOT_LEADER", ErrNotLeader, false, false, false},
		{codes.FailedPrecondition, "IDEMPOTENCY_CONFLICT", ErrConflict, false, false, false},
		{codes.Aborted, "INDETERMINATE", ErrIndeterminate, true, false, true},
		{codes.Unavailable, "NO_QUORUM", ErrUnavailable, true, false, true},
	} {
		t.Run(tc.code.String()+"/"+tc.reason, func(t *testing.T) {
			err := decode(context.Background(), "vault", "GetSecret", statusWith(tc.code, tc.reason, map[string]string{"used": "3"}))
			if err.Kind != tc.kind || !errors.Is(err, tc.kind) || err.Code != tc.code || err.Reason != tc.reason {
				t.Fatalf("got %+v", err)
			}
			if err.Retryable() != tc.retryable || IsRetryable(err) != tc.retryable {
				t.Errorf("retryable %v", err.Retryable())
			}
			if err.SecurityCritical() != tc.secure || IsSecurityCritical(fmt.Errorf("wrapped: %w", err)) != tc.secure {
				t.Errorf("security-critical %v", err.SecurityCritical())
			}
			if failure(err) != tc.fails || excluded(err) {
				t.Errorf("failure %v, excluded %v", failure(err), excluded(err))
			}
			if tc.reason != "" && err.Metadata["used"] != "3" {
				t.Errorf("metadata %v", err.Metadata)
			}
			if status.Code(err) != tc.code {
				t.Errorf("the node's status is not reachable through the error: %v", status.Code(err))
			}
		})
	}
}

// A call the caller ended is the caller's: never retried, never counted
// for or against the service, whatever gRPC made of it.
func TestDecodeCallerEnded(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithTimeout(context.Background(), 0)
	defer cancel2()
	for _, tc := range []struct {
		ctx  context.Context
		err  error
		kind error
	}{
		{canceled, status.Error(codes.Canceled, "context canceled"), ErrCanceled},
		{canceled, context.Canceled, ErrCanceled},
		{expired, status.Error(codes.DeadlineExceeded, "context deadline exceeded"), ErrTimeout},
		{expired, context.DeadlineExceeded, ErrTimeout},
	} {
		e := decode(tc.ctx, "authz", "Check", tc.err)
		if e.Kind != tc.kind || !e.caller || e.Retryable() || failure(e) || !excluded(e) || !errors.Is(e, tc.ctx.Err()) {
			t.Errorf("%v: %+v", tc.err, e)
		}
	}
	// The caller's context ending does not turn the node's real answer
	// into the caller's doing.
	e := decode(canceled, "authz", "Check", status.Error(codes.Unavailable, "down"))
	if e.Kind != ErrUnavailable || e.caller {
		t.Errorf("unavailable with a canceled context: %+v", e)
	}
	// The client's own deadline (the caller's context still live) is a
	// timeout of the service.
	e = decode(context.Background(), "authz", "Check", status.Error(codes.DeadlineExceeded, "deadline"))
	if e.Kind != ErrTimeout || e.caller || !failure(e) || !e.Retryable() {
		t.Errorf("own timeout: %+v", e)
	}
}

func TestSentinelFamilies(t *testing.T) {
	for child, parent := range map[error]error{ErrCircuitOpen: ErrUnavailable, ErrSealed: ErrUnavailable,
		ErrHSMUnavailable: ErrUnavailable, ErrPolicyNotFound: ErrNotFound, ErrDelegationNotFound: ErrNotFound,
		ErrQuotaExceeded: ErrResourceExhausted, ErrTooLarge: ErrInvalidRequest, ErrRetained: ErrFailedPrecondition,
		ErrNotLeader: ErrFailedPrecondition} {
		if !errors.Is(child, parent) || errors.Is(parent, child) {
			t.Errorf("%v under %v", child, parent)
		}
	}
	// An open circuit is Retryable for a caller (later), but the client
	// itself never retries it.
	open := localError("authz", "Check", ErrCircuitOpen, "open")
	if !open.Retryable() || retryable(open) || !failure(open) {
		t.Errorf("circuit open: %+v", open)
	}
}

func TestErrorMessage(t *testing.T) {
	e := decode(context.Background(), "vault", "GetSecret", status.Error(codes.NotFound, strings.Repeat("é", 400)))
	if len(e.Message) > maxMessage+len("…") || !strings.HasSuffix(e.Message, "…") || !strings.HasPrefix(e.Error(), "creto client: vault GetSecret: not found: é") {
		t.Fatalf("bounded message: %d bytes: %q", len(e.Message), e.Error()[:60])
	}
	if got := quote(strings.Repeat("x", 100) + "\n"); len(got) > 70 || strings.Contains(got, "\n") {
		t.Fatalf("quote: %q", got)
	}
	if e := decode(context.Background(), "nhi", "GetAgent", errors.New("odd")); e.Kind != ErrInternal {
		t.Fatalf("a non-status error: %+v", e)
	}
}

// The figures of a quota or a size limit reach the caller as typed errors,
// from the ErrorInfo metadata the node sends (storage's rpcerr.Quota and
// TOO_LARGE details); metadata that does not parse gives none.
func TestDecodeDetails(t *testing.T) {
	st, _ := status.New(codes.ResourceExhausted, "quota exceeded").WithDetails(
		&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{Subject: "owner:a"}}},
		&errdetails.ErrorInfo{Reason: "QUOTA_EXCEEDED", Metadata: map[string]string{"used": "900", "limit": "1000", "unit": "bytes"}})
	e := decode(context.Background(), "storage", "Store", st.Err())
	var q *QuotaExceededError
	if !errors.As(e, &q) || q.Used != 900 || q.Limit != 1000 || q.Unit != "bytes" || !errors.Is(e, ErrQuotaExceeded) || !errors.Is(e, ErrResourceExhausted) {
		t.Fatalf("quota: %+v %+v", e, q)
	}
	e = decode(context.Background(), "storage", "Retrieve", statusWith(codes.InvalidArgument, "TOO_LARGE", map[string]string{"size": "20", "max": "10", "unit": "bytes"}))
	var big *TooLargeError
	if !errors.As(e, &big) || big.Size != 20 || big.Max != 10 || !errors.Is(e, ErrTooLarge) || big.Error() != "too large: 20 > 10 bytes" {
		t.Fatalf("too large: %+v %+v", e, big)
	}
	e = decode(context.Background(), "audit", "LogBatch", statusWith(codes.InvalidArgument, "TOO_LARGE", nil))
	if errors.As(e, &big) || !errors.Is(e, ErrTooLarge) {
		t.Fatalf("too large without figures: %+v", e)
	}
	e = decode(context.Background(), "storage", "Store", statusWith(codes.ResourceExhausted, "QUOTA_EXCEEDED", map[string]string{"used": "x", "limit": "1"}))
	if errors.As(e, &q) {
		t.Fatalf("unparsable figures made a detail: %+v", q)
	}
}
