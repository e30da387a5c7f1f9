package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/creto-systems/creto/api/creto/audit/v1"
	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	"github.com/creto-systems/creto/internal/caller"
	"github.com/creto-systems/creto/internal/rpcerr"
	"github.com/creto-systems/creto/services/nhi"
)

// Server is the gRPC face of a Service (creto.audit.v1.AuditService), each
// method mapped one to one. The caller is the authenticated identity the
// node's interceptor attached (CallerID names it); the Service and its
// Authorizer decide what it may log and read. Server adds three rules of
// the wire: an agent's record is about itself unless it names someone
// (whom the Authorizer then must allow), an agent's query without a who
// reads its own records, and no client may log under a source the node's
// own components use, so that "vault", "nhi" or "authz" records are the
// node's word.
type Server struct {
	auditv1.UnimplementedAuditServiceServer
	svc *Service
	log *slog.Logger
}

// NewServer returns the AuditService implementation over svc.
func NewServer(svc *Service, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{svc: svc, log: log}
}

// Register adds the service to a gRPC server.
func (s *Server) Register(g grpc.ServiceRegistrar) { auditv1.RegisterAuditServiceServer(g, s) }

// CallerID is the identity the log knows an authenticated caller by: an
// agent by its id, the Who of the records about it, and an operator by its
// Cedar reference Operator::"name", which no agent's records can be taken
// for. The node names callers this way wherever it attributes a record to
// one (identity changes, refused calls), so that Query by Who finds them.
func CallerID(id caller.Identity) string {
	if id.Kind == caller.Agent {
		return id.ID
	}
	return id.String()
}

// SourceAPI is the Source of a record a client logs without naming one.
const SourceAPI = "api"

// reservedSources are the node's own components, which log through the
// Service directly and never over the API.
var reservedSources = []string{"authz", "nhi", "vault", "node"}

// reservedSource reports whether a client may not claim source s.
func reservedSource(s string) bool {
	for _, r := range reservedSources {
		if s == r {
			return true
		}
	}
	return strings.HasPrefix(s, "ext:")
}

// rules map the service's sentinels; specific ones first. ErrMalformed
// depends on whose bytes did not decode, so each table adds its own rule.
var rules = []rpcerr.Rule{
	{Err: ErrAccessDenied, Code: codes.PermissionDenied, Reason: "ACCESS_DENIED"},
	{Err: ErrNotFound, Code: codes.NotFound, Reason: "NOT_FOUND"},
	{Err: ErrTooLarge, Code: codes.InvalidArgument, Reason: "TOO_LARGE"},
	{Err: ErrInvalidArgument, Code: codes.InvalidArgument, Reason: "INVALID_ARGUMENT"},
	{Err: ErrVerification, Code: codes.FailedPrecondition, Reason: "VERIFICATION_FAILED"},
	{Err: ErrSealed, Code: codes.FailedPrecondition, Reason: "SEALED"},
	{Err: ErrUnavailable, Code: codes.Unavailable, Reason: "UNAVAILABLE"},
	{Err: ErrClosed, Code: codes.Unavailable, Reason: "SHUTTING_DOWN"},
}

var (
	domain = auditv1.AuditService_ServiceDesc.ServiceName
	// storeTable is for calls that read the log: bytes that do not decode
	// were in the store, so the log is damaged.
	storeTable = rpcerr.Table{Domain: domain, Rules: append([]rpcerr.Rule{{Err: ErrMalformed, Code: codes.DataLoss, Reason: "CORRUPT"}}, rules...)}
	// requestTable is for Verify, whose bytes are the client's.
	requestTable = rpcerr.Table{Domain: domain, Rules: append([]rpcerr.Rule{{Err: ErrMalformed, Code: codes.InvalidArgument, Reason: "MALFORMED"}}, rules...)}
)

func (s *Server) status(ctx context.Context, err error) error {
	return storeTable.Status(ctx, s.log, err)
}

// caller returns the authenticated caller and the id the service knows it
// by.
func (s *Server) caller(ctx context.Context) (caller.Identity, string, error) {
	id, ok := caller.From(ctx)
	if !ok {
		return id, "", caller.ErrUnauthenticated
	}
	return id, CallerID(id), nil
}

