package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	authzv1 "github.com/creto-systems/creto/api/creto/authz/v1"
	"github.com/creto-systems/creto/services/crypto"
)

// AuthzClient asks a node's AuthorizationService whether agents may act
// (seed §2.2.2), under the seed's fallback rules (§2.5): every check goes
// to the node; a check that times out is answered with the decision the
// node gave for the identical request within cache_ttl_seconds, if any,
// and otherwise denied; a check the node cannot answer at all (unavailable,
// circuit open) is denied whatever the cache holds. A Check never fails
// open: on every error its Decision is a Deny.
type AuthzClient struct {
	svc       *service
	rpc       authzv1.AuthorizationServiceClient
	cache     *cache[[32]byte, Decision]
	allowOnly bool
	crypto    crypto.Provider
	ownedConn
}

// Principal is the agent a check is about.
type Principal struct {
	// ID is the agent id; required.
	ID string
	// Type is the Cedar entity type; empty means the node's agent type.
	Type string
	// Attributes are laid over the ones the node knows for the agent.
	// Values must encode as JSON.
	Attributes map[string]any
}

// EntityRef names a Cedar entity.
type EntityRef struct {
	Type, ID string
}

// CheckRequest is one authorization question (seed CheckRequest).
type CheckRequest struct {
	// Principal is the agent asking.
	Principal Principal
	// DelegationChain is the identities the principal acts for, origin
	// first. Only operators may assert one; agents pass DelegationID.
	DelegationChain []EntityRef
	// DelegationID names an NHI delegation the node verifies and turns
	// into the chain. Mutually exclusive with DelegationChain.
	DelegationID string
	// Action is an action id ("send_email") or a Cedar reference.
	Action string
	// Resource is a Cedar reference (`Document::"q3"`); a bare string s
	// means `Resource::"s"`.
	Resource string
	// Context is the policies' context. Values must encode as JSON.
	Context map[string]any
	// TraceID correlates the check with the caller's trace; it never
	// changes the decision and is not part of the cache key.
	TraceID string
}

// DecisionKind is one of the seed's five outcomes. The zero value is
// Deny, so a Decision nobody filled in denies.
type DecisionKind uint8

// Decision kinds.
const (
	Deny DecisionKind = iota
	Allow
	RequiresOversight
	QuotaExceeded
	RateLimited
)

// String returns the seed's name of the outcome, such as "requires_oversight".
func (k DecisionKind) String() string {
	switch k {
	case Allow:
		return "allow"
	case RequiresOversight:
		return "requires_oversight"
	case QuotaExceeded:
		return "quota_exceeded"
	case RateLimited:
		return "rate_limited"
	}
	return "deny"
}

// Source says where a Decision came from. The zero value is
// SourceFailSecure: a Decision nobody filled in was made up by no one.
type Source uint8

// Decision sources.
const (
	// SourceFailSecure: the client denied because the node could not
	// answer (see the error returned with it).
	SourceFailSecure Source = iota
	// SourceNode: the node decided.
	SourceNode
	// SourceNodeCache: the node answered from its own decision cache.
	SourceNodeCache
	// SourceClientCache: the node timed out and the client answered with
	// the decision the node gave for the same request before.
	SourceClientCache
)

// String returns "node", "node-cache", "client-cache" or "fail-secure".
func (s Source) String() string {
	switch s {
	case SourceNode:
		return "node"
	case SourceNodeCache:
		return "node-cache"
	case SourceClientCache:
		return "client-cache"
	}
	return "fail-secure"
}

