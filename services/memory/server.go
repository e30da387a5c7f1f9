package memory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	memoryv1 "github.com/creto-systems/creto/api/creto/memory/v1"
	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	"github.com/creto-systems/creto/internal/caller"
	"github.com/creto-systems/creto/internal/rpcerr"
)

// Server is the gRPC face of a Service (creto.memory.v1.MemoryService).
// The service scopes every call to its caller; Server only works out who
// the caller is. An agent always acts as itself, and the agent a request
// names is the owner whose memories it concerns — another agent's only
// through the Service's Authorizer. An operator (the platform's trusted
// workload) acts as the agent a request names.
type Server struct {
	memoryv1.UnimplementedMemoryServiceServer
	svc *Service
	log *slog.Logger
}

// NewServer returns the MemoryService implementation over svc.
func NewServer(svc *Service, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{svc: svc, log: log}
}

// Register adds the service to a gRPC server.
func (s *Server) Register(g grpc.ServiceRegistrar) { memoryv1.RegisterMemoryServiceServer(g, s) }

var errorTable = rpcerr.Table{
	Domain: memoryv1.MemoryService_ServiceDesc.ServiceName,
	Rules: []rpcerr.Rule{
		{Err: ErrNotFound, Code: codes.NotFound, Reason: "NOT_FOUND"},
		{Err: ErrAccessDenied, Code: codes.PermissionDenied, Reason: "ACCESS_DENIED"},
		{Err: ErrLimitExceeded, Code: codes.InvalidArgument, Reason: "LIMIT_EXCEEDED"},
		{Err: ErrDimensionMismatch, Code: codes.InvalidArgument, Reason: "DIMENSION_MISMATCH"},
		{Err: ErrInvalidVector, Code: codes.InvalidArgument, Reason: "INVALID_VECTOR"},
		{Err: ErrInvalidArgument, Code: codes.InvalidArgument, Reason: "INVALID_ARGUMENT"},
		// With an external embedder the node cannot embed text at all:
		// the request needs a vector the node's setup requires.
		{Err: ErrEmbeddingFailed, Code: codes.FailedPrecondition, Reason: "EMBEDDING_FAILED"},
		{Err: ErrCorrupt, Code: codes.DataLoss, Reason: "CORRUPT"},
		{Err: ErrClosed, Code: codes.Unavailable, Reason: "SHUTTING_DOWN"},
	},
}

func (s *Server) status(ctx context.Context, err error) error {
	return errorTable.Status(ctx, s.log, err)
}

// parties returns the caller the service checks access for and the owner
// of the memories a request concerns (the caller itself when the request
// names none).
func parties(ctx context.Context, owner *nhiv1.AgentIdentity) (callerID, ownerID string, err error) {
	ownerID = owner.GetId()
	acting := ownerID
	if who, _ := caller.From(ctx); who.Kind == caller.Agent {
		acting = "" // an agent acts as itself, whoever owns the memories
	}
	if callerID, err = caller.Acting(ctx, acting); err != nil {
		return "", "", err
	}
	if ownerID == "" {
		ownerID = callerID
	}
	return callerID, ownerID, nil
}

// Store stores one memory.
func (s *Server) Store(ctx context.Context, in *memoryv1.StoreRequest) (*memoryv1.StoreResponse, error) {
	who, owner, err := parties(ctx, in.GetAgent())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	req, err := storeFrom(owner, in)
	if err != nil {
		return nil, s.status(ctx, fmt.Errorf("memory: store: %w", err))
	}
	id, err := s.svc.Store(ctx, who, req)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &memoryv1.StoreResponse{Id: id}, nil
}

