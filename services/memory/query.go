package memory

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Query asks for an agent's memories most similar to a text or a vector
// (seed QueryRequest).
type Query struct {
	// Agent whose memories are searched.
	Agent string
	// Text is embedded with the service's embedder. Exactly one of Text
	// and Embedding is set.
	Text string
	// Embedding is a precomputed query vector of the index's dimension,
	// for indexes whose model runs outside the node.
	Embedding []float32
	// Limit is the most results returned: 0 means Config.DefaultLimit,
	// above Config.MaxQueryLimit is ErrLimitExceeded.
	Limit int
	// Threshold is the least cosine similarity a result may have, in
	// [-1, 1]. 0 means the embedder's own threshold (Embedder.Threshold);
	// -1 admits every memory that passes the other filters.
	Threshold float32
	// Types admits only memories of these types; empty admits all.
	Types []Type
	// Since and Until bound the creation time, inclusive; zero is open.
	Since, Until time.Time
}

// Result is a memory and its cosine similarity to the query.
type Result struct {
	Memory Memory
	Score  float32
}

// QueryStats describes how a query ran.
type QueryStats struct {
	// Scored is the number of memories the filters admitted and the
	// query compared vectors with.
	Scored int
	// Exact is true when every admitted memory was compared, so no
	// better match was missed. It is false only when the agent has more
	// than Config.ApproximateAbove memories and the query was answered
	// from the approximate index without reading all of it.
	Exact bool
	// Elapsed is the search time, embedding excluded.
	Elapsed time.Duration
}

// QueryResult is the answer to a Query, best match first.
type QueryResult struct {
	Results []Result
	Stats   QueryStats
}

// Query returns the memories of q.Agent most similar to q's text or
// vector, if caller may read them.
func (s *Service) Query(ctx context.Context, caller string, q Query) (*QueryResult, error) {
	if err := validateAgent("agent", q.Agent); err != nil {
		return nil, fmt.Errorf("memory: query: %w", err)
	}
	if err := s.authorize(ctx, caller, q.Agent, AccessRead); err != nil {
		return nil, fmt.Errorf("memory: query: %w", err)
	}
	res, err := s.query(ctx, &q)
	if err != nil {
		return nil, fmt.Errorf("memory: query: %w", err)
	}
	return res, nil
}

// query runs an authorized query.
func (s *Service) query(ctx context.Context, q *Query) (*QueryResult, error) {
	limit, threshold, f, err := s.validateQuery(q)
	if err != nil {
		return nil, err
	}
	vec, err := embedding(ctx, s.cfg.Embedder, q.Text, q.Embedding)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	start := time.Now()
	f.now = s.now().UnixNano()
	res := &QueryResult{Stats: QueryStats{Exact: true}}
	if ix := s.agents[q.Agent]; ix != nil {
		hits, scored, exact := ix.query(vec, s.dims, &f, threshold, limit)
		res.Stats.Scored, res.Stats.Exact = scored, exact
		res.Results = make([]Result, len(hits))
		for i, h := range hits {
			res.Results[i] = Result{Memory: h.e.mem.clone(), Score: h.score}
		}
	}
	res.Stats.Elapsed = time.Since(start)
	return res, nil
}

func (s *Service) validateQuery(q *Query) (limit int, threshold float32, f filter, err error) {
	switch {
	case (q.Text == "") == (q.Embedding == nil):
		return 0, 0, f, invalid(nil, "set exactly one of query text and query embedding")
	case len(q.Text) > s.cfg.MaxContentBytes:
		return 0, 0, f, invalid(nil, "query text is %d bytes, limit %d", len(q.Text), s.cfg.MaxContentBytes)
	case q.Limit < 0:
		return 0, 0, f, invalid(nil, "negative limit %d", q.Limit)
	case q.Limit > s.cfg.MaxQueryLimit:
		return 0, 0, f, invalid(ErrLimitExceeded, "limit %d, max_query_limit %d", q.Limit, s.cfg.MaxQueryLimit)
	case math.IsNaN(float64(q.Threshold)) || q.Threshold < -1 || q.Threshold > 1:
		return 0, 0, f, invalid(nil, "threshold %v outside [-1, 1]", q.Threshold)
	case !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since):
		return 0, 0, f, invalid(nil, "time range ends before it starts")
	}
	for _, t := range q.Types {
		if !t.valid() {
			return 0, 0, f, invalid(nil, "type filter names %v", t)
		}
		f.types |= 1 << t
	}
	if !q.Since.IsZero() {
		f.since = q.Since.UnixNano()
	}
	if !q.Until.IsZero() {
		f.until = q.Until.UnixNano()
	}
	limit, threshold = q.Limit, q.Threshold
	if limit == 0 {
		limit = s.cfg.DefaultLimit
	}
	if threshold == 0 {
		threshold = s.threshold
	}
	return limit, threshold, f, nil
}

