package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	memoryv1 "github.com/creto-systems/creto/api/creto/memory/v1"
	"github.com/creto-systems/creto/services/crypto"
)

// MemoryClient stores and searches agents' memories with a node's
// MemoryService (seed §4.2.2). Memory is not critical (seed §13.3: full
// degradation): when it is unavailable, slow or faulting, Query and
// OversightContext answer with what they answered for the same request
// within cache_ttl_seconds, or with nothing, and say so in Degraded —
// never with an error. Writes and lookups by id report errors as they are.
type MemoryClient struct {
	svc          *service
	rpc          memoryv1.MemoryServiceClient
	defaultLimit int
	maxLimit     int
	threshold    *float32
	answers      *cache[[32]byte, proto.Message]
	crypto       crypto.Provider
	ownedConn
}

// MemoryType classifies a memory (seed MemoryType).
type MemoryType uint8

// Memory types.
const (
	MemoryTypeUnspecified MemoryType = iota
	Observation
	Reasoning
	Conversation
	ToolResult
	Context
	LongTerm
)

// Memory is one stored memory.
type Memory struct {
	// ID is 32 hex digits.
	ID string
	// AgentID is the owner.
	AgentID  string
	Content  string
	Type     MemoryType
	Metadata map[string]string
	// CreatedAt is when it was stored; ExpiresAt when it expires (zero:
	// never).
	CreatedAt, ExpiresAt time.Time
}

// ScoredMemory is a memory and its relevance to a query, in [0, 1] (seed
// MemoryWithScore).
type ScoredMemory struct {
	Memory
	Relevance float32
}

// StoreRequest is one memory to store (seed StoreMemoryRequest).
type StoreRequest struct {
	// Agent is the owner; empty means the calling agent.
	Agent   string
	Content string
	Type    MemoryType
	// Metadata: "action_id" links a memory to an action, "confidence"
	// rates a reasoning step.
	Metadata map[string]string
	// Embedding replaces the node's embedding of Content.
	Embedding []float32
	// TTL is how long the memory lives; 0 means forever.
	TTL time.Duration
}

// QueryRequest asks for an agent's memories most similar to a text (seed
// QueryRequest).
type QueryRequest struct {
	// Agent is whose memories to search; empty means the caller's own.
	Agent string
	// Query is the text; Embedding may replace it.
	Query     string
	Embedding []float32
	// Limit is the most results: 0 means default_limit, more than
	// max_query_limit is refused.
	Limit int
	// RelevanceThreshold is the least relevance; nil means
	// default_relevance_threshold, or the node's when that is unset.
	RelevanceThreshold *float32
	// Types admits only these types; empty admits all.
	Types []MemoryType
	// Since and Until bound the creation time; zero is unbounded.
	Since, Until time.Time
}

// QueryResult is a query's answer, best match first.
type QueryResult struct {
	Memories []ScoredMemory
	// Scored is how many memories the filters admitted; Exact whether all
	// of them were compared.
	Scored int
	Exact  bool
	// Degraded is nil for the node's answer. Otherwise memory could not
	// answer (the error says why) and Memories is the answer to the same
	// query from the cache, or empty.
	Degraded error
}

// ReasoningRecord is what an agent recorded about one action (seed
// ReasoningResponse).
type ReasoningRecord struct {
	// Found is false when nothing was recorded (the seed's None).
	Found bool
	// Text is the reasoning steps' text, oldest first.
	Text string
	// Steps are the reasoning memories; Related the action's others.
	Steps, Related []Memory
	// Confidence is the newest step's, when it has one.
	Confidence *float32
}

// OversightRequest describes an action awaiting a human's approval.
type OversightRequest struct {
	// Agent is whose action it is; empty means the caller.
	Agent string
	// Action describes the action: the query for relevant memories.
	Action    string
	Embedding []float32
	// ActionID, when set, fetches the action's reasoning too.
	ActionID string
	// Window is how far back memories may date; 0 means 24 hours.
	Window time.Duration
	// Limit is the most memories; 0 means the node's (5).
	Limit int
}

