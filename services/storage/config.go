package storage

import (
	"fmt"
	"strings"
	"time"

	"github.com/creto-systems/creto/services/crypto"
)

// Config is the [storage] section of the node's configuration (seed §3.6).
// A zero field takes its default, so Config{} is a working laptop setup.
//
// The seed's endpoint, timeout_ms, connect_timeout_ms and max_retries
// configure a remote client and belong to the client package.
type Config struct {
	// ChunkSizeBytes is the plaintext size of each encrypted segment, and
	// so of each buffer a stream holds (two per store, one per retrieve).
	// 64 KiB to 16 MiB.
	ChunkSizeBytes int `toml:"chunk_size_bytes"`
	// MaxConcurrentStreams bounds the stores and retrieves in progress at
	// once; more wait for a slot (or their context). It bounds memory:
	// each stream holds at most 2 × ChunkSizeBytes.
	MaxConcurrentStreams int `toml:"max_concurrent_streams"`
	// DefaultAlgorithm is the data AEAD: "aes-256-gcm" or
	// "chacha20-poly1305".
	DefaultAlgorithm string `toml:"default_algorithm"`
	// DefaultKeyWrap is the KEM data keys are wrapped with, which must be
	// the algorithm of the owners' NHI keys: "x-wing" (X25519 +
	// ML-KEM-768). The seed's "ml-kem-768" names only the post-quantum
	// half of the hybrid NHI issues.
	DefaultKeyWrap string `toml:"default_key_wrap"`
	// DefaultQuotaBytes is each owner's quota, counted in plaintext bytes
	// of its versions (swept or deleted versions stop counting).
	DefaultQuotaBytes int64 `toml:"default_quota_bytes"`
	// MaxObjectSizeBytes caps one object.
	MaxObjectSizeBytes int64 `toml:"max_object_size_bytes"`
	// DefaultTTLDays is the lifetime of a version stored with a zero TTL;
	// negative means such versions never expire.
	DefaultTTLDays int `toml:"default_ttl_days"`
	// ComplianceRetentionDays is how long a Compliance version is
	// retained.
	ComplianceRetentionDays int `toml:"compliance_retention_days"`
	// InlineMaxBytes is the largest encrypted object kept in the key-value
	// store itself rather than in a file: one fsync'd commit instead of
	// three fsyncs. Negative keeps every object in a file.
	InlineMaxBytes int `toml:"inline_max_bytes"`
	// SweepInterval is how often expired versions are deleted. They are
	// invisible from the moment they expire; sweeping reclaims their space
	// and quota. Negative disables the sweeper (Sweep still works).
	SweepInterval time.Duration `toml:"sweep_interval"`
	// DefaultPresignTTL is the lifetime of a presigned URL requested with
	// a zero TTL.
	DefaultPresignTTL time.Duration `toml:"default_presign_ttl"`
	// MaxPresignTTL caps a presigned URL's lifetime; at most 7 days, as S3.
	MaxPresignTTL time.Duration `toml:"max_presign_ttl"`
	// PresignPath is the URL path presigned URLs use, where the node's
	// HTTP listener mounts Handler.
	PresignPath string `toml:"presign_path"`
	// DefaultBucket is the bucket of a store that names none.
	DefaultBucket string `toml:"default_bucket"`
}

// Bounds of the configurable values.
const (
	minChunkSize  = 64 << 10
	maxChunkSize  = 16 << 20
	maxPresignTTL = 7 * 24 * time.Hour
	// maxInline keeps inline objects well inside what one store value
	// should carry.
	maxInline = 1 << 20
)

// DefaultConfig returns the defaults every zero field of a Config takes.
func DefaultConfig() Config {
	return Config{
		ChunkSizeBytes:          1 << 20,
		MaxConcurrentStreams:    10,
		DefaultAlgorithm:        crypto.AES256GCM.String(),
		DefaultKeyWrap:          crypto.XWing.String(),
		DefaultQuotaBytes:       10 << 30,
		MaxObjectSizeBytes:      1 << 30,
		DefaultTTLDays:          90,
		ComplianceRetentionDays: 2555,
		InlineMaxBytes:          64 << 10,
		SweepInterval:           time.Minute,
		DefaultPresignTTL:       15 * time.Minute,
		MaxPresignTTL:           maxPresignTTL,
		PresignPath:             "/storage/v1/presigned",
		DefaultBucket:           "default",
	}
}

