package node

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"strings"

	cedar "github.com/cedar-policy/cedar-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/internal/caller"
	"github.com/creto-systems/creto/internal/pki"
)

//go:embed metapolicy.cedar
var defaultMetaPolicies string

// Method classes, the Cedar action groups of the meta-policies.
const (
	classData  = "data"
	classAdmin = "admin"
)

// TokenResolver turns an NHI bearer token into the agent it identifies.
type TokenResolver func(ctx context.Context, token string) (agentID string, err error)

// Denial is an administrative refusal, reported to the node's audit sink.
type Denial struct {
	Caller caller.Identity
	Method string
	Reason string
}

// access authenticates every call and authorizes it against the node's
// meta-policies, evaluated by an engine of its own.
type access struct {
	meta      *engine.Engine
	classes   map[string]string // full method → class; absent means admin
	resolve   TokenResolver
	plaintext bool
	log       *slog.Logger
	denied    func(context.Context, Denial)
}

// metaPolicies reads the meta-policies from dir, or the built-in ones when
// dir is empty.
func metaPolicies(dir string) ([]engine.PolicySource, error) {
	if dir == "" {
		return engine.ParseFile("metapolicy.cedar", []byte(defaultMetaPolicies))
	}
	return engine.ReadPolicyPath(dir)
}

// newAccess builds the meta-policy engine and the method classes.
func newAccess(ctx context.Context, policies []engine.PolicySource, classes map[string]string, resolve TokenResolver, plaintext bool, log *slog.Logger, denied func(context.Context, Denial)) (*access, error) {
	ents := engine.NewEntities()
	m := cedar.EntityMap{}
	group := func(id string) cedar.EntityUID { return cedar.NewEntityUID("Action", cedar.String(id)) }
	for _, g := range []string{classData, classAdmin} {
		m[group(g)] = cedar.Entity{UID: group(g)}
	}
	for method, class := range classes {
		uid := group(method)
		m[uid] = cedar.Entity{UID: uid, Parents: cedar.NewEntityUIDSet(group(class))}
	}
	ents.Replace(m)
	meta := engine.New(engine.WithEntities(ents), engine.WithLogger(log))
	if err := meta.ReplacePolicies(ctx, policies); err != nil {
		meta.Close()
		return nil, fmt.Errorf("meta-policies: %w", err)
	}
	return &access{meta: meta, classes: classes, resolve: resolve, plaintext: plaintext, log: log, denied: denied}, nil
}

// exempt methods need no caller: load balancers and probes ask for health
// without credentials.
func exempt(method string) bool {
	return strings.HasPrefix(method, "/"+grpc_health_v1.Health_ServiceDesc.ServiceName+"/")
}

func (a *access) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := a.admit(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (a *access) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := a.admit(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, &wrappedStream{ServerStream: ss, ctx: ctx})
}

type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrappedStream) Context() context.Context { return w.ctx }

// admit identifies the caller and asks the meta-policies whether it may
// call method. It returns the context carrying the caller.
func (a *access) admit(ctx context.Context, method string) (context.Context, error) {
	if exempt(method) {
		return ctx, nil
	}
	who, err := a.authenticate(ctx)
	if err != nil {
		return ctx, err
	}
	service, _, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	d, err := a.meta.Check(ctx, engine.Request{
		Principal: engine.Principal{Type: who.Kind.String(), ID: who.ID},
		Action:    engine.EntityRef{Type: "Action", ID: method},
		Resource:  engine.EntityRef{Type: "Service", ID: service},
	})
	if err == nil && d.Allowed() {
		return caller.With(ctx, who), nil
	}
	reason := d.Reason
	if err != nil {
		reason = err.Error()
	}
	a.log.WarnContext(ctx, "call denied by meta-policy", "caller", who.String(), "method", method, "reason", reason)
	if a.denied != nil {
		a.denied(ctx, Denial{Caller: who, Method: method, Reason: reason})
	}
	return ctx, status.Errorf(codes.PermissionDenied, "%s may not call %s", who, method)
}

// authenticate identifies the caller: a verified client certificate makes
// an operator (or a node, when it is a node certificate), a bearer token
// an agent. A certificate wins: a trusted workload that forwards an
// agent's token is still itself.
func (a *access) authenticate(ctx context.Context) (caller.Identity, error) {
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
			leaf := ti.State.VerifiedChains[0][0]
			if id, isNode := pki.NodeName(leaf); isNode {
				return caller.Identity{Kind: caller.Node, ID: id}, nil
			}
			return caller.Identity{Kind: caller.Operator, ID: pki.OperatorName(leaf)}, nil
		}
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if vals := md.Get("authorization"); len(vals) > 0 {
			token, ok := strings.CutPrefix(vals[0], "Bearer ")
			if !ok || a.resolve == nil {
				return caller.Identity{}, status.Error(codes.Unauthenticated, "authorization metadata must be \"Bearer <NHI token>\"")
			}
			id, err := a.resolve(ctx, token)
			if err != nil {
				return caller.Identity{}, status.Errorf(codes.Unauthenticated, "token rejected: %v", err)
			}
			return caller.Identity{Kind: caller.Agent, ID: id}, nil
		}
	}
	if a.plaintext {
		// Plaintext serving is loopback-only and opt-in: whoever can reach
		// the port is the local operator.
		return caller.Identity{Kind: caller.Operator, ID: "loopback"}, nil
	}
	return caller.Identity{}, status.Error(codes.Unauthenticated, "no client certificate and no bearer token")
}

func (a *access) close() { a.meta.Close() }
