package nhi

import (
	"fmt"
	"time"
)

// Config is the [nhi] section of the node's configuration (seed §6.5).
// A zero field takes its default, so Config{} is a working laptop setup.
//
// The seed's endpoint, timeout_ms and max_retries configure a remote
// client and belong to the client package. Its cache TTLs are not needed
// here: this service invalidates its caches on every write it makes, so a
// cached key or identity is never stale. token_validation_enabled has no
// counterpart on purpose: an identity service that can be told to accept
// any token fails open.
type Config struct {
	// DefaultTokenTTL is the lifetime of a token issued with ttl 0.
	DefaultTokenTTL time.Duration `toml:"default_token_ttl"`
	// MaxTokenTTL caps the lifetime IssueToken grants.
	MaxTokenTTL time.Duration `toml:"max_token_ttl"`
	// DelegationChainMaxDepth caps the number of links in a delegation
	// chain (at most MaxChainLinks). The engine's default request limit
	// accepts chains of up to 10.
	DelegationChainMaxDepth int `toml:"delegation_chain_max_depth"`
	// DefaultDelegationTTL is the lifetime of a delegation created with a
	// zero expiry (shortened to its parent's, if that ends sooner).
	DefaultDelegationTTL time.Duration `toml:"default_delegation_ttl"`
	// MaxDelegationTTL caps how far ahead a delegation may expire.
	MaxDelegationTTL time.Duration `toml:"max_delegation_ttl"`
	// KeyValidity is how long a newly generated agent key stays valid; an
	// agent's keys must be rotated before then.
	KeyValidity time.Duration `toml:"key_validity"`
	// TokenCacheSize bounds the cache of verified tokens. Each entry holds
	// a hash and a few fields, about 200 bytes.
	TokenCacheSize int `toml:"token_cache_size"`
	// DelegationCacheSize bounds the cache of delegation signatures already
	// verified (about 150 bytes each). A hit saves a 70 µs verification;
	// expiry, revocation and key validity are still checked on every use.
	DelegationCacheSize int `toml:"delegation_cache_size"`
	// KeyCacheSize bounds how many agents' parsed keys stay in memory.
	// Parsed post-quantum keys are large: about 55 KiB per agent, 170 KiB
	// once its private key has been unsealed to sign, so the default 256
	// costs at most about 45 MiB. A miss costs one store read and about
	// 100 µs of parsing (plus unsealing, to sign).
	KeyCacheSize int `toml:"key_cache_size"`
	// EntityType is the Cedar entity type agents appear as.
	EntityType string `toml:"entity_type"`
	// OwnerEntityType is the Cedar entity type of an agent's owner
	// attribute.
	OwnerEntityType string `toml:"owner_entity_type"`
	// Events, when set, is told of every committed change (events.go):
	// the audit trail's feed. It must not block.
	Events EventHandler `toml:"-"`
}

// MaxChainLinks is the most links the delegation format can carry, and so
// the highest DelegationChainMaxDepth a node can be configured with.
const MaxChainLinks = 32

// DefaultConfig returns the defaults every zero field of a Config takes.
func DefaultConfig() Config {
	return Config{
		DefaultTokenTTL:         15 * time.Minute,
		MaxTokenTTL:             24 * time.Hour,
		DelegationChainMaxDepth: 10,
		DefaultDelegationTTL:    time.Hour,
		MaxDelegationTTL:        24 * time.Hour,
		KeyValidity:             90 * 24 * time.Hour,
		TokenCacheSize:          10000,
		DelegationCacheSize:     10000,
		KeyCacheSize:            256,
		EntityType:              "Agent",
		OwnerEntityType:         "User",
	}
}

// resolve fills zero fields with defaults and rejects values that cannot
// work, so a typo in a config file fails at start rather than at first use.
func (c Config) resolve() (Config, error) {
	d := DefaultConfig()
	fill := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	fill(&c.DefaultTokenTTL, d.DefaultTokenTTL)
	fill(&c.MaxTokenTTL, d.MaxTokenTTL)
	fill(&c.DefaultDelegationTTL, d.DefaultDelegationTTL)
	fill(&c.MaxDelegationTTL, d.MaxDelegationTTL)
	fill(&c.KeyValidity, d.KeyValidity)
	if c.DelegationChainMaxDepth == 0 {
		c.DelegationChainMaxDepth = d.DelegationChainMaxDepth
	}
	if c.TokenCacheSize == 0 {
		c.TokenCacheSize = d.TokenCacheSize
	}
	if c.DelegationCacheSize == 0 {
		c.DelegationCacheSize = d.DelegationCacheSize
	}
	if c.KeyCacheSize == 0 {
		c.KeyCacheSize = d.KeyCacheSize
	}
	if c.EntityType == "" {
		c.EntityType = d.EntityType
	}
	if c.OwnerEntityType == "" {
		c.OwnerEntityType = d.OwnerEntityType
	}
	switch {
	case c.DefaultTokenTTL < time.Second || c.MaxTokenTTL < c.DefaultTokenTTL:
		return c, fmt.Errorf("nhi: config: token TTLs must satisfy 1s <= default (%v) <= max (%v): %w", c.DefaultTokenTTL, c.MaxTokenTTL, ErrInvalidArgument)
	case c.DefaultDelegationTTL < time.Second || c.MaxDelegationTTL < c.DefaultDelegationTTL:
		return c, fmt.Errorf("nhi: config: delegation TTLs must satisfy 1s <= default (%v) <= max (%v): %w", c.DefaultDelegationTTL, c.MaxDelegationTTL, ErrInvalidArgument)
	case c.KeyValidity < time.Minute:
		return c, fmt.Errorf("nhi: config: key validity %v is under a minute: %w", c.KeyValidity, ErrInvalidArgument)
	case c.DelegationChainMaxDepth < 1 || c.DelegationChainMaxDepth > MaxChainLinks:
		return c, fmt.Errorf("nhi: config: delegation chain max depth %d outside 1..%d: %w", c.DelegationChainMaxDepth, MaxChainLinks, ErrInvalidArgument)
	case c.TokenCacheSize < 0 || c.DelegationCacheSize < 0 || c.KeyCacheSize < 0:
		return c, fmt.Errorf("nhi: config: negative cache size: %w", ErrInvalidArgument)
	}
	return c, nil
}
