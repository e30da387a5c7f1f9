package client

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creto-systems/creto/internal/pki"
)

// The seed's sections, as the seed prints them (§2.6, §4.7, §5.7, §6.5).
const seedSections = `
[authz]
endpoint = "grpc://authz.creto-security.svc:50051"
timeout_ms = 10          # 10ms max for inline checks
connect_timeout_ms = 100
max_retries = 2
retry_backoff_ms = 5
cache_enabled = true
cache_ttl_seconds = 60
cache_max_entries = 10000
cache_allow_only = true   # Only cache Allow decisions
circuit_breaker_enabled = true
failure_threshold = 5
reset_timeout_seconds = 30
extensions_enabled = true
quota_enforcer_enabled = true

[memory]
endpoint = "grpc://memory.creto-security.svc:50051"
timeout_ms = 500
connect_timeout_ms = 200
max_retries = 2
default_limit = 10
default_relevance_threshold = 0.7
max_query_limit = 100
embedding_model = "text-embedding-3-small"
embedding_dimensions = 1536
cache_enabled = true
cache_ttl_seconds = 300
cache_max_entries = 1000

[vault]
endpoint = "grpc://vault.creto-platform.svc:50051"
tls_enabled = true
tls_cert = "/etc/creto/certs/client.crt"
tls_key = "/etc/creto/certs/client.key"
tls_ca = "/etc/creto/certs/ca.crt"
timeout_ms = 1000
connect_timeout_ms = 500
max_retries = 3
default_delegation_ttl_seconds = 3600  # 1 hour
max_delegation_ttl_seconds = 86400     # 24 hours
require_memory_only = true
audit_all_access = true

[nhi]
endpoint = "grpc://nhi.creto-platform.svc:50051"
timeout_ms = 100
max_retries = 3
token_validation_enabled = true
delegation_chain_max_depth = 10
cache_agent_ttl_seconds = 300
cache_keys_ttl_seconds = 60

[storage]
# gRPC endpoint
endpoint = "grpc://storage.creto-security.svc:50051"

# Connection settings
timeout_ms = 5000
connect_timeout_ms = 1000
max_retries = 3

# Streaming
chunk_size_bytes = 1048576  # 1MB chunks
max_concurrent_streams = 10

# Encryption
default_algorithm = "aes-256-gcm"
default_key_wrap = "ml-kem-768"

# Quotas (per agent)
default_quota_bytes = 10737418240  # 10GB
max_object_size_bytes = 1073741824  # 1GB

# Retention
default_ttl_days = 90
compliance_retention_days = 2555  # 7 years
`

func TestParseSeedSections(t *testing.T) {
	cfg, err := ParseConfig([]byte(seedSections))
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultConfig()
	a, err := cfg.Authz.resolve("authz", cfg.Transport, def.Authz.ServiceConfig)
	if err != nil {
		t.Fatal(err)
	}
	want := policy{target: "authz.creto-security.svc:50051", tls: true, timeout: 10 * time.Millisecond, connect: 100 * time.Millisecond,
		retries: 2, backoff: 5 * time.Millisecond, breaker: true, failures: 5, reset: 30 * time.Second, halfOpen: 3}
	a.trans = Transport{}
	if a != want {
		t.Fatalf("authz:\n got %+v\nwant %+v", a, want)
	}
	v, err := cfg.Vault.resolve("vault", cfg.Transport, def.Vault.ServiceConfig)
	if err != nil || v.trans.TLSCA != "/etc/creto/certs/ca.crt" || v.timeout != time.Second || v.retries != 3 {
		t.Fatalf("vault: %+v %v", v, err)
	}
	if *cfg.Memory.DefaultRelevanceThreshold != 0.7 || cfg.NHI.CacheAgentTTLSeconds != 300 || cfg.NHI.DelegationChainMaxDepth != 10 {
		t.Fatalf("sections: %+v %+v", cfg.Memory, cfg.NHI)
	}
	st, err := cfg.Storage.resolve("storage", cfg.Transport, def.Storage.ServiceConfig)
	if err != nil || st.timeout != 5*time.Second || st.connect != time.Second || st.retries != 3 ||
		cfg.Storage.ChunkSizeBytes != 1<<20 || cfg.Storage.MaxConcurrentStreams != 10 || cfg.Storage.MaxObjectSizeBytes != 1<<30 {
		t.Fatalf("storage: %+v %+v %v", st, cfg.Storage, err)
	}
	cfg.Vault.Transport = Transport{} // the seed's certificate files are not here
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Storage.chunk != 1<<20 || c.Storage.maxObject != 1<<30 || cap(c.Storage.streams) != 10 {
		t.Fatalf("storage client: %+v", c.Storage)
	}
}