// Decision is a node's answer to a check (seed Decision), or the client's
// fail-secure denial.
type Decision struct {
	// Kind is the outcome.
	Kind DecisionKind
	// Reason says why a Deny denies (the forbid's @reason, or the
	// client's "fail secure: …").
	Reason string
	// PolicyID is the deciding policy of a Deny or RequiresOversight;
	// "ext:<name>" when an extension decided or failed with on_error deny.
	PolicyID string
	// Oversight is set for RequiresOversight.
	Oversight Oversight
	// Quota is set for QuotaExceeded.
	Quota Quota
	// RateLimit is set for RateLimited.
	RateLimit RateLimit
	// MatchedPolicies are the policies that determined the decision.
	MatchedPolicies []string
	// EvaluationTime is the node's time to decide.
	EvaluationTime time.Duration
	// Source says who decided.
	Source Source
}

// Allowed reports whether the action may proceed: only an Allow says yes.
func (d Decision) Allowed() bool { return d.Kind == Allow }

// Oversight is what a human must approve (seed OversightDecision).
type Oversight struct {
	// Timeout is how long approval may take.
	Timeout time.Duration
	// Approvers are who may approve.
	Approvers []string
	// Requirement is the kind of oversight, such as "two-person".
	Requirement string
}

// Quota describes an exhausted quota (seed QuotaDecision).
type Quota struct {
	ID          string
	Limit, Used int64
	// ResetAt is when the window resets; zero when the node did not say.
	ResetAt time.Time
}

// RateLimit describes a rate limit that was hit (seed RateLimitDecision).
type RateLimit struct {
	RetryAfter time.Duration
	Remaining  int32
}

// NewAuthzClient builds a client of the [authz] section alone; New builds
// every client from one Config.
func NewAuthzClient(cfg AuthzConfig, opts ...Option) (*AuthzClient, error) {
	return standalone(cfg, opts, newAuthz)
}

func newAuthz(d *dialer, top Transport, cfg AuthzConfig) (*AuthzClient, error) {
	def := DefaultConfig().Authz
	p, err := cfg.ServiceConfig.resolve("authz", top, def.ServiceConfig)
	if err != nil {
		return nil, err
	}
	cc, err := cacheSettings("authz", cfg.CacheEnabled, def.CacheEnabled, cfg.CacheTTLSeconds, def.CacheTTLSeconds, cfg.CacheMaxEntries, def.CacheMaxEntries)
	if err != nil {
		return nil, err
	}
	setDefault(&cfg.CacheAllowOnly, def.CacheAllowOnly)
	conn, err := d.dial("authz", p)
	if err != nil {
		return nil, err
	}
	return &AuthzClient{
		svc:       newService("authz", authzv1.AuthorizationService_ServiceDesc.ServiceName, conn, p, d.opts.log),
		rpc:       authzv1.NewAuthorizationServiceClient(conn),
		cache:     newCache[[32]byte](cc, cloneDecision, nil),
		allowOnly: *cfg.CacheAllowOnly,
		crypto:    crypto.New(),
	}, nil
}

// Check decides one request. It always returns a usable Decision: on
// error a Deny whose Source is SourceFailSecure, except that a timeout is
// answered with the node's earlier decision for the identical request
// (SourceClientCache, nil error) while it is in the cache.
func (c *AuthzClient) Check(ctx context.Context, req CheckRequest) (Decision, error) {
	in, key, err := c.encode(req)
	if err != nil {
		return c.deny(localError("authz", "Check", ErrInvalidRequest, "%v", err))
	}
	resp, err := call(ctx, c.svc, "Check", true, func(ctx context.Context) (*authzv1.CheckResponse, error) {
		return c.rpc.Check(ctx, in)
	})
	if err != nil {
		return c.fallback(key, err)
	}
	return c.decided(key, resp, "Check")
}

