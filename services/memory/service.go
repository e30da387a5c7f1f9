package memory

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/creto-systems/creto/internal/kv"
)

// Store layout. Every key of this service starts with "memory/".
const (
	keyIndexMeta  = "memory/meta/index" // "<model>\x00<dims>": what the vectors are
	prefixRecords = "memory/rec/"       // + id: an encoded record
)

// Service is the node's agent memory (seed §4). It is safe for concurrent
// use: queries run in parallel under a read lock, and writes hold the
// write lock only to update the in-memory index after their store commit.
type Service struct {
	cfg       Config
	store     kv.Store
	now       func() time.Time
	dims      int
	threshold float32

	mu     sync.RWMutex
	closed bool
	byID   map[string]*entry
	agents map[string]*agentIndex

	builds sync.WaitGroup // approximate index builds (ivf.go)
	stop   chan struct{}
	done   chan struct{}
}

// Open starts the service on the node's store, loading every live memory
// into memory and deleting the ones that expired while it was down. The
// store stays the caller's: Close does not close it. A store that holds
// vectors of another embedder model or dimension fails with
// ErrIndexMismatch; a damaged record fails with ErrCorrupt.
func Open(ctx context.Context, store kv.Store, cfg Config) (*Service, error) {
	return open(ctx, store, cfg, time.Now)
}

// open is Open with a clock, which tests move forward to expire memories.
func open(ctx context.Context, store kv.Store, cfg Config, now func() time.Time) (*Service, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg:       cfg,
		store:     store,
		now:       now,
		dims:      cfg.Embedder.Dimensions(),
		threshold: cfg.Embedder.Threshold(),
		byID:      map[string]*entry{},
		agents:    map[string]*agentIndex{},
	}
	if err := s.checkIndexMeta(ctx); err != nil {
		return nil, err
	}
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	// Indexes are built once everything is loaded, not as each agent
	// crosses the threshold on the way.
	for agent, ix := range s.agents {
		s.reindex(agent, ix)
	}
	if cfg.SweepInterval > 0 {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.sweepLoop()
	}
	return s, nil
}

// checkIndexMeta binds the store to the embedder on first use and refuses
// any other embedder afterwards.
func (s *Service) checkIndexMeta(ctx context.Context) error {
	want := s.cfg.Embedder.Model() + "\x00" + strconv.Itoa(s.dims)
	got, err := s.store.Get(ctx, []byte(keyIndexMeta))
	switch {
	case errors.Is(err, kv.ErrNotFound):
		var b kv.Batch
		b.Set([]byte(keyIndexMeta), []byte(want))
		if err := s.store.Apply(ctx, &b); err != nil {
			return fmt.Errorf("memory: open: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("memory: open: %w", err)
	case string(got) != want:
		model, dims, _ := strings.Cut(string(got), "\x00")
		return fmt.Errorf("%w: the store holds %s vectors of %s dimensions, the embedder is %s with %d",
			ErrIndexMismatch, quote(model), dims, quote(s.cfg.Embedder.Model()), s.dims)
	}
	return nil
}

func (s *Service) load(ctx context.Context) error {
	now := s.now().UnixNano()
	var expired kv.Batch
	err := s.store.Scan(ctx, []byte(prefixRecords), func(key, value []byte) error {
		r, err := decodeRecord(value)
		if err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
		if !bytes.Equal(key[len(prefixRecords):], []byte(r.mem.ID)) || len(r.vec) != s.dims {
			return fmt.Errorf("key %q: %w: id or dimension does not match its key and index", key, ErrCorrupt)
		}
		if r.mem.expired(now) {
			expired.Delete(key)
			return nil
		}
		s.insert(r)
		return nil
	})
	if err != nil {
		return fmt.Errorf("memory: open: %w", err)
	}
	if err := s.store.Apply(ctx, &expired); err != nil {
		return fmt.Errorf("memory: open: deleting expired memories: %w", err)
	}
	return nil
}

// insert adds r to the in-memory index; the caller holds the write lock
// or owns s exclusively.
func (s *Service) insert(r *record) {
	e := &entry{mem: r.mem}
	ix := s.agents[r.mem.Agent]
	if ix == nil {
		ix = &agentIndex{}
		s.agents[r.mem.Agent] = ix
	}
	ix.add(e, r.vec, s.dims)
	s.byID[r.mem.ID] = e
}

// drop removes e from the index unless a concurrent Delete or sweep got
// there first; the caller holds the write lock.
func (s *Service) drop(e *entry) {
	if s.byID[e.mem.ID] != e {
		return
	}
	delete(s.byID, e.mem.ID)
	ix := s.agents[e.mem.Agent]
	ix.remove(e, s.dims)
	if len(ix.entries) == 0 {
		delete(s.agents, e.mem.Agent)
		return
	}
	s.reindex(e.mem.Agent, ix)
}

// Close stops the sweeper. Calls after Close fail with ErrClosed; the
// store stays open for its owner to close.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	if s.stop != nil {
		close(s.stop)
		<-s.done
	}
	// A build in progress notices the close between k-means iterations.
	s.builds.Wait()
	return nil
}