// The client's own [audit] and [consensus] sections (the seed has none).
func TestAuditAndConsensusSections(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
[audit]
endpoint = "audit.internal:7000"
spool_path = "SPOOL"
buffer_size = 50
batch_size = 20
timeout_ms = 2000

[consensus]
endpoint = "consensus.internal:7000"
local_fallback = false
max_retries = 0
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Audit.SpoolPath = filepath.Join(t.TempDir(), "audit.spool")
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Audit.svc.pol.target != "audit.internal:7000" || c.Audit.svc.pol.timeout != 2*time.Second || c.Audit.logger.bufSize != 50 ||
		c.Audit.logger.batch != 20 || c.Audit.logger.spool == nil {
		t.Fatalf("audit: %+v %+v", c.Audit.svc.pol, c.Audit.logger)
	}
	if c.Consensus.svc.pol.target != "consensus.internal:7000" || c.Consensus.local || c.Consensus.svc.pol.retries != 0 {
		t.Fatalf("consensus: %+v", c.Consensus)
	}
	def, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer def.Close()
	if !def.Consensus.local || def.Consensus.svc.pol.retries != 1 || def.Audit.logger.spool != nil || def.Audit.logger.bufSize != 10000 ||
		def.Audit.logger.batch != 500 || def.Storage.svc.pol.timeout != 5*time.Second {
		t.Fatalf("defaults: %+v %+v", def.Consensus, def.Audit.logger)
	}
}

// A zero Config configures the same clients as DefaultConfig: the seed's.
func TestZeroConfigIsDefault(t *testing.T) {
	def := DefaultConfig()
	for name, pair := range map[string][2]ServiceConfig{
		"authz": {{}, def.Authz.ServiceConfig}, "nhi": {{}, def.NHI.ServiceConfig},
		"memory": {{}, def.Memory.ServiceConfig}, "vault": {{}, def.Vault.ServiceConfig},
		"storage": {{}, def.Storage.ServiceConfig}, "audit": {{}, def.Audit.ServiceConfig}, "consensus": {{}, def.Consensus.ServiceConfig},
	} {
		zero, err := pair[0].resolve(name, Transport{}, pair[1])
		if err != nil {
			t.Fatal(err)
		}
		full, err := pair[1].resolve(name, Transport{}, pair[1])
		if err != nil || zero != full {
			t.Fatalf("%s: %+v against %+v %v", name, zero, full, err)
		}
	}
	// And none of them is a placeholder: every section has its own.
	if def.Memory.FailureThreshold != 10 || def.Memory.ResetTimeoutSeconds != 60 || def.Memory.HalfOpenRequests != 5 ||
		def.Authz.FailureThreshold != 5 || def.Authz.ResetTimeoutSeconds != 30 || def.Authz.HalfOpenRequests != 3 {
		t.Fatal("seed §13.2's circuit breakers")
	}
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Memory.defaultLimit != 10 || c.Memory.maxLimit != 100 || c.Memory.threshold != nil || c.Vault.defaultTTL != time.Hour ||
		!c.Vault.memoryOnly || c.NHI.maxDepth != 10 || !c.Authz.allowOnly || c.Authz.cache == nil {
		t.Fatalf("defaults: %+v %+v %+v", c.Memory, c.Vault, c.NHI)
	}
	c.Close()
}

