package nhi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	"github.com/creto-systems/creto/internal/caller"
	"github.com/creto-systems/creto/internal/rpcerr"
	"github.com/creto-systems/creto/services/crypto"
)

// Server is the gRPC face of a Service (creto.nhi.v1.NhiService). The
// node's meta-policies decide which methods a caller may reach at all;
// Server makes the per-request checks that depend on the caller: an agent
// signs and delegates only as itself, revokes only delegations of its own
// authority, and revokes only its own tokens. An operator acts as the
// agent a request names.
type Server struct {
	nhiv1.UnimplementedNhiServiceServer
	svc *Service
	log *slog.Logger
}

// NewServer returns the NhiService implementation over svc.
func NewServer(svc *Service, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{svc: svc, log: log}
}

// Register adds the service to a gRPC server.
func (s *Server) Register(g grpc.ServiceRegistrar) { nhiv1.RegisterNhiServiceServer(g, s) }

// errorTable maps the service's sentinels to codes. Token failures are
// UNAUTHENTICATED: the token does not authenticate anyone, whoever carried
// it. Chain failures are FAILED_PRECONDITION when the state of a recorded
// chain is at fault (CreateDelegation's parent), INVALID_ARGUMENT when the
// request asks for a chain the rules forbid.
var errorTable = rpcerr.Table{
	Domain: nhiv1.NhiService_ServiceDesc.ServiceName,
	Rules: []rpcerr.Rule{
		{Err: ErrTokenMalformed, Code: codes.InvalidArgument, Reason: "TOKEN_MALFORMED"},
		{Err: ErrTokenForged, Code: codes.Unauthenticated, Reason: "TOKEN_FORGED"},
		{Err: ErrTokenExpired, Code: codes.Unauthenticated, Reason: "TOKEN_EXPIRED"},
		{Err: ErrTokenRevoked, Code: codes.Unauthenticated, Reason: "TOKEN_REVOKED"},
		{Err: ErrDelegationMalformed, Code: codes.InvalidArgument, Reason: "DELEGATION_MALFORMED"},
		{Err: ErrDelegationForged, Code: codes.FailedPrecondition, Reason: "DELEGATION_FORGED"},
		{Err: ErrDelegationExpired, Code: codes.FailedPrecondition, Reason: "DELEGATION_EXPIRED"},
		{Err: ErrDelegationRevoked, Code: codes.FailedPrecondition, Reason: "DELEGATION_REVOKED"},
		{Err: ErrWidened, Code: codes.InvalidArgument, Reason: "DELEGATION_WIDENED"},
		{Err: ErrDelegationCycle, Code: codes.InvalidArgument, Reason: "DELEGATION_CYCLE"},
		{Err: ErrChainTooDeep, Code: codes.InvalidArgument, Reason: "CHAIN_TOO_DEEP"},
		{Err: ErrChainBroken, Code: codes.InvalidArgument, Reason: "CHAIN_BROKEN"},
		{Err: ErrNotFound, Code: codes.NotFound, Reason: "NOT_FOUND"},
		{Err: ErrAlreadyExists, Code: codes.AlreadyExists, Reason: "ALREADY_EXISTS"},
		{Err: ErrInvalidArgument, Code: codes.InvalidArgument, Reason: "INVALID_ARGUMENT"},
		{Err: ErrRevoked, Code: codes.FailedPrecondition, Reason: "AGENT_REVOKED"},
		{Err: ErrSuspended, Code: codes.FailedPrecondition, Reason: "AGENT_SUSPENDED"},
		{Err: ErrExpired, Code: codes.FailedPrecondition, Reason: "EXPIRED"},
		{Err: ErrInvalidSignature, Code: codes.InvalidArgument, Reason: "INVALID_SIGNATURE"},
		{Err: ErrClosed, Code: codes.Unavailable, Reason: "SHUTTING_DOWN"},
	},
}

func (s *Server) status(ctx context.Context, err error) error {
	return errorTable.Status(ctx, s.log, err)
}

// ResolveToken verifies a token.
func (s *Server) ResolveToken(ctx context.Context, in *nhiv1.ResolveTokenRequest) (*nhiv1.ResolveTokenResponse, error) {
	a, err := s.svc.ResolveToken(ctx, in.GetToken())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &nhiv1.ResolveTokenResponse{Agent: agentProto(a)}, nil
}

