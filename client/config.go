package client

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// ErrConfig is wrapped by every configuration error: a value that cannot
// work is refused when a client is built, never discovered at the first
// call.
var ErrConfig = errors.New("invalid client configuration")

// Config is the client side of the seed's TOML sections (§2.6, §3.6,
// §4.7, §5.7, §6.5, and [audit] and [consensus], which the seed leaves
// out), one struct per service, in one file. Every zero field takes the
// seed's default, so DefaultConfig() and Config{} configure the same
// clients.
//
// The top-level Transport keys (endpoint, tls_*) apply to every section
// that does not set its own, so a file for one node names it once.
type Config struct {
	Transport
	Authz  AuthzConfig  `toml:"authz"`
	NHI    NHIConfig    `toml:"nhi"`
	Memory MemoryConfig `toml:"memory"`
	Vault  VaultConfig  `toml:"vault"`

	Storage   StorageConfig   `toml:"storage"`
	Audit     AuditConfig     `toml:"audit"`
	Consensus ConsensusConfig `toml:"consensus"`
}

// Transport says where a service is and how the connection is secured.
type Transport struct {
	// Endpoint is the node's gRPC address, "host:port" or
	// "grpc://host:port".
	Endpoint string `toml:"endpoint"`
	// TLSEnabled turns TLS on (the default). Off is plaintext, for a node
	// started with --plaintext on loopback; a token is then refused.
	TLSEnabled *bool `toml:"tls_enabled"`
	// TLSCA is the CA certificate (PEM) that signed the node's; empty
	// trusts the system's roots.
	TLSCA string `toml:"tls_ca"`
	// TLSCert and TLSKey are an operator's client certificate and key
	// (PEM). Leave them empty to call as an agent with a token
	// (WithBearerToken).
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// TLSServerName is the name the node's certificate must carry; empty
	// means the endpoint's host.
	TLSServerName string `toml:"tls_server_name"`
}

// ServiceConfig holds the keys every service's section has: where it is,
// its timeouts, its retries and its circuit breaker.
type ServiceConfig struct {
	Transport
	// TimeoutMS bounds each attempt of a call once connected.
	TimeoutMS int `toml:"timeout_ms"`
	// ConnectTimeoutMS bounds how long a call waits for a connection
	// before it fails as unavailable.
	ConnectTimeoutMS int `toml:"connect_timeout_ms"`
	// MaxRetries is how many times a call that failed as unavailable or
	// timed out is sent again (never a denial, an invalid request, or a
	// write the node could apply twice). Unset means the default; 0 means
	// none.
	MaxRetries *int `toml:"max_retries"`
	// RetryBackoffMS is the first wait before a retry; each next one grows
	// by half, with ±50% jitter.
	RetryBackoffMS int `toml:"retry_backoff_ms"`
	// CircuitBreakerEnabled turns the circuit breaker on (the default).
	CircuitBreakerEnabled *bool `toml:"circuit_breaker_enabled"`
	// FailureThreshold is how many consecutive failures open the circuit.
	FailureThreshold int `toml:"failure_threshold"`
	// ResetTimeoutSeconds is how long the circuit stays open before it
	// lets probes through.
	ResetTimeoutSeconds int `toml:"reset_timeout_seconds"`
	// HalfOpenRequests is how many probes a half-open circuit admits; that
	// many successes close it, one failure opens it again.
	HalfOpenRequests int `toml:"half_open_requests"`
}

// AuthzConfig is the [authz] section (seed §2.6).
type AuthzConfig struct {
	ServiceConfig
	// CacheEnabled keeps the decisions the node gave, to answer with when
	// a later identical check times out (seed §2.5).
	CacheEnabled *bool `toml:"cache_enabled"`
	// CacheTTLSeconds bounds how long a kept decision may be used.
	CacheTTLSeconds int `toml:"cache_ttl_seconds"`
	// CacheMaxEntries bounds the cache; the least recently used go first.
	CacheMaxEntries int `toml:"cache_max_entries"`
	// CacheAllowOnly keeps Allow decisions only (the default).
	CacheAllowOnly *bool `toml:"cache_allow_only"`
}

