package client

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	vaultv1 "github.com/creto-systems/creto/api/creto/vault/v1"
)

// VaultClient reads secrets and delegates them to sandboxes with a node's
// VaultService (seed §5.2.2). The vault degrades partially (seed §13.3):
// when it is unavailable, slow or faulting, GetSecret and GetSecrets
// answer with values this client read before, in memory only, while they
// are younger than cache_ttl_seconds and unexpired (Secret.FromCache).
// Delegated fetches are never answered from the cache: each one counts a
// use and binds a sandbox, which only the vault can do.
type VaultClient struct {
	svc        *service
	rpc        vaultv1.VaultServiceClient
	defaultTTL time.Duration
	maxTTL     time.Duration
	memoryOnly bool
	secrets    *cache[secretKey, Secret]
	ownedConn
}

// secretKey is whose read of which version a cached secret answers.
type secretKey struct {
	requester, path, name, version string
}

// SecretRef names a secret (seed SecretRef).
type SecretRef struct {
	Path, Name string
}

// SecretType classifies a secret; it decides how rotation generates one.
type SecretType uint8

// Secret types.
const (
	SecretTypeUnspecified SecretType = iota
	APIKey
	Password
	Certificate
	PrivateKey
	Token
	ConnectionString
	Generic
)

// SecretMetadata describes a secret.
type SecretMetadata struct {
	Type        SecretType
	Description string
	Labels      map[string]string
	// RotationInterval is the time between automatic rotations; 0 is
	// manual rotation only.
	RotationInterval time.Duration
}

// Secret is one version of a secret (seed Secret).
type Secret struct {
	Ref SecretRef
	// Value is empty in the answers of writes.
	Value     SecretValue
	Version   string
	Metadata  SecretMetadata
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
	CreatedBy string
	// FromCache is set when the vault could not answer and the client
	// answered with the value it read before.
	FromCache bool
}

// Destroy wipes the secret's value.
func (s Secret) Destroy() { s.Value.Destroy() }

// CreateSecretRequest creates a secret with its first version.
type CreateSecretRequest struct {
	// Requester is the agent creating; empty means the calling agent.
	Requester string
	Ref       SecretRef
	// Value is 1 byte to the vault's max_value_bytes (NewSecretValue).
	// The client does not keep it; Destroy it once sent.
	Value    SecretValue
	Metadata SecretMetadata
	// TTL is the version's lifetime; 0 is forever.
	TTL time.Duration
}

// DelegationRestrictions limit a delegation (seed DelegationRestrictions).
type DelegationRestrictions struct {
	// BoundSandbox is the only sandbox the secrets may be fetched for.
	BoundSandbox string
	// SingleUse allows one fetch.
	SingleUse bool
	// MemoryOnly forbids writing the values to disk. With
	// require_memory_only (the default) every delegation the client
	// creates has it.
	MemoryOnly bool
	// MaxUses caps the fetches; 0 is no cap within the TTL.
	MaxUses int32
}

// CreateDelegationRequest delegates secrets to another agent.
type CreateDelegationRequest struct {
	// Delegator is the agent delegating; empty means the calling agent.
	Delegator string
	// Delegatee is the agent that may fetch.
	Delegatee string
	Secrets   []SecretRef
	// TTL is the delegation's lifetime: 0 means
	// default_delegation_ttl_seconds, more than max_delegation_ttl_seconds
	// is refused.
	TTL          time.Duration
	Restrictions DelegationRestrictions
}

// DelegationStatus is a delegation's state.
type DelegationStatus uint8

// Delegation statuses.
const (
	DelegationStatusUnspecified DelegationStatus = iota
	DelegationActive
	DelegationExpired
	DelegationRevoked
	DelegationExhausted
)

// Delegation is a vault delegation (seed Delegation).
type Delegation struct {
	ID                   string
	Delegator, Delegatee string
	Secrets              []SecretRef
	CreatedAt, ExpiresAt time.Time
	Restrictions         DelegationRestrictions
	Status               DelegationStatus
	Uses                 int32
	RevokedAt            time.Time
}

// GetDelegatedSecretsRequest asks for secrets to inject into a sandbox.
type GetDelegatedSecretsRequest struct {
	// Requester is the agent fetching; empty means the calling agent.
	Requester string
	// SandboxID is the sandbox the values are bound to.
	SandboxID string
	Refs      []SecretRef
	// TTL is how long the runtime may hold them: 0 means
	// default_delegation_ttl_seconds.
	TTL time.Duration
	// DelegationID is the delegation to use; empty means the requester's
	// own secrets, or the usable delegation to it that expires first.
	DelegationID string
}

// DelegatedSecret is one value for a sandbox.
type DelegatedSecret struct {
	Ref          SecretRef
	Value        SecretValue
	ExpiresAt    time.Time
	Restrictions DelegationRestrictions
	Version      string
}