// CheckBatch decides up to 1,000 requests in one call (seed check_batch),
// in request order. When the call fails each request falls back as Check
// does; the error is nil only if every request was answered from the
// cache.
func (c *AuthzClient) CheckBatch(ctx context.Context, reqs []CheckRequest) ([]Decision, error) {
	out := make([]Decision, len(reqs))
	in := &authzv1.CheckBatchRequest{Requests: make([]*authzv1.CheckRequest, len(reqs))}
	keys := make([][32]byte, len(reqs))
	for i, r := range reqs {
		var err error
		if in.Requests[i], keys[i], err = c.encode(r); err != nil {
			e := localError("authz", "CheckBatch", ErrInvalidRequest, "request %d: %v", i, err)
			for j := range out {
				out[j], _ = c.deny(e)
			}
			return out, e
		}
	}
	resp, err := call(ctx, c.svc, "CheckBatch", true, func(ctx context.Context) (*authzv1.CheckBatchResponse, error) {
		return c.rpc.CheckBatch(ctx, in)
	})
	var failed error
	if err == nil && len(resp.GetResponses()) != len(reqs) {
		err = localError("authz", "CheckBatch", ErrInternal, "%d responses to %d requests", len(resp.GetResponses()), len(reqs))
	}
	for i := range reqs {
		var derr error
		if err != nil {
			out[i], derr = c.fallback(keys[i], err)
		} else {
			out[i], derr = c.decided(keys[i], resp.GetResponses()[i], "CheckBatch")
		}
		if failed == nil {
			failed = derr
		}
	}
	return out, failed
}

// decided turns the node's answer into a Decision and remembers it.
func (c *AuthzClient) decided(key [32]byte, resp *authzv1.CheckResponse, method string) (Decision, error) {
	d, ok := decisionFrom(resp)
	if !ok {
		return c.deny(localError("authz", method, ErrInternal, "the node's answer carries no decision"))
	}
	if d.Kind == Allow || !c.allowOnly {
		c.cache.put(key, d, time.Time{})
	}
	return d, nil
}

// fallback answers a check the node did not (seed §2.5).
func (c *AuthzClient) fallback(key [32]byte, err error) (Decision, error) {
	if errors.Is(err, ErrTimeout) {
		if d, ok := c.cache.get(key); ok {
			c.svc.fallbacks.Add(1)
			c.svc.log.Debug("creto client: authz timed out; answering with the cached decision", "decision", d.Kind.String())
			d.Source = SourceClientCache
			return d, nil
		}
	}
	return c.deny(err)
}

// deny is the fail-secure answer to err.
func (c *AuthzClient) deny(err error) (Decision, error) {
	c.svc.fallbacks.Add(1)
	return Decision{Kind: Deny, Reason: "fail secure: " + kindOf(err).Error()}, err
}

// encode builds the wire request and its cache key, which covers every
// input that can change the decision: everything but the trace id.
func (c *AuthzClient) encode(r CheckRequest) (*authzv1.CheckRequest, [32]byte, error) {
	var key [32]byte
	in := &authzv1.CheckRequest{
		Principal: &authzv1.Principal{Id: r.Principal.ID, Type: r.Principal.Type},
		Action:    r.Action, Resource: r.Resource, DelegationId: r.DelegationID,
	}
	if r.Principal.Attributes != nil {
		var err error
		if in.Principal.Attributes, err = structpb.NewStruct(r.Principal.Attributes); err != nil {
			return nil, key, fmt.Errorf("principal attributes: %v", err)
		}
	}
	if r.Context != nil {
		var err error
		// encoding/json sorts map keys: equal contexts encode equally.
		if in.ContextJson, err = json.Marshal(r.Context); err != nil {
			return nil, key, fmt.Errorf("context: %v", err)
		}
	}
	for _, e := range r.DelegationChain {
		in.DelegationChain = append(in.DelegationChain, &authzv1.EntityRef{Type: e.Type, Id: e.ID})
	}
	if c.cache != nil {
		var err error
		if key, err = requestKey(c.crypto, "Check", in); err != nil {
			return nil, key, err
		}
	}
	in.TraceId = r.TraceID
	return in, key, nil
}