// StoreBatch stores memories atomically. An operator's batch acts as one
// agent, so it may name only one.
func (s *Server) StoreBatch(ctx context.Context, in *memoryv1.StoreBatchRequest) (*memoryv1.StoreBatchResponse, error) {
	reqs := make([]StoreRequest, len(in.GetRequests()))
	who := ""
	for i, r := range in.GetRequests() {
		c, owner, err := parties(ctx, r.GetAgent())
		if err != nil {
			return nil, s.status(ctx, fmt.Errorf("memory %d: %w", i, err))
		}
		if i > 0 && c != who {
			return nil, s.status(ctx, fmt.Errorf("memory: store batch: %w", invalid(nil, "an operator's batch acts as one agent: memory %d names %s, memory 0 %s", i, quote(c), quote(who))))
		}
		who = c
		if reqs[i], err = storeFrom(owner, r); err != nil {
			return nil, s.status(ctx, fmt.Errorf("memory: store batch: memory %d: %w", i, err))
		}
	}
	if who == "" {
		// An empty batch: the service refuses it, after checking the caller.
		var err error
		if who, _, err = parties(ctx, nil); err != nil {
			return nil, s.status(ctx, err)
		}
	}
	ids, err := s.svc.StoreBatch(ctx, who, reqs)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &memoryv1.StoreBatchResponse{Ids: ids}, nil
}

// Query searches an agent's memories.
func (s *Server) Query(ctx context.Context, in *memoryv1.QueryRequest) (*memoryv1.QueryResponse, error) {
	who, owner, err := parties(ctx, in.GetAgent())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	q, err := queryFrom(owner, in)
	if err != nil {
		return nil, s.status(ctx, fmt.Errorf("memory: query: %w", err))
	}
	res, err := s.svc.Query(ctx, who, q)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &memoryv1.QueryResponse{
		Results: scoredProto(res.Results),
		Stats: &memoryv1.QueryStats{
			Scored: int32(min(res.Stats.Scored, math.MaxInt32)), Exact: res.Stats.Exact, Elapsed: durationpb.New(res.Stats.Elapsed),
		},
	}
	return out, nil
}

