package rpcerr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/creto-systems/creto/internal/caller"
)

var (
	errMissing = errors.New("missing")
	errFull    = errors.New("full")
)

// quotaError is a typed error of the kind a service returns for a quota.
type quotaError struct{ used, limit int64 }

func (e *quotaError) Error() string { return fmt.Sprintf("quota: %d of %d", e.used, e.limit) }
func (e *quotaError) Unwrap() error { return errFull }

var table = Table{
	Domain: "creto.test.v1.TestService",
	Rules: []Rule{
		{Err: errMissing, Code: codes.NotFound, Reason: "MISSING"},
		{Err: errFull, Code: codes.ResourceExhausted, Reason: "FULL"},
	},
	Details: func(err error) []protoadapt.MessageV1 {
		var q *quotaError
		if errors.As(err, &q) {
			return Quota("creto.test.v1.TestService", "owner:a", "bytes", q.used, q.limit, "bytes")
		}
		return nil
	},
}

func convert(t *testing.T, err error) (*status.Status, string) {
	t.Helper()
	var log bytes.Buffer
	out := table.Status(context.Background(), slog.New(slog.NewTextHandler(&log, nil)), err)
	st, ok := status.FromError(out)
	if !ok {
		t.Fatalf("%v did not become a status: %v", err, out)
	}
	return st, log.String()
}

func reason(st *status.Status) string {
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.GetReason() + "@" + ei.GetDomain()
		}
	}
	return ""
}

func TestMappedErrorsKeepTheirMessageAndGetTheirReason(t *testing.T) {
	st, _ := convert(t, fmt.Errorf("get thing %q: %w", "x", errMissing))
	if st.Code() != codes.NotFound || st.Message() != `get thing "x": missing` || reason(st) != "MISSING@creto.test.v1.TestService" {
		t.Fatalf("got %v %q %q", st.Code(), st.Message(), reason(st))
	}
}

func TestQuotaErrorsCarryTheFigures(t *testing.T) {
	st, _ := convert(t, fmt.Errorf("store: %w", &quotaError{used: 7, limit: 10}))
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("code %v", st.Code())
	}
	var qf *errdetails.QuotaFailure
	var info []*errdetails.ErrorInfo
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.QuotaFailure:
			qf = d
		case *errdetails.ErrorInfo:
			info = append(info, d)
		}
	}
	if qf == nil || qf.GetViolations()[0].GetSubject() != "owner:a" {
		t.Fatalf("quota failure: %v", qf)
	}
	var figures map[string]string
	for _, i := range info {
		if i.GetReason() == "QUOTA_EXCEEDED" {
			figures = i.GetMetadata()
		}
	}
	if figures["used"] != "7" || figures["limit"] != "10" || figures["unit"] != "bytes" {
		t.Fatalf("figures: %v (infos %v)", figures, info)
	}
}

func TestSharedRules(t *testing.T) {
	for _, c := range []struct {
		err    error
		code   codes.Code
		reason string
	}{
		{context.DeadlineExceeded, codes.DeadlineExceeded, ""},
		{fmt.Errorf("wait: %w", context.Canceled), codes.Canceled, ""},
		{caller.ErrNotAllowed, codes.PermissionDenied, "NOT_SELF"},
		{caller.ErrNoAgent, codes.InvalidArgument, "NO_AGENT"},
		{caller.ErrUnauthenticated, codes.Unauthenticated, ""},
	} {
		st, _ := convert(t, c.err)
		got := strings.TrimSuffix(reason(st), "@creto.test.v1.TestService")
		if st.Code() != c.code || got != c.reason {
			t.Errorf("%v: got %v %q, want %v %q", c.err, st.Code(), got, c.code, c.reason)
		}
	}
}

func TestStatusesPassThroughAndNilStaysNil(t *testing.T) {
	in := status.Error(codes.FailedPrecondition, "already decided")
	if out := table.Status(context.Background(), slog.Default(), in); out != in {
		t.Fatalf("a status was rewritten: %v", out)
	}
	if out := table.Status(context.Background(), slog.Default(), nil); out != nil {
		t.Fatalf("nil became %v", out)
	}
}

// An error no rule knows is a fault of the node: the client learns only an
// incident id, the log has the cause under the same id.
func TestUnknownErrorsAreInternalWithAnIncidentID(t *testing.T) {
	st, log := convert(t, errors.New("open /srv/creto/kv/000123.sst: input/output error"))
	if st.Code() != codes.Internal || strings.Contains(st.Message(), "/srv/creto") {
		t.Fatalf("client saw %v %q", st.Code(), st.Message())
	}
	_, id, ok := strings.Cut(strings.TrimSuffix(st.Message(), ")"), "incident ")
	if !ok || len(id) != 16 {
		t.Fatalf("no incident id in %q", st.Message())
	}
	if !strings.Contains(log, "incident="+id) || !strings.Contains(log, "/srv/creto/kv/000123.sst") {
		t.Fatalf("log lacks the incident or the cause: %s", log)
	}
}