// NHIConfig is the [nhi] section (seed §6.5).
type NHIConfig struct {
	ServiceConfig
	// DelegationChainMaxDepth is the deepest chain the client accepts as
	// valid, whatever the node allows.
	DelegationChainMaxDepth int `toml:"delegation_chain_max_depth"`
	// CacheEnabled keeps agents and public keys for the TTLs below.
	CacheEnabled *bool `toml:"cache_enabled"`
	// CacheAgentTTLSeconds is how long GetAgent answers from the cache.
	CacheAgentTTLSeconds int `toml:"cache_agent_ttl_seconds"`
	// CacheKeysTTLSeconds is how long GetPublicKeys answers from the cache.
	CacheKeysTTLSeconds int `toml:"cache_keys_ttl_seconds"`
	// CacheMaxEntries bounds each of the two caches.
	CacheMaxEntries int `toml:"cache_max_entries"`
}

// MemoryConfig is the [memory] section (seed §4.7).
type MemoryConfig struct {
	ServiceConfig
	// DefaultLimit is the result count of a query that asks for none.
	DefaultLimit int `toml:"default_limit"`
	// DefaultRelevanceThreshold is the least relevance of a query that
	// sets none. Unset leaves it to the node, which knows its embedder's
	// scale (the seed's 0.7 suits text-embedding-3-small, not the node's
	// local hashing embedder).
	DefaultRelevanceThreshold *float64 `toml:"default_relevance_threshold"`
	// MaxQueryLimit is the most results a query may ask for.
	MaxQueryLimit int `toml:"max_query_limit"`
	// CacheEnabled keeps query and oversight-context answers, to degrade
	// to when memory is unavailable or slow.
	CacheEnabled *bool `toml:"cache_enabled"`
	// CacheTTLSeconds bounds how long a kept answer may be used.
	CacheTTLSeconds int `toml:"cache_ttl_seconds"`
	// CacheMaxEntries bounds the cache.
	CacheMaxEntries int `toml:"cache_max_entries"`
}

// VaultConfig is the [vault] section (seed §5.7).
type VaultConfig struct {
	ServiceConfig
	// DefaultDelegationTTLSeconds is the TTL asked for when a delegation
	// or a delegated fetch gives none.
	DefaultDelegationTTLSeconds int `toml:"default_delegation_ttl_seconds"`
	// MaxDelegationTTLSeconds is the longest TTL the client asks for; a
	// longer one is refused before any call.
	MaxDelegationTTLSeconds int `toml:"max_delegation_ttl_seconds"`
	// RequireMemoryOnly makes every delegation the client creates
	// memory-only (the default).
	RequireMemoryOnly *bool `toml:"require_memory_only"`
	// CacheEnabled keeps secrets read before, in memory only, to answer
	// with while the vault is unavailable (seed §13.3).
	CacheEnabled *bool `toml:"cache_enabled"`
	// CacheTTLSeconds bounds how long a kept secret may be used; a
	// secret's own expiry comes first.
	CacheTTLSeconds int `toml:"cache_ttl_seconds"`
	// CacheMaxEntries bounds the cache.
	CacheMaxEntries int `toml:"cache_max_entries"`
}

// StorageConfig is the [storage] section (seed §3.6).
type StorageConfig struct {
	ServiceConfig
	// ChunkSizeBytes is the size of each chunk StoreStream sends; Store
	// sends data larger than one chunk as a stream too, so that no object
	// meets the node's limit on one message.
	ChunkSizeBytes int `toml:"chunk_size_bytes"`
	// MaxConcurrentStreams bounds the streams the client has open at
	// once; a stream past it waits for one to end (or its context).
	MaxConcurrentStreams int `toml:"max_concurrent_streams"`
	// MaxObjectSizeBytes is the largest object the client sends or reads
	// whole: a larger one is refused before a byte is sent (ErrTooLarge).
	// The node applies its own limit too.
	MaxObjectSizeBytes int64 `toml:"max_object_size_bytes"`
}