func (s *Service) checkOpen() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

// StoreRequest is one memory to store (seed StoreMemoryRequest).
type StoreRequest struct {
	// Agent owns the memory.
	Agent   string
	Content string
	Type    Type
	// Metadata is free-form; MetadataActionID links a memory to an action
	// for GetReasoning.
	Metadata map[string]string
	// Embedding, when set, is used instead of embedding Content. It must
	// have the index's dimension; it need not be unit length.
	Embedding []float32
	// TTL is how long the memory lives; 0 means it never expires.
	TTL time.Duration
}

// Metadata keys the service gives meaning to.
const (
	// MetadataActionID links a memory to the action it explains or
	// records, for GetReasoning and OversightContext.
	MetadataActionID = "action_id"
	// MetadataConfidence is a reasoning step's confidence in [0, 1].
	MetadataConfidence = "confidence"
)

// Store stores one memory on behalf of caller and returns its id.
func (s *Service) Store(ctx context.Context, caller string, req StoreRequest) (string, error) {
	ids, err := s.storeAll(ctx, caller, []StoreRequest{req})
	if err != nil {
		return "", fmt.Errorf("memory: store: %w", err)
	}
	return ids[0], nil
}

// StoreBatch stores memories in one atomic commit: all of them or, on any
// error, none. Ids come back in request order.
func (s *Service) StoreBatch(ctx context.Context, caller string, reqs []StoreRequest) ([]string, error) {
	switch {
	case len(reqs) == 0:
		return nil, fmt.Errorf("memory: store batch: %w", invalid(nil, "empty batch"))
	case len(reqs) > s.cfg.MaxBatch:
		return nil, fmt.Errorf("memory: store batch: %w", invalid(ErrLimitExceeded, "%d memories, limit %d", len(reqs), s.cfg.MaxBatch))
	}
	ids, err := s.storeAll(ctx, caller, reqs)
	if err != nil {
		return nil, fmt.Errorf("memory: store batch: %w", err)
	}
	return ids, nil
}

func (s *Service) storeAll(ctx context.Context, caller string, reqs []StoreRequest) ([]string, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	now := s.now()
	recs := make([]*record, len(reqs))
	allowed := map[string]bool{}
	var b kv.Batch
	for i := range reqs {
		req := &reqs[i]
		if err := validateAgent("agent", req.Agent); err != nil {
			return nil, fmt.Errorf("memory %d: %w", i, err)
		}
		if !allowed[req.Agent] {
			if err := s.authorize(ctx, caller, req.Agent, AccessWrite); err != nil {
				return nil, err
			}
			allowed[req.Agent] = true
		}
		if err := s.validateStore(req); err != nil {
			return nil, fmt.Errorf("memory %d: %w", i, err)
		}
		vec, err := embedding(ctx, s.cfg.Embedder, req.Content, req.Embedding)
		if err != nil {
			return nil, fmt.Errorf("memory %d: %w", i, err)
		}
		r := &record{vec: vec, mem: Memory{
			ID:        newID(now),
			Agent:     req.Agent,
			Content:   req.Content,
			Type:      req.Type,
			Metadata:  cloneMetadata(req.Metadata),
			CreatedAt: now.UTC(),
		}}
		if req.TTL > 0 {
			r.mem.ExpiresAt = r.mem.CreatedAt.Add(req.TTL)
		}
		recs[i] = r
		b.Set([]byte(prefixRecords+r.mem.ID), encodeRecord(r))
	}
	if err := s.store.Apply(ctx, &b); err != nil {
		return nil, err
	}
	ids := make([]string, len(recs))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range recs {
		s.insert(r)
		ids[i] = r.mem.ID
	}
	for agent := range allowed {
		if ix := s.agents[agent]; ix != nil {
			s.reindex(agent, ix)
		}
	}
	return ids, nil
}

