package feed

import (
	"context"

	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/services/audit"
	"github.com/creto-systems/creto/services/nhi"
)

// Reported is what an extension reports to the audit log through
// creto:audit/v1: the event and its outcome, in its own words.
type Reported struct {
	What     string
	Resource string
	Why      string
	Outcome  audit.Outcome
	// Context holds the extension's facts; the host's own entries win.
	Context map[string]string
}

// Extension returns the record of an event extension ext reports while
// the engine runs it with ctx. The extension says what happened; the host
// says who and where, which the extension cannot forge: Source is
// "ext:<name>", and while it evaluates a request Who, the delegation
// chain and the trace are the request's (as in a decision's record, with
// Context["principal_type"]). Outside an evaluation — in creto_init — the
// extension acts as itself, Who "extension:<name>". Timestamp is left for
// the Logger to set.
func Extension(ctx context.Context, ext string, rep Reported) audit.Record {
	var r audit.Record
	if ev, ok := engine.EvaluatingFrom(ctx); ok {
		s := seen{principal: engine.Principal{Type: ev.Principal.Type, ID: ev.Principal.ID}, delegation: ev.Delegation, trace: ev.TraceID}
		r = s.record()
	} else {
		r = audit.Record{Who: id(nhi.ExtensionIDPrefix+ext, audit.MaxIDLen), Context: map[string]string{}}
	}
	r.Source = id("ext:"+ext, audit.MaxSourceLen)
	r.What, r.Resource, r.Why, r.Outcome = rep.What, rep.Resource, rep.Why, rep.Outcome
	for k, v := range rep.Context {
		if _, host := r.Context[k]; !host {
			r.Context[k] = v
		}
	}
	return r
}
