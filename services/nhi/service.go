package nhi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/crypto"
)

// Store layout. Every key of this service starts with "nhi/"; docs/identity.md
// describes the values.
const (
	keySchema            = "nhi/meta/schema"
	keyDataKey           = "nhi/node/data-key"
	prefixNodeKeys       = "nhi/node/key/"
	prefixAgents         = "nhi/agent/"
	prefixAgentKeys      = "nhi/key/"
	prefixDelegations    = "nhi/dlg/"
	prefixDelegationKids = "nhi/dlg-child/"
	prefixRevokedTokens  = "nhi/token-revoked/"

	schemaVersion = "1"
)

// dataKeyLabel is what the sealer binds the data key to.
var dataKeyLabel = []byte("creto-nhi/data-key/v1")

// Service is the node's non-human identity service (seed §6): agents and
// their keys, tokens, and delegation chains, all durable in the node's
// store. It is safe for concurrent use. Reads (token resolution, chain
// verification, signing) never wait for writes; writes are serialised.
type Service struct {
	cfg     Config
	p       crypto.Provider
	store   kv.Store
	now     func() time.Time
	closers []func() error // what Open created, closed by Close

	// life guards the service against Close: every public method holds a
	// read lock for its duration, and Close takes the write lock, so keys
	// are never wiped under an operation in flight. Public methods never
	// call each other, so the read lock is never taken twice.
	life   sync.RWMutex
	closed bool

	writeMu sync.Mutex // serialises writes, so a check-then-write is atomic

	dek  *crypto.SymmetricKey    // the data key every private key is sealed under
	node atomic.Pointer[keyRing] // the node's token-signing keys, signer unsealed

	agentsMu sync.RWMutex
	agents   map[string]*AgentIdentity // every agent; values are immutable

	rings  *lru[string, *keyRing] // parsed agent keys
	keyGen atomic.Uint64          // bumped on every key write; see lru.putIf

	tokens        *lru[[32]byte, tokenEntry] // verified tokens by SHA-256
	verifiedLinks *lru[[32]byte, struct{}]   // delegation signatures known good; see checkSignature

	revokedMu     sync.RWMutex
	revokedTokens map[tokenID]int64 // token id → its expiry, unix ms

	ents *entityState
}

// Open starts the service on dir, creating it on first use: the store in
// dir/kv and, with the software sealer, the node master key in
// dir/node.key (mode 0600). The master key is read at start to unseal the
// data key and wiped from memory straight after. Close releases both.
func Open(ctx context.Context, dir string, cfg Config) (*Service, error) {
	return open(ctx, dir, cfg, time.Now)
}

// open is Open with a clock, which tests move forward to expire things.
func open(ctx context.Context, dir string, cfg Config, now func() time.Time) (*Service, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("nhi: open: %w", err)
	}
	store, err := kv.Open(filepath.Join(dir, "kv"))
	if err != nil {
		return nil, fmt.Errorf("nhi: open: %w", err)
	}
	keyPath := filepath.Join(dir, "node.key")
	sealer, err := OpenFileSealer(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		// A store that already holds a sealed data key can only be opened
		// with the key that sealed it; a fresh key would hide the loss.
		if _, gerr := store.Get(ctx, []byte(keyDataKey)); !errors.Is(gerr, kv.ErrNotFound) {
			store.Close()
			if gerr != nil {
				return nil, fmt.Errorf("nhi: open: %w", gerr)
			}
			return nil, fmt.Errorf("nhi: open: node.key is missing but the store holds sealed keys: %w", ErrSealed)
		}
		sealer, err = CreateFileSealer(keyPath)
	}
	if err != nil {
		store.Close()
		return nil, err
	}
	s, err := newService(ctx, store, sealer, cfg, now)
	sealer.Close()
	if err != nil {
		store.Close()
		return nil, err
	}
	s.closers = append(s.closers, store.Close)
	return s, nil
}

// New starts the service on a store the caller owns (the node's shared
// store) with the given sealer, which is used only during New. Close does
// not close the store.
func New(ctx context.Context, store kv.Store, sealer Sealer, cfg Config) (*Service, error) {
	return newService(ctx, store, sealer, cfg, time.Now)
}

