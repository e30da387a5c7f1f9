package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/cedar-policy/cedar-go/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	authzv1 "github.com/creto-systems/creto/api/creto/authz/v1"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/internal/caller"
	"github.com/creto-systems/creto/internal/rpcerr"
)

// MaxBatch is the most requests one CheckBatch may carry.
const MaxBatch = 1000

// DelegationResolver turns a delegation id into the verified chain of
// identities it stands for, origin first. The node backs it with NHI.
type DelegationResolver func(ctx context.Context, delegationID string) (principal string, chain []engine.EntityRef, err error)

// Server is the gRPC face of a Service.
type Server struct {
	authzv1.UnimplementedAuthorizationServiceServer
	svc        *Service
	agentType  string
	delegation DelegationResolver
	log        *slog.Logger
}

// NewServer returns the AuthorizationService implementation. agentType is
// the Cedar type principals default to and agent callers are checked as;
// resolve may be nil when the node has no identity service, in which case
// requests naming a delegation id are refused.
func NewServer(svc *Service, agentType string, resolve DelegationResolver, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{svc: svc, agentType: agentType, delegation: resolve, log: log}
}

// Register adds the service to a gRPC server.
func (s *Server) Register(g grpc.ServiceRegistrar) { authzv1.RegisterAuthorizationServiceServer(g, s) }

var errorTable = rpcerr.Table{
	Domain: authzv1.AuthorizationService_ServiceDesc.ServiceName,
	Rules: []rpcerr.Rule{
		{Err: engine.ErrPolicyNotFound, Code: codes.NotFound, Reason: "POLICY_NOT_FOUND"},
		{Err: engine.ErrExtensionNotFound, Code: codes.NotFound, Reason: "EXTENSION_NOT_FOUND"},
		{Err: engine.ErrPolicyExists, Code: codes.AlreadyExists, Reason: "POLICY_EXISTS"},
		{Err: engine.ErrExtensionExists, Code: codes.AlreadyExists, Reason: "EXTENSION_EXISTS"},
		{Err: engine.ErrConflict, Code: codes.FailedPrecondition, Reason: "VERSION_CONFLICT"},
		{Err: engine.ErrImportNotGranted, Code: codes.PermissionDenied, Reason: "IMPORT_NOT_GRANTED"},
		{Err: engine.ErrABIVersion, Code: codes.FailedPrecondition, Reason: "ABI_VERSION"},
		{Err: engine.ErrInvalidRequest, Code: codes.InvalidArgument, Reason: "INVALID_REQUEST"},
		{Err: engine.ErrInvalidPolicy, Code: codes.InvalidArgument, Reason: "INVALID_POLICY"},
		{Err: engine.ErrInvalidSchema, Code: codes.InvalidArgument, Reason: "INVALID_SCHEMA"},
		{Err: engine.ErrExtensionInvalid, Code: codes.InvalidArgument, Reason: "INVALID_EXTENSION"},
		{Err: engine.ErrUnknownImport, Code: codes.InvalidArgument, Reason: "UNKNOWN_IMPORT"},
		{Err: ErrInvalidArgument, Code: codes.InvalidArgument},
		{Err: ErrExtensionsDisabled, Code: codes.FailedPrecondition, Reason: "EXTENSIONS_DISABLED"},
		{Err: engine.ErrClosed, Code: codes.Unavailable, Reason: "SHUTTING_DOWN"},
	},
}

func (s *Server) status(ctx context.Context, err error) error {
	return errorTable.Status(ctx, s.log, err)
}

// Check decides one request.
func (s *Server) Check(ctx context.Context, in *authzv1.CheckRequest) (*authzv1.CheckResponse, error) {
	req, err := s.request(ctx, in)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	d, err := s.svc.Check(ctx, req)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return response(d), nil
}

