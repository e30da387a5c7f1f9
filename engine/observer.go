package engine

import "context"

// Observer is told what the engine decided, for an audit trail (the last
// step of the Check path in ARCHITECTURE.md). The engine calls it on the
// checking goroutine, after the decision is made and before Check
// returns, so it must not block or do I/O: copy what it needs into a
// queue and return (the audit service's adapter hands each call to its
// asynchronous Logger). The request and decision are values, but the
// slices in them are shared with the caller and the decision cache: read
// them during the call, never modify them or keep them after it.
//
// Without an Observer a check pays one nil comparison.
type Observer interface {
	// Decided is called once per Check (and per request of CheckBatch)
	// with the decision returned; err is the error returned with it (an
	// invalid request, a closed engine), nil for a normal decision.
	Decided(ctx context.Context, req Request, d Decision, err error)
	// ExtensionFailed is called when an extension call fails, before the
	// extension's on_error decides whether the check goes on.
	ExtensionFailed(ctx context.Context, req Request, err ExtensionError)
}

// WithObserver sets the engine's Observer.
func WithObserver(o Observer) Option { return func(c *config) { c.observer = o } }