// OversightContext is what an approver is shown (seed §4.4).
type OversightContext struct {
	// Memories are the agent's reasoning and context memories most
	// relevant to the action, best first.
	Memories []ScoredMemory
	// Reasoning is the action's recorded reasoning; empty when none.
	Reasoning string
	// Confidence is the newest reasoning step's, when recorded.
	Confidence *float32
	// Truncated is set when the node cut content to bound the context.
	Truncated bool
	// Degraded is nil for the node's answer. Otherwise memory could not
	// answer and the context is the one cached for the same request, or
	// empty: the approver decides without it (seed §4.6).
	Degraded error
}

// NewMemoryClient builds a client of the [memory] section alone.
func NewMemoryClient(cfg MemoryConfig, opts ...Option) (*MemoryClient, error) {
	return standalone(cfg, opts, newMemory)
}

func newMemory(d *dialer, top Transport, cfg MemoryConfig) (*MemoryClient, error) {
	def := DefaultConfig().Memory
	p, err := cfg.ServiceConfig.resolve("memory", top, def.ServiceConfig)
	if err != nil {
		return nil, err
	}
	setDefault(&cfg.DefaultLimit, def.DefaultLimit)
	setDefault(&cfg.MaxQueryLimit, def.MaxQueryLimit)
	switch {
	case cfg.MaxQueryLimit < 1 || cfg.MaxQueryLimit > 100_000:
		return nil, fmt.Errorf("%w: memory.max_query_limit %d: want 1 to 100000", ErrConfig, cfg.MaxQueryLimit)
	case cfg.DefaultLimit < 1 || cfg.DefaultLimit > cfg.MaxQueryLimit:
		return nil, fmt.Errorf("%w: memory.default_limit %d: want 1 to max_query_limit (%d)", ErrConfig, cfg.DefaultLimit, cfg.MaxQueryLimit)
	}
	var threshold *float32
	if t := cfg.DefaultRelevanceThreshold; t != nil {
		if !(*t >= 0 && *t <= 1) {
			return nil, fmt.Errorf("%w: memory.default_relevance_threshold %v: want 0 to 1", ErrConfig, *t)
		}
		threshold = ptr(float32(*t))
	}
	cc, err := cacheSettings("memory", cfg.CacheEnabled, def.CacheEnabled, cfg.CacheTTLSeconds, def.CacheTTLSeconds, cfg.CacheMaxEntries, def.CacheMaxEntries)
	if err != nil {
		return nil, err
	}
	conn, err := d.dial("memory", p)
	if err != nil {
		return nil, err
	}
	return &MemoryClient{
		svc:          newService("memory", memoryv1.MemoryService_ServiceDesc.ServiceName, conn, p, d.opts.log),
		rpc:          memoryv1.NewMemoryServiceClient(conn),
		defaultLimit: cfg.DefaultLimit, maxLimit: cfg.MaxQueryLimit, threshold: threshold,
		answers: newCache[[32]byte](cc, proto.Clone, nil),
		crypto:  crypto.New(),
	}, nil
}

// Store stores one memory and returns its id (seed store). It is not
// retried: a retry after a lost answer would store the memory twice.
func (c *MemoryClient) Store(ctx context.Context, req StoreRequest) (string, error) {
	resp, err := call(ctx, c.svc, "Store", false, func(ctx context.Context) (*memoryv1.StoreResponse, error) {
		return c.rpc.Store(ctx, storeProto(req))
	})
	return resp.GetId(), err
}

// StoreBatch stores memories in one atomic commit, all or none (seed
// store_batch), and returns their ids in order. Not retried.
func (c *MemoryClient) StoreBatch(ctx context.Context, reqs []StoreRequest) ([]string, error) {
	in := &memoryv1.StoreBatchRequest{Requests: make([]*memoryv1.StoreRequest, len(reqs))}
	for i, r := range reqs {
		in.Requests[i] = storeProto(r)
	}
	resp, err := call(ctx, c.svc, "StoreBatch", false, func(ctx context.Context) (*memoryv1.StoreBatchResponse, error) {
		return c.rpc.StoreBatch(ctx, in)
	})
	if err != nil {
		return nil, err
	}
	return resp.GetIds(), nil
}