// DelegatedSecrets is the answer to a delegated fetch (seed
// DelegatedSecretsResponse).
type DelegatedSecrets struct {
	Secrets []DelegatedSecret
	// DelegationID is the delegation used: revoke it when the sandbox
	// ends.
	DelegationID string
	// ExpiresAt is when the values must be dropped.
	ExpiresAt time.Time
}

// Destroy wipes every value.
func (d DelegatedSecrets) Destroy() {
	for _, s := range d.Secrets {
		s.Value.Destroy()
	}
}

// NewVaultClient builds a client of the [vault] section alone.
func NewVaultClient(cfg VaultConfig, opts ...Option) (*VaultClient, error) {
	return standalone(cfg, opts, newVault)
}

func newVault(d *dialer, top Transport, cfg VaultConfig) (*VaultClient, error) {
	def := DefaultConfig().Vault
	p, err := cfg.ServiceConfig.resolve("vault", top, def.ServiceConfig)
	if err != nil {
		return nil, err
	}
	setDefault(&cfg.DefaultDelegationTTLSeconds, def.DefaultDelegationTTLSeconds)
	setDefault(&cfg.MaxDelegationTTLSeconds, def.MaxDelegationTTLSeconds)
	setDefault(&cfg.RequireMemoryOnly, def.RequireMemoryOnly)
	switch {
	case cfg.MaxDelegationTTLSeconds < 1 || cfg.MaxDelegationTTLSeconds > 366*86400:
		return nil, fmt.Errorf("%w: vault.max_delegation_ttl_seconds %d: want 1 to 31622400", ErrConfig, cfg.MaxDelegationTTLSeconds)
	case cfg.DefaultDelegationTTLSeconds < 1 || cfg.DefaultDelegationTTLSeconds > cfg.MaxDelegationTTLSeconds:
		return nil, fmt.Errorf("%w: vault.default_delegation_ttl_seconds %d: want 1 to max_delegation_ttl_seconds (%d)",
			ErrConfig, cfg.DefaultDelegationTTLSeconds, cfg.MaxDelegationTTLSeconds)
	}
	cc, err := cacheSettings("vault", cfg.CacheEnabled, def.CacheEnabled, cfg.CacheTTLSeconds, def.CacheTTLSeconds, cfg.CacheMaxEntries, def.CacheMaxEntries)
	if err != nil {
		return nil, err
	}
	conn, err := d.dial("vault", p)
	if err != nil {
		return nil, err
	}
	return &VaultClient{
		svc:        newService("vault", vaultv1.VaultService_ServiceDesc.ServiceName, conn, p, d.opts.log),
		rpc:        vaultv1.NewVaultServiceClient(conn),
		defaultTTL: time.Duration(cfg.DefaultDelegationTTLSeconds) * time.Second,
		maxTTL:     time.Duration(cfg.MaxDelegationTTLSeconds) * time.Second,
		memoryOnly: *cfg.RequireMemoryOnly,
		secrets:    newCache[secretKey](cc, cloneSecret, Secret.Destroy),
	}, nil
}

// GetSecret returns a version of a secret with its value (seed
// get_secret); version "" is the current one. requester is the agent
// reading; empty means the calling agent. When the vault fails, the value
// read before is answered from the cache (FromCache) while it is valid.
func (c *VaultClient) GetSecret(ctx context.Context, requester string, ref SecretRef, version string) (Secret, error) {
	key := secretKey{requester, ref.Path, ref.Name, version}
	resp, err := call(ctx, c.svc, "GetSecret", true, func(ctx context.Context) (*vaultv1.GetSecretResponse, error) {
		return c.rpc.GetSecret(ctx, &vaultv1.GetSecretRequest{Requester: agentRef(requester), Reference: refProto(ref), Version: version})
	})
	if err != nil {
		if s, ok := c.cached(err, key); ok {
			return s, nil
		}
		return Secret{}, err
	}
	s := secretFrom(resp.GetSecret())
	c.secrets.put(key, s, s.ExpiresAt)
	return s, nil
}

