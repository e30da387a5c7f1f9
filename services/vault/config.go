package vault

import (
	"fmt"
	"log/slog"
	"time"
)

// Config is the [vault] section of the node's configuration (seed §5.7).
// A zero field takes its default, so Config{} is a working laptop setup.
//
// The seed's endpoint, tls_* , timeout_ms, connect_timeout_ms and
// max_retries configure a remote client and belong to the client package;
// mTLS is the gRPC server's concern. The fields below are what the
// service itself enforces.
type Config struct {
	// DefaultDelegationTTLSeconds is the lifetime of a delegation, and of
	// delegated secrets, requested with a zero TTL.
	DefaultDelegationTTLSeconds int `toml:"default_delegation_ttl_seconds"`
	// MaxDelegationTTLSeconds caps every delegation TTL; a longer one is
	// refused, not shortened, so a caller never holds less than it thinks.
	MaxDelegationTTLSeconds int `toml:"max_delegation_ttl_seconds"`
	// RequireMemoryOnly (default true) makes every delegation memory-only,
	// whatever its request says: runtimes must never write delegated
	// secrets to disk. nil means the default.
	RequireMemoryOnly *bool `toml:"require_memory_only"`
	// AuditAllAccess (default true) records every access. When false,
	// successful reads that return no value to a sandbox (metadata, lists,
	// schedules) and successful GetSecret/GetSecrets calls are not
	// recorded; writes, delegations, delegated fetches, denials and
	// failures always are. nil means the default.
	AuditAllAccess *bool `toml:"audit_all_access"`

	// MaxVersions is how many versions of a secret are kept; writing one
	// more destroys the oldest (KV v2's max_versions).
	MaxVersions int `toml:"max_versions"`
	// MaxValueBytes caps a secret value.
	MaxValueBytes int `toml:"max_value_bytes"`
	// MaxRefs caps the references of one GetSecrets, delegation or
	// delegated fetch.
	MaxRefs int `toml:"max_refs"`
	// MaxLabels caps a secret's labels.
	MaxLabels int `toml:"max_labels"`
	// MinRotationInterval is the shortest automatic rotation interval a
	// secret may ask for.
	MinRotationInterval time.Duration `toml:"min_rotation_interval"`
	// SchedulerInterval is how often the node looks for rotations that
	// are due and delegations past their retention.
	SchedulerInterval time.Duration `toml:"scheduler_interval"`
	// DelegationRetention is how long a delegation record is kept after
	// it expires, so late callers get ErrDelegationExpired rather than
	// ErrDelegationNotFound and audits can still read it.
	DelegationRetention time.Duration `toml:"delegation_retention"`

	// Authorizer decides accesses by agents other than a secret's owner;
	// nil means OwnerOnly.
	Authorizer Authorizer `toml:"-"`
	// Recorder receives every access; nil means the vault's own durable
	// log in the node's store, which GetAccessLog reads.
	Recorder AccessRecorder `toml:"-"`
	// Generators make new values for RotateSecret calls without a value
	// and for scheduled rotations, by secret type. They are added to (and
	// override) DefaultGenerators.
	Generators map[SecretType]Generator `toml:"-"`
	// Log receives the vault's own reports (seal changes, failed scheduled
	// rotations); nil means slog.Default(). It never receives a value.
	Log *slog.Logger `toml:"-"`
}

// Upper bounds of the record format, and so of Config.
const (
	maxValueBytes = 1 << 20
	maxRefs       = 1000
	maxLabels     = 256
	maxVersions   = 1000
)

// DefaultConfig returns the defaults every zero field of a Config takes.
func DefaultConfig() Config {
	yes := true
	return Config{
		DefaultDelegationTTLSeconds: 3600,
		MaxDelegationTTLSeconds:     86400,
		RequireMemoryOnly:           &yes,
		AuditAllAccess:              &yes,
		MaxVersions:                 10,
		MaxValueBytes:               64 << 10,
		MaxRefs:                     100,
		MaxLabels:                   32,
		MinRotationInterval:         time.Minute,
		SchedulerInterval:           30 * time.Second,
		DelegationRetention:         7 * 24 * time.Hour,
	}
}

