package audit

import (
	"fmt"
	"log/slog"
	"time"
)

// Config is the [audit] section of the node's configuration. The seed
// gives the audit service no TOML section of its own (§9 only fixes the
// API), so the names follow the other services'. A zero field takes its
// default, so Config{} is a working laptop setup.
type Config struct {
	// Origin names the log in its checkpoints: a schema-less URL such as
	// "audit.example.com/prod" (C2SP tlog-checkpoint). Empty means the one
	// the log already has, or on first open "creto.local/audit/<random>".
	// A log's origin never changes: opening with a different one fails.
	Origin string `toml:"origin"`
	// CheckpointInterval is how often a new checkpoint is signed while the
	// log grows. A proof for a record not yet covered asks for one at once,
	// so this only bounds how stale the latest checkpoint gets.
	CheckpointInterval time.Duration `toml:"checkpoint_interval"`
	// MaxRecordBytes caps one record's encoding (at most 64 KiB).
	MaxRecordBytes int `toml:"max_record_bytes"`
	// MaxBatch caps the records of one LogBatch, which is all or nothing.
	MaxBatch int `toml:"max_batch"`
	// MaxCommitRecords is how many records one group commit gathers from
	// concurrent callers before it commits; whole requests are never
	// split, so one commit can exceed it by up to MaxBatch - 1.
	MaxCommitRecords int `toml:"max_commit_records"`
	// HashCacheBytes is the memory the Merkle tree's hashes may take.
	// Every level that fits is kept in memory, from the top down; proofs
	// read the levels below from the store. A tree of n records has about
	// 2n hashes of 32 bytes, so the default keeps every level of a
	// million-record log in memory, and each tenfold growth past that
	// sends about three more levels to the store.
	HashCacheBytes int `toml:"hash_cache_bytes"`
	// MaxClockSkew is how far past the node's clock a record's timestamp
	// may be; later ones are refused, so an emitter cannot post-date.
	MaxClockSkew time.Duration `toml:"max_clock_skew"`
	// QueryDefaultLimit is the page size of a query with limit 0.
	QueryDefaultLimit int `toml:"query_default_limit"`
	// QueryMaxLimit caps a query's page size.
	QueryMaxLimit int `toml:"query_max_limit"`
	// QueryMaxScan caps the index entries one query call examines; a
	// query whose filters match rarely returns fewer results than its
	// limit, with a cursor to continue, rather than scanning the whole log
	// in one call.
	QueryMaxScan int `toml:"query_max_scan"`

	// Authorizer decides cross-identity access; nil means SelfOnly.
	Authorizer Authorizer `toml:"-"`
	// Signatures, when set, verifies every record's Signature against its
	// Who (nhi.Service fits) and refuses records whose signature fails;
	// nil stores signatures unchecked.
	Signatures SignatureVerifier `toml:"-"`
	// Logger receives the service's own diagnostics; nil means
	// slog.Default().
	Logger *slog.Logger `toml:"-"`
}

// DefaultConfig returns the defaults every zero field of a Config takes.
func DefaultConfig() Config {
	return Config{
		CheckpointInterval: time.Second,
		MaxRecordBytes:     16 << 10,
		MaxBatch:           1000,
		MaxCommitRecords:   4096,
		HashCacheBytes:     64 << 20,
		MaxClockSkew:       time.Minute,
		QueryDefaultLimit:  100,
		QueryMaxLimit:      1000,
		QueryMaxScan:       10000,
	}
}

// resolve fills zero fields with defaults and rejects values that cannot
// work, so a typo in a config file fails at start rather than at first use.
func (c Config) resolve() (Config, error) {
	d := DefaultConfig()
	for _, f := range []struct{ v, def *int }{
		{&c.MaxRecordBytes, &d.MaxRecordBytes},
		{&c.MaxBatch, &d.MaxBatch},
		{&c.MaxCommitRecords, &d.MaxCommitRecords},
		{&c.HashCacheBytes, &d.HashCacheBytes},
		{&c.QueryDefaultLimit, &d.QueryDefaultLimit},
		{&c.QueryMaxLimit, &d.QueryMaxLimit},
		{&c.QueryMaxScan, &d.QueryMaxScan},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	for _, f := range []struct{ v, def *time.Duration }{
		{&c.CheckpointInterval, &d.CheckpointInterval},
		{&c.MaxClockSkew, &d.MaxClockSkew},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	if c.Authorizer == nil {
		c.Authorizer = SelfOnly{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.Origin != "" && !validOrigin(c.Origin):
		return c, fmt.Errorf("audit: config: origin %s must be 1..%d printable characters without spaces or '+': %w", quote(c.Origin), maxOriginLen, ErrInvalidArgument)
	case c.CheckpointInterval < time.Millisecond:
		return c, fmt.Errorf("audit: config: checkpoint interval %v is under a millisecond: %w", c.CheckpointInterval, ErrInvalidArgument)
	case c.MaxRecordBytes < 256 || c.MaxRecordBytes > maxEncodedRecordSize:
		return c, fmt.Errorf("audit: config: max record bytes %d outside 256..%d: %w", c.MaxRecordBytes, maxEncodedRecordSize, ErrInvalidArgument)
	case c.MaxBatch < 1 || c.MaxCommitRecords < 1:
		return c, fmt.Errorf("audit: config: batch sizes must be positive: %w", ErrInvalidArgument)
	case c.HashCacheBytes < 0:
		return c, fmt.Errorf("audit: config: negative hash cache: %w", ErrInvalidArgument)
	case c.MaxClockSkew < 0:
		return c, fmt.Errorf("audit: config: negative clock skew: %w", ErrInvalidArgument)
	case c.QueryDefaultLimit < 1 || c.QueryMaxLimit < c.QueryDefaultLimit || c.QueryMaxScan < c.QueryMaxLimit:
		return c, fmt.Errorf("audit: config: query limits must satisfy 1 <= default (%d) <= max (%d) <= max scan (%d): %w",
			c.QueryDefaultLimit, c.QueryMaxLimit, c.QueryMaxScan, ErrInvalidArgument)
	}
	return c, nil
}