// GetSecrets returns the current versions of several secrets, all or
// nothing (seed get_secrets), falling back to the cache only when it holds
// every one of them.
func (c *VaultClient) GetSecrets(ctx context.Context, requester string, refs []SecretRef) ([]Secret, error) {
	in := &vaultv1.GetSecretsRequest{Requester: agentRef(requester)}
	for _, r := range refs {
		in.References = append(in.References, refProto(r))
	}
	resp, err := call(ctx, c.svc, "GetSecrets", true, func(ctx context.Context) (*vaultv1.GetSecretsResponse, error) {
		return c.rpc.GetSecrets(ctx, in)
	})
	if err != nil {
		out := make([]Secret, 0, len(refs))
		for _, r := range refs {
			s, ok := c.cached(err, secretKey{requester, r.Path, r.Name, ""})
			if !ok {
				for _, s := range out {
					s.Destroy()
				}
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	out := make([]Secret, len(resp.GetSecrets()))
	for i, s := range resp.GetSecrets() {
		out[i] = secretFrom(s)
		c.secrets.put(secretKey{requester, out[i].Ref.Path, out[i].Ref.Name, ""}, out[i], out[i].ExpiresAt)
	}
	return out, nil
}

// cached answers a read the vault failed (seed §13.3): only a failure of
// the vault itself, never a denial, a missing secret or the caller's own
// cancellation.
func (c *VaultClient) cached(err error, key secretKey) (Secret, bool) {
	if !failure(err) {
		return Secret{}, false
	}
	s, ok := c.secrets.get(key)
	if !ok {
		return Secret{}, false
	}
	c.svc.fallbacks.Add(1)
	c.svc.log.Debug("creto client: vault failed; answering with a cached secret", "path", quote(key.path), "name", quote(key.name), "err", reason(err))
	s.FromCache = true
	return s, true
}

// CreateSecret creates a secret with its first version; the answer carries
// no value. Not retried: a retry after a lost answer would find it taken.
func (c *VaultClient) CreateSecret(ctx context.Context, req CreateSecretRequest) (Secret, error) {
	// The message gets its own copy, wiped once sent: the caller's value
	// stays the caller's to destroy.
	value := bytes.Clone(req.Value.Expose())
	defer clear(value)
	in := &vaultv1.CreateSecretRequest{Requester: agentRef(req.Requester), Reference: refProto(req.Ref), Value: value,
		Metadata: metadataProto(req.Metadata)}
	if req.TTL != 0 {
		in.Ttl = durationpb.New(req.TTL)
	}
	resp, err := call(ctx, c.svc, "CreateSecret", false, func(ctx context.Context) (*vaultv1.CreateSecretResponse, error) {
		return c.rpc.CreateSecret(ctx, in)
	})
	if err != nil {
		return Secret{}, err
	}
	return secretFrom(resp.GetSecret()), nil
}

// GetDelegatedSecrets fetches secrets for injection into a sandbox, bound
// to it and memory-only, counting one use of the delegation (seed
// get_delegated_secrets). Never retried, never cached: a use is spent
// whether or not the answer arrives.
func (c *VaultClient) GetDelegatedSecrets(ctx context.Context, req GetDelegatedSecretsRequest) (DelegatedSecrets, error) {
	ttl, err := c.ttl("GetDelegatedSecrets", req.TTL)
	if err != nil {
		return DelegatedSecrets{}, err
	}
	in := &vaultv1.GetDelegatedSecretsRequest{Requester: agentRef(req.Requester), SandboxId: &vaultv1.SandboxId{Id: req.SandboxID},
		Ttl: durationpb.New(ttl), DelegationId: req.DelegationID}
	for _, r := range req.Refs {
		in.References = append(in.References, refProto(r))
	}
	resp, err := call(ctx, c.svc, "GetDelegatedSecrets", false, func(ctx context.Context) (*vaultv1.GetDelegatedSecretsResponse, error) {
		return c.rpc.GetDelegatedSecrets(ctx, in)
	})
	if err != nil {
		return DelegatedSecrets{}, err
	}
	out := DelegatedSecrets{DelegationID: resp.GetDelegationId(), ExpiresAt: timeFrom(resp.GetExpiresAt())}
	for _, s := range resp.GetSecrets() {
		out.Secrets = append(out.Secrets, DelegatedSecret{Ref: refFrom(s.GetReference()), Value: takeValue(s.GetValue()),
			ExpiresAt: timeFrom(s.GetExpiresAt()), Restrictions: restrictionsFrom(s.GetRestrictions()), Version: s.GetVersion()})
	}
	return out, nil
}

// CreateDelegation lets another agent fetch secrets within a TTL and
// restrictions (seed create_delegation). Not retried: a retry after a lost
// answer would make a second delegation.
func (c *VaultClient) CreateDelegation(ctx context.Context, req CreateDelegationRequest) (Delegation, error) {
	ttl, err := c.ttl("CreateDelegation", req.TTL)
	if err != nil {
		return Delegation{}, err
	}
	rs := req.Restrictions
	rs.MemoryOnly = rs.MemoryOnly || c.memoryOnly
	in := &vaultv1.CreateDelegationRequest{Delegator: agentRef(req.Delegator), Delegatee: agentRef(req.Delegatee),
		Ttl: durationpb.New(ttl), Restrictions: restrictionsProto(rs)}
	for _, r := range req.Secrets {
		in.Secrets = append(in.Secrets, refProto(r))
	}
	resp, err := call(ctx, c.svc, "CreateDelegation", false, func(ctx context.Context) (*vaultv1.CreateDelegationResponse, error) {
		return c.rpc.CreateDelegation(ctx, in)
	})
	if err != nil {
		return Delegation{}, err
	}
	return delegationFrom(resp.GetDelegation()), nil
}

// RevokeDelegation revokes a delegation; only its delegator may (seed
// revoke_delegation). Not retried.
func (c *VaultClient) RevokeDelegation(ctx context.Context, delegator, delegationID string) error {
	_, err := call(ctx, c.svc, "RevokeDelegation", false, func(ctx context.Context) (*vaultv1.RevokeDelegationResponse, error) {
		return c.rpc.RevokeDelegation(ctx, &vaultv1.RevokeDelegationRequest{Delegator: agentRef(delegator), DelegationId: delegationID})
	})
	return err
}

// ttl resolves a requested delegation TTL against the configuration.
func (c *VaultClient) ttl(method string, ttl time.Duration) (time.Duration, error) {
	switch {
	case ttl == 0:
		return c.defaultTTL, nil
	case ttl < 0 || ttl > c.maxTTL:
		return 0, localError("vault", method, ErrInvalidRequest, "TTL %v: want up to max_delegation_ttl_seconds (%v)", ttl, c.maxTTL)
	}
	return ttl, nil
}

// Health reports the vault's health (seed health): Unhealthy while it is
// sealed.
func (c *VaultClient) Health(ctx context.Context) Health { return c.svc.health(ctx) }

// Stats returns the client's counters.
func (c *VaultClient) Stats() Stats { return c.svc.Stats() }

// Close wipes the cached secrets and releases the client's connection.
func (c *VaultClient) Close() error {
	c.secrets.purge()
	return c.closeConn()
}

func refProto(r SecretRef) *vaultv1.SecretRef { return &vaultv1.SecretRef{Path: r.Path, Name: r.Name} }

func refFrom(r *vaultv1.SecretRef) SecretRef { return SecretRef{Path: r.GetPath(), Name: r.GetName()} }

func secretFrom(s *vaultv1.Secret) Secret {
	m := s.GetMetadata()
	return Secret{
		Ref: refFrom(s.GetReference()), Value: takeValue(s.GetValue()), Version: s.GetVersion(),
		Metadata: SecretMetadata{Type: SecretType(m.GetType()), Description: m.GetDescription(), Labels: m.GetLabels(),
			RotationInterval: m.GetRotation().GetInterval().AsDuration()},
		CreatedAt: timeFrom(s.GetCreatedAt()), ExpiresAt: timeFrom(s.GetExpiresAt()), CreatedBy: s.GetCreatedBy(),
	}
}

func cloneSecret(s Secret) Secret {
	s.Value = s.Value.Clone()
	s.Metadata.Labels = maps.Clone(s.Metadata.Labels)
	return s
}

func metadataProto(m SecretMetadata) *vaultv1.SecretMetadata {
	out := &vaultv1.SecretMetadata{Type: vaultv1.SecretType(m.Type), Description: m.Description, Labels: m.Labels}
	if m.RotationInterval != 0 {
		out.Rotation = &vaultv1.RotationPolicy{Interval: durationpb.New(m.RotationInterval)}
	}
	return out
}

func restrictionsProto(r DelegationRestrictions) *vaultv1.DelegationRestrictions {
	out := &vaultv1.DelegationRestrictions{SingleUse: r.SingleUse, MemoryOnly: r.MemoryOnly, MaxUses: r.MaxUses}
	if r.BoundSandbox != "" {
		out.BoundSandbox = &vaultv1.SandboxId{Id: r.BoundSandbox}
	}
	return out
}

func restrictionsFrom(r *vaultv1.DelegationRestrictions) DelegationRestrictions {
	return DelegationRestrictions{BoundSandbox: r.GetBoundSandbox().GetId(), SingleUse: r.GetSingleUse(),
		MemoryOnly: r.GetMemoryOnly(), MaxUses: r.GetMaxUses()}
}

func delegationFrom(d *vaultv1.Delegation) Delegation {
	out := Delegation{
		ID: d.GetId(), Delegator: d.GetDelegator().GetId(), Delegatee: d.GetDelegatee().GetId(),
		CreatedAt: timeFrom(d.GetCreatedAt()), ExpiresAt: timeFrom(d.GetExpiresAt()),
		Restrictions: restrictionsFrom(d.GetRestrictions()), Status: DelegationStatus(d.GetStatus()),
		Uses: d.GetUses(), RevokedAt: timeFrom(d.GetRevokedAt()),
	}
	for _, r := range d.GetSecrets() {
		out.Secrets = append(out.Secrets, refFrom(r))
	}
	return out
}