// Get returns one memory.
func (s *Server) Get(ctx context.Context, in *memoryv1.GetRequest) (*memoryv1.GetResponse, error) {
	who, err := caller.Acting(ctx, in.GetAgent().GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	m, err := s.svc.Get(ctx, who, in.GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &memoryv1.GetResponse{Memory: memoryProto(&m)}, nil
}

// Delete removes one memory.
func (s *Server) Delete(ctx context.Context, in *memoryv1.DeleteRequest) (*memoryv1.DeleteResponse, error) {
	who, err := caller.Acting(ctx, in.GetAgent().GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	if err := s.svc.Delete(ctx, who, in.GetId()); err != nil {
		return nil, s.status(ctx, err)
	}
	return &memoryv1.DeleteResponse{}, nil
}

// GetReasoning returns an action's reasoning; none recorded is found =
// false, not an error (seed §4.6: "not found: return None").
func (s *Server) GetReasoning(ctx context.Context, in *memoryv1.GetReasoningRequest) (*memoryv1.GetReasoningResponse, error) {
	who, owner, err := parties(ctx, in.GetAgent())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	r, err := s.svc.GetReasoning(ctx, who, owner, in.GetActionId())
	switch {
	case errors.Is(err, ErrNotFound):
		return &memoryv1.GetReasoningResponse{}, nil
	case err != nil:
		return nil, s.status(ctx, err)
	}
	out := &memoryv1.GetReasoningResponse{Found: true, Reasoning: r.Text, Steps: memoriesProto(r.Steps), RelatedMemories: memoriesProto(r.Related)}
	if r.HasConfidence {
		out.Confidence = &r.Confidence
	}
	return out, nil
}

// OversightContext builds the context for approving an agent's action.
func (s *Server) OversightContext(ctx context.Context, in *memoryv1.OversightContextRequest) (*memoryv1.OversightContextResponse, error) {
	who, owner, err := parties(ctx, in.GetAgent())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	oc, err := s.svc.OversightContext(ctx, who, OversightRequest{
		Agent: owner, Action: in.GetAction(), ActionEmbedding: in.GetActionEmbedding(), ActionID: in.GetActionId(),
		Window: in.GetWindow().AsDuration(), Limit: int(in.GetLimit()),
	})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &memoryv1.OversightContextResponse{RelevantMemories: scoredProto(oc.Memories), Truncated: oc.Truncated}
	if oc.Reasoning != "" {
		out.Reasoning = &oc.Reasoning
	}
	if oc.HasConfidence {
		out.Confidence = &oc.Confidence
	}
	return out, nil
}

// Conversions. The wire's MemoryType numbers are the service's Type
// values (seed §4.2 numbers them the same way).

func typeFrom(p memoryv1.MemoryType) (Type, error) {
	if p < memoryv1.MemoryType_MEMORY_TYPE_UNSPECIFIED || p > memoryv1.MemoryType_MEMORY_TYPE_LONG_TERM {
		return 0, invalid(nil, "memory type %d is not one of the seed's", int32(p))
	}
	return Type(p), nil
}

func storeFrom(owner string, in *memoryv1.StoreRequest) (StoreRequest, error) {
	t, err := typeFrom(in.GetType())
	if err != nil {
		return StoreRequest{}, err
	}
	return StoreRequest{
		Agent: owner, Content: in.GetContent(), Type: t, Metadata: in.GetMetadata(),
		Embedding: in.GetEmbedding(), TTL: in.GetTtl().AsDuration(),
	}, nil
}

func queryFrom(owner string, in *memoryv1.QueryRequest) (Query, error) {
	q := Query{Agent: owner, Text: in.GetQuery(), Embedding: in.GetQueryEmbedding(), Limit: int(in.GetLimit())}
	if t := in.RelevanceThreshold; t != nil {
		switch v := *t; {
		case !(v >= 0 && v <= 1): // NaN included
			return q, invalid(nil, "relevance threshold %v outside [0, 1]", v)
		case v == 0:
			// Every memory is at least 0 relevant (relevanceScore), so
			// an explicit 0 admits them all.
			q.Threshold = -1
		default:
			q.Threshold = v
		}
	}
	for _, p := range in.GetTypeFilter() {
		t, err := typeFrom(p)
		if err != nil {
			return q, err
		}
		q.Types = append(q.Types, t)
	}
	var err error
	if q.Since, err = timeFrom("time_range.start", in.GetTimeRange().GetStart()); err != nil {
		return q, err
	}
	if q.Until, err = timeFrom("time_range.end", in.GetTimeRange().GetEnd()); err != nil {
		return q, err
	}
	return q, nil
}

// timeFrom reads an optional timestamp: unset is the zero time.
func timeFrom(field string, ts *timestamppb.Timestamp) (time.Time, error) {
	if ts == nil {
		return time.Time{}, nil
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, invalid(nil, "%s: %v", field, err)
	}
	return ts.AsTime(), nil
}

// relevanceScore is the wire's relevance: the cosine similarity, with
// negative similarities (pointing away from the query) as 0, so it is
// always in [0, 1] as the seed's contract requires.
func relevanceScore(cosine float32) float32 { return min(max(cosine, 0), 1) }

func scoredProto(rs []Result) []*memoryv1.MemoryWithScore {
	out := make([]*memoryv1.MemoryWithScore, len(rs))
	for i := range rs {
		out[i] = &memoryv1.MemoryWithScore{Memory: memoryProto(&rs[i].Memory), RelevanceScore: relevanceScore(rs[i].Score)}
	}
	return out
}

func memoriesProto(ms []Memory) []*memoryv1.Memory {
	out := make([]*memoryv1.Memory, len(ms))
	for i := range ms {
		out[i] = memoryProto(&ms[i])
	}
	return out
}

func memoryProto(m *Memory) *memoryv1.Memory {
	out := &memoryv1.Memory{
		Id: m.ID, Agent: &nhiv1.AgentIdentity{Id: m.Agent}, Content: m.Content, Type: memoryv1.MemoryType(m.Type),
		Metadata: m.Metadata, CreatedAt: timestamppb.New(m.CreatedAt),
	}
	if !m.ExpiresAt.IsZero() {
		out.ExpiresAt = timestamppb.New(m.ExpiresAt)
	}
	return out
}
