package feed

import (
	"context"
	"strconv"
	"time"

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
func Engine(l *audit.Logger) engine.Observer { return engineObserver{l} }

type engineObserver struct{ l *audit.Logger }

// Decided builds the record on the checking goroutine, so it keeps no
// slice of the request or decision past the call, and hands it to the
// Logger.
func (o engineObserver) Decided(ctx context.Context, req engine.Request, d engine.Decision, err error) {
	r := requestRecord(&req)
	r.Outcome = audit.Denied
	r.Context["decision"] = d.Kind.String()
	switch {
	case err != nil:
		r.Outcome, r.Why = audit.Failure, text(err.Error())
	case d.Kind == engine.Allow:
		r.Outcome = audit.Success
	default:
		r.Why = text(d.Reason)
	}
	if d.PolicyID != "" {
		r.PolicyID = id(d.PolicyID, audit.MaxIDLen)
	}
	if d.Cached {
		r.Context["cached"] = "true"
	}
	switch d.Kind {
	case engine.QuotaExceeded:
		r.Context["quota_id"] = clip(d.Quota.ID, audit.MaxContextValueLen)
	case engine.RequiresOversight:
		r.Context["oversight"] = clip(d.Oversight.Requirement, audit.MaxContextValueLen)
	}
	_ = o.l.Emit(ctx, audit.Event{Class: audit.Ordinary, Record: r})
}

// ExtensionFailed audits a failed extension call: source "ext:<name>",
// what "authz.extension_failed", outcome failure, the failure class in
// Context["class"] and its detail as Why.
func (o engineObserver) ExtensionFailed(ctx context.Context, req engine.Request, err engine.ExtensionError) {
	r := requestRecord(&req)
	r.Source = id("ext:"+err.Extension, audit.MaxSourceLen)
	r.Outcome = audit.Failure
	r.Context["action"] = r.What
	r.What = "authz.extension_failed"
	r.Context["class"] = string(err.Class)
	r.Why = text(err.Detail)
	_ = o.l.Emit(ctx, audit.Event{Class: audit.Ordinary, Record: r})
}

// requestRecord fills what every record about a request holds.
func requestRecord(req *engine.Request) audit.Record {
	r := audit.Record{
		Timestamp: time.Now(),
		Source:    "authz",
		Who:       id(req.Principal.ID, audit.MaxIDLen),
		What:      action(req.Action),
		Resource:  ref(req.Resource),
		Context:   map[string]string{"principal_type": clip(req.Principal.Type, audit.MaxContextValueLen)},
	}
	if req.TraceID != "" {
		r.TraceID = id(req.TraceID, audit.MaxIDLen)
	}
	if n := min(len(req.Delegation), audit.MaxChainLinks); n > 0 {
		r.DelegationChain = make([]string, n)
		for i, l := range req.Delegation[:n] {
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
