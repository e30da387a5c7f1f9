package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/creto-systems/creto/abi"
)

// Extension errors, matchable with errors.Is. Registration fails with one
// of them and registers nothing.
var (
	// ErrExtensionInvalid: the bytes are not a usable module (not Wasm, no
	// ABI marker, missing exports, bad manifest, failed creto_init).
	ErrExtensionInvalid = errors.New("invalid extension")
	// ErrABIVersion: the module does not declare ABI v1.
	ErrABIVersion = errors.New("unsupported extension ABI version")
	// ErrImportNotGranted: the module imports a capability the operator did
	// not grant or its manifest did not request.
	ErrImportNotGranted = errors.New("extension import not granted")
	// ErrUnknownImport: the module imports a function no host provides.
	ErrUnknownImport = errors.New("unknown extension import")
	// ErrExtensionExists: an extension with that name is registered.
	ErrExtensionExists = errors.New("extension already registered")
	// ErrExtensionNotFound: no extension has that name.
	ErrExtensionNotFound = errors.New("extension not found")
)

// MaxModuleSize bounds the modules RegisterExtension accepts.
const MaxModuleSize = 64 << 20

// ExtensionConfig is what the operator decides when registering a module.
type ExtensionConfig struct {
	// Config is handed to the module's creto_init (usually JSON).
	Config []byte
	// Grants lists the capabilities the operator allows; the module's
	// manifest must request no more.
	Grants []string
	// OnError, when "deny", forces failures to deny whatever the manifest
	// says; empty keeps the manifest's choice.
	OnError string
}

// ExtensionInfo describes a registered extension.
type ExtensionInfo struct {
	Name         string
	Version      string
	Priority     int
	Capabilities []string
	OnError      string
	// SHA256 identifies the module bytes as registered.
	SHA256 string
	// Imports lists "module.function" for every host function it imports.
	Imports      []string
	RegisteredAt time.Time
	Stats        ExtensionStats
}

// ExtensionStats counts an extension's calls.
type ExtensionStats struct {
	Calls, Skipped, Decisions, Failures uint64
}

// FailureClass says why an extension call failed (SPEC.md §7).
type FailureClass string

// The failure classes.
const (
	FailTrap        FailureClass = "trap"
	FailFuel        FailureClass = "fuel"
	FailMemory      FailureClass = "memory"
	FailABI         FailureClass = "abi"
	FailGuest       FailureClass = "guest"
	FailUnavailable FailureClass = "unavailable"
)

// ExtensionError is a classified failure of one extension call. With
// on_error "skip" it is logged and the check continues; with "deny" it
// becomes the check's Deny.
type ExtensionError struct {
	Extension string
	Class     FailureClass
	Detail    string
}

func (e *ExtensionError) Error() string {
	return fmt.Sprintf("extension %s failed: %s: %s", e.Extension, e.Class, e.Detail)
}

// chain is the immutable, priority-ordered list of extensions a check
// runs; registration swaps in a new one.
type chain []*extension

func (c chain) with(x *extension) chain {
	out := append(slices.Clone(c), x)
	slices.SortFunc(out, func(a, b *extension) int {
		return cmp.Or(cmp.Compare(a.priority, b.priority), cmp.Compare(a.name, b.name))
	})
	return out
}

func (c chain) without(name string) (chain, *extension) {
	i := slices.IndexFunc(c, func(x *extension) bool { return x.name == name })
	if i < 0 {
		return c, nil
	}
	return slices.Delete(slices.Clone(c), i, i+1), c[i]
}

// RegisterExtension compiles, validates and starts a Wasm extension and
// adds it to every later check. On any error nothing is registered.
func (e *Engine) RegisterExtension(ctx context.Context, module []byte, cfg ExtensionConfig) (ExtensionInfo, error) {
	x, err := e.loadExtension(ctx, module, cfg)
	if err != nil {
		return ExtensionInfo{}, err
	}
	e.extMu.Lock()
	defer e.extMu.Unlock()
	cur := e.extensions()
	if _, old := cur.without(x.name); old != nil {
		x.close()
		return ExtensionInfo{}, fmt.Errorf("%w: %s", ErrExtensionExists, x.name)
	}
	e.chain.Store(ptr(cur.with(x)))
	return x.info(), nil
}

// ReplaceExtension swaps the module of a registered extension. Checks in
// flight finish on the old module; later checks use the new one; no check
// sees neither. On error the old module stays.
func (e *Engine) ReplaceExtension(ctx context.Context, name string, module []byte, cfg ExtensionConfig) (ExtensionInfo, error) {
	x, err := e.loadExtension(ctx, module, cfg)
	if err != nil {
		return ExtensionInfo{}, err
	}
	if x.name != name {
		x.close()
		return ExtensionInfo{}, fmt.Errorf("%w: the module's manifest names %q, not %q", ErrExtensionInvalid, x.name, name)
	}
	e.extMu.Lock()
	rest, old := e.extensions().without(name)
	if old == nil {
		e.extMu.Unlock()
		x.close()
		return ExtensionInfo{}, fmt.Errorf("%w: %s", ErrExtensionNotFound, name)
	}
	e.chain.Store(ptr(rest.with(x)))
	e.extMu.Unlock()
	old.retire()
	return x.info(), nil
}