// Query returns an agent's memories most similar to a text, best first
// (seed query), degrading as the type says.
func (c *MemoryClient) Query(ctx context.Context, req QueryRequest) (QueryResult, error) {
	limit, err := c.limit(req.Limit)
	if err != nil {
		return QueryResult{}, err
	}
	in := &memoryv1.QueryRequest{
		Agent: agentRef(req.Agent), Query: req.Query, QueryEmbedding: req.Embedding, Limit: int32(limit),
		RelevanceThreshold: c.threshold, TypeFilter: memoryTypesProto(req.Types),
	}
	if req.RelevanceThreshold != nil {
		in.RelevanceThreshold = req.RelevanceThreshold
	}
	if !req.Since.IsZero() || !req.Until.IsZero() {
		in.TimeRange = &memoryv1.TimeRange{Start: timeProto(req.Since), End: timeProto(req.Until)}
	}
	resp, degraded, err := degradable(ctx, c, "Query", in, func(ctx context.Context) (*memoryv1.QueryResponse, error) {
		return c.rpc.Query(ctx, in)
	})
	if err != nil {
		return QueryResult{}, err
	}
	return QueryResult{Memories: scoredFrom(resp.GetResults()), Scored: int(resp.GetStats().GetScored()),
		Exact: resp.GetStats().GetExact(), Degraded: degraded}, nil
}

// OversightContext builds the context an approver needs to decide on an
// agent's action (seed §4.4), degrading as the type says: an approval is
// never blocked on memory.
func (c *MemoryClient) OversightContext(ctx context.Context, req OversightRequest) (OversightContext, error) {
	if req.Limit < 0 {
		return OversightContext{}, localError("memory", "OversightContext", ErrInvalidRequest, "negative limit %d", req.Limit)
	}
	in := &memoryv1.OversightContextRequest{
		Agent: agentRef(req.Agent), Action: req.Action, ActionEmbedding: req.Embedding, ActionId: req.ActionID,
		Limit: int32(req.Limit),
	}
	if req.Window != 0 {
		in.Window = durationpb.New(req.Window)
	}
	resp, degraded, err := degradable(ctx, c, "OversightContext", in, func(ctx context.Context) (*memoryv1.OversightContextResponse, error) {
		return c.rpc.OversightContext(ctx, in)
	})
	if err != nil {
		return OversightContext{}, err
	}
	out := OversightContext{Memories: scoredFrom(resp.GetRelevantMemories()), Reasoning: resp.GetReasoning(),
		Truncated: resp.GetTruncated(), Degraded: degraded}
	if resp != nil { // nil: degraded to an empty context
		out.Confidence = clonePtr(resp.Confidence)
	}
	return out, nil
}

// degradable runs a read that memory's degradation covers: the node's
// answer is kept, and when the node fails (not when the request is bad,
// refused, or the caller gave up) the kept answer to the same request, or
// an empty one, is returned with the failure as degraded.
func degradable[T proto.Message](ctx context.Context, c *MemoryClient, method string, in proto.Message, rpc func(context.Context) (T, error)) (T, error, error) {
	var zero T
	key, kerr := requestKey(c.crypto, method, in)
	resp, err := call(ctx, c.svc, method, true, rpc)
	if err == nil {
		if kerr == nil {
			c.answers.put(key, resp, time.Time{})
		}
		return resp, nil, nil
	}
	if !failure(err) {
		return zero, nil, err
	}
	c.svc.fallbacks.Add(1)
	if kerr == nil {
		if kept, ok := c.answers.get(key); ok {
			c.svc.log.Debug("creto client: memory failed; answering with the cached answer", "method", method, "err", reason(err))
			return kept.(T), err, nil
		}
	}
	c.svc.log.Debug("creto client: memory failed; answering with nothing", "method", method, "err", reason(err))
	return zero, err, nil
}

// limit resolves a query's result count.
func (c *MemoryClient) limit(n int) (int, error) {
	switch {
	case n == 0:
		return c.defaultLimit, nil
	case n < 0 || n > c.maxLimit:
		return 0, localError("memory", "Query", ErrInvalidRequest, "limit %d: want 1 to max_query_limit (%d)", n, c.maxLimit)
	}
	return n, nil
}