func newService(ctx context.Context, store kv.Store, sealer Sealer, cfg Config, now func() time.Time) (*Service, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg:           cfg,
		p:             crypto.New(),
		store:         store,
		now:           now,
		agents:        make(map[string]*AgentIdentity),
		rings:         newLRU[string, *keyRing](cfg.KeyCacheSize),
		tokens:        newLRU[[32]byte, tokenEntry](cfg.TokenCacheSize),
		verifiedLinks: newLRU[[32]byte, struct{}](cfg.DelegationCacheSize),
		revokedTokens: make(map[tokenID]int64),
	}
	if err := s.start(ctx, sealer); err != nil {
		s.wipe()
		return nil, fmt.Errorf("nhi: start: %w", err)
	}
	s.ents = newEntityState(cfg, now, s.agents)
	return s, nil
}

func (s *Service) start(ctx context.Context, sealer Sealer) error {
	if err := s.openDataKey(ctx, sealer); err != nil {
		return err
	}
	if err := s.openNodeKeys(ctx); err != nil {
		return err
	}
	if err := s.loadAgents(ctx); err != nil {
		return err
	}
	if err := s.ensureGrantIndex(ctx); err != nil {
		return err
	}
	return s.loadRevokedTokens(ctx)
}

// openDataKey unseals the data key, or on first start generates and seals
// one together with the schema marker.
func (s *Service) openDataKey(ctx context.Context, sealer Sealer) error {
	if v, err := s.store.Get(ctx, []byte(keySchema)); err == nil && string(v) != schemaVersion {
		return fmt.Errorf("store schema %q, this build reads %q", v, schemaVersion)
	}
	sealed, err := s.store.Get(ctx, []byte(keyDataKey))
	if errors.Is(err, kv.ErrNotFound) {
		return s.createDataKey(ctx, sealer)
	}
	if err != nil {
		return err
	}
	enc, err := sealer.Unseal(ctx, sealed, dataKeyLabel)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSealed, err)
	}
	defer clear(enc)
	if s.dek, err = crypto.ParseSymmetricKey(enc); err != nil {
		return fmt.Errorf("%w: data key: %w", ErrSealed, err)
	}
	return nil
}

func (s *Service) createDataKey(ctx context.Context, sealer Sealer) error {
	dek, err := s.p.GenerateSymmetricKey(crypto.AES256GCM)
	if err != nil {
		return err
	}
	enc, err := crypto.MarshalSymmetricKey(dek)
	if err != nil {
		return err
	}
	defer clear(enc)
	sealed, err := sealer.Seal(ctx, enc, dataKeyLabel)
	if err != nil {
		dek.Destroy()
		return fmt.Errorf("seal data key: %w", err)
	}
	var b kv.Batch
	b.Set([]byte(keySchema), []byte(schemaVersion))
	b.Set([]byte(keyDataKey), sealed)
	if err := s.store.Apply(ctx, &b); err != nil {
		dek.Destroy()
		return err
	}
	s.dek = dek
	return nil
}

// openNodeKeys loads the node's token-signing keys and unseals the current
// one, generating the first on first start. Unsealing now, rather than at
// the first token, makes a wrong node key fail the start.
func (s *Service) openNodeKeys(ctx context.Context) error {
	ring, err := s.loadRing(ctx, []byte(prefixNodeKeys))
	if err != nil {
		return err
	}
	if len(ring.versions) == 0 {
		if ring, err = s.rotateNodeRing(ctx, 0); err != nil {
			return err
		}
	} else if _, err := s.signerFor(ring); err != nil {
		return err
	}
	s.node.Store(ring)
	return nil
}

// rotateNodeRing writes a new node key version and returns the new ring,
// its signer already set.
func (s *Service) rotateNodeRing(ctx context.Context, overlap time.Duration) (*keyRing, error) {
	var b kv.Batch
	_, signer, err := s.rotate(ctx, &b, []byte(prefixNodeKeys), overlap, 0, false)
	if err != nil {
		return nil, err
	}
	if err := s.store.Apply(ctx, &b); err != nil {
		signer.Destroy()
		return nil, err
	}
	ring, err := s.loadRing(ctx, []byte(prefixNodeKeys))
	if err != nil {
		signer.Destroy()
		return nil, err
	}
	ring.signer = signer
	return ring, nil
}

