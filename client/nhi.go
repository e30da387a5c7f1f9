package client

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
)

// NHIClient resolves and verifies agents' identities with a node's
// NhiService (seed §6.3). It fails secure (seed §13.3): when NHI cannot
// answer, nothing is made up — a token does not resolve, a chain or a
// signature does not verify. Its caches (seed §6.5) only speed up GetAgent
// and GetPublicKeys; what decides access (ResolveToken, IsRevoked, the
// Verify calls) is always asked of the node.
type NHIClient struct {
	svc      *service
	rpc      nhiv1.NhiServiceClient
	maxDepth int
	agents   *cache[string, Agent]
	keys     *cache[string, PublicKeys]
	ownedConn
}

// AgentType says what kind of agent an identity belongs to.
type AgentType uint8

// Agent types (seed AgentType).
const (
	AgentTypeUnspecified AgentType = iota
	AgentAutonomous
	AgentAssistant
	AgentService
	AgentWorkflow
)

// AgentStatus is an agent's lifecycle state.
type AgentStatus uint8

// Agent statuses (seed AgentStatus).
const (
	AgentStatusUnspecified AgentStatus = iota
	AgentActive
	AgentSuspended
	AgentRevoked
)

// Agent is a registered agent (seed AgentIdentity).
type Agent struct {
	ID, Name   string
	Type       AgentType
	OwnerID    string
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: never
	Status     AgentStatus
	Attributes map[string]string
}

// PublicKeys is one version of an agent's public keys (seed
// AgentPublicKeys): the two hybrids and their four halves.
type PublicKeys struct {
	AgentID                       string
	Version                       uint32
	Ed25519, MLDSA65              []byte // the signing composite's halves
	X25519, MLKEM768              []byte // the X-Wing key's halves
	HybridSigning, HybridEncapKey []byte // Creto's self-describing encodings
	ValidFrom, ValidUntil         time.Time
}

// HybridSignature is an ed25519+ml-dsa-65 composite signature, split into
// its halves (seed HybridSignature). Hand both to Verify.
type HybridSignature struct {
	Ed25519, MLDSA65 []byte
	AlgorithmID      string
}

// DelegationLink is one signed link of an NHI delegation chain (seed
// Delegation).
type DelegationLink struct {
	ID                   string
	Delegator, Delegatee Agent
	Permissions          []string
	CreatedAt, ExpiresAt time.Time
	Signature            HybridSignature
	ParentID             string
	Depth, KeyVersion    uint32
}

// DelegationChain is a chain of links, root first (seed DelegationChain).
type DelegationChain struct {
	Root        Agent
	Delegations []DelegationLink
	ValidUntil  time.Time
	// Encoded is the chain's signed wire form, which
	// VerifyDelegationChain accepts from whoever holds it.
	Encoded []byte
}

// ChainVerdict is the answer to a chain verification. A chain that does
// not verify is an answer, not an error.
type ChainVerdict struct {
	Valid bool
	// Chain is the verified chain, when Valid.
	Chain DelegationChain
	// Reason is DELEGATION_EXPIRED, DELEGATION_REVOKED, DELEGATION_FORGED,
	// CHAIN_TOO_DEEP … when not Valid.
	Reason, Message string
}

// SignatureVerdict is the answer to a signature verification.
type SignatureVerdict struct {
	Valid bool
	// Reason is INVALID_SIGNATURE or AGENT_REVOKED when not Valid.
	Reason string
}

// NewNHIClient builds a client of the [nhi] section alone.
func NewNHIClient(cfg NHIConfig, opts ...Option) (*NHIClient, error) {
	return standalone(cfg, opts, newNHI)
}