// Log appends one record.
func (s *Server) Log(ctx context.Context, in *auditv1.LogRequest) (*auditv1.LogResponse, error) {
	_, me, err := s.caller(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	r, err := loggable(in.GetRecord(), me)
	if err != nil {
		return nil, s.status(ctx, opError("log", me, err))
	}
	resp, err := s.svc.Log(ctx, me, LogRequest{Record: r})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &auditv1.LogResponse{Index: resp.Index, LoggedAt: timestamppb.New(resp.LoggedAt)}, nil
}

// LogBatch appends records atomically.
func (s *Server) LogBatch(ctx context.Context, in *auditv1.LogBatchRequest) (*auditv1.LogBatchResponse, error) {
	_, me, err := s.caller(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	if n := len(in.GetRecords()); n > s.svc.cfg.MaxBatch {
		// Refused before converting what would be refused anyway.
		return nil, s.status(ctx, opError("log batch", me, detail(ErrTooLarge, "%d records, limit %d per batch", n, s.svc.cfg.MaxBatch)))
	}
	recs := make([]Record, len(in.GetRecords()))
	for i, pr := range in.GetRecords() {
		if recs[i], err = loggable(pr, me); err != nil {
			return nil, s.status(ctx, opError("log batch", me, fmt.Errorf("record %d: %w", i, err)))
		}
	}
	resp, err := s.svc.LogBatch(ctx, me, LogBatchRequest{Records: recs})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &auditv1.LogBatchResponse{FirstIndex: resp.FirstIndex, Count: uint32(resp.Count), LoggedAt: timestamppb.New(resp.LoggedAt)}, nil
}

// Query returns a page of matching records.
func (s *Server) Query(ctx context.Context, in *auditv1.QueryRequest) (*auditv1.QueryResponse, error) {
	id, me, err := s.caller(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	req := QueryRequest{Who: in.GetWho(), What: in.GetWhat(), Resource: in.GetResource(), Source: in.GetSource(),
		Limit: int(in.GetPageSize()), Cursor: in.GetPageToken()}
	if req.Who == "" && id.Kind == caller.Agent {
		req.Who = me
	}
	for _, o := range in.GetOutcomes() {
		v, err := outcomeFrom(o)
		if err != nil {
			return nil, s.status(ctx, opError("query", me, err))
		}
		req.Outcomes = append(req.Outcomes, v)
	}
	if req.Since, err = timeFrom("since", in.GetSince()); err == nil {
		req.Until, err = timeFrom("until", in.GetUntil())
	}
	if err != nil {
		return nil, s.status(ctx, opError("query", me, err))
	}
	resp, err := s.svc.Query(ctx, me, req)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &auditv1.QueryResponse{Records: make([]*auditv1.AuditRecord, len(resp.Records)), NextPageToken: resp.NextCursor}
	for i := range resp.Records {
		out.Records[i] = recordProto(&resp.Records[i])
	}
	return out, nil
}

// GetProof returns an inclusion or consistency proof.
func (s *Server) GetProof(ctx context.Context, in *auditv1.GetProofRequest) (*auditv1.GetProofResponse, error) {
	_, me, err := s.caller(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	kind, err := kindFrom(in.GetKind())
	if err != nil {
		return nil, s.status(ctx, opError("get proof", me, err))
	}
	p, err := s.svc.GetProof(ctx, me, GetProofRequest{Kind: kind, Index: in.GetIndex(), WithLeaf: in.GetWithLeaf(),
		OldSize: in.GetOldSize(), TreeSize: in.GetTreeSize()})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &auditv1.GetProofResponse{Proof: proofProto(&p)}, nil
}

// Verify checks a proof. A proof that does not verify is an answer, valid
// false, not an error; requests that cannot be a proof at all are
// INVALID_ARGUMENT.
func (s *Server) Verify(ctx context.Context, in *auditv1.VerifyRequest) (*auditv1.VerifyResponse, error) {
	_, me, err := s.caller(ctx)
	if err != nil {
		return nil, requestTable.Status(ctx, s.log, err)
	}
	req := VerifyRequest{Leaf: in.GetLeaf(), Checkpoint: in.GetCheckpoint(), OldCheckpoint: in.GetOldCheckpoint()}
	if in.GetRecord() != nil {
		r, err := recordFrom(in.GetRecord())
		if err != nil {
			return nil, requestTable.Status(ctx, s.log, opError("verify", me, err))
		}
		req.Record = &r
	}
	if req.Proof, err = ProofFromProto(in.GetProof()); err != nil {
		return nil, requestTable.Status(ctx, s.log, opError("verify", me, err))
	}
	resp, err := s.svc.Verify(ctx, me, req)
	var ve *VerificationError
	switch {
	case err == nil:
		return &auditv1.VerifyResponse{Valid: true, Checkpoint: checkpointProto(resp.Checkpoint)}, nil
	case errors.As(err, &ve):
		out := &auditv1.VerifyResponse{Reason: strings.TrimPrefix(ve.Error(), "audit: ")}
		if ve.Index >= 0 {
			entry := uint64(ve.Index)
			out.FailedEntry = &entry
		}
		return out, nil
	}
	return nil, requestTable.Status(ctx, s.log, err)
}

// GetCheckpoint returns the latest signed checkpoint.
func (s *Server) GetCheckpoint(ctx context.Context, _ *auditv1.GetCheckpointRequest) (*auditv1.GetCheckpointResponse, error) {
	if _, _, err := s.caller(ctx); err != nil {
		return nil, s.status(ctx, err)
	}
	note, c, err := s.svc.LatestCheckpoint(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &auditv1.GetCheckpointResponse{SignedNote: string(note), Checkpoint: checkpointProto(c)}, nil
}

// GetVerifierKey returns the log's verifier keys.
func (s *Server) GetVerifierKey(ctx context.Context, _ *auditv1.GetVerifierKeyRequest) (*auditv1.GetVerifierKeyResponse, error) {
	if _, _, err := s.caller(ctx); err != nil {
		return nil, s.status(ctx, err)
	}
	v := s.svc.Verifier()
	return &auditv1.GetVerifierKeyResponse{Origin: v.Origin(), Ed25519Key: v.Ed25519Key(), HybridKey: v.HybridKey()}, nil
}

// loggable is a client's record as the log takes it: Index and LoggedAt
// left to the log, Who defaulting to the caller, Source to SourceAPI and
// never one of the node's own.
func loggable(pr *auditv1.AuditRecord, me string) (Record, error) {
	switch {
	case pr == nil:
		return Record{}, detail(ErrInvalidArgument, "no record")
	case pr.GetIndex() != 0 || pr.GetLoggedAt() != nil:
		return Record{}, detail(ErrInvalidArgument, "index and logged_at are set by the log")
	case reservedSource(pr.GetSource()):
		return Record{}, detail(ErrInvalidArgument, "source %s is the node's own", quote(pr.GetSource()))
	}
	r, err := recordFrom(pr)
	if err != nil {
		return Record{}, err
	}
	if r.Who == "" {
		r.Who = me
	}
	if r.Source == "" {
		r.Source = SourceAPI
	}
	return r, nil
}

// recordFrom converts a wire record field by field; the Service validates
// the result.
func recordFrom(pr *auditv1.AuditRecord) (Record, error) {
	r := Record{
		Index: pr.GetIndex(), Source: pr.GetSource(), Who: pr.GetWho().GetId(), What: pr.GetWhat(),
		Resource: pr.GetResource(), Why: pr.GetWhy(), PolicyID: pr.GetPolicyId(), TraceID: pr.GetTraceId(),
		Context: pr.GetContext(),
	}
	var err error
	if r.Outcome, err = outcomeFrom(pr.GetOutcome()); err != nil {
		return r, err
	}
	if r.Timestamp, err = timeFrom("timestamp", pr.GetTimestamp()); err != nil {
		return r, err
	}
	if r.LoggedAt, err = timeFrom("logged_at", pr.GetLoggedAt()); err != nil {
		return r, err
	}
	if n := len(pr.GetDelegationChain()); n > MaxChainLinks {
		return r, detail(ErrTooLarge, "delegation chain has %d links, limit %d", n, MaxChainLinks)
	}
	for _, l := range pr.GetDelegationChain() {
		r.DelegationChain = append(r.DelegationChain, l.GetId())
	}
	if pr.GetSignature() != nil {
		if r.Signature, err = nhi.SignatureFromProto(pr.GetSignature()); err != nil {
			return r, fmt.Errorf("%w: signature: %w", ErrInvalidArgument, err)
		}
	}
	return r, nil
}

// recordProto converts a record for the wire. A signature that is not an
// NHI hybrid signature (the node's components never sign; NHI signs only
// with the hybrid key) cannot be a HybridSignature and is left out; the
// leaf from GetProof carries the exact bytes.
func recordProto(r *Record) *auditv1.AuditRecord {
	out := &auditv1.AuditRecord{
		Who: &nhiv1.AgentIdentity{Id: r.Who}, What: r.What, Resource: r.Resource, Why: r.Why,
		Outcome: auditv1.Outcome(r.Outcome + 1), Timestamp: timestamppb.New(r.Timestamp),
		Index: r.Index, LoggedAt: timestamppb.New(r.LoggedAt), Source: r.Source,
		PolicyId: r.PolicyID, TraceId: r.TraceID, Context: r.Context,
	}
	for _, l := range r.DelegationChain {
		out.DelegationChain = append(out.DelegationChain, &nhiv1.AgentIdentity{Id: l})
	}
	if len(r.Signature) > 0 {
		out.Signature, _ = nhi.SignatureProto(r.Signature)
	}
	return out
}

// outcomeFrom maps the wire's outcome, the seed's plus one, to the log's.
func outcomeFrom(o auditv1.Outcome) (Outcome, error) {
	if o <= auditv1.Outcome_OUTCOME_UNSPECIFIED || o > auditv1.Outcome_OUTCOME_TIMEOUT {
		return 0, detail(ErrInvalidArgument, "outcome %v (want success, failure, denied or timeout)", o)
	}
	return Outcome(o - 1), nil
}

func kindFrom(k auditv1.ProofKind) (ProofKind, error) {
	switch k {
	case auditv1.ProofKind_PROOF_KIND_INCLUSION:
		return Inclusion, nil
	case auditv1.ProofKind_PROOF_KIND_CONSISTENCY:
		return Consistency, nil
	}
	return 0, detail(ErrInvalidArgument, "proof kind %v (want inclusion or consistency)", k)
}

// timeFrom converts an optional timestamp: unset is the zero time.
func timeFrom(name string, t *timestamppb.Timestamp) (time.Time, error) {
	if t == nil {
		return time.Time{}, nil
	}
	if err := t.CheckValid(); err != nil {
		return time.Time{}, detail(ErrInvalidArgument, "%s: %v", name, err)
	}
	return t.AsTime(), nil
}

// proofProto converts a proof for the wire; the wire's proof kinds have
// the service's numbers.
func proofProto(p *MerkleProof) *auditv1.MerkleProof {
	out := &auditv1.MerkleProof{Kind: auditv1.ProofKind(p.Kind), Index: p.Index, OldSize: p.OldSize, TreeSize: p.TreeSize,
		Hashes: make([][]byte, len(p.Hashes)), Leaf: p.Leaf, Checkpoint: p.Checkpoint}
	for i := range p.Hashes {
		out.Hashes[i] = p.Hashes[i][:]
	}
	return out
}

// ProofFromProto converts a proof from the wire, checking its shape (a
// known kind, hashes of the right size and number) but not the proof
// itself: VerifyProof does that, here or in a client.
func ProofFromProto(pp *auditv1.MerkleProof) (MerkleProof, error) {
	kind, err := kindFrom(pp.GetKind())
	if err != nil {
		return MerkleProof{}, err
	}
	// No proof in a tree of up to 2^63 records has more hashes than this.
	if n := len(pp.GetHashes()); n > 2*maxLevels {
		return MerkleProof{}, detail(ErrInvalidArgument, "%d proof hashes, at most %d", n, 2*maxLevels)
	}
	p := MerkleProof{Kind: kind, Index: pp.GetIndex(), OldSize: pp.GetOldSize(), TreeSize: pp.GetTreeSize(),
		Leaf: pp.GetLeaf(), Checkpoint: pp.GetCheckpoint(), Hashes: make([]tlog.Hash, len(pp.GetHashes()))}
	for i, h := range pp.GetHashes() {
		if len(h) != tlog.HashSize {
			return MerkleProof{}, detail(ErrInvalidArgument, "proof hash %d is %d bytes, want %d", i, len(h), tlog.HashSize)
		}
		copy(p.Hashes[i][:], h)
	}
	return p, nil
}

func checkpointProto(c Checkpoint) *auditv1.Checkpoint {
	return &auditv1.Checkpoint{Origin: c.Origin, Size: uint64(c.Size), RootHash: c.Root[:]}
}