// Get returns one memory (seed get). A memory that does not exist is not
// an error: found is false (seed §4.6, "Not found → Return None").
func (c *MemoryClient) Get(ctx context.Context, agent, id string) (m Memory, found bool, err error) {
	resp, err := call(ctx, c.svc, "Get", true, func(ctx context.Context) (*memoryv1.GetResponse, error) {
		return c.rpc.Get(ctx, &memoryv1.GetRequest{Agent: agentRef(agent), Id: id})
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return Memory{}, false, nil
	case err != nil:
		return Memory{}, false, err
	}
	return memoryFrom(resp.GetMemory()), true, nil
}

// Delete removes one memory (seed delete). It is not retried: a retry
// after a lost answer would find nothing to delete. The degradation cache
// is emptied, so a deleted memory is never served from it.
func (c *MemoryClient) Delete(ctx context.Context, agent, id string) error {
	_, err := call(ctx, c.svc, "Delete", false, func(ctx context.Context) (*memoryv1.DeleteResponse, error) {
		return c.rpc.Delete(ctx, &memoryv1.DeleteRequest{Agent: agentRef(agent), Id: id})
	})
	if err == nil {
		c.answers.purge()
	}
	return err
}

// GetReasoning returns what an agent recorded about one action (seed
// get_reasoning); Found is false when nothing was.
func (c *MemoryClient) GetReasoning(ctx context.Context, agent, actionID string) (ReasoningRecord, error) {
	resp, err := call(ctx, c.svc, "GetReasoning", true, func(ctx context.Context) (*memoryv1.GetReasoningResponse, error) {
		return c.rpc.GetReasoning(ctx, &memoryv1.GetReasoningRequest{Agent: agentRef(agent), ActionId: actionID})
	})
	if err != nil || !resp.GetFound() {
		return ReasoningRecord{}, err
	}
	return ReasoningRecord{Found: true, Text: resp.GetReasoning(), Steps: memoriesFrom(resp.GetSteps()),
		Related: memoriesFrom(resp.GetRelatedMemories()), Confidence: clonePtr(resp.Confidence)}, nil
}

// Health reports the memory service's health (seed health).
func (c *MemoryClient) Health(ctx context.Context) Health { return c.svc.health(ctx) }

// Stats returns the client's counters.
func (c *MemoryClient) Stats() Stats { return c.svc.Stats() }

// Close releases the client's connection.
func (c *MemoryClient) Close() error { return c.closeConn() }

func storeProto(r StoreRequest) *memoryv1.StoreRequest {
	out := &memoryv1.StoreRequest{Agent: agentRef(r.Agent), Content: r.Content, Type: memoryv1.MemoryType(r.Type),
		Metadata: r.Metadata, Embedding: r.Embedding}
	if r.TTL != 0 {
		out.Ttl = durationpb.New(r.TTL)
	}
	return out
}

func memoryTypesProto(ts []MemoryType) []memoryv1.MemoryType {
	out := make([]memoryv1.MemoryType, len(ts))
	for i, t := range ts {
		out[i] = memoryv1.MemoryType(t)
	}
	return out
}

func memoryFrom(m *memoryv1.Memory) Memory {
	return Memory{ID: m.GetId(), AgentID: m.GetAgent().GetId(), Content: m.GetContent(), Type: MemoryType(m.GetType()),
		Metadata: maps.Clone(m.GetMetadata()), CreatedAt: timeFrom(m.GetCreatedAt()), ExpiresAt: timeFrom(m.GetExpiresAt())}
}

func memoriesFrom(ms []*memoryv1.Memory) []Memory {
	out := make([]Memory, 0, len(ms))
	for _, m := range ms {
		out = append(out, memoryFrom(m))
	}
	return out
}

func scoredFrom(rs []*memoryv1.MemoryWithScore) []ScoredMemory {
	out := make([]ScoredMemory, 0, len(rs))
	for _, r := range rs {
		out = append(out, ScoredMemory{Memory: memoryFrom(r.GetMemory()), Relevance: r.GetRelevanceScore()})
	}
	return slices.Clip(out)
}

// timeProto converts a time; zero is unset.
func timeProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// clonePtr copies a proto3 optional field, so the result shares nothing
// with the message.
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