func newNHI(d *dialer, top Transport, cfg NHIConfig) (*NHIClient, error) {
	def := DefaultConfig().NHI
	p, err := cfg.ServiceConfig.resolve("nhi", top, def.ServiceConfig)
	if err != nil {
		return nil, err
	}
	setDefault(&cfg.DelegationChainMaxDepth, def.DelegationChainMaxDepth)
	if cfg.DelegationChainMaxDepth < 1 || cfg.DelegationChainMaxDepth > 1000 {
		return nil, fmt.Errorf("%w: nhi.delegation_chain_max_depth %d: want 1 to 1000", ErrConfig, cfg.DelegationChainMaxDepth)
	}
	agents, err := cacheSettings("nhi", cfg.CacheEnabled, def.CacheEnabled, cfg.CacheAgentTTLSeconds, def.CacheAgentTTLSeconds, cfg.CacheMaxEntries, def.CacheMaxEntries)
	if err != nil {
		return nil, err
	}
	keys, err := cacheSettings("nhi", cfg.CacheEnabled, def.CacheEnabled, cfg.CacheKeysTTLSeconds, def.CacheKeysTTLSeconds, cfg.CacheMaxEntries, def.CacheMaxEntries)
	if err != nil {
		return nil, err
	}
	conn, err := d.dial("nhi", p)
	if err != nil {
		return nil, err
	}
	return &NHIClient{
		svc:      newService("nhi", nhiv1.NhiService_ServiceDesc.ServiceName, conn, p, d.opts.log),
		rpc:      nhiv1.NewNhiServiceClient(conn),
		maxDepth: cfg.DelegationChainMaxDepth,
		agents:   newCache[string](agents, cloneAgent, nil),
		keys:     newCache[string](keys, clonePublicKeys, nil),
	}, nil
}

// ResolveToken verifies a bearer token and returns its agent as it is now
// (seed resolve_token). A forged, expired or revoked token is
// ErrUnauthenticated. The token never appears in an error or a log.
func (c *NHIClient) ResolveToken(ctx context.Context, token string) (Agent, error) {
	resp, err := call(ctx, c.svc, "ResolveToken", true, func(ctx context.Context) (*nhiv1.ResolveTokenResponse, error) {
		return c.rpc.ResolveToken(ctx, &nhiv1.ResolveTokenRequest{Token: token})
	})
	if err != nil {
		return Agent{}, err
	}
	return agentFrom(resp.GetAgent()), nil
}

// GetAgent returns an agent whatever its status (seed get_agent), from the
// cache for up to cache_agent_ttl_seconds: decide on IsRevoked or
// ResolveToken, not on a cached status.
func (c *NHIClient) GetAgent(ctx context.Context, id string) (Agent, error) {
	if a, ok := c.agents.get(id); ok {
		return a, nil
	}
	resp, err := call(ctx, c.svc, "GetAgent", true, func(ctx context.Context) (*nhiv1.GetAgentResponse, error) {
		return c.rpc.GetAgent(ctx, &nhiv1.GetAgentRequest{Id: id})
	})
	if err != nil {
		return Agent{}, err
	}
	a := agentFrom(resp.GetAgent())
	c.agents.put(id, a, time.Time{})
	return a, nil
}

// IsRegistered reports whether an agent id was ever registered.
func (c *NHIClient) IsRegistered(ctx context.Context, id string) (bool, error) {
	resp, err := call(ctx, c.svc, "IsRegistered", true, func(ctx context.Context) (*nhiv1.IsRegisteredResponse, error) {
		return c.rpc.IsRegistered(ctx, &nhiv1.IsRegisteredRequest{Id: id})
	})
	return resp.GetRegistered(), err
}

// IsRevoked reports whether an agent is revoked; an unknown id is
// ErrNotFound, never "not revoked".
func (c *NHIClient) IsRevoked(ctx context.Context, id string) (bool, error) {
	resp, err := call(ctx, c.svc, "IsRevoked", true, func(ctx context.Context) (*nhiv1.IsRevokedResponse, error) {
		return c.rpc.IsRevoked(ctx, &nhiv1.IsRevokedRequest{Id: id})
	})
	if err != nil {
		// Fail secure: a caller that ignores the error still sees revoked.
		return true, err
	}
	return resp.GetRevoked(), nil
}

// GetDelegationChain returns the chain ending at a delegation, root first,
// as recorded and without verifying it (seed get_delegation_chain, by the
// id of the chain's last link).
func (c *NHIClient) GetDelegationChain(ctx context.Context, delegationID string) (DelegationChain, error) {
	resp, err := call(ctx, c.svc, "GetDelegationChain", true, func(ctx context.Context) (*nhiv1.GetDelegationChainResponse, error) {
		return c.rpc.GetDelegationChain(ctx, &nhiv1.GetDelegationChainRequest{DelegationId: delegationID})
	})
	if err != nil {
		return DelegationChain{}, err
	}
	return chainFrom(resp.GetChain()), nil
}