// ActionReasoning is what an agent recorded about one action (seed
// ReasoningResponse): its reasoning steps and the other memories linked to
// the action.
type ActionReasoning struct {
	ActionID string
	// Text is the steps' content, oldest first, separated by blank lines.
	Text string
	// Steps are the Reasoning memories whose MetadataActionID is the
	// action, oldest first.
	Steps []Memory
	// Related are the action's memories of other types (tool results,
	// observations, context), oldest first.
	Related []Memory
	// Confidence is the newest step's MetadataConfidence, when
	// HasConfidence.
	Confidence    float32
	HasConfidence bool
}

// GetReasoning returns agent's reasoning for an action, if caller may read
// agent's memories. An action with no live reasoning step is ErrNotFound.
// Steps and related memories are each bounded by Config.MaxQueryLimit,
// keeping the newest.
func (s *Service) GetReasoning(ctx context.Context, caller, agent, actionID string) (*ActionReasoning, error) {
	if err := validateAgent("agent", agent); err != nil {
		return nil, fmt.Errorf("memory: get reasoning: %w", err)
	}
	if actionID == "" || len(actionID) > s.cfg.MaxMetadataBytes {
		return nil, fmt.Errorf("memory: get reasoning: %w", invalid(nil, "action id must be 1..%d bytes", s.cfg.MaxMetadataBytes))
	}
	if err := s.authorize(ctx, caller, agent, AccessRead); err != nil {
		return nil, fmt.Errorf("memory: get reasoning: %w", err)
	}
	r, err := s.reasoning(agent, actionID)
	if err != nil {
		return nil, fmt.Errorf("memory: get reasoning %s: %w", quote(actionID), err)
	}
	return r, nil
}

// reasoning collects an action's memories by a scan of the agent's
// index: at the sizes exact search serves, a scan of metadata costs less
// than keeping a second index consistent through deletes and expiry.
func (s *Service) reasoning(agent, actionID string) (*ActionReasoning, error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	now := s.now().UnixNano()
	r := &ActionReasoning{ActionID: actionID}
	if ix := s.agents[agent]; ix != nil {
		for _, e := range ix.entries {
			if e.mem.Metadata[MetadataActionID] != actionID || e.mem.expired(now) {
				continue
			}
			if e.mem.Type == Reasoning {
				r.Steps = append(r.Steps, e.mem.clone())
			} else {
				r.Related = append(r.Related, e.mem.clone())
			}
		}
	}
	s.mu.RUnlock()
	if len(r.Steps) == 0 {
		return nil, fmt.Errorf("%w: no reasoning recorded", ErrNotFound)
	}
	r.Steps = oldestFirst(r.Steps, s.cfg.MaxQueryLimit)
	r.Related = oldestFirst(r.Related, s.cfg.MaxQueryLimit)
	texts := make([]string, len(r.Steps))
	for i, m := range r.Steps {
		texts[i] = m.Content
	}
	r.Text = strings.Join(texts, "\n\n")
	if c, err := strconv.ParseFloat(r.Steps[len(r.Steps)-1].Metadata[MetadataConfidence], 32); err == nil && c >= 0 && c <= 1 {
		r.Confidence, r.HasConfidence = float32(c), true
	}
	return r, nil
}