// decisionFrom converts the node's answer; ok is false when it holds no
// decision at all.
func decisionFrom(resp *authzv1.CheckResponse) (Decision, bool) {
	d := Decision{
		MatchedPolicies: resp.GetMatchedPolicies(),
		EvaluationTime:  time.Duration(resp.GetEvaluationTimeNs()),
		Source:          SourceNode,
	}
	if resp.GetCached() {
		d.Source = SourceNodeCache
	}
	switch r := resp.GetDecision().GetResult().(type) {
	case *authzv1.Decision_Allow:
		d.Kind = Allow
	case *authzv1.Decision_Deny:
		d.Kind, d.Reason, d.PolicyID = Deny, r.Deny.GetReason(), r.Deny.GetPolicyId()
	case *authzv1.Decision_RequiresOversight:
		o := r.RequiresOversight
		d.Kind, d.PolicyID = RequiresOversight, o.GetPolicyId()
		d.Oversight = Oversight{Timeout: o.GetTimeout().AsDuration(), Approvers: o.GetRequiredApprovers(), Requirement: o.GetRequirement()}
	case *authzv1.Decision_QuotaExceeded:
		q := r.QuotaExceeded
		d.Kind = QuotaExceeded
		d.Quota = Quota{ID: q.GetQuotaId(), Limit: q.GetLimit(), Used: q.GetUsed()}
		if q.GetResetAt() != nil {
			d.Quota.ResetAt = q.GetResetAt().AsTime()
		}
	case *authzv1.Decision_RateLimited:
		d.Kind = RateLimited
		d.RateLimit = RateLimit{RetryAfter: r.RateLimited.GetRetryAfter().AsDuration(), Remaining: r.RateLimited.GetRequestsRemaining()}
	default:
		return Decision{}, false
	}
	return d, true
}

func cloneDecision(d Decision) Decision {
	d.MatchedPolicies = slices.Clone(d.MatchedPolicies)
	d.Oversight.Approvers = slices.Clone(d.Oversight.Approvers)
	return d
}

// ExtensionOptions are an operator's settings for a Wasm extension.
type ExtensionOptions struct {
	// Config is handed to the module's creto_init (usually JSON).
	Config []byte
	// Grants are the capabilities the operator grants; the module's
	// manifest must ask no more.
	Grants []string
	// OnError "deny" forces the extension's failures to deny; empty keeps
	// the manifest's choice.
	OnError string
}

// Extension describes a registered extension.
type Extension struct {
	Name, Version string
	Priority      int32
	Capabilities  []string
	OnError       string
	SHA256        string
	Imports       []string
	RegisteredAt  time.Time
}

// RegisterExtension loads a Wasm authorization extension (ABI v1) into the
// node (seed register_extension; the seed's in-process extension is a
// module here). Its name comes from the module's manifest. It is not
// retried: a retry after a lost answer would find the name taken.
func (c *AuthzClient) RegisterExtension(ctx context.Context, module []byte, opts ExtensionOptions) (Extension, error) {
	resp, err := call(ctx, c.svc, "RegisterExtension", false, func(ctx context.Context) (*authzv1.RegisterExtensionResponse, error) {
		return c.rpc.RegisterExtension(ctx, &authzv1.RegisterExtensionRequest{Module: module, Config: opts.Config, Grants: opts.Grants, OnError: opts.OnError})
	})
	if err != nil {
		return Extension{}, err
	}
	x := resp.GetExtension()
	return Extension{
		Name: x.GetName(), Version: x.GetVersion(), Priority: x.GetPriority(), Capabilities: x.GetCapabilities(),
		OnError: x.GetOnError(), SHA256: x.GetSha256(), Imports: x.GetImports(), RegisteredAt: x.GetRegisteredAt().AsTime(),
	}, nil
}

// Health reports the authorization service's health (seed health).
func (c *AuthzClient) Health(ctx context.Context) Health { return c.svc.health(ctx) }

// Stats returns the client's counters.
func (c *AuthzClient) Stats() Stats { return c.svc.Stats() }

// Close releases the client's connection; a client New built is closed by
// Clients.Close.
func (c *AuthzClient) Close() error { return c.closeConn() }