// AuditConfig is the [audit] section, the client's own (the seed has
// none): the audit service's keys, and its asynchronous logger's (seed
// §9.3).
type AuditConfig struct {
	ServiceConfig
	// SpoolPath is the file where the logger keeps critical events,
	// fsync'd, until the log has them, and reads them back at start.
	// Empty: Emit refuses critical events, which nothing else keeps
	// across a crash. One process per file.
	SpoolPath string `toml:"spool_path"`
	// BufferSize bounds the ordinary events waiting in memory; when it is
	// full the oldest is dropped and counted (seed §13.1).
	BufferSize int `toml:"buffer_size"`
	// BatchSize caps the records of one LogBatch the logger sends (the
	// node's max_batch is 1000).
	BatchSize int `toml:"batch_size"`
}

// ConsensusConfig is the [consensus] section, the client's own (the seed
// has none).
type ConsensusConfig struct {
	ServiceConfig
	// LocalFallback makes GetTimestamp answer with a timestamp of the
	// client's own clock, flagged Consensus false, when consensus is
	// unavailable or too slow after its retry (seed §8.4; the default).
	// Off, the error is returned.
	LocalFallback *bool `toml:"local_fallback"`
}

// serverKeys are keys of the seed's sections that configure the node, not
// a client (the node reads them from its own file). A client file copied
// from the seed may carry them; they are accepted and have no effect.
var serverKeys = map[string][]string{
	"authz":  {"extensions_enabled", "quota_enforcer_enabled"},
	"nhi":    {"token_validation_enabled"},
	"memory": {"embedding_model", "embedding_dimensions"},
	"vault":  {"audit_all_access"},
	"storage": {"default_algorithm", "default_key_wrap", "default_quota_bytes", "default_ttl_days",
		"compliance_retention_days"},
}

// DefaultConfig returns the seed's values, and the client's own where the
// seed gives none (docs/clients.md marks them).
func DefaultConfig() Config {
	return Config{
		Authz: AuthzConfig{
			ServiceConfig: defaultService("grpc://authz.creto-security.svc:50051", 10, 100, 2, 5, 5, 30, 3),
			CacheEnabled:  ptr(true), CacheTTLSeconds: 60, CacheMaxEntries: 10000, CacheAllowOnly: ptr(true),
		},
		NHI: NHIConfig{
			ServiceConfig:           defaultService("grpc://nhi.creto-platform.svc:50051", 100, 500, 3, 10, 5, 30, 3),
			DelegationChainMaxDepth: 10,
			CacheEnabled:            ptr(true), CacheAgentTTLSeconds: 300, CacheKeysTTLSeconds: 60, CacheMaxEntries: 10000,
		},
		Memory: MemoryConfig{
			ServiceConfig: defaultService("grpc://memory.creto-security.svc:50051", 500, 200, 2, 50, 10, 60, 5),
			DefaultLimit:  10, MaxQueryLimit: 100,
			CacheEnabled: ptr(true), CacheTTLSeconds: 300, CacheMaxEntries: 1000,
		},
		Vault: VaultConfig{
			ServiceConfig:               defaultService("grpc://vault.creto-platform.svc:50051", 1000, 500, 3, 100, 5, 30, 3),
			DefaultDelegationTTLSeconds: 3600, MaxDelegationTTLSeconds: 86400, RequireMemoryOnly: ptr(true),
			CacheEnabled: ptr(true), CacheTTLSeconds: 300, CacheMaxEntries: 1000,
		},
		Storage: StorageConfig{
			ServiceConfig:  defaultService("grpc://storage.creto-security.svc:50051", 5000, 1000, 3, 100, 5, 30, 3),
			ChunkSizeBytes: 1 << 20, MaxConcurrentStreams: 10, MaxObjectSizeBytes: 1 << 30,
		},
		Audit: AuditConfig{
			ServiceConfig: defaultService("grpc://audit.creto-platform.svc:50051", 1000, 500, 2, 50, 5, 30, 3),
			BufferSize:    10000, BatchSize: 500,
		},
		Consensus: ConsensusConfig{
			// "Timeout: retry once, then local timestamp" (seed §8.4).
			ServiceConfig: defaultService("grpc://consensus.creto-platform.svc:50051", 500, 200, 1, 10, 5, 30, 3),
			LocalFallback: ptr(true),
		},
	}
}

