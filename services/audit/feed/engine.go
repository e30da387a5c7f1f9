package feed

import (
	"context"
	"slices"
	"strconv"

	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/services/audit"
)

// Engine returns the engine.Observer that audits every decision and
// extension failure through l, as ordinary events (seed §13.1: under
// pressure the oldest are dropped and counted). Install it with
// engine.WithObserver.
//
// A decision becomes a record from source "authz": Who is the
// principal's id, What the action's id, Resource and the delegation
// links in Cedar form, Outcome success for an allow, denied for every
// other decision, failure for a request the engine refused as invalid;
// PolicyID, TraceID and Why (a deny's reason) as the engine gave them.
// Context holds "decision" (allow, deny, requires_oversight,
// quota_exceeded, rate_limited), "principal_type", and "cached",
// "quota_id" or "oversight" where they apply.
//
// On the checking goroutine the observer only captures what it needs —
// strings, which are immutable, and a copy of the delegation chain — and
// emits it; the record is built on the Logger's goroutine (Event.Build).
func Engine(l *audit.Logger) engine.Observer { return engineObserver{l} }

type engineObserver struct{ l *audit.Logger }

// NotAllowed passes on to o what a node audits by default: every decision
// that is not a plain allow (denials, oversight, quota and rate limits),
// every request refused as invalid, and every extension failure. A node
// deciding a hundred thousand checks a second cannot write a hundred
// thousand records a second, and the allows are what a policy already
// says; the rest is what an auditor looks for.
func NotAllowed(o engine.Observer) engine.Observer { return notAllowed{o} }

type notAllowed struct{ engine.Observer }

// Decided skips plain allows.
func (f notAllowed) Decided(ctx context.Context, req engine.Request, d engine.Decision, err error) {
	if err == nil && d.Kind == engine.Allow {
		return
	}
	f.Observer.Decided(ctx, req, d, err)
}

// seen is what a record about a request needs, captured on the checking
// goroutine.
type seen struct {
	principal  engine.Principal
	action     engine.EntityRef
	resource   engine.EntityRef
	delegation []engine.EntityRef
	trace      string
}

func capture(req *engine.Request) seen {
	return seen{
		principal:  engine.Principal{Type: req.Principal.Type, ID: req.Principal.ID},
		action:     req.Action,
		resource:   req.Resource,
		delegation: slices.Clone(req.Delegation),
		trace:      req.TraceID,
	}
}

// Decided captures the request and decision and emits them for the
// Logger to turn into a record.
func (o engineObserver) Decided(ctx context.Context, req engine.Request, d engine.Decision, err error) {
	s := capture(&req)
	kind, policy, reason, cached := d.Kind, d.PolicyID, d.Reason, d.Cached
	quota, oversight := d.Quota.ID, d.Oversight.Requirement
	failed := ""
	if err != nil {
		failed = err.Error()
	}
	_ = o.l.Emit(ctx, audit.Event{Class: audit.Ordinary, Build: func() audit.Record {
		r := s.record()
		r.Context["decision"] = kind.String()
		switch {
		case failed != "":
			r.Outcome, r.Why = audit.Failure, text(failed)
		case kind == engine.Allow:
			r.Outcome = audit.Success
		default:
			r.Outcome, r.Why = audit.Denied, text(reason)
		}
		if policy != "" {
			r.PolicyID = id(policy, audit.MaxIDLen)
		}
		if cached {
			r.Context["cached"] = "true"
		}
		switch kind {
		case engine.QuotaExceeded:
			r.Context["quota_id"] = clip(quota, audit.MaxContextValueLen)
		case engine.RequiresOversight:
			r.Context["oversight"] = clip(oversight, audit.MaxContextValueLen)
		}
		return r
	}})
}

// ExtensionFailed audits a failed extension call: source "ext:<name>",
// what "authz.extension_failed", outcome failure, the failure class in
// Context["class"], the action in Context["action"], and the failure's
// detail as Why.
func (o engineObserver) ExtensionFailed(ctx context.Context, req engine.Request, err engine.ExtensionError) {
	s := capture(&req)
	_ = o.l.Emit(ctx, audit.Event{Class: audit.Ordinary, Build: func() audit.Record {
		r := s.record()
		r.Source = id("ext:"+err.Extension, audit.MaxSourceLen)
		r.Outcome = audit.Failure
		r.Context["action"] = r.What
		r.What = "authz.extension_failed"
		r.Context["class"] = string(err.Class)
		r.Why = text(err.Detail)
		return r
	}})
}

// record fills what every record about a request holds.
func (s *seen) record() audit.Record {
	r := audit.Record{
		Source:   "authz",
		Who:      id(s.principal.ID, audit.MaxIDLen),
		What:     action(s.action),
		Resource: ref(s.resource),
		Context:  map[string]string{"principal_type": clip(s.principal.Type, audit.MaxContextValueLen)},
	}
	if s.trace != "" {
		r.TraceID = id(s.trace, audit.MaxIDLen)
	}
	if n := min(len(s.delegation), audit.MaxChainLinks); n > 0 {
		r.DelegationChain = make([]string, n)
		for i, l := range s.delegation[:n] {
			r.DelegationChain[i] = clip(ref(l), audit.MaxIDLen)
		}
	}
	return r
}

// action is the action's id, or its Cedar form when its type is not the
// default "Action" (a namespaced action, say).
func action(a engine.EntityRef) string {
	if a.Type == "" || a.Type == "Action" {
		return id(a.ID, audit.MaxIDLen)
	}
	return clip(a.Type+"::"+strconv.Quote(a.ID), audit.MaxIDLen)
}