// VerifyDelegation verifies the chain ending at a delegation: every
// signature, expiry, revocation, the depth, continuity and narrowing (seed
// verify_delegation). On error the verdict is not valid.
func (c *NHIClient) VerifyDelegation(ctx context.Context, delegationID string) (ChainVerdict, error) {
	return c.verify(ctx, &nhiv1.VerifyDelegationRequest{Chain: &nhiv1.VerifyDelegationRequest_DelegationId{DelegationId: delegationID}})
}

// VerifyDelegationChain verifies a chain in its encoded form, as handed
// over by whoever holds it (DelegationChain.Encoded).
func (c *NHIClient) VerifyDelegationChain(ctx context.Context, chain DelegationChain) (ChainVerdict, error) {
	if len(chain.Encoded) == 0 {
		return ChainVerdict{}, localError("nhi", "VerifyDelegation", ErrInvalidRequest, "the chain has no encoded form")
	}
	return c.verify(ctx, &nhiv1.VerifyDelegationRequest{Chain: &nhiv1.VerifyDelegationRequest_Encoded{Encoded: chain.Encoded}})
}

func (c *NHIClient) verify(ctx context.Context, in *nhiv1.VerifyDelegationRequest) (ChainVerdict, error) {
	resp, err := call(ctx, c.svc, "VerifyDelegation", true, func(ctx context.Context) (*nhiv1.VerifyDelegationResponse, error) {
		return c.rpc.VerifyDelegation(ctx, in)
	})
	if err != nil {
		return ChainVerdict{}, err
	}
	if !resp.GetValid() {
		return ChainVerdict{Reason: resp.GetReason(), Message: resp.GetMessage()}, nil
	}
	chain := chainFrom(resp.GetChain())
	if len(chain.Delegations) > c.maxDepth {
		return ChainVerdict{Reason: "CHAIN_TOO_DEEP",
			Message: fmt.Sprintf("the chain has %d links; delegation_chain_max_depth is %d", len(chain.Delegations), c.maxDepth)}, nil
	}
	return ChainVerdict{Valid: true, Chain: chain}, nil
}

// GetPublicKeys returns an agent's current public keys (seed
// get_public_keys), from the cache for up to cache_keys_ttl_seconds.
func (c *NHIClient) GetPublicKeys(ctx context.Context, agentID string) (PublicKeys, error) {
	if k, ok := c.keys.get(agentID); ok {
		return k, nil
	}
	resp, err := call(ctx, c.svc, "GetPublicKeys", true, func(ctx context.Context) (*nhiv1.GetPublicKeysResponse, error) {
		return c.rpc.GetPublicKeys(ctx, &nhiv1.GetPublicKeysRequest{AgentId: agentID})
	})
	if err != nil {
		return PublicKeys{}, err
	}
	k := keysFrom(resp.GetKeys())
	c.keys.put(agentID, k, k.ValidUntil)
	return k, nil
}

// Sign signs data with an agent's current hybrid key, held by the node
// (seed sign). An agent caller may sign only as itself; empty agentID
// means itself. Signing changes nothing, so it is retried like a read.
func (c *NHIClient) Sign(ctx context.Context, agentID string, data []byte) (HybridSignature, error) {
	resp, err := call(ctx, c.svc, "Sign", true, func(ctx context.Context) (*nhiv1.SignResponse, error) {
		return c.rpc.Sign(ctx, &nhiv1.SignRequest{AgentId: agentID, Data: data})
	})
	if err != nil {
		return HybridSignature{}, err
	}
	return signatureFrom(resp.GetSignature()), nil
}

// Verify checks a signature Sign made under every key version of the
// agent still valid (seed verify). On error the verdict is not valid.
func (c *NHIClient) Verify(ctx context.Context, agentID string, data []byte, sig HybridSignature) (SignatureVerdict, error) {
	resp, err := call(ctx, c.svc, "Verify", true, func(ctx context.Context) (*nhiv1.VerifyResponse, error) {
		return c.rpc.Verify(ctx, &nhiv1.VerifyRequest{AgentId: agentID, Data: data, Signature: &nhiv1.HybridSignature{
			Ed25519Signature: sig.Ed25519, MlDsaSignature: sig.MLDSA65, AlgorithmId: sig.AlgorithmID}})
	})
	if err != nil {
		return SignatureVerdict{}, err
	}
	return SignatureVerdict{Valid: resp.GetValid(), Reason: resp.GetReason()}, nil
}

