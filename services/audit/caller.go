package audit

import "context"

type callerKey struct{}

// WithCaller returns ctx carrying the authenticated identity acting in
// it. The gRPC layer attaches it once per request, so that what a service
// reports through an event hook (nhi.Config.Events, say) is attributed to
// whoever asked for it, not to the service.
func WithCaller(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, callerKey{}, id)
}

// CallerFrom returns the identity WithCaller attached, if any.
func CallerFrom(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(callerKey{}).(string)
	return id, ok && id != ""
}
