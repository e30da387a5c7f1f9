package engine

import "context"

// Evaluating is what a host function may know of the request the calling
// extension is evaluating: whose it is. Host functions that act on the
// request's behalf (creto:audit/v1 attributes what a guest reports to the
// principal) read it with EvaluatingFrom instead of trusting the guest to
// say.
type Evaluating struct {
	// Extension is the calling extension's name.
	Extension string
	// Principal is the request's principal, without its attributes.
	Principal EntityRef
	// Delegation is the request's delegation chain, origin first. It
	// aliases the request: read it during the call, never keep or modify
	// it.
	Delegation []EntityRef
	// TraceID is the request's trace id.
	TraceID string
}

// EvaluatingFrom returns the request being evaluated, from the context a
// host function receives. ok is false outside an evaluation: while an
// instance starts up or runs creto_init, there is no request.
func EvaluatingFrom(ctx context.Context) (Evaluating, bool) {
	c, ok := ctx.Value(evaluatingKey{}).(*callContext)
	if !ok {
		return Evaluating{}, false
	}
	return c.ev, true
}

type evaluatingKey struct{}

// callContext is the context of one guest call: the checking caller's,
// answering EvaluatingFrom with the request in flight. Each instance owns
// one and reuses it for every call, so the hook costs a call no
// allocation (a context.WithValue per call would cost one); the price is
// that the context is only valid during the call, which is all a host
// function may use it for. Only extensions granted a host module of the
// embedder's are called with it: the engine's own modules find the
// instance by module.
type callContext struct {
	context.Context
	ev Evaluating
}

// Value answers EvaluatingFrom and defers every other key to the caller's
// context.
func (c *callContext) Value(key any) any {
	if key == (evaluatingKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// begin points the context at ctx and the request for one call.
func (c *callContext) begin(ctx context.Context, ext string, req *Request) {
	c.Context = ctx
	c.ev = Evaluating{Extension: ext, Principal: EntityRef{Type: req.Principal.Type, ID: req.Principal.ID},
		Delegation: req.Delegation, TraceID: req.TraceID}
}

// end drops the call's references, so a pooled instance keeps no request
// alive.
func (c *callContext) end() { *c = callContext{} }
