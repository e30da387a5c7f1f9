// Package rpcerr is the one mapping from the services' typed errors to gRPC
// statuses. Each service's adapter lists its sentinel errors with the code
// each stands for (a Table); everything else — context errors, the errors
// every service shares, unknown errors — is decided here, the same way for
// every service, so a client sees one vocabulary of codes and details.
//
// Messages of mapped errors are the services' own: they are written never
// to carry secrets. An error no table knows is an internal fault: the client
// gets codes.Internal and an incident id, the log gets the full error.
package rpcerr

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/creto-systems/creto/internal/caller"
	"github.com/creto-systems/creto/internal/kv"
)

// Rule maps errors matching Err (errors.Is) to Code. Reason, when set, is
// sent as an ErrorInfo detail so clients can branch on a stable string
// rather than a message.
type Rule struct {
	Err    error
	Code   codes.Code
	Reason string
}

// Table is a service's rules, tried in order: list specific sentinels
// before the general ones they wrap.
type Table struct {
	// Domain names the service in ErrorInfo details, for example
	// "creto.authz.v1.AuthorizationService".
	Domain string
	Rules  []Rule
	// Details, when set, adds details for a typed error the rules matched,
	// such as the used and limit figures of a quota (see Quota).
	Details func(err error) []protoadapt.MessageV1
}

// shared are the rules every service gets after its own.
var shared = []Rule{
	{Err: context.DeadlineExceeded, Code: codes.DeadlineExceeded},
	{Err: context.Canceled, Code: codes.Canceled},
	{Err: kv.ErrClosed, Code: codes.Unavailable, Reason: "SHUTTING_DOWN"},
	// Who a request may act as (caller.Acting), which every adapter asks.
	{Err: caller.ErrNotAllowed, Code: codes.PermissionDenied, Reason: "NOT_SELF"},
	{Err: caller.ErrNoAgent, Code: codes.InvalidArgument, Reason: "NO_AGENT"},
	{Err: caller.ErrUnauthenticated, Code: codes.Unauthenticated},
}

// Status converts err into a gRPC status error. A nil err gives nil; an
// error that already is a status passes through unchanged.
func (t *Table) Status(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, rules := range [][]Rule{t.Rules, shared} {
		for _, r := range rules {
			if !errors.Is(err, r.Err) {
				continue
			}
			st := status.New(r.Code, err.Error())
			var details []protoadapt.MessageV1
			if r.Reason != "" {
				details = append(details, &errdetails.ErrorInfo{Reason: r.Reason, Domain: t.Domain})
			}
			if t.Details != nil {
				details = append(details, t.Details(err)...)
			}
			if len(details) > 0 {
				if withDetails, derr := st.WithDetails(details...); derr == nil {
					st = withDetails
				}
			}
			return st.Err()
		}
	}
	id := incidentID()
	log.ErrorContext(ctx, "internal error", "incident", id, "domain", t.Domain, "err", err)
	return status.Errorf(codes.Internal, "internal error (incident %s)", id)
}

// Quota builds the details of a quota error: a QuotaFailure for generic
// clients and an ErrorInfo carrying the figures, which QuotaFailure has no
// field for.
func Quota(domain, subject, description string, used, limit int64, unit string) []protoadapt.MessageV1 {
	return []protoadapt.MessageV1{
		&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{Subject: subject, Description: description}}},
		&errdetails.ErrorInfo{Reason: "QUOTA_EXCEEDED", Domain: domain, Metadata: map[string]string{
			"used": strconv.FormatInt(used, 10), "limit": strconv.FormatInt(limit, 10), "unit": unit,
		}},
	}
}

func incidentID() string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	return hex.EncodeToString(b[:])
}