// settings is a resolved Config: every field set, bools plain.
type settings struct {
	Config
	defaultTTL, maxTTL time.Duration
	memoryOnly         bool
	auditAll           bool
	generators         map[SecretType]Generator
}

// resolve fills zero fields with defaults and rejects values that cannot
// work, so a typo in a config file fails at Open rather than at first use.
func (c Config) resolve() (settings, error) {
	d := DefaultConfig()
	for _, f := range []struct{ v, def *int }{
		{&c.DefaultDelegationTTLSeconds, &d.DefaultDelegationTTLSeconds},
		{&c.MaxDelegationTTLSeconds, &d.MaxDelegationTTLSeconds},
		{&c.MaxVersions, &d.MaxVersions},
		{&c.MaxValueBytes, &d.MaxValueBytes},
		{&c.MaxRefs, &d.MaxRefs},
		{&c.MaxLabels, &d.MaxLabels},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	for _, f := range []struct{ v, def *time.Duration }{
		{&c.MinRotationInterval, &d.MinRotationInterval},
		{&c.SchedulerInterval, &d.SchedulerInterval},
		{&c.DelegationRetention, &d.DelegationRetention},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	if c.RequireMemoryOnly == nil {
		c.RequireMemoryOnly = d.RequireMemoryOnly
	}
	if c.AuditAllAccess == nil {
		c.AuditAllAccess = d.AuditAllAccess
	}
	if c.Authorizer == nil {
		c.Authorizer = OwnerOnly{}
	}
	s := settings{
		Config:     c,
		defaultTTL: time.Duration(c.DefaultDelegationTTLSeconds) * time.Second,
		maxTTL:     time.Duration(c.MaxDelegationTTLSeconds) * time.Second,
		memoryOnly: *c.RequireMemoryOnly,
		auditAll:   *c.AuditAllAccess,
		generators: DefaultGenerators(),
	}
	for t, g := range c.Generators {
		if !t.valid() || g == nil {
			return s, fmt.Errorf("vault: config: generator for %v: %w", t, ErrInvalidArgument)
		}
		s.generators[t] = g
	}
	switch {
	case c.DefaultDelegationTTLSeconds < 1 || c.MaxDelegationTTLSeconds < c.DefaultDelegationTTLSeconds:
		return s, fmt.Errorf("vault: config: delegation TTLs must satisfy 1 <= default (%d) <= max (%d) seconds: %w",
			c.DefaultDelegationTTLSeconds, c.MaxDelegationTTLSeconds, ErrInvalidArgument)
	case c.MaxVersions < 1 || c.MaxVersions > maxVersions:
		return s, fmt.Errorf("vault: config: max_versions %d outside 1..%d: %w", c.MaxVersions, maxVersions, ErrInvalidArgument)
	case c.MaxValueBytes < 1 || c.MaxValueBytes > maxValueBytes:
		return s, fmt.Errorf("vault: config: max_value_bytes %d outside 1..%d: %w", c.MaxValueBytes, maxValueBytes, ErrInvalidArgument)
	case c.MaxRefs < 1 || c.MaxRefs > maxRefs:
		return s, fmt.Errorf("vault: config: max_refs %d outside 1..%d: %w", c.MaxRefs, maxRefs, ErrInvalidArgument)
	case c.MaxLabels < 0 || c.MaxLabels > maxLabels:
		return s, fmt.Errorf("vault: config: max_labels %d outside 0..%d: %w", c.MaxLabels, maxLabels, ErrInvalidArgument)
	case c.MinRotationInterval < time.Second:
		return s, fmt.Errorf("vault: config: min_rotation_interval %v is under a second: %w", c.MinRotationInterval, ErrInvalidArgument)
	case c.SchedulerInterval < 10*time.Millisecond:
		return s, fmt.Errorf("vault: config: scheduler_interval %v is under 10ms: %w", c.SchedulerInterval, ErrInvalidArgument)
	case c.DelegationRetention < 0:
		return s, fmt.Errorf("vault: config: negative delegation_retention: %w", ErrInvalidArgument)
	}
	return s, nil
}