// settings is a resolved Config with its algorithm names parsed.
type settings struct {
	Config
	aead, kem crypto.Algorithm
}

// resolve fills zero fields with defaults and rejects values that cannot
// work, so a typo in a config file fails at start rather than at first use.
func (c Config) resolve() (settings, error) {
	d := DefaultConfig()
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setInt(&c.ChunkSizeBytes, d.ChunkSizeBytes)
	setInt(&c.MaxConcurrentStreams, d.MaxConcurrentStreams)
	setInt(&c.DefaultTTLDays, d.DefaultTTLDays)
	setInt(&c.ComplianceRetentionDays, d.ComplianceRetentionDays)
	setInt(&c.InlineMaxBytes, d.InlineMaxBytes)
	for _, f := range []struct{ v, def *int64 }{
		{&c.DefaultQuotaBytes, &d.DefaultQuotaBytes},
		{&c.MaxObjectSizeBytes, &d.MaxObjectSizeBytes},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	for _, f := range []struct{ v, def *time.Duration }{
		{&c.SweepInterval, &d.SweepInterval},
		{&c.DefaultPresignTTL, &d.DefaultPresignTTL},
		{&c.MaxPresignTTL, &d.MaxPresignTTL},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	for _, f := range []struct{ v, def *string }{
		{&c.DefaultAlgorithm, &d.DefaultAlgorithm},
		{&c.DefaultKeyWrap, &d.DefaultKeyWrap},
		{&c.PresignPath, &d.PresignPath},
		{&c.DefaultBucket, &d.DefaultBucket},
	} {
		if *f.v == "" {
			*f.v = *f.def
		}
	}
	s := settings{Config: c}
	bad := func(format string, args ...any) (settings, error) {
		return s, fmt.Errorf("storage: config: %s: %w", fmt.Sprintf(format, args...), ErrInvalidArgument)
	}
	var err error
	if s.aead, err = crypto.ParseAlgorithm(c.DefaultAlgorithm); err != nil || (s.aead != crypto.AES256GCM && s.aead != crypto.ChaCha20Poly1305) {
		return bad("default_algorithm %s is not aes-256-gcm or chacha20-poly1305", quote(c.DefaultAlgorithm))
	}
	if s.kem, err = crypto.ParseAlgorithm(c.DefaultKeyWrap); err != nil || s.kem.Kind() != crypto.KindKEM {
		return bad("default_key_wrap %s is not a KEM", quote(c.DefaultKeyWrap))
	}
	switch {
	case c.ChunkSizeBytes < minChunkSize || c.ChunkSizeBytes > maxChunkSize:
		return bad("chunk_size_bytes %d outside %d..%d", c.ChunkSizeBytes, minChunkSize, maxChunkSize)
	case c.MaxConcurrentStreams < 1:
		return bad("max_concurrent_streams %d is not positive", c.MaxConcurrentStreams)
	case c.DefaultQuotaBytes < 1 || c.MaxObjectSizeBytes < 1:
		return bad("quota and maximum object size must be positive")
	case c.ComplianceRetentionDays < 1:
		return bad("compliance_retention_days %d is not positive", c.ComplianceRetentionDays)
	case c.InlineMaxBytes > maxInline:
		return bad("inline_max_bytes %d over %d", c.InlineMaxBytes, maxInline)
	case c.DefaultPresignTTL < time.Second || c.MaxPresignTTL < c.DefaultPresignTTL || c.MaxPresignTTL > maxPresignTTL:
		return bad("presign TTLs must satisfy 1s <= default (%v) <= max (%v) <= 7 days", c.DefaultPresignTTL, c.MaxPresignTTL)
	case !strings.HasPrefix(c.PresignPath, "/") || strings.ContainsAny(c.PresignPath, "?#"):
		return bad("presign_path %s must be an absolute URL path", quote(c.PresignPath))
	}
	if err := validateBucket(c.DefaultBucket); err != nil {
		return bad("default_bucket: %v", err)
	}
	return s, nil
}

// defaultTTL is the lifetime of a version stored with a zero TTL, zero for
// none.
func (s settings) defaultTTL() time.Duration {
	if s.DefaultTTLDays < 0 {
		return 0
	}
	return time.Duration(s.DefaultTTLDays) * 24 * time.Hour
}

func (s settings) retention() time.Duration {
	return time.Duration(s.ComplianceRetentionDays) * 24 * time.Hour
}