func defaultService(endpoint string, timeout, connect, retries, backoff, threshold, reset, halfOpen int) ServiceConfig {
	return ServiceConfig{
		Transport: Transport{Endpoint: endpoint, TLSEnabled: ptr(true)},
		TimeoutMS: timeout, ConnectTimeoutMS: connect, MaxRetries: ptr(retries), RetryBackoffMS: backoff,
		CircuitBreakerEnabled: ptr(true), FailureThreshold: threshold, ResetTimeoutSeconds: reset, HalfOpenRequests: halfOpen,
	}
}

func ptr[T any](v T) *T { return &v }

// ParseConfig reads a client configuration in TOML. A key the client does
// not know is an error, so a typo never passes silently; the node's own
// keys of the seed's sections are accepted and ignored.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&c)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	var unknown []string
	for _, k := range md.Undecoded() {
		if len(k) == 2 && slices.Contains(serverKeys[k[0]], k[1]) {
			continue
		}
		unknown = append(unknown, k.String())
	}
	if len(unknown) > 0 {
		return Config{}, fmt.Errorf("%w: unknown keys %s", ErrConfig, strings.Join(unknown, ", "))
	}
	return c, nil
}

// LoadConfig reads a client configuration file (ParseConfig). Relative
// certificate paths in it are relative to the working directory.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// policy is a ServiceConfig resolved into what a client runs with.
type policy struct {
	target   string // host:port
	tls      bool
	trans    Transport
	timeout  time.Duration
	connect  time.Duration
	retries  int
	backoff  time.Duration
	breaker  bool
	failures uint32
	reset    time.Duration
	halfOpen uint32
}