// GetAgent returns an agent.
func (s *Server) GetAgent(ctx context.Context, in *nhiv1.GetAgentRequest) (*nhiv1.GetAgentResponse, error) {
	a, err := s.svc.Get(ctx, in.GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &nhiv1.GetAgentResponse{Agent: agentProto(a)}, nil
}

// IsRegistered reports whether an id was ever registered.
func (s *Server) IsRegistered(ctx context.Context, in *nhiv1.IsRegisteredRequest) (*nhiv1.IsRegisteredResponse, error) {
	ok, err := s.svc.IsRegistered(ctx, in.GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &nhiv1.IsRegisteredResponse{Registered: ok}, nil
}

// IsRevoked reports whether an agent is revoked.
func (s *Server) IsRevoked(ctx context.Context, in *nhiv1.IsRevokedRequest) (*nhiv1.IsRevokedResponse, error) {
	revoked, err := s.svc.IsRevoked(ctx, in.GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &nhiv1.IsRevokedResponse{Revoked: revoked}, nil
}

// listPageMax is the largest page ListAgents returns: one below the
// service's cap, because it asks for one agent more than the page to know
// whether another page follows.
const listPageMax = 999

// ListAgents pages through the agents; the page token is the last id of
// the previous page.
func (s *Server) ListAgents(ctx context.Context, in *nhiv1.ListAgentsRequest) (*nhiv1.ListAgentsResponse, error) {
	size := int(in.GetPageSize())
	switch {
	case size < 0:
		return nil, s.status(ctx, opError("list agents", "", detail(ErrInvalidArgument, "negative page size")))
	case size == 0:
		size = 100
	}
	size = min(size, listPageMax)
	var st AgentStatus
	if in.GetStatus() != nhiv1.AgentStatus_AGENT_STATUS_UNSPECIFIED {
		var err error
		if st, err = statusFrom(in.GetStatus()); err != nil {
			return nil, s.status(ctx, opError("list agents", "", err))
		}
	}
	page, err := s.svc.List(ctx, ListOptions{OwnerID: in.GetOwnerId(), Status: st, After: in.GetPageToken(), Limit: size + 1})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &nhiv1.ListAgentsResponse{}
	if len(page) > size {
		page = page[:size]
		out.NextPageToken = page[size-1].ID
	}
	for _, a := range page {
		out.Agents = append(out.Agents, agentProto(a))
	}
	return out, nil
}

// GetDelegationChain returns a chain as recorded.
func (s *Server) GetDelegationChain(ctx context.Context, in *nhiv1.GetDelegationChainRequest) (*nhiv1.GetDelegationChainResponse, error) {
	id, err := ParseDelegationID(in.GetDelegationId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	c, err := s.svc.GetDelegationChain(ctx, id)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &nhiv1.GetDelegationChainResponse{Chain: s.chainProto(ctx, c)}, nil
}

// verdictReasons name, for VerifyDelegation, why a chain does not verify.
// ErrNotFound comes last: a missing parent is ErrChainBroken, and a
// missing agent on the chain is ErrDelegationRevoked, both wrapping it.
var verdictReasons = []struct {
	err    error
	reason string
}{
	{ErrDelegationExpired, "DELEGATION_EXPIRED"},
	{ErrDelegationRevoked, "DELEGATION_REVOKED"},
	{ErrDelegationForged, "DELEGATION_FORGED"},
	{ErrWidened, "DELEGATION_WIDENED"},
	{ErrDelegationCycle, "DELEGATION_CYCLE"},
	{ErrChainTooDeep, "CHAIN_TOO_DEEP"},
	{ErrChainBroken, "CHAIN_BROKEN"},
	{ErrNotFound, "NOT_FOUND"},
}

// VerifyDelegation verifies a chain named by id or given in full.
func (s *Server) VerifyDelegation(ctx context.Context, in *nhiv1.VerifyDelegationRequest) (*nhiv1.VerifyDelegationResponse, error) {
	var c *DelegationChain
	var err error
	_, byID := in.GetChain().(*nhiv1.VerifyDelegationRequest_DelegationId)
	_, given := in.GetChain().(*nhiv1.VerifyDelegationRequest_Encoded)
	switch {
	case byID:
		id, perr := ParseDelegationID(in.GetDelegationId())
		if perr != nil {
			return nil, s.status(ctx, perr)
		}
		c, err = s.svc.VerifyDelegation(ctx, id)
	case given:
		decoded, derr := DecodeDelegationChain(in.GetEncoded())
		if derr != nil {
			return nil, s.status(ctx, derr)
		}
		c, err = s.svc.VerifyChain(ctx, decoded)
	default:
		return nil, s.status(ctx, opError("verify delegation", "", detail(ErrInvalidArgument, "set delegation_id or encoded")))
	}
	if err == nil {
		return &nhiv1.VerifyDelegationResponse{Valid: true, Chain: s.chainProto(ctx, c)}, nil
	}
	reason := verdictReason(err)
	// An id this node never recorded is a wrong question, not a verdict;
	// an unrecorded link inside a chain someone presents is a verdict.
	if reason == "" || (byID && reason == "NOT_FOUND") {
		return nil, s.status(ctx, err)
	}
	return &nhiv1.VerifyDelegationResponse{Reason: reason, Message: err.Error()}, nil
}

func verdictReason(err error) string {
	for _, v := range verdictReasons {
		if errors.Is(err, v.err) {
			return v.reason
		}
	}
	return ""
}

// CreateDelegation records a link signed by the delegator, who must be
// the calling agent (or the agent an operator names).
func (s *Server) CreateDelegation(ctx context.Context, in *nhiv1.CreateDelegationRequest) (*nhiv1.CreateDelegationResponse, error) {
	delegator, err := caller.Acting(ctx, in.GetDelegatorId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	var parent *DelegationID
	if in.GetParentId() != "" {
		id, err := ParseDelegationID(in.GetParentId())
		if err != nil {
			return nil, s.status(ctx, err)
		}
		parent = &id
	}
	expiry, err := timeFrom("expires_at", in.GetExpiresAt())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	d, err := s.svc.CreateDelegation(ctx, delegator, in.GetDelegateeId(), in.GetPermissions(), expiry, parent)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &nhiv1.CreateDelegationResponse{Delegation: s.delegationProto(ctx, d)}, nil
}

// RevokeDelegation revokes a link and everything below it. An agent may
// revoke a link only if it granted that link or one above it: the
// authority the link hands on is then its own.
func (s *Server) RevokeDelegation(ctx context.Context, in *nhiv1.RevokeDelegationRequest) (*nhiv1.RevokeDelegationResponse, error) {
	id, err := ParseDelegationID(in.GetDelegationId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	if who, _ := caller.From(ctx); who.Kind != caller.Operator {
		c, err := s.svc.GetDelegationChain(ctx, id)
		if err != nil {
			return nil, s.status(ctx, err)
		}
		if !slices.ContainsFunc(c.links, func(l *Delegation) bool { return l.delegator == who.ID }) {
			return nil, status.Errorf(codes.PermissionDenied, "%s did not grant delegation %s or any above it", who, id)
		}
	}
	if err := s.svc.RevokeDelegation(ctx, id); err != nil {
		return nil, s.status(ctx, err)
	}
	return &nhiv1.RevokeDelegationResponse{}, nil
}

// GetPublicKeys returns an agent's current keys.
func (s *Server) GetPublicKeys(ctx context.Context, in *nhiv1.GetPublicKeysRequest) (*nhiv1.GetPublicKeysResponse, error) {
	pk, err := s.svc.GetPublicKeys(ctx, in.GetAgentId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	keys, err := keysProto(pk)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &nhiv1.GetPublicKeysResponse{Keys: keys}, nil
}

// ListPublicKeyVersions returns the key versions that still verify.
func (s *Server) ListPublicKeyVersions(ctx context.Context, in *nhiv1.ListPublicKeyVersionsRequest) (*nhiv1.ListPublicKeyVersionsResponse, error) {
	versions, err := s.svc.PublicKeyVersions(ctx, in.GetAgentId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &nhiv1.ListPublicKeyVersionsResponse{}
	for _, pk := range versions {
		keys, err := keysProto(pk)
		if err != nil {
			return nil, s.status(ctx, err)
		}
		out.Keys = append(out.Keys, keys)
	}
	return out, nil
}

// Sign signs with the key of the calling agent (or the agent an operator
// names).
func (s *Server) Sign(ctx context.Context, in *nhiv1.SignRequest) (*nhiv1.SignResponse, error) {
	agent, err := caller.Acting(ctx, in.GetAgentId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	sig, err := s.svc.Sign(ctx, agent, in.GetData())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	h, err := signatureProto(sig)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &nhiv1.SignResponse{Signature: h}, nil
}

// Verify checks a signature; a signature that does not verify is an
// answer, not an error.
func (s *Server) Verify(ctx context.Context, in *nhiv1.VerifyRequest) (*nhiv1.VerifyResponse, error) {
	sig, err := signatureFrom(in.GetSignature())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	err = s.svc.Verify(ctx, in.GetAgentId(), in.GetData(), sig)
	switch {
	case err == nil:
		return &nhiv1.VerifyResponse{Valid: true}, nil
	case errors.Is(err, ErrRevoked):
		return &nhiv1.VerifyResponse{Reason: "AGENT_REVOKED"}, nil
	case errors.Is(err, ErrInvalidSignature):
		return &nhiv1.VerifyResponse{Reason: "INVALID_SIGNATURE"}, nil
	}
	return nil, s.status(ctx, err)
}

// RotateKeys gives an agent a new key version.
func (s *Server) RotateKeys(ctx context.Context, in *nhiv1.RotateKeysRequest) (*nhiv1.RotateKeysResponse, error) {
	pk, err := s.svc.RotateKeys(ctx, in.GetAgentId(), in.GetOverlap().AsDuration())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	keys, err := keysProto(pk)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &nhiv1.RotateKeysResponse{Keys: keys}, nil
}

// RegisterAgent creates an agent.
func (s *Server) RegisterAgent(ctx context.Context, in *nhiv1.RegisterAgentRequest) (*nhiv1.RegisterAgentResponse, error) {
	a, err := agentFrom(in.GetAgent())
	if err != nil {
		return nil, s.status(ctx, opError("register agent", in.GetAgent().GetId(), err))
	}
	stored, err := s.svc.Register(ctx, a)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &nhiv1.RegisterAgentResponse{Agent: agentProto(stored)}, nil
}

// UpdateAgent changes the fields the mask names.
func (s *Server) UpdateAgent(ctx context.Context, in *nhiv1.UpdateAgentRequest) (*nhiv1.UpdateAgentResponse, error) {
	p := in.GetAgent()
	u, err := updateFrom(p, in.GetUpdateMask().GetPaths())
	if err != nil {
		return nil, s.status(ctx, opError("update agent", p.GetId(), err))
	}
	a, err := s.svc.Update(ctx, p.GetId(), u)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &nhiv1.UpdateAgentResponse{Agent: agentProto(a)}, nil
}

// RevokeAgent revokes an agent.
func (s *Server) RevokeAgent(ctx context.Context, in *nhiv1.RevokeAgentRequest) (*nhiv1.RevokeAgentResponse, error) {
	if err := s.svc.Revoke(ctx, in.GetId()); err != nil {
		return nil, s.status(ctx, err)
	}
	return &nhiv1.RevokeAgentResponse{}, nil
}

// IssueToken issues a token.
func (s *Server) IssueToken(ctx context.Context, in *nhiv1.IssueTokenRequest) (*nhiv1.IssueTokenResponse, error) {
	token, err := s.svc.IssueToken(ctx, in.GetAgentId(), in.GetTtl().AsDuration())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &nhiv1.IssueTokenResponse{Token: token}, nil
}

// RevokeToken revokes a token. An agent may revoke only a live token of
// its own (to log out); an operator any token this node issued.
func (s *Server) RevokeToken(ctx context.Context, in *nhiv1.RevokeTokenRequest) (*nhiv1.RevokeTokenResponse, error) {
	if who, _ := caller.From(ctx); who.Kind != caller.Operator {
		a, err := s.svc.ResolveToken(ctx, in.GetToken())
		if err != nil {
			return nil, s.status(ctx, err)
		}
		if a.ID != who.ID {
			return nil, status.Errorf(codes.PermissionDenied, "%s may revoke only its own tokens", who)
		}
	}
	if err := s.svc.RevokeToken(ctx, in.GetToken()); err != nil {
		return nil, s.status(ctx, err)
	}
	return &nhiv1.RevokeTokenResponse{}, nil
}

// Conversions.

var agentTypes = []struct {
	t AgentType
	p nhiv1.AgentType
}{
	{AgentTypeAutonomous, nhiv1.AgentType_AGENT_TYPE_AUTONOMOUS},
	{AgentTypeAssistant, nhiv1.AgentType_AGENT_TYPE_ASSISTANT},
	{AgentTypeService, nhiv1.AgentType_AGENT_TYPE_SERVICE},
	{AgentTypeWorkflow, nhiv1.AgentType_AGENT_TYPE_WORKFLOW},
}

var agentStatuses = []struct {
	s AgentStatus
	p nhiv1.AgentStatus
}{
	{StatusActive, nhiv1.AgentStatus_AGENT_STATUS_ACTIVE},
	{StatusSuspended, nhiv1.AgentStatus_AGENT_STATUS_SUSPENDED},
	{StatusRevoked, nhiv1.AgentStatus_AGENT_STATUS_REVOKED},
}

func typeFrom(p nhiv1.AgentType) (AgentType, error) {
	for _, t := range agentTypes {
		if t.p == p {
			return t.t, nil
		}
	}
	return "", detail(ErrInvalidArgument, "agent type %v is not one of autonomous, assistant, service, workflow", p)
}

func statusFrom(p nhiv1.AgentStatus) (AgentStatus, error) {
	for _, s := range agentStatuses {
		if s.p == p {
			return s.s, nil
		}
	}
	return "", detail(ErrInvalidArgument, "agent status %v is not one of active, suspended, revoked", p)
}

func agentProto(a AgentIdentity) *nhiv1.AgentIdentity {
	out := &nhiv1.AgentIdentity{
		Id: a.ID, Name: a.Name, OwnerId: a.OwnerID, CreatedAt: timestamppb.New(a.CreatedAt), Attributes: a.Attributes,
	}
	for _, t := range agentTypes {
		if t.t == a.Type {
			out.Type = t.p
		}
	}
	for _, s := range agentStatuses {
		if s.s == a.Status {
			out.Status = s.p
		}
	}
	if !a.ExpiresAt.IsZero() {
		out.ExpiresAt = timestamppb.New(a.ExpiresAt)
	}
	return out
}

// agentFrom reads a RegisterAgent request. The status may be left unset
// or active; created_at is the node's to set and is ignored.
func agentFrom(p *nhiv1.AgentIdentity) (AgentIdentity, error) {
	t, err := typeFrom(p.GetType())
	if err != nil {
		return AgentIdentity{}, err
	}
	a := AgentIdentity{ID: p.GetId(), Name: p.GetName(), Type: t, OwnerID: p.GetOwnerId(), Attributes: p.GetAttributes()}
	if p.GetStatus() != nhiv1.AgentStatus_AGENT_STATUS_UNSPECIFIED {
		if a.Status, err = statusFrom(p.GetStatus()); err != nil {
			return AgentIdentity{}, err
		}
	}
	if a.ExpiresAt, err = timeFrom("expires_at", p.GetExpiresAt()); err != nil {
		return AgentIdentity{}, err
	}
	return a, nil
}

// updateFrom builds an AgentUpdate from the fields an update mask names.
func updateFrom(p *nhiv1.AgentIdentity, paths []string) (AgentUpdate, error) {
	var u AgentUpdate
	if len(paths) == 0 {
		return u, detail(ErrInvalidArgument, "update_mask names no field (name, status, expires_at, attributes)")
	}
	for _, path := range paths {
		switch path {
		case "name":
			u.Name = new(p.GetName())
		case "status":
			st, err := statusFrom(p.GetStatus())
			if err != nil {
				return u, err
			}
			u.Status = &st
		case "expires_at":
			t, err := timeFrom("expires_at", p.GetExpiresAt())
			if err != nil {
				return u, err
			}
			u.ExpiresAt = &t
		case "attributes":
			// A nil map would mean "unchanged"; an empty one clears them.
			if u.Attributes = maps.Clone(p.GetAttributes()); u.Attributes == nil {
				u.Attributes = map[string]string{}
			}
		default:
			return u, detail(ErrInvalidArgument, "update_mask path %s cannot be updated", quote(path))
		}
	}
	return u, nil
}

// timeFrom reads an optional timestamp: unset is the zero time.
func timeFrom(field string, ts *timestamppb.Timestamp) (time.Time, error) {
	if ts == nil {
		return time.Time{}, nil
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, detail(ErrInvalidArgument, "%s: %v", field, err)
	}
	return ts.AsTime(), nil
}

func optionalTime(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func keysProto(pk PublicKeys) (*nhiv1.AgentPublicKeys, error) {
	c, err := pk.Components()
	if err != nil {
		return nil, err
	}
	return &nhiv1.AgentPublicKeys{
		SigningKeyEd25519:      c.Ed25519.Raw(),
		SigningKeyMlDsa:        c.MLDSA65.Raw(),
		KeyAgreementX25519:     c.X25519.Raw(),
		EncapsulationKeyMlKem:  c.MLKEM768.Raw(),
		ValidFrom:              timestamppb.New(pk.NotBefore),
		ValidUntil:             optionalTime(pk.NotAfter),
		HybridSigningKey:       pk.Signing.Bytes(),
		HybridEncapsulationKey: pk.KEM.Bytes(),
		Version:                pk.Version,
		AgentId:                pk.AgentID,
	}, nil
}

// edSignatureSize is the Ed25519 half of a composite signature, which comes
// after the ML-DSA-65 half (docs/crypto.md); mlDSASignatureSize the other.
const (
	edSignatureSize    = 64
	mlDSASignatureSize = 3309
)

// seedSignatureAlgorithm is the seed's name for the composite, accepted as
// an alias of signingAlgorithm's.
const seedSignatureAlgorithm = "hybrid-ed25519-ml-dsa-65"

func signatureProto(sig []byte) (*nhiv1.HybridSignature, error) {
	alg, raw, err := crypto.DecodeSignature(sig)
	if err != nil {
		return nil, err
	}
	if alg != signingAlgorithm || len(raw) != mlDSASignatureSize+edSignatureSize {
		return nil, fmt.Errorf("nhi: a %v signature of %d bytes is not a composite", alg, len(raw))
	}
	return &nhiv1.HybridSignature{
		MlDsaSignature:   raw[:mlDSASignatureSize],
		Ed25519Signature: raw[mlDSASignatureSize:],
		AlgorithmId:      signingAlgorithm.String(),
	}, nil
}

func signatureFrom(h *nhiv1.HybridSignature) ([]byte, error) {
	switch h.GetAlgorithmId() {
	case "", signingAlgorithm.String(), seedSignatureAlgorithm:
	default:
		return nil, opError("verify", "", detail(ErrInvalidArgument, "signature algorithm %s, want %s", quote(h.GetAlgorithmId()), signingAlgorithm))
	}
	if len(h.GetMlDsaSignature()) != mlDSASignatureSize || len(h.GetEd25519Signature()) != edSignatureSize {
		return nil, opError("verify", "", detail(ErrInvalidArgument, "a signature has a %d-byte ML-DSA-65 half and a %d-byte Ed25519 half", mlDSASignatureSize, edSignatureSize))
	}
	sig, err := crypto.EncodeSignature(signingAlgorithm, append(slices.Clone(h.GetMlDsaSignature()), h.GetEd25519Signature()...))
	if err != nil {
		return nil, opError("verify", "", detail(ErrInvalidArgument, "%v", err))
	}
	return sig, nil
}

// identity returns the agent as NHI knows it, or only its id if it does
// not (a chain read back after its agents changed keeps verifying against
// the record, not this view).
func (s *Server) identity(ctx context.Context, id string) *nhiv1.AgentIdentity {
	a, err := s.svc.Get(ctx, id)
	if err != nil {
		return &nhiv1.AgentIdentity{Id: id}
	}
	return agentProto(a)
}

func (s *Server) delegationProto(ctx context.Context, d *Delegation) *nhiv1.Delegation {
	out := &nhiv1.Delegation{
		Id: d.id.String(), Delegator: s.identity(ctx, d.delegator), Delegatee: s.identity(ctx, d.delegatee),
		Permissions: d.Permissions(), CreatedAt: timestamppb.New(d.CreatedAt()), ExpiresAt: timestamppb.New(d.ExpiresAt()),
		Depth: uint32(d.depth), KeyVersion: d.keyVersion,
	}
	if p, ok := d.Parent(); ok {
		out.ParentId = p.String()
	}
	// A stored link's signature always decodes: it was checked on the way in.
	if sig, err := signatureProto(d.signature()); err == nil {
		out.Signature = sig
	}
	return out
}

func (s *Server) chainProto(ctx context.Context, c *DelegationChain) *nhiv1.DelegationChain {
	out := &nhiv1.DelegationChain{Root: s.identity(ctx, c.Root()), ChainValidUntil: timestamppb.New(c.ValidUntil()), Encoded: c.Encode()}
	for _, l := range c.links {
		out.Delegations = append(out.Delegations, s.delegationProto(ctx, l))
	}
	return out
}