func TestTopLevelTransport(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
endpoint = "127.0.0.1:50051"
tls_ca = "ca.crt"
tls_cert = "admin.crt"
tls_key = "admin.key"

[memory]
endpoint = "grpc://memory.internal:7000"
tls_cert = "memory.crt"
tls_key = "memory.key"
`))
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultConfig()
	a, _ := cfg.Authz.resolve("authz", cfg.Transport, def.Authz.ServiceConfig)
	m, _ := cfg.Memory.resolve("memory", cfg.Transport, def.Memory.ServiceConfig)
	if a.target != "127.0.0.1:50051" || a.trans.TLSCA != "ca.crt" || a.trans.TLSCert != "admin.crt" || a.trans.TLSKey != "admin.key" {
		t.Fatalf("authz takes the top level: %+v", a)
	}
	if m.target != "memory.internal:7000" || m.trans.TLSCA != "ca.crt" || m.trans.TLSCert != "memory.crt" || m.trans.TLSKey != "memory.key" {
		t.Fatalf("memory overrides it: %+v", m)
	}
}

func TestParseConfigRejectsUnknownKeys(t *testing.T) {
	_, err := ParseConfig([]byte("[authz]\ntimeout = 10\n[vault]\ncache_ttl = 1\n[ledger]\nendpoint = \"x:1\"\n"))
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("%v", err)
	}
	for _, k := range []string{"authz.timeout", "vault.cache_ttl", "ledger"} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("the error does not name %s: %v", k, err)
		}
	}
	if _, err := ParseConfig([]byte("[authz]\ntimeout_ms = \"ten\"\n")); !errors.Is(err, ErrConfig) {
		t.Fatalf("wrong type: %v", err)
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "none.toml")); !errors.Is(err, ErrConfig) {
		t.Fatalf("missing file: %v", err)
	}
	path := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(path, []byte(seedSections), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadConfig(path); err != nil || c.Authz.TimeoutMS != 10 {
		t.Fatalf("load: %v", err)
	}
}

func TestParseEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"grpc://authz.creto-security.svc:50051": "authz.creto-security.svc:50051",
		"127.0.0.1:50051":                       "127.0.0.1:50051",
		"[::1]:50051":                           "[::1]:50051",
		"grpc://[::1]:1":                        "[::1]:1",
	} {
		if got, err := parseEndpoint(in); err != nil || got != want {
			t.Errorf("%s: %q %v", in, got, err)
		}
	}
	for _, in := range []string{"", "authz", "http://authz:50051", "grpcs://a:1", ":50051", "a:0", "a:65536", "a:port", "grpc://"} {
		if _, err := parseEndpoint(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// Values that cannot work are refused when the clients are built, with
// the key named, and nothing is left open.
func TestNewRejectsImpossibleValues(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func(*Config)
		key    string
	}{
		"endpoint":          {func(c *Config) { c.Vault.Endpoint = "https://vault:443" }, "vault.endpoint"},
		"timeout":           {func(c *Config) { c.Authz.TimeoutMS = -1 }, "authz.timeout_ms"},
		"connect":           {func(c *Config) { c.NHI.ConnectTimeoutMS = -5 }, "nhi.connect_timeout_ms"},
		"retries":           {func(c *Config) { c.Memory.MaxRetries = new(int); *c.Memory.MaxRetries = 11 }, "memory.max_retries"},
		"negative retries":  {func(c *Config) { c.Memory.MaxRetries = new(int); *c.Memory.MaxRetries = -1 }, "memory.max_retries"},
		"backoff":           {func(c *Config) { c.Authz.RetryBackoffMS = -1 }, "authz.retry_backoff_ms"},
		"threshold":         {func(c *Config) { c.Authz.FailureThreshold = -1 }, "authz.failure_threshold"},
		"reset":             {func(c *Config) { c.Vault.ResetTimeoutSeconds = 100_000 }, "vault.reset_timeout_seconds"},
		"half-open":         {func(c *Config) { c.Vault.HalfOpenRequests = -3 }, "vault.half_open_requests"},
		"cert without key":  {func(c *Config) { c.Authz.TLSCert = "a.crt" }, "authz.tls_cert and tls_key"},
		"tls off with ca":   {func(c *Config) { c.TLSEnabled = new(bool); c.TLSCA = "ca.crt" }, "tls_enabled = false"},
		"ca missing":        {func(c *Config) { c.TLSCA = "/nonexistent/ca.crt" }, "authz.tls_ca"},
		"cache ttl":         {func(c *Config) { c.Authz.CacheTTLSeconds = -1 }, "authz.cache_ttl_seconds"},
		"cache entries":     {func(c *Config) { c.Memory.CacheMaxEntries = -1 }, "memory.cache_max_entries"},
		"default limit":     {func(c *Config) { c.Memory.DefaultLimit = 101 }, "memory.default_limit"},
		"max limit":         {func(c *Config) { c.Memory.MaxQueryLimit = -1 }, "memory.max_query_limit"},
		"threshold range":   {func(c *Config) { c.Memory.DefaultRelevanceThreshold = ptr(1.5) }, "memory.default_relevance_threshold"},
		"delegation ttl":    {func(c *Config) { c.Vault.DefaultDelegationTTLSeconds = 90_000 }, "vault.default_delegation_ttl_seconds"},
		"max delegation":    {func(c *Config) { c.Vault.MaxDelegationTTLSeconds = -1 }, "vault.max_delegation_ttl_seconds"},
		"chain depth":       {func(c *Config) { c.NHI.DelegationChainMaxDepth = -1 }, "nhi.delegation_chain_max_depth"},
		"nhi cache entries": {func(c *Config) { c.NHI.CacheMaxEntries = 20_000_000 }, "nhi.cache_max_entries"},
		"chunk size":        {func(c *Config) { c.Storage.ChunkSizeBytes = 100 }, "storage.chunk_size_bytes"},
		"big chunk":         {func(c *Config) { c.Storage.ChunkSizeBytes = 8 << 20 }, "storage.chunk_size_bytes"},
		"streams":           {func(c *Config) { c.Storage.MaxConcurrentStreams = -1 }, "storage.max_concurrent_streams"},
		"max object":        {func(c *Config) { c.Storage.MaxObjectSizeBytes = -1 }, "storage.max_object_size_bytes"},
		"storage timeout":   {func(c *Config) { c.Storage.TimeoutMS = -1 }, "storage.timeout_ms"},
		"buffer":            {func(c *Config) { c.Audit.BufferSize = -1 }, "audit.buffer_size"},
		"batch":             {func(c *Config) { c.Audit.BatchSize = 1001 }, "audit.batch_size"},
		"spool directory":   {func(c *Config) { c.Audit.SpoolPath = "/nonexistent/dir/audit.spool" }, "audit.spool_path"},
		"consensus retries": {func(c *Config) { c.Consensus.MaxRetries = ptr(11) }, "consensus.max_retries"},
		"consensus tls":     {func(c *Config) { c.Consensus.TLSCert = "a.crt" }, "consensus.tls_cert and tls_key"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := Config{}
			tc.mutate(&cfg)
			c, err := New(cfg)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.key) || c != nil {
				t.Fatalf("got %v, want an ErrConfig naming %s", err, tc.key)
			}
		})
	}
}

// A bearer token is never sent in plaintext, and never beside a client
// certificate, which the node would take instead.
func TestTokenNeedsTLSAndNoCertificate(t *testing.T) {
	plain := Config{Transport: Transport{TLSEnabled: new(bool)}}
	if _, err := New(plain, WithBearerToken("t")); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "without TLS") {
		t.Fatalf("plaintext: %v", err)
	}
	if c, err := New(plain); err != nil {
		t.Fatalf("plaintext without a token: %v", err)
	} else {
		c.Close()
	}
	dir := t.TempDir()
	if _, _, err := pki.EnsureDev(dir, []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, pki.DefaultOperator+".crt"), filepath.Join(dir, pki.DefaultOperator+".key")
	withCert := Config{Transport: Transport{TLSCert: cert, TLSKey: key}}
	if _, err := New(withCert, WithBearerToken("t")); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "use one") {
		t.Fatalf("certificate and token: %v", err)
	}
}