// CheckBatch decides up to MaxBatch requests.
func (s *Server) CheckBatch(ctx context.Context, in *authzv1.CheckBatchRequest) (*authzv1.CheckBatchResponse, error) {
	if len(in.GetRequests()) > MaxBatch {
		return nil, s.status(ctx, fmt.Errorf("authz: check batch: %w: %d requests, at most %d", ErrInvalidArgument, len(in.GetRequests()), MaxBatch))
	}
	reqs := make([]engine.Request, len(in.GetRequests()))
	for i, r := range in.GetRequests() {
		var err error
		if reqs[i], err = s.request(ctx, r); err != nil {
			return nil, s.status(ctx, fmt.Errorf("request %d: %w", i, err))
		}
	}
	ds, err := s.svc.CheckBatch(ctx, reqs)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &authzv1.CheckBatchResponse{Responses: make([]*authzv1.CheckResponse, len(ds))}
	for i, d := range ds {
		out.Responses[i] = response(d)
	}
	return out, nil
}

// request converts a CheckRequest, enforcing what an agent caller may
// ask: an agent checks only for itself, and its delegation chain is one
// the node verified, never one it supplies.
func (s *Server) request(ctx context.Context, in *authzv1.CheckRequest) (engine.Request, error) {
	var req engine.Request
	p := in.GetPrincipal()
	if p.GetId() == "" {
		return req, invalid("principal id is required")
	}
	req.Principal = engine.Principal{Type: p.GetType(), ID: p.GetId()}
	if req.Principal.Type == "" {
		req.Principal.Type = s.agentType
	}
	if p.GetAttributes() != nil {
		b, err := protojson.Marshal(p.GetAttributes())
		if err != nil {
			return req, invalid("principal attributes: %v", err)
		}
		req.Principal.Attributes = b
	}
	var err error
	if req.Action, err = parseRef(in.GetAction(), ""); err != nil {
		return req, invalid("action: %v", err)
	}
	if req.Resource, err = parseRef(in.GetResource(), "Resource"); err != nil {
		return req, invalid("resource: %v", err)
	}
	switch {
	case in.GetContext() != nil && len(in.GetContextJson()) > 0:
		return req, invalid("set context or context_json, not both")
	case in.GetContext() != nil:
		if req.Context, err = protojson.Marshal(in.GetContext()); err != nil {
			return req, invalid("context: %v", err)
		}
	default:
		req.Context = in.GetContextJson()
	}
	req.TraceID = in.GetTraceId()

	who, _ := caller.From(ctx)
	if who.Kind == caller.Agent && (req.Principal.Type != s.agentType || req.Principal.ID != who.ID) {
		return req, status.Errorf(codes.PermissionDenied, "an agent may only check its own requests (caller %s)", who)
	}
	switch {
	case len(in.GetDelegationChain()) > 0 && in.GetDelegationId() != "":
		return req, invalid("set delegation_chain or delegation_id, not both")
	case len(in.GetDelegationChain()) > 0:
		if who.Kind != caller.Operator {
			return req, status.Error(codes.PermissionDenied, "only operators may assert a delegation chain; agents pass delegation_id")
		}
		req.Delegation = make([]engine.EntityRef, len(in.GetDelegationChain()))
		for i, r := range in.GetDelegationChain() {
			req.Delegation[i] = engine.EntityRef{Type: r.GetType(), ID: r.GetId()}
		}
	case in.GetDelegationId() != "":
		if s.delegation == nil {
			return req, status.Error(codes.FailedPrecondition, "this node has no identity service to verify delegations")
		}
		principal, chain, err := s.delegation(ctx, in.GetDelegationId())
		if err != nil {
			return req, err
		}
		if principal != req.Principal.ID {
			return req, status.Errorf(codes.PermissionDenied, "delegation %q was not granted to %q", in.GetDelegationId(), req.Principal.ID)
		}
		req.Delegation = chain
	}
	return req, nil
}