// UnregisterExtension removes an extension; checks in flight finish with it.
func (e *Engine) UnregisterExtension(ctx context.Context, name string) error {
	e.extMu.Lock()
	rest, old := e.extensions().without(name)
	if old == nil {
		e.extMu.Unlock()
		return fmt.Errorf("%w: %s", ErrExtensionNotFound, name)
	}
	e.chain.Store(ptr(rest))
	e.extMu.Unlock()
	old.retire()
	return nil
}

// ListExtensions returns the registered extensions in the order checks run
// them.
func (e *Engine) ListExtensions() []ExtensionInfo {
	c := e.extensions()
	out := make([]ExtensionInfo, len(c))
	for i, x := range c {
		out[i] = x.info()
	}
	return out
}

func (e *Engine) extensions() chain {
	if c := e.chain.Load(); c != nil {
		return *c
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// runExtensions applies the extension chain to a request Cedar allowed (or
// sent to oversight): the first extension with a decision replaces d.
// now is the check's start on the monotonic clock: reading the clock costs
// tens of nanoseconds here, so a check reads it once.
func (e *Engine) runExtensions(ctx context.Context, req *Request, d Decision, now int64) Decision {
	for _, x := range e.extensions() {
		if !x.applies(req) {
			continue
		}
		xd, decided, err := x.evaluate(ctx, req, d.Kind, now)
		if err != nil {
			var xe *ExtensionError
			errors.As(err, &xe)
			if o := e.cfg.observer; o != nil {
				o.ExtensionFailed(ctx, *req, *xe)
			}
			e.cfg.logger.Warn("extension failed", "extension", x.name, "class", xe.Class, "detail", xe.Detail, "on_error", x.onError, "trace_id", req.TraceID)
			if x.onError == "deny" {
				return Decision{Kind: Deny, PolicyID: "ext:" + x.name, Reason: "extension " + x.name + " failed: " + string(xe.Class),
					MatchedPolicies: d.MatchedPolicies, Errors: d.Errors}
			}
			continue
		}
		if decided {
			xd.Errors = d.Errors
			if xd.MatchedPolicies == nil {
				xd.MatchedPolicies = d.MatchedPolicies
			}
			return xd
		}
	}
	return d
}

// decisionFrom maps what a guest returned onto an engine decision.
func decisionFrom(ext string, g *abi.Decision) Decision {
	id := g.ID
	if id == "" {
		id = "ext:" + ext
	}
	switch g.Kind {
	case abi.KindAllow:
		return Decision{Kind: Allow}
	case abi.KindDeny:
		reason := g.Text
		if reason == "" {
			reason = "denied by extension " + ext
		}
		return Decision{Kind: Deny, PolicyID: id, Reason: reason}
	case abi.KindRequiresOversight:
		timeout := time.Duration(g.A)
		if timeout <= 0 {
			timeout = DefaultOversightTimeout
		}
		return Decision{Kind: RequiresOversight, PolicyID: id,
			Oversight: Oversight{Requirement: g.Text, Approvers: g.Approvers, Timeout: timeout}}
	case abi.KindQuotaExceeded:
		q := Quota{ID: g.ID, Limit: g.A, Used: g.B}
		if g.C > 0 {
			q.ResetAt = time.Unix(0, g.C).UTC()
		}
		return Decision{Kind: QuotaExceeded, PolicyID: id, Quota: q}
	default: // abi.KindRateLimited; DecodeDecision refused anything else
		return Decision{Kind: RateLimited, PolicyID: id,
			RateLimit: RateLimit{RetryAfter: time.Duration(g.A), Remaining: int32(min(max(g.B, 0), 1<<31-1))}}
	}
}

// breaker disables an extension that keeps failing (SPEC.md §7): after
// breakerFailures failures within breakerWindow its calls fail as
// unavailable for breakerCooldown.
type breaker struct {
	windowStart atomic.Int64
	failures    atomic.Int64
	openUntil   atomic.Int64
}

const (
	breakerFailures = 5
	breakerWindow   = time.Minute
	breakerCooldown = 30 * time.Second
)

func (b *breaker) open(now int64) bool { return now < b.openUntil.Load() }

func (b *breaker) fail(now int64) {
	if start := b.windowStart.Load(); now-start > int64(breakerWindow) {
		b.windowStart.Store(now)
		b.failures.Store(0)
	}
	if b.failures.Add(1) >= breakerFailures {
		b.openUntil.Store(now + int64(breakerCooldown))
		b.failures.Store(0)
	}
}