func (s *Service) loadAgents(ctx context.Context) error {
	return s.store.Scan(ctx, []byte(prefixAgents), func(key, val []byte) error {
		a, err := decodeAgent(val)
		if err != nil {
			return fmt.Errorf("agent record %s: %w", quote(string(key)), err)
		}
		s.agents[a.ID] = a
		return nil
	})
}

// Close wipes the keys the service holds in memory (as far as Go allows;
// see docs/crypto.md) and releases what Open created. Calls after Close
// fail with ErrClosed.
func (s *Service) Close() error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return opError("close", "", ErrClosed)
	}
	s.closed = true
	s.wipe()
	var errs []error
	for _, c := range s.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

func (s *Service) wipe() {
	s.rings.drain(func(r *keyRing) { r.destroy() })
	s.tokens.drain(func(tokenEntry) {})
	if r := s.node.Load(); r != nil {
		r.destroy()
	}
	s.dek.Destroy()
}

// enter admits a public method unless the service is closed; the caller
// must defer s.life.RUnlock() when it returns nil.
func (s *Service) enter() error {
	s.life.RLock()
	if s.closed {
		s.life.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *Service) nowMS() int64 { return s.now().UnixMilli() }

// agent returns the stored identity; the value must not be modified.
func (s *Service) agent(id string) (*AgentIdentity, bool) {
	s.agentsMu.RLock()
	a, ok := s.agents[id]
	s.agentsMu.RUnlock()
	return a, ok
}

// setAgent publishes an agent after its record is durable.
func (s *Service) setAgent(a *AgentIdentity) {
	s.agentsMu.Lock()
	s.agents[a.ID] = a
	s.agentsMu.Unlock()
	s.ents.update(a)
}

func agentKey(id string) []byte { return []byte(prefixAgents + id) }

// Register creates an agent with a fresh key version and returns it as
// stored: active, with its creation time set. Its id must be new.
func (s *Service) Register(ctx context.Context, a AgentIdentity) (AgentIdentity, error) {
	if strings.HasPrefix(a.ID, ExtensionIDPrefix) {
		return AgentIdentity{}, opError("register agent", a.ID, detail(ErrInvalidArgument, "agent ids starting %q are reserved for extensions", ExtensionIDPrefix))
	}
	return s.register(ctx, a)
}

// ExtensionOwner is the OwnerID of the identities RegisterExtension
// creates.
const ExtensionOwner = "creto-node"

// RegisterExtension registers the identity the node gives the Wasm
// extension named name when it acts in other services — storage encrypts
// its objects to this identity's keys — as "extension:<name>", a service
// agent owned by ExtensionOwner. It is the only way to an id with
// ExtensionIDPrefix; the node calls it when an operator's grant lets an
// extension keep state of its own. A second call for the same name is
// ErrAlreadyExists.
func (s *Service) RegisterExtension(ctx context.Context, name string) (AgentIdentity, error) {
	return s.register(ctx, AgentIdentity{ID: ExtensionIDPrefix + name, Name: "Wasm extension " + name, Type: AgentTypeService, OwnerID: ExtensionOwner})
}

func (s *Service) register(ctx context.Context, a AgentIdentity) (AgentIdentity, error) {
	const op = "register agent"
	if err := s.enter(); err != nil {
		return AgentIdentity{}, opError(op, a.ID, err)
	}
	defer s.life.RUnlock()
	nowMS := s.nowMS()
	in := a.clone()
	if in.Status == "" {
		in.Status = StatusActive // anything else, validateNew rejects
	}
	in.CreatedAt = time.UnixMilli(nowMS).UTC()
	if !in.ExpiresAt.IsZero() {
		in.ExpiresAt = time.UnixMilli(in.ExpiresAt.UnixMilli()).UTC()
	}
	if len(in.Attributes) == 0 {
		in.Attributes = nil
	}
	if err := in.validateNew(nowMS); err != nil {
		return AgentIdentity{}, opError(op, a.ID, err)
	}
	// Keys are generated before taking the write lock: it costs a few
	// hundred microseconds that other writers need not wait for.
	prefix := agentKeyPrefix(in.ID)
	v, signer, err := s.newKeyVersion(prefix, 1, nowMS, nowMS+s.cfg.KeyValidity.Milliseconds(), true)
	if err != nil {
		return AgentIdentity{}, opError(op, a.ID, err)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if _, ok := s.agent(in.ID); ok {
		signer.Destroy()
		return AgentIdentity{}, opError(op, a.ID, ErrAlreadyExists)
	}
	var b kv.Batch
	b.Set(agentKey(in.ID), encodeAgent(&in))
	b.Set(v.storeID, encodeKeyRecord(&v.rec))
	if err := s.store.Apply(ctx, &b); err != nil {
		signer.Destroy()
		return AgentIdentity{}, opError(op, a.ID, err)
	}
	s.rings.put(in.ID, &keyRing{versions: []*keyVersion{v}, signer: signer})
	stored := in.clone()
	s.setAgent(&stored)
	s.emit(ctx, Event{Kind: EventAgentRegistered, AgentID: in.ID, OwnerID: in.OwnerID, Type: in.Type, KeyVersion: 1})
	return in, nil
}

// Update applies u to an agent and returns the result. A revoked agent
// cannot be updated.
func (s *Service) Update(ctx context.Context, id string, u AgentUpdate) (AgentIdentity, error) {
	const op = "update agent"
	if err := s.enter(); err != nil {
		return AgentIdentity{}, opError(op, id, err)
	}
	defer s.life.RUnlock()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	cur, ok := s.agent(id)
	if !ok {
		return AgentIdentity{}, opError(op, id, ErrNotFound)
	}
	if cur.Status == StatusRevoked {
		return AgentIdentity{}, opError(op, id, ErrRevoked)
	}
	next := cur.clone()
	if u.Name != nil {
		if err := validateName(*u.Name); err != nil {
			return AgentIdentity{}, opError(op, id, err)
		}
		next.Name = *u.Name
	}
	if u.Status != nil {
		if *u.Status != StatusActive && *u.Status != StatusSuspended {
			return AgentIdentity{}, opError(op, id, detail(ErrInvalidArgument, "status can be set to active or suspended; use Revoke to revoke"))
		}
		next.Status = *u.Status
	}
	if u.ExpiresAt != nil {
		next.ExpiresAt = time.Time{}
		if !u.ExpiresAt.IsZero() {
			if u.ExpiresAt.UnixMilli() <= s.nowMS() {
				return AgentIdentity{}, opError(op, id, detail(ErrInvalidArgument, "expiry is in the past"))
			}
			next.ExpiresAt = time.UnixMilli(u.ExpiresAt.UnixMilli()).UTC()
		}
	}
	if u.Attributes != nil {
		if err := validateAttributes(u.Attributes); err != nil {
			return AgentIdentity{}, opError(op, id, err)
		}
		next.Attributes = nil
		if len(u.Attributes) > 0 {
			next.Attributes = maps.Clone(u.Attributes)
		}
	}
	var b kv.Batch
	b.Set(agentKey(id), encodeAgent(&next))
	if err := s.store.Apply(ctx, &b); err != nil {
		return AgentIdentity{}, opError(op, id, err)
	}
	stored := next.clone()
	s.setAgent(&stored)
	s.emit(ctx, Event{Kind: EventAgentUpdated, AgentID: id, Status: next.Status})
	return next, nil
}

// Revoke permanently revokes an agent: its tokens stop resolving, chains
// through it stop verifying, its private keys are deleted from the store,
// and its id is never reused. Revoking a revoked agent is a no-op.
func (s *Service) Revoke(ctx context.Context, id string) error {
	const op = "revoke agent"
	if err := s.enter(); err != nil {
		return opError(op, id, err)
	}
	defer s.life.RUnlock()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	cur, ok := s.agent(id)
	if !ok {
		return opError(op, id, ErrNotFound)
	}
	if cur.Status == StatusRevoked {
		return nil
	}
	next := cur.clone()
	next.Status = StatusRevoked
	var b kv.Batch
	b.Set(agentKey(id), encodeAgent(&next))
	// The public keys stay, so signatures the agent made can still be
	// attributed in an audit; the private keys go.
	err := s.store.Scan(ctx, agentKeyPrefix(id), func(key, val []byte) error {
		var rec keyRecord
		if err := json.Unmarshal(val, &rec); err != nil {
			return err
		}
		rec.SigningSealed, rec.KEMSealed = nil, nil
		b.Set(key, encodeKeyRecord(&rec))
		return nil
	})
	if err != nil {
		return opError(op, id, err)
	}
	if err := s.store.Apply(ctx, &b); err != nil {
		return opError(op, id, err)
	}
	// The status goes first, so a Sign racing with this sees "revoked"
	// rather than keys that no longer open.
	s.setAgent(&next)
	s.invalidateRing(id)
	s.emit(ctx, Event{Kind: EventAgentRevoked, AgentID: id})
	return nil
}

// Get returns an agent whatever its status.
func (s *Service) Get(ctx context.Context, id string) (AgentIdentity, error) {
	const op = "get agent"
	if err := s.enter(); err != nil {
		return AgentIdentity{}, opError(op, id, err)
	}
	defer s.life.RUnlock()
	if err := ctx.Err(); err != nil {
		return AgentIdentity{}, opError(op, id, err)
	}
	a, ok := s.agent(id)
	if !ok {
		return AgentIdentity{}, opError(op, id, ErrNotFound)
	}
	return a.clone(), nil
}

// IsRegistered reports whether an agent with this id was ever registered
// (revoked agents included: their ids stay taken).
func (s *Service) IsRegistered(ctx context.Context, id string) (bool, error) {
	if err := s.enter(); err != nil {
		return false, opError("is registered", id, err)
	}
	defer s.life.RUnlock()
	if err := ctx.Err(); err != nil {
		return false, opError("is registered", id, err)
	}
	_, ok := s.agent(id)
	return ok, nil
}

// IsRevoked reports whether the agent is revoked. An unknown id is an
// error matching ErrNotFound rather than "not revoked", so a typo never
// reads as a clean bill of health.
func (s *Service) IsRevoked(ctx context.Context, id string) (bool, error) {
	const op = "is revoked"
	if err := s.enter(); err != nil {
		return false, opError(op, id, err)
	}
	defer s.life.RUnlock()
	if err := ctx.Err(); err != nil {
		return false, opError(op, id, err)
	}
	a, ok := s.agent(id)
	if !ok {
		return false, opError(op, id, ErrNotFound)
	}
	return a.Status == StatusRevoked, nil
}

// List returns agents in id order, filtered and paged by opts.
func (s *Service) List(ctx context.Context, opts ListOptions) ([]AgentIdentity, error) {
	const op = "list agents"
	if err := s.enter(); err != nil {
		return nil, opError(op, "", err)
	}
	defer s.life.RUnlock()
	if err := ctx.Err(); err != nil {
		return nil, opError(op, "", err)
	}
	limit := opts.Limit
	switch {
	case limit < 0:
		return nil, opError(op, "", detail(ErrInvalidArgument, "negative limit"))
	case limit == 0:
		limit = 100
	case limit > 1000:
		limit = 1000
	}
	s.agentsMu.RLock()
	matched := make([]*AgentIdentity, 0, len(s.agents))
	for id, a := range s.agents {
		if id > opts.After && (opts.OwnerID == "" || a.OwnerID == opts.OwnerID) && (opts.Status == "" || a.Status == opts.Status) {
			matched = append(matched, a)
		}
	}
	s.agentsMu.RUnlock()
	slices.SortFunc(matched, func(a, b *AgentIdentity) int { return strings.Compare(a.ID, b.ID) })
	out := make([]AgentIdentity, 0, min(limit, len(matched)))
	for _, a := range matched[:min(limit, len(matched))] {
		out = append(out, a.clone())
	}
	return out, nil
}