// parseRef reads `Type::"id"`. A string without "::" is an id of
// defaultType (the action's type is filled in by the engine).
func parseRef(s, defaultType string) (engine.EntityRef, error) {
	if s == "" {
		return engine.EntityRef{}, errors.New("required")
	}
	if !strings.Contains(s, "::") {
		return engine.EntityRef{Type: defaultType, ID: s}, nil
	}
	// The common form, a plain type and an id without escapes, is split
	// directly; Cedar's tokenizer costs more than the rest of a check.
	if i := strings.LastIndex(s, `::"`); i > 0 && strings.HasSuffix(s, `"`) && len(s) >= i+4 {
		typ, id := s[:i], s[i+3:len(s)-1]
		if plainType(typ) && !strings.ContainsAny(id, `"\`) {
			return engine.EntityRef{Type: typ, ID: id}, nil
		}
	}
	var uid types.EntityUID
	if err := uid.UnmarshalCedar([]byte(s)); err != nil {
		return engine.EntityRef{}, fmt.Errorf("%q is not a Cedar entity reference such as Document::\"q3\": %v", s, err)
	}
	return engine.EntityRef{Type: string(uid.Type), ID: string(uid.ID)}, nil
}

// plainType reports whether typ is a Cedar type name of identifiers
// joined by "::", the only form the fast path of parseRef accepts.
func plainType(typ string) bool {
	for part := range strings.SplitSeq(typ, "::") {
		if part == "" {
			return false
		}
		for i, r := range part {
			if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
				return false
			}
		}
	}
	return true
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", engine.ErrInvalidRequest, fmt.Sprintf(format, args...))
}

func response(d engine.Decision) *authzv1.CheckResponse {
	out := &authzv1.CheckResponse{
		Decision:         decision(d),
		EvaluationTimeNs: uint64(d.EvaluationTime),
		MatchedPolicies:  d.MatchedPolicies,
		Cached:           d.Cached,
	}
	for _, e := range d.Errors {
		out.Errors = append(out.Errors, &authzv1.EvaluationError{PolicyId: e.PolicyID, Message: e.Message})
	}
	return out
}

func decision(d engine.Decision) *authzv1.Decision {
	switch d.Kind {
	case engine.Allow:
		return &authzv1.Decision{Result: &authzv1.Decision_Allow{Allow: &authzv1.AllowDecision{}}}
	case engine.RequiresOversight:
		return &authzv1.Decision{Result: &authzv1.Decision_RequiresOversight{RequiresOversight: &authzv1.OversightDecision{
			PolicyId: d.PolicyID, Timeout: durationpb.New(d.Oversight.Timeout),
			RequiredApprovers: d.Oversight.Approvers, Requirement: d.Oversight.Requirement,
		}}}
	case engine.QuotaExceeded:
		q := &authzv1.QuotaDecision{QuotaId: d.Quota.ID, Limit: d.Quota.Limit, Used: d.Quota.Used}
		if !d.Quota.ResetAt.IsZero() {
			q.ResetAt = timestamppb.New(d.Quota.ResetAt)
		}
		return &authzv1.Decision{Result: &authzv1.Decision_QuotaExceeded{QuotaExceeded: q}}
	case engine.RateLimited:
		return &authzv1.Decision{Result: &authzv1.Decision_RateLimited{RateLimited: &authzv1.RateLimitDecision{
			RetryAfter: durationpb.New(d.RateLimit.RetryAfter), RequestsRemaining: d.RateLimit.Remaining,
		}}}
	}
	// Deny, and anything unforeseen: fail secure.
	return &authzv1.Decision{Result: &authzv1.Decision_Deny{Deny: &authzv1.DenyDecision{Reason: d.Reason, PolicyId: d.PolicyID}}}
}

// RegisterExtension loads a module.
func (s *Server) RegisterExtension(ctx context.Context, in *authzv1.RegisterExtensionRequest) (*authzv1.RegisterExtensionResponse, error) {
	info, err := s.svc.RegisterExtension(ctx, in.GetModule(), engine.ExtensionConfig{Config: in.GetConfig(), Grants: in.GetGrants(), OnError: in.GetOnError()})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &authzv1.RegisterExtensionResponse{Extension: extension(info)}, nil
}

// UpdateExtension replaces a module.
func (s *Server) UpdateExtension(ctx context.Context, in *authzv1.UpdateExtensionRequest) (*authzv1.UpdateExtensionResponse, error) {
	info, err := s.svc.UpdateExtension(ctx, in.GetName(), in.GetModule(), engine.ExtensionConfig{Config: in.GetConfig(), Grants: in.GetGrants(), OnError: in.GetOnError()})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &authzv1.UpdateExtensionResponse{Extension: extension(info)}, nil
}

// UnregisterExtension removes a module.
func (s *Server) UnregisterExtension(ctx context.Context, in *authzv1.UnregisterExtensionRequest) (*authzv1.UnregisterExtensionResponse, error) {
	if err := s.svc.UnregisterExtension(ctx, in.GetName()); err != nil {
		return nil, s.status(ctx, err)
	}
	return &authzv1.UnregisterExtensionResponse{}, nil
}

// ListExtensions lists the modules.
func (s *Server) ListExtensions(context.Context, *authzv1.ListExtensionsRequest) (*authzv1.ListExtensionsResponse, error) {
	infos := s.svc.ListExtensions()
	out := &authzv1.ListExtensionsResponse{Extensions: make([]*authzv1.Extension, len(infos))}
	for i, info := range infos {
		out.Extensions[i] = extension(info)
	}
	return out, nil
}

func extension(x engine.ExtensionInfo) *authzv1.Extension {
	return &authzv1.Extension{
		Name: x.Name, Version: x.Version, Priority: int32(x.Priority), Capabilities: x.Capabilities,
		OnError: x.OnError, Sha256: x.SHA256, Imports: x.Imports, RegisteredAt: timestamppb.New(x.RegisteredAt),
		Calls: x.Stats.Calls, Skipped: x.Stats.Skipped, Decisions: x.Stats.Decisions, Failures: x.Stats.Failures,
	}
}

// CreatePolicy adds a policy.
func (s *Server) CreatePolicy(ctx context.Context, in *authzv1.CreatePolicyRequest) (*authzv1.CreatePolicyResponse, error) {
	p, err := s.svc.CreatePolicy(ctx, in.GetId(), in.GetText())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &authzv1.CreatePolicyResponse{Policy: policy(p)}, nil
}

// UpdatePolicy replaces a policy's text.
func (s *Server) UpdatePolicy(ctx context.Context, in *authzv1.UpdatePolicyRequest) (*authzv1.UpdatePolicyResponse, error) {
	p, err := s.svc.UpdatePolicy(ctx, in.GetId(), in.GetText(), in.GetIfVersion())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &authzv1.UpdatePolicyResponse{Policy: policy(p)}, nil
}

// DeletePolicy removes a policy.
func (s *Server) DeletePolicy(ctx context.Context, in *authzv1.DeletePolicyRequest) (*authzv1.DeletePolicyResponse, error) {
	if err := s.svc.DeletePolicy(ctx, in.GetId(), in.GetIfVersion()); err != nil {
		return nil, s.status(ctx, err)
	}
	return &authzv1.DeletePolicyResponse{}, nil
}

// GetPolicy returns a policy.
func (s *Server) GetPolicy(ctx context.Context, in *authzv1.GetPolicyRequest) (*authzv1.GetPolicyResponse, error) {
	p, err := s.svc.GetPolicy(in.GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &authzv1.GetPolicyResponse{Policy: policy(p)}, nil
}

// ListPolicies pages through the policies; the page token is the last id
// of the previous page.
func (s *Server) ListPolicies(ctx context.Context, in *authzv1.ListPoliciesRequest) (*authzv1.ListPoliciesResponse, error) {
	page, more, err := s.svc.ListPolicies(in.GetPageToken(), int(in.GetPageSize()))
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &authzv1.ListPoliciesResponse{Policies: make([]*authzv1.Policy, len(page))}
	for i, p := range page {
		out.Policies[i] = policy(p)
	}
	if more {
		out.NextPageToken = page[len(page)-1].ID
	}
	return out, nil
}

func policy(p engine.Policy) *authzv1.Policy {
	return &authzv1.Policy{Id: p.ID, Text: p.Text, Version: p.Version, Effect: p.Effect, Annotations: p.Annotations}
}