// resolve fills the zero fields of s from the top-level transport top and
// then from def, and checks every value. section names the TOML section in
// errors.
func (s ServiceConfig) resolve(section string, top Transport, def ServiceConfig) (policy, error) {
	s.Transport = s.Transport.over(top).over(def.Transport)
	setDefault(&s.TimeoutMS, def.TimeoutMS)
	setDefault(&s.ConnectTimeoutMS, def.ConnectTimeoutMS)
	setDefault(&s.MaxRetries, def.MaxRetries)
	setDefault(&s.RetryBackoffMS, def.RetryBackoffMS)
	setDefault(&s.CircuitBreakerEnabled, def.CircuitBreakerEnabled)
	setDefault(&s.FailureThreshold, def.FailureThreshold)
	setDefault(&s.ResetTimeoutSeconds, def.ResetTimeoutSeconds)
	setDefault(&s.HalfOpenRequests, def.HalfOpenRequests)
	bad := func(format string, args ...any) (policy, error) {
		return policy{}, fmt.Errorf("%w: %s.%s", ErrConfig, section, fmt.Sprintf(format, args...))
	}
	target, err := parseEndpoint(s.Endpoint)
	if err != nil {
		return bad("endpoint %q: %v", bound(s.Endpoint), err)
	}
	p := policy{
		target: target, tls: *s.TLSEnabled, trans: s.Transport,
		timeout: ms(s.TimeoutMS), connect: ms(s.ConnectTimeoutMS), retries: *s.MaxRetries, backoff: ms(s.RetryBackoffMS),
		breaker: *s.CircuitBreakerEnabled, reset: time.Duration(s.ResetTimeoutSeconds) * time.Second,
	}
	switch {
	case (s.TLSCert == "") != (s.TLSKey == ""):
		return bad("tls_cert and tls_key go together")
	case !p.tls && (s.TLSCA != "" || s.TLSCert != "" || s.TLSServerName != ""):
		return bad("tls_* keys are set but tls_enabled = false")
	case s.TimeoutMS < 0 || s.TimeoutMS > 600_000:
		return bad("timeout_ms %d: want 1 to 600000", s.TimeoutMS)
	case s.ConnectTimeoutMS < 0 || s.ConnectTimeoutMS > 600_000:
		return bad("connect_timeout_ms %d: want 1 to 600000", s.ConnectTimeoutMS)
	case p.retries < 0 || p.retries > 10:
		return bad("max_retries %d: want 0 to 10", p.retries)
	case s.RetryBackoffMS < 0 || s.RetryBackoffMS > 60_000:
		return bad("retry_backoff_ms %d: want 1 to 60000", s.RetryBackoffMS)
	case s.FailureThreshold < 0 || s.FailureThreshold > 10_000:
		return bad("failure_threshold %d: want 1 to 10000", s.FailureThreshold)
	case s.ResetTimeoutSeconds < 0 || s.ResetTimeoutSeconds > 86_400:
		return bad("reset_timeout_seconds %d: want 1 to 86400", s.ResetTimeoutSeconds)
	case s.HalfOpenRequests < 0 || s.HalfOpenRequests > 10_000:
		return bad("half_open_requests %d: want 1 to 10000", s.HalfOpenRequests)
	}
	p.failures, p.halfOpen = uint32(s.FailureThreshold), uint32(s.HalfOpenRequests)
	return p, nil
}

// over fills t's empty fields from d. The certificate and its key go
// together: a section with neither takes both.
func (t Transport) over(d Transport) Transport {
	setDefault(&t.Endpoint, d.Endpoint)
	setDefault(&t.TLSEnabled, d.TLSEnabled)
	setDefault(&t.TLSCA, d.TLSCA)
	setDefault(&t.TLSServerName, d.TLSServerName)
	if t.TLSCert == "" && t.TLSKey == "" {
		t.TLSCert, t.TLSKey = d.TLSCert, d.TLSKey
	}
	return t
}

// cacheSettings resolves a section's cache keys: enabled, TTL and size.
func cacheSettings(section string, enabled, defEnabled *bool, ttlSeconds, defTTL, entries, defEntries int) (cacheConfig, error) {
	setDefault(&enabled, defEnabled)
	setDefault(&ttlSeconds, defTTL)
	setDefault(&entries, defEntries)
	switch {
	case ttlSeconds < 0 || ttlSeconds > 86_400:
		return cacheConfig{}, fmt.Errorf("%w: %s.cache_ttl_seconds %d: want 1 to 86400", ErrConfig, section, ttlSeconds)
	case entries < 0 || entries > 10_000_000:
		return cacheConfig{}, fmt.Errorf("%w: %s.cache_max_entries %d: want 1 to 10000000", ErrConfig, section, entries)
	}
	return cacheConfig{enabled: *enabled, ttl: time.Duration(ttlSeconds) * time.Second, entries: entries}, nil
}

// cacheConfig is a resolved cache section.
type cacheConfig struct {
	enabled bool
	ttl     time.Duration
	entries int
}

// parseEndpoint accepts "host:port" and "grpc://host:port" and returns
// host:port.
func parseEndpoint(s string) (string, error) {
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		if scheme != "grpc" {
			return "", fmt.Errorf("scheme %q: want grpc:// or none", bound(scheme))
		}
		s = rest
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", err
	}
	if host == "" {
		return "", errors.New("no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("port %q: want 1 to 65535", bound(port))
	}
	return s, nil
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
