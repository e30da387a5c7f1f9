// Package authz is the node's authorization service: the engine, with its
// policies and extensions kept durable in the node's store so that a
// restart decides exactly as before, and the gRPC face of both (server.go).
//
// The engine itself holds no durable state; this package is what makes a
// CreatePolicy or RegisterExtension over the network survive a restart.
// Every write is applied to the engine first, which validates it and
// rejects it whole on any error, and is then committed to the store; a
// commit that fails is undone in the engine, so the two never disagree.
package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/internal/kv"
)

// Key prefixes in the node's store.
const (
	prefixPolicy    = "authz/policy/"
	prefixExtension = "authz/extension/"
)

// Page sizes of ListPolicies.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Sentinel errors.
var (
	// ErrInvalidArgument: a request is malformed; nothing changed.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrExtensionsDisabled: the node does not accept extensions.
	ErrExtensionsDisabled = errors.New("extensions are disabled on this node")
)

// Options adjust a Service.
type Options struct {
	// Log receives what the service reports; nil means slog.Default().
	Log *slog.Logger
	// NoExtensions refuses extension registration ([authz]
	// extensions_enabled = false). A store that holds extensions then
	// fails Open rather than start without them.
	NoExtensions bool
}

// Service is the durable authorization service over an engine.
type Service struct {
	engine *engine.Engine
	store  kv.Store
	log    *slog.Logger
	opts   Options
	// mu serialises writes, so the engine's state and the store's are
	// changed in the same order.
	mu sync.Mutex
}

