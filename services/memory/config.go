package memory

import (
	"fmt"
	"time"
)

// Config is the [memory] section of the node's configuration (seed §4.7).
// A zero field takes its default, so Config{} is a working laptop setup.
//
// The seed's endpoint, timeouts and retries configure a remote client and
// belong to the client package. It has no default_relevance_threshold
// here: a threshold only means something for one embedding model, so it is
// a property of the Embedder (Embedder.Threshold), and the seed's 0.7 is
// the one ExternalEmbedder uses for text-embedding-3-small. Its result
// cache is left out because an exact scan of one agent's memories costs
// about as much as a cache miss would.
type Config struct {
	// Embedder turns text into vectors; nil means a HashingEmbedder of
	// DefaultHashDimensions.
	Embedder Embedder `toml:"-"`
	// Authorizer decides cross-agent access; nil means SelfOnly.
	Authorizer Authorizer `toml:"-"`
	// DefaultLimit is the result count of a query with limit 0.
	DefaultLimit int `toml:"default_limit"`
	// MaxQueryLimit caps a query's limit; a larger one is refused with
	// ErrLimitExceeded rather than silently cut, so a caller never
	// mistakes a truncated answer for a complete one.
	MaxQueryLimit int `toml:"max_query_limit"`
	// MaxBatch caps the memories of one StoreBatch, which commits in one
	// atomic write.
	MaxBatch int `toml:"max_batch"`
	// MaxContentBytes caps a memory's content.
	MaxContentBytes int `toml:"max_content_bytes"`
	// MaxMetadataEntries caps a memory's metadata map.
	MaxMetadataEntries int `toml:"max_metadata_entries"`
	// MaxMetadataBytes caps the length of each metadata key and value.
	MaxMetadataBytes int `toml:"max_metadata_bytes"`
	// MaxTTL caps a memory's time to live; 0 TTL on a memory still means
	// it never expires.
	MaxTTL time.Duration `toml:"max_ttl"`
	// SweepInterval is how often expired memories are deleted from the
	// store. Expired memories are never returned in between; sweeping only
	// reclaims their space. A negative value disables the sweeper (Sweep
	// can still be called).
	SweepInterval time.Duration `toml:"sweep_interval"`
	// OversightLimit caps the relevant memories an oversight context
	// carries (the seed uses 5).
	OversightLimit int `toml:"oversight_limit"`
	// OversightMaxBytes caps the content an oversight context carries in
	// total, so an approver's screen and a policy's context stay small
	// whatever an agent wrote.
	OversightMaxBytes int `toml:"oversight_max_bytes"`
	// ApproximateAbove is the number of memories past which an agent also
	// gets an approximate (IVF) index, built in the background, and
	// queries stop scanning all its memories (QueryStats.Exact false).
	// Below it search is exact. A negative value keeps every agent exact.
	ApproximateAbove int `toml:"approximate_above"`
}

// DefaultConfig returns the defaults every zero field of a Config takes.
func DefaultConfig() Config {
	return Config{
		DefaultLimit:       10,
		MaxQueryLimit:      100,
		MaxBatch:           1000,
		MaxContentBytes:    64 << 10,
		MaxMetadataEntries: 32,
		MaxMetadataBytes:   1024,
		MaxTTL:             10 * 365 * 24 * time.Hour,
		SweepInterval:      time.Minute,
		OversightLimit:     5,
		OversightMaxBytes:  16 << 10,
		ApproximateAbove:   20_000,
	}
}

// resolve fills zero fields with defaults and rejects values that cannot
// work, so a typo in a config file fails at start rather than at first use.
func (c Config) resolve() (Config, error) {
	d := DefaultConfig()
	if c.Embedder == nil {
		c.Embedder = NewHashingEmbedder(DefaultHashDimensions)
	}
	if c.Authorizer == nil {
		c.Authorizer = SelfOnly{}
	}
	for _, f := range []struct{ v, def *int }{
		{&c.DefaultLimit, &d.DefaultLimit},
		{&c.MaxQueryLimit, &d.MaxQueryLimit},
		{&c.MaxBatch, &d.MaxBatch},
		{&c.MaxContentBytes, &d.MaxContentBytes},
		{&c.MaxMetadataEntries, &d.MaxMetadataEntries},
		{&c.MaxMetadataBytes, &d.MaxMetadataBytes},
		{&c.OversightLimit, &d.OversightLimit},
		{&c.OversightMaxBytes, &d.OversightMaxBytes},
		{&c.ApproximateAbove, &d.ApproximateAbove},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = d.MaxTTL
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = d.SweepInterval
	}
	dims := c.Embedder.Dimensions()
	switch {
	case c.DefaultLimit < 1 || c.MaxQueryLimit < c.DefaultLimit:
		return c, fmt.Errorf("memory: config: limits must satisfy 1 <= default (%d) <= max (%d): %w", c.DefaultLimit, c.MaxQueryLimit, ErrInvalidArgument)
	case c.MaxBatch < 1 || c.MaxContentBytes < 1 || c.MaxMetadataEntries < 0 || c.MaxMetadataBytes < 1:
		return c, fmt.Errorf("memory: config: batch, content and metadata limits must be positive: %w", ErrInvalidArgument)
	case c.MaxMetadataEntries > maxMetadataEntries || c.MaxMetadataBytes > maxFieldBytes || c.MaxContentBytes > maxContentBytes:
		return c, fmt.Errorf("memory: config: limits exceed what the record format holds: %w", ErrInvalidArgument)
	case c.MaxTTL < 0:
		return c, fmt.Errorf("memory: config: negative max TTL: %w", ErrInvalidArgument)
	case c.OversightLimit < 1 || c.OversightLimit > c.MaxQueryLimit || c.OversightMaxBytes < 1:
		return c, fmt.Errorf("memory: config: oversight limits must be positive and within max_query_limit: %w", ErrInvalidArgument)
	case dims < 1 || dims > maxDimensions:
		return c, fmt.Errorf("memory: config: embedder dimension %d outside 1..%d: %w", dims, maxDimensions, ErrInvalidArgument)
	case c.Embedder.Model() == "" || len(c.Embedder.Model()) > maxFieldBytes:
		return c, fmt.Errorf("memory: config: embedder model name must be 1..%d bytes: %w", maxFieldBytes, ErrInvalidArgument)
	}
	return c, nil
}
