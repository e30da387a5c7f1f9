// Package engine evaluates Cedar policies for agent requests: an immutable,
// indexed policy snapshot, an allow-only decision cache, and the mapping of
// Cedar's Allow/Deny onto Creto's five decisions.
//
// An Engine is safe for concurrent use. Checks never take a lock; policy
// writes build a new snapshot off the hot path and swap it in atomically.
package engine

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
)

// Engine answers authorization checks against a policy store.
type Engine struct {
	cfg      config
	snap     atomic.Pointer[snapshot]
	writeMu  sync.Mutex // serialises writers; readers never take it
	cache    *decisionCache
	closed   atomic.Bool
	stopOnce sync.Once
	stop     chan struct{}

	chain     atomic.Pointer[chain] // extensions, by priority
	extMu     sync.Mutex            // serialises extension changes
	wasmCache wazero.CompilationCache
}

type config struct {
	entities         EntityProvider
	cache            CacheConfig
	indexed          bool
	limits           Limits
	logger           *slog.Logger
	validateRequests bool
	hostModules      []HostModule
	// extensionCacheDir keeps compiled extensions across restarts.
	extensionCacheDir string
	observer          Observer
}

// Option configures an Engine.
type Option func(*config)

// WithEntities sets where entities come from; the default is an empty
// in-memory store.
func WithEntities(p EntityProvider) Option { return func(c *config) { c.entities = p } }

// WithCache configures the decision cache; the default is DefaultCacheConfig.
func WithCache(cc CacheConfig) Option { return func(c *config) { c.cache = cc } }

// WithoutIndex makes every check run Cedar over every policy, exactly as
// plain cedar.Authorize does. It exists for differential testing and as a
// baseline; it is much slower on large policy sets.
func WithoutIndex() Option { return func(c *config) { c.indexed = false } }

// WithLimits bounds request sizes; the default is DefaultLimits.
func WithLimits(l Limits) Option { return func(c *config) { c.limits = l } }

// WithLogger sets the logger; the default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithRequestValidation checks every uncached request against the loaded
// schema (entity types, action applicability, context shape) and rejects
// those that do not conform.
func WithRequestValidation() Option { return func(c *config) { c.validateRequests = true } }

// WithExtensionCacheDir keeps compiled extensions in dir, so a restart
// registers them without compiling again.
func WithExtensionCacheDir(dir string) Option { return func(c *config) { c.extensionCacheDir = dir } }