// Open restores the policies and extensions stored in store into e, which
// must be empty. A stored extension that no longer loads fails Open: a
// node that silently dropped, say, its quota extension would fail open.
func Open(ctx context.Context, e *engine.Engine, store kv.Store, opts Options) (*Service, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	s := &Service{engine: e, store: store, log: log, opts: opts}
	var sources []engine.PolicySource
	err := store.Scan(ctx, []byte(prefixPolicy), func(k, v []byte) error {
		sources = append(sources, engine.PolicySource{ID: string(k[len(prefixPolicy):]), Text: string(v)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("authz: load policies: %w", err)
	}
	if err := e.ReplacePolicies(ctx, sources); err != nil {
		return nil, fmt.Errorf("authz: stored policies no longer load: %w", err)
	}
	var exts []storedExtension
	err = store.Scan(ctx, []byte(prefixExtension), func(_, v []byte) error {
		var x storedExtension
		if err := json.Unmarshal(v, &x); err != nil {
			return fmt.Errorf("decode stored extension: %w", err)
		}
		exts = append(exts, x)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("authz: load extensions: %w", err)
	}
	if len(exts) > 0 && opts.NoExtensions {
		return nil, fmt.Errorf("authz: the store holds %d extensions: %w", len(exts), ErrExtensionsDisabled)
	}
	for _, x := range exts {
		if _, err := e.RegisterExtension(ctx, x.Module, x.config()); err != nil {
			return nil, fmt.Errorf("authz: stored extension %q no longer loads: %w", x.Name, err)
		}
	}
	if len(sources)+len(exts) > 0 {
		log.Info("authorization state restored", "policies", len(sources), "extensions", len(exts))
	}
	return s, nil
}

// Engine returns the engine the service decides with.
func (s *Service) Engine() *engine.Engine { return s.engine }

// Check decides one request.
func (s *Service) Check(ctx context.Context, req engine.Request) (engine.Decision, error) {
	return s.engine.Check(ctx, req)
}

// CheckBatch decides several requests.
func (s *Service) CheckBatch(ctx context.Context, reqs []engine.Request) ([]engine.Decision, error) {
	return s.engine.CheckBatch(ctx, reqs)
}

// ApplyPolicies applies changes atomically, in the engine and in the
// store, and returns the resulting policies of the non-delete changes.
func (s *Service) ApplyPolicies(ctx context.Context, changes ...engine.Change) ([]engine.Policy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	before := s.engine.ListPolicies()
	out, err := s.engine.ApplyPolicies(ctx, changes...)
	if err != nil {
		return nil, err
	}
	var b kv.Batch
	for _, ch := range changes {
		if ch.Op == engine.OpDelete {
			b.Delete(policyKey(ch.ID))
		}
	}
	for _, p := range out {
		b.Set(policyKey(p.ID), []byte(p.Text))
	}
	if err := s.store.Apply(context.WithoutCancel(ctx), &b); err != nil {
		s.restorePolicies(before)
		return nil, fmt.Errorf("authz: commit policies: %w", err)
	}
	return out, nil
}

// restorePolicies puts the engine back to a policy set after a failed
// commit. The set was valid a moment ago, so failure here means the engine
// itself is broken; that is logged, as nothing better can be done.
func (s *Service) restorePolicies(ps []engine.Policy) {
	sources := make([]engine.PolicySource, len(ps))
	for i, p := range ps {
		sources[i] = engine.PolicySource{ID: p.ID, Text: p.Text}
	}
	if err := s.engine.ReplacePolicies(context.Background(), sources); err != nil {
		s.log.Error("authz: could not undo a policy change after a failed commit", "err", err)
	}
}

// CreatePolicy adds a policy; id may be empty when text has @id.
func (s *Service) CreatePolicy(ctx context.Context, id, text string) (engine.Policy, error) {
	return s.one(ctx, engine.Change{Op: engine.OpCreate, ID: id, Text: text})
}

// UpdatePolicy replaces a policy's text, if its version is ifVersion (when
// non-zero).
func (s *Service) UpdatePolicy(ctx context.Context, id, text string, ifVersion uint64) (engine.Policy, error) {
	return s.one(ctx, engine.Change{Op: engine.OpUpdate, ID: id, Text: text, IfVersion: ifVersion})
}

// DeletePolicy removes a policy, if its version is ifVersion (when
// non-zero).
func (s *Service) DeletePolicy(ctx context.Context, id string, ifVersion uint64) error {
	_, err := s.ApplyPolicies(ctx, engine.Change{Op: engine.OpDelete, ID: id, IfVersion: ifVersion})
	return err
}

func (s *Service) one(ctx context.Context, ch engine.Change) (engine.Policy, error) {
	out, err := s.ApplyPolicies(ctx, ch)
	if err != nil {
		return engine.Policy{}, err
	}
	return out[0], nil
}

// GetPolicy returns one policy.
func (s *Service) GetPolicy(id string) (engine.Policy, error) { return s.engine.GetPolicy(id) }

// ListPolicies returns up to pageSize policies with ids after the given
// one, in id order, and whether more follow.
func (s *Service) ListPolicies(after string, pageSize int) (page []engine.Policy, more bool, err error) {
	switch {
	case pageSize < 0 || pageSize > MaxPageSize:
		return nil, false, fmt.Errorf("authz: list policies: %w: page size %d outside 0..%d", ErrInvalidArgument, pageSize, MaxPageSize)
	case pageSize == 0:
		pageSize = DefaultPageSize
	}
	all := s.engine.ListPolicies()
	i := sort.Search(len(all), func(i int) bool { return all[i].ID > after })
	all = all[i:]
	if len(all) > pageSize {
		return all[:pageSize], true, nil
	}
	return all, false, nil
}

// ImportPolicies loads every policy of a directory (as LoadPolicyDir
// reads it) into an empty store, so a fresh node can start from a
// shipped policy set. A store that already has policies is left alone:
// the import seeds a node, it never overwrites what operators changed.
func (s *Service) ImportPolicies(ctx context.Context, dir string) (int, error) {
	if len(s.engine.ListPolicies()) > 0 {
		return 0, nil
	}
	staging := engine.New(engine.WithCache(engine.CacheConfig{}))
	defer staging.Close()
	if err := staging.LoadPolicyDir(ctx, dir); err != nil {
		return 0, fmt.Errorf("authz: import %s: %w", dir, err)
	}
	ps := staging.ListPolicies()
	changes := make([]engine.Change, len(ps))
	for i, p := range ps {
		changes[i] = engine.Change{Op: engine.OpCreate, ID: p.ID, Text: p.Text}
	}
	if _, err := s.ApplyPolicies(ctx, changes...); err != nil {
		return 0, fmt.Errorf("authz: import %s: %w", dir, err)
	}
	return len(ps), nil
}

func policyKey(id string) []byte { return []byte(prefixPolicy + id) }

// storedExtension is what the store keeps of a registration: enough to
// register the same module with the same settings at start.
type storedExtension struct {
	Name    string   `json:"name"`
	Module  []byte   `json:"module"`
	Config  []byte   `json:"config,omitempty"`
	Grants  []string `json:"grants,omitempty"`
	OnError string   `json:"on_error,omitempty"`
}

func (x *storedExtension) config() engine.ExtensionConfig {
	return engine.ExtensionConfig{Config: x.Config, Grants: x.Grants, OnError: x.OnError}
}

// RegisterExtension loads a module and keeps it registered across
// restarts.
func (s *Service) RegisterExtension(ctx context.Context, module []byte, cfg engine.ExtensionConfig) (engine.ExtensionInfo, error) {
	if s.opts.NoExtensions {
		return engine.ExtensionInfo{}, fmt.Errorf("authz: register extension: %w", ErrExtensionsDisabled)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	info, err := s.engine.RegisterExtension(ctx, module, cfg)
	if err != nil {
		return engine.ExtensionInfo{}, err
	}
	if err := s.storeExtension(ctx, info.Name, module, cfg); err != nil {
		if uerr := s.engine.UnregisterExtension(context.Background(), info.Name); uerr != nil {
			s.log.Error("authz: could not undo a registration after a failed commit", "extension", info.Name, "err", uerr)
		}
		return engine.ExtensionInfo{}, err
	}
	return info, nil
}

// UpdateExtension replaces the named extension with a new module.
func (s *Service) UpdateExtension(ctx context.Context, name string, module []byte, cfg engine.ExtensionConfig) (engine.ExtensionInfo, error) {
	if s.opts.NoExtensions {
		return engine.ExtensionInfo{}, fmt.Errorf("authz: update extension: %w", ErrExtensionsDisabled)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.loadExtension(ctx, name)
	if err != nil {
		return engine.ExtensionInfo{}, err
	}
	info, err := s.engine.ReplaceExtension(ctx, name, module, cfg)
	if err != nil {
		return engine.ExtensionInfo{}, err
	}
	if err := s.storeExtension(ctx, name, module, cfg); err != nil {
		if _, rerr := s.engine.ReplaceExtension(context.Background(), name, old.Module, old.config()); rerr != nil {
			s.log.Error("authz: could not undo a replacement after a failed commit", "extension", name, "err", rerr)
		}
		return engine.ExtensionInfo{}, err
	}
	return info, nil
}

// UnregisterExtension removes an extension for good.
func (s *Service) UnregisterExtension(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.loadExtension(ctx, name); err != nil {
		return err
	}
	var b kv.Batch
	b.Delete(extensionKey(name))
	if err := s.store.Apply(context.WithoutCancel(ctx), &b); err != nil {
		return fmt.Errorf("authz: commit unregistration: %w", err)
	}
	return s.engine.UnregisterExtension(ctx, name)
}

// ListExtensions lists the registered extensions by priority.
func (s *Service) ListExtensions() []engine.ExtensionInfo { return s.engine.ListExtensions() }

func (s *Service) storeExtension(ctx context.Context, name string, module []byte, cfg engine.ExtensionConfig) error {
	rec, err := json.Marshal(storedExtension{Name: name, Module: module, Config: cfg.Config, Grants: cfg.Grants, OnError: cfg.OnError})
	if err != nil {
		return fmt.Errorf("authz: encode extension: %w", err)
	}
	var b kv.Batch
	b.Set(extensionKey(name), rec)
	if err := s.store.Apply(context.WithoutCancel(ctx), &b); err != nil {
		return fmt.Errorf("authz: commit extension: %w", err)
	}
	return nil
}

func (s *Service) loadExtension(ctx context.Context, name string) (storedExtension, error) {
	var x storedExtension
	v, err := s.store.Get(ctx, extensionKey(name))
	if errors.Is(err, kv.ErrNotFound) {
		return x, fmt.Errorf("authz: extension %q: %w", name, engine.ErrExtensionNotFound)
	}
	if err != nil {
		return x, fmt.Errorf("authz: load extension %q: %w", name, err)
	}
	if err := json.Unmarshal(v, &x); err != nil {
		return x, fmt.Errorf("authz: decode stored extension %q: %w", name, err)
	}
	return x, nil
}

func extensionKey(name string) []byte { return []byte(prefixExtension + name) }