// RegisterAgent registers an agent, active, with fresh keys: an
// operator's call that the seed's client trait leaves out (it assumes the
// agents exist), for platforms that onboard their agents. ID, Type and
// OwnerID are required. Not retried: a retry after a lost answer would
// find the id taken.
func (c *NHIClient) RegisterAgent(ctx context.Context, a Agent) (Agent, error) {
	in := &nhiv1.AgentIdentity{Id: a.ID, Name: a.Name, Type: nhiv1.AgentType(a.Type), OwnerId: a.OwnerID,
		ExpiresAt: timeProto(a.ExpiresAt), Attributes: a.Attributes}
	resp, err := call(ctx, c.svc, "RegisterAgent", false, func(ctx context.Context) (*nhiv1.RegisterAgentResponse, error) {
		return c.rpc.RegisterAgent(ctx, &nhiv1.RegisterAgentRequest{Agent: in})
	})
	if err != nil {
		return Agent{}, err
	}
	return agentFrom(resp.GetAgent()), nil
}

// Health reports the NHI service's health (seed health).
func (c *NHIClient) Health(ctx context.Context) Health { return c.svc.health(ctx) }

// Stats returns the client's counters.
func (c *NHIClient) Stats() Stats { return c.svc.Stats() }

// Close releases the client's connection.
func (c *NHIClient) Close() error { return c.closeConn() }

func agentFrom(a *nhiv1.AgentIdentity) Agent {
	return Agent{
		ID: a.GetId(), Name: a.GetName(), Type: AgentType(a.GetType()), OwnerID: a.GetOwnerId(),
		CreatedAt: timeFrom(a.GetCreatedAt()), ExpiresAt: timeFrom(a.GetExpiresAt()),
		Status: AgentStatus(a.GetStatus()), Attributes: a.GetAttributes(),
	}
}

func chainFrom(c *nhiv1.DelegationChain) DelegationChain {
	out := DelegationChain{Root: agentFrom(c.GetRoot()), ValidUntil: timeFrom(c.GetChainValidUntil()), Encoded: c.GetEncoded()}
	for _, l := range c.GetDelegations() {
		out.Delegations = append(out.Delegations, DelegationLink{
			ID: l.GetId(), Delegator: agentFrom(l.GetDelegator()), Delegatee: agentFrom(l.GetDelegatee()),
			Permissions: l.GetPermissions(), CreatedAt: timeFrom(l.GetCreatedAt()), ExpiresAt: timeFrom(l.GetExpiresAt()),
			Signature: signatureFrom(l.GetSignature()), ParentID: l.GetParentId(), Depth: l.GetDepth(), KeyVersion: l.GetKeyVersion(),
		})
	}
	return out
}

func keysFrom(k *nhiv1.AgentPublicKeys) PublicKeys {
	return PublicKeys{
		AgentID: k.GetAgentId(), Version: k.GetVersion(),
		Ed25519: k.GetSigningKeyEd25519(), MLDSA65: k.GetSigningKeyMlDsa(),
		X25519: k.GetKeyAgreementX25519(), MLKEM768: k.GetEncapsulationKeyMlKem(),
		HybridSigning: k.GetHybridSigningKey(), HybridEncapKey: k.GetHybridEncapsulationKey(),
		ValidFrom: timeFrom(k.GetValidFrom()), ValidUntil: timeFrom(k.GetValidUntil()),
	}
}

func signatureFrom(s *nhiv1.HybridSignature) HybridSignature {
	return HybridSignature{Ed25519: s.GetEd25519Signature(), MLDSA65: s.GetMlDsaSignature(), AlgorithmID: s.GetAlgorithmId()}
}

func cloneAgent(a Agent) Agent {
	a.Attributes = maps.Clone(a.Attributes)
	return a
}

func clonePublicKeys(k PublicKeys) PublicKeys {
	for _, b := range []*[]byte{&k.Ed25519, &k.MLDSA65, &k.X25519, &k.MLKEM768, &k.HybridSigning, &k.HybridEncapKey} {
		*b = bytes.Clone(*b)
	}
	return k
}

// timeFrom converts a timestamp; unset is the zero time.
func timeFrom(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

// agentRef is the wire form of an agent named by id; empty is unset (the
// caller itself, for an agent caller).
func agentRef(id string) *nhiv1.AgentIdentity {
	if id == "" {
		return nil
	}
	return &nhiv1.AgentIdentity{Id: id}
}