// New returns an engine with no policies.
func New(opts ...Option) *Engine {
	cfg := config{cache: DefaultCacheConfig, indexed: true, limits: DefaultLimits}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.entities == nil {
		cfg.entities = NewEntities()
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	e := &Engine{cfg: cfg, stop: make(chan struct{})}
	if cfg.cache.Enabled && cfg.cache.MaxEntries > 0 && cfg.cache.TTL > 0 {
		e.cache = newDecisionCache(cfg.cache)
	}
	e.snap.Store(newSnapshot(0, 0, map[string]*compiled{}, nil, cfg.indexed, nil))
	e.wasmCache = wazero.NewCompilationCache()
	if cfg.extensionCacheDir != "" {
		if c, err := wazero.NewCompilationCacheWithDir(cfg.extensionCacheDir); err == nil {
			e.wasmCache = c
		} else {
			cfg.logger.Warn("extension compilation cache unavailable; compiling in memory", "dir", cfg.extensionCacheDir, "error", err)
		}
	}
	return e
}

// Close stops background work (directory watches). Checks after Close fail
// with ErrClosed.
func (e *Engine) Close() error {
	e.stopOnce.Do(func() {
		e.closed.Store(true)
		close(e.stop)
		e.extMu.Lock()
		for _, x := range e.extensions() {
			x.retire()
		}
		e.chain.Store(nil)
		e.extMu.Unlock()
		e.wasmCache.Close(context.Background())
	})
	return nil
}

// monoBase anchors a monotonic clock: time.Since on a monotonic time reads
// only the runtime's nanotime, cheaper than time.Now.
var monoBase = time.Now()

func mono() int64 { return int64(time.Since(monoBase)) }

// Check decides one request. The error is non-nil only when the request is
// invalid or the engine is closed; the decision is then a Deny, so a caller
// that ignores the error still fails secure.
func (e *Engine) Check(ctx context.Context, req Request) (Decision, error) {
	return e.check(ctx, &req)
}

// check decides; when an observer is set, a deferred call tells it what
// was returned (an open-coded defer: without an observer it costs a
// flag test, and the decision is not copied through another frame).
func (e *Engine) check(ctx context.Context, req *Request) (d Decision, err error) {
	if o := e.cfg.observer; o != nil {
		defer func() { o.Decided(ctx, *req, d, err) }()
	}
	start := mono()
	if e.closed.Load() {
		return denyError(ErrClosed), ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return denyError(err), err
	}
	if err := req.validate(e.cfg.limits); err != nil {
		return denyError(err), err
	}
	snap := e.snap.Load()
	view := e.cfg.entities.View()

	var keyBuf [256]byte
	var key []byte
	var hash uint64
	if e.cache != nil {
		key = appendKey(keyBuf[:0], req)
		d, h, ok := e.cache.get(key, snap.epoch, view.Revision(), start)
		if ok {
			d.Cached = true
			// The cache holds Cedar's answer; extensions (quotas, rate
			// limits) are stateful and run on every check.
			if e.chain.Load() != nil {
				d = e.runExtensions(ctx, req, d, start)
			}
			d.EvaluationTime = time.Duration(mono() - start)
			return d, nil
		}
		hash = h
	}

	dec, err := req.validateJSON(e.cfg.limits)
	if err != nil {
		return denyError(err), err
	}
	if e.cfg.validateRequests && snap.schema != nil {
		if err := snap.schema.checkRequest(req); err != nil {
			return denyError(err), err
		}
	}
	m, err := snap.evaluate(view, req, &dec)
	if err != nil {
		return denyError(err), err
	}
	d = m.decision()
	if e.cache != nil && d.Kind == Allow {
		e.cache.put(hash, key, snap.epoch, view.Revision(), start, d)
	}
	if d.Kind != Deny && e.chain.Load() != nil {
		d = e.runExtensions(ctx, req, d, start)
	}
	d.EvaluationTime = time.Duration(mono() - start)
	return d, nil
}

func denyError(err error) Decision {
	return Decision{Kind: Deny, Reason: err.Error()}
}

// CheckBatch decides many requests, spread over all cores. Decisions come
// back in request order. Invalid requests get a Deny and are reported
// together in a *BatchError; the rest are evaluated normally. A cancelled
// context stops the batch and denies what was not yet evaluated.
func (e *Engine) CheckBatch(ctx context.Context, reqs []Request) ([]Decision, error) {
	out := make([]Decision, len(reqs))
	errs := make([]error, len(reqs))
	workers := min(runtime.GOMAXPROCS(0), len(reqs))
	// Small batches are cheaper done inline than handed to goroutines.
	const perWorker = 16
	workers = min(workers, (len(reqs)+perWorker-1)/perWorker)
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(perWorker)) - perWorker
			if i >= len(reqs) {
				return
			}
			for j := i; j < min(i+perWorker, len(reqs)); j++ {
				out[j], errs[j] = e.check(ctx, &reqs[j])
			}
		}
	}
	if workers <= 1 {
		work()
	} else {
		var wg sync.WaitGroup
		for range workers {
			wg.Go(work)
		}
		wg.Wait()
	}
	if err := ctx.Err(); err != nil {
		return out, err
	}
	var be *BatchError
	for i, err := range errs {
		if err != nil {
			if be == nil {
				be = &BatchError{Items: map[int]error{}}
			}
			be.Items[i] = err
		}
	}
	if be != nil {
		return out, be
	}
	return out, nil
}

// Stats reports the engine's counters.
type Stats struct {
	Policies int
	Epoch    uint64
	Cache    CacheStats
}

// Stats returns a snapshot of the engine's counters.
func (e *Engine) Stats() Stats {
	s := e.snap.Load()
	st := Stats{Policies: len(s.policies), Epoch: s.epoch}
	if e.cache != nil {
		st.Cache = e.cache.stats()
	}
	return st
}