// oldestFirst sorts memories by creation (then id, for a stable order)
// and keeps the newest limit of them.
func oldestFirst(ms []Memory, limit int) []Memory {
	slices.SortFunc(ms, func(a, b Memory) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if len(ms) > limit {
		ms = ms[len(ms)-limit:]
	}
	return ms
}

// OversightRequest asks for the context an approver needs to decide on an
// agent's action (seed §4.4).
type OversightRequest struct {
	// Agent whose action awaits approval.
	Agent string
	// Action describes the action; it is the query for relevant memories.
	// With an ExternalEmbedder, set ActionEmbedding instead.
	Action          string
	ActionEmbedding []float32
	// ActionID, when set, also fetches the agent's reasoning for it.
	ActionID string
	// Window is how far back relevant memories may date; 0 means 24 hours.
	Window time.Duration
	// Limit bounds the relevant memories; 0 means Config.OversightLimit,
	// which is also its maximum.
	Limit int
}

// OversightContext is what an approver is shown: the agent's memories
// relevant to the action and its recorded reasoning, bounded in count and
// in bytes.
type OversightContext struct {
	// Memories are the agent's Reasoning and Context memories from the
	// window most relevant to the action, best first.
	Memories []Result
	// Reasoning is the action's reasoning text, empty if none was found.
	Reasoning     string
	Confidence    float32
	HasConfidence bool
	// Truncated reports that content was cut or memories dropped to stay
	// within Config.OversightMaxBytes.
	Truncated bool
}

// OversightContext builds the context for approving agent's action
// (seed §4.4), if caller (the approver) may read agent's memories. A
// missing reasoning record is not an error: approval proceeds without it.
func (s *Service) OversightContext(ctx context.Context, caller string, req OversightRequest) (*OversightContext, error) {
	if err := validateAgent("agent", req.Agent); err != nil {
		return nil, fmt.Errorf("memory: oversight context: %w", err)
	}
	switch {
	case req.Window < 0:
		return nil, fmt.Errorf("memory: oversight context: %w", invalid(nil, "negative window"))
	case req.Limit < 0 || req.Limit > s.cfg.OversightLimit:
		return nil, fmt.Errorf("memory: oversight context: %w", invalid(ErrLimitExceeded, "limit %d outside 0..%d", req.Limit, s.cfg.OversightLimit))
	case req.Action == "" && req.ActionEmbedding == nil && req.ActionID == "":
		return nil, fmt.Errorf("memory: oversight context: %w", invalid(nil, "no action description, embedding or id"))
	}
	if err := s.authorize(ctx, caller, req.Agent, AccessRead); err != nil {
		return nil, fmt.Errorf("memory: oversight context: %w", err)
	}
	window, limit := req.Window, req.Limit
	if window == 0 {
		window = 24 * time.Hour
	}
	if limit == 0 {
		limit = s.cfg.OversightLimit
	}
	oc := &OversightContext{}
	budget := s.cfg.OversightMaxBytes
	if req.ActionID != "" {
		r, err := s.reasoning(req.Agent, req.ActionID)
		switch {
		case err == nil:
			oc.Reasoning, oc.Confidence, oc.HasConfidence = r.Text, r.Confidence, r.HasConfidence
			if len(oc.Reasoning) > budget {
				oc.Reasoning, oc.Truncated = truncateUTF8(oc.Reasoning, budget), true
			}
			budget -= len(oc.Reasoning)
		case !errors.Is(err, ErrNotFound):
			return nil, fmt.Errorf("memory: oversight context: %w", err)
		}
	}
	if req.Action == "" && req.ActionEmbedding == nil {
		return oc, nil
	}
	res, err := s.query(ctx, &Query{
		Agent:     req.Agent,
		Text:      req.Action,
		Embedding: req.ActionEmbedding,
		Limit:     limit,
		Types:     []Type{Reasoning, Context},
		Since:     s.now().Add(-window),
	})
	if err != nil {
		return nil, fmt.Errorf("memory: oversight context: %w", err)
	}
	for _, r := range res.Results {
		if len(r.Memory.Content) > budget {
			oc.Truncated = true
			break
		}
		budget -= len(r.Memory.Content)
		oc.Memories = append(oc.Memories, r)
	}
	return oc, nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