func (s *Service) validateStore(req *StoreRequest) error {
	switch {
	case strings.TrimSpace(req.Content) == "":
		return invalid(nil, "content is empty")
	case len(req.Content) > s.cfg.MaxContentBytes:
		return invalid(nil, "content is %d bytes, limit %d", len(req.Content), s.cfg.MaxContentBytes)
	case !utf8.ValidString(req.Content):
		return invalid(nil, "content is not valid UTF-8")
	case !req.Type.valid():
		return invalid(nil, "memory type %v is not storable", req.Type)
	case req.TTL < 0:
		return invalid(nil, "negative TTL %v", req.TTL)
	case req.TTL > s.cfg.MaxTTL:
		return invalid(nil, "TTL %v exceeds the limit %v", req.TTL, s.cfg.MaxTTL)
	case len(req.Metadata) > s.cfg.MaxMetadataEntries:
		return invalid(nil, "%d metadata entries, limit %d", len(req.Metadata), s.cfg.MaxMetadataEntries)
	}
	for k, v := range req.Metadata {
		switch {
		case k == "":
			return invalid(nil, "empty metadata key")
		case len(k) > s.cfg.MaxMetadataBytes || len(v) > s.cfg.MaxMetadataBytes:
			return invalid(nil, "metadata entry %s longer than %d bytes", quote(k), s.cfg.MaxMetadataBytes)
		case !utf8.ValidString(k) || !utf8.ValidString(v):
			return invalid(nil, "metadata entry %s is not valid UTF-8", quote(k))
		}
	}
	return nil
}

// cloneMetadata copies m, keeping an empty map as nil so a memory reads
// back the same whether it was stored with nil or an empty map.
func cloneMetadata(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

// newID returns the creation time in nanoseconds and 64 random bits, in
// hex. The randomness only has to keep ids unique, not secret — access is
// decided by the Authorizer, never by knowing an id — so the runtime's
// fast generator serves.
func newID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixNano()))
	binary.BigEndian.PutUint64(b[8:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// lookup returns the live memory with the given id.
func (s *Service) lookup(id string) (*entry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	e := s.byID[id]
	if e == nil || e.mem.expired(s.now().UnixNano()) {
		return nil, fmt.Errorf("%w: memory %s", ErrNotFound, quote(id))
	}
	return e, nil
}

// Get returns the memory with the given id, if caller may read its
// owner's memories. An expired memory is not found, even before the
// sweeper deletes it.
func (s *Service) Get(ctx context.Context, caller, id string) (Memory, error) {
	e, err := s.lookup(id)
	if err != nil {
		return Memory{}, fmt.Errorf("memory: get: %w", err)
	}
	if err := s.authorize(ctx, caller, e.mem.Agent, AccessRead); err != nil {
		return Memory{}, fmt.Errorf("memory: get %s: %w", quote(id), err)
	}
	return e.mem.clone(), nil
}

// Delete removes the memory with the given id, if caller may write its
// owner's memories.
func (s *Service) Delete(ctx context.Context, caller, id string) error {
	e, err := s.lookup(id)
	if err != nil {
		return fmt.Errorf("memory: delete: %w", err)
	}
	if err := s.authorize(ctx, caller, e.mem.Agent, AccessWrite); err != nil {
		return fmt.Errorf("memory: delete %s: %w", quote(id), err)
	}
	var b kv.Batch
	b.Delete([]byte(prefixRecords + id))
	if err := s.store.Apply(ctx, &b); err != nil {
		return fmt.Errorf("memory: delete %s: %w", quote(id), err)
	}
	s.mu.Lock()
	s.drop(e)
	s.mu.Unlock()
	return nil
}

// Sweep deletes every expired memory from the store and the index and
// returns how many it deleted. The sweeper calls it every
// Config.SweepInterval; expired memories are invisible before that, so
// sweeping only reclaims space.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return 0, ErrClosed
	}
	now := s.now().UnixNano()
	var expired []*entry
	var b kv.Batch
	for _, e := range s.byID {
		if e.mem.expired(now) {
			expired = append(expired, e)
			b.Delete([]byte(prefixRecords + e.mem.ID))
		}
	}
	s.mu.RUnlock()
	if len(expired) == 0 {
		return 0, nil
	}
	if err := s.store.Apply(ctx, &b); err != nil {
		return 0, fmt.Errorf("memory: sweep: %w", err)
	}
	s.mu.Lock()
	for _, e := range expired {
		s.drop(e)
	}
	s.mu.Unlock()
	return len(expired), nil
}

func (s *Service) sweepLoop() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if _, err := s.Sweep(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
				slog.Warn("memory: sweeping expired memories failed; will retry", "err", err)
			}
		}
	}
}
