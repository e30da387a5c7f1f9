package node

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/creto-systems/creto/services/audit"
	"github.com/creto-systems/creto/services/consensus"
	"github.com/creto-systems/creto/services/memory"
	"github.com/creto-systems/creto/services/nhi"
	"github.com/creto-systems/creto/services/storage"
	"github.com/creto-systems/creto/services/vault"
)

// Config is a node's whole configuration: one TOML file with the seed's
// sections. Every zero field takes its default, so the zero Config runs a
// node on a laptop.
type Config struct {
	Server ServerConfig  `toml:"server"`
	Log    LogConfig     `toml:"log"`
	Authz  AuthzConfig   `toml:"authz"`
	NHI    nhi.Config    `toml:"nhi"`
	Memory memory.Config `toml:"memory"`
	Vault  VaultConfig   `toml:"vault"`
	Audit  AuditConfig   `toml:"audit"`

	Storage storage.Config `toml:"storage"`

	// Consensus is the node's raft membership (docs/server.md,
	// "Clusters"). The default is a one-node cluster.
	Consensus consensus.Config `toml:"consensus"`
}

// ServerConfig is the [server] section: where the node keeps its state and
// how it is reached.
type ServerConfig struct {
	// DataDir holds the node's store, keys and development certificates.
	DataDir string `toml:"data_dir"`
	// GRPCAddr is the gRPC listener's address.
	GRPCAddr string `toml:"grpc_addr"`
	// GRPCAdvertiseAddr is the gRPC address other nodes, and the clients
	// a follower redirects to this node, dial; default GRPCAddr as bound.
	// Set it when GRPCAddr is a wildcard (0.0.0.0:50051).
	GRPCAdvertiseAddr string `toml:"grpc_advertise_addr"`
	// HTTPAddr serves /metrics, /healthz and presigned storage URLs.
	HTTPAddr string `toml:"http_addr"`
	// PublicHTTPURL is the HTTP listener's address as clients reach it
	// ("https://storage.example.com"), for a node behind a proxy or
	// listening on every interface: presigned URLs start with it. Empty
	// means the listener's own scheme, host and port.
	PublicHTTPURL string `toml:"public_http_url"`
	// TLSCert and TLSKey are the server's certificate and key (PEM). Empty
	// means the development certificates the node creates in DataDir/tls.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// ClientCA verifies client certificates: callers presenting one it
	// signed are operators (or nodes, by their node certificates). Empty
	// means the development CA.
	ClientCA string `toml:"client_ca"`
	// PKIDir holds the development PKI the node creates when certificates
	// are not configured; default DataDir/tls. Nodes of a cluster on one
	// machine point it at the first node's, so that one CA signs them all.
	PKIDir string `toml:"pki_dir"`
	// NodeCert and NodeKey are the node's certificate for the cluster
	// (PEM): it carries spiffe://<trust domain>/node/<consensus.node_id>
	// and serves both ends of mutual TLS (the raft transport, joining
	// through a member). Empty means one the development PKI issues;
	// required with your own ClientCA, which must have signed it.
	NodeCert string `toml:"node_cert"`
	NodeKey  string `toml:"node_key"`
	// Plaintext serves without TLS. It is refused unless GRPCAddr is a
	// loopback address: it exists for local experiments only.
	Plaintext bool `toml:"plaintext"`
	// MaxRecvMsgBytes bounds one request message.
	MaxRecvMsgBytes int `toml:"max_recv_msg_bytes"`
	// ShutdownTimeout is how long a graceful stop waits for calls in flight.
	ShutdownTimeout time.Duration `toml:"shutdown_timeout"`
}

// LogConfig is the [log] section.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `toml:"level"`
	// Format is text or json.
	Format string `toml:"format"`
}

// AuthzConfig is the [authz] section as the node reads it (seed §2.6: the
// cache and extension settings; the endpoint and timeouts are a client's).
type AuthzConfig struct {
	// CacheEnabled turns on the allow-only decision cache.
	CacheEnabled *bool `toml:"cache_enabled"`
	// CacheTTLSeconds bounds how long an Allow is reused.
	CacheTTLSeconds int `toml:"cache_ttl_seconds"`
	// CacheMaxEntries bounds the cache.
	CacheMaxEntries int `toml:"cache_max_entries"`
	// ExtensionsEnabled allows Wasm extensions to be registered.
	ExtensionsEnabled *bool `toml:"extensions_enabled"`
	// ImportPolicies is a directory of .cedar files loaded into a node
	// whose store has no policies yet (a fresh node); later starts leave
	// the stored policies alone.
	ImportPolicies string `toml:"import_policies"`
	// Entities is a Cedar entity JSON file: users, groups and resources
	// the policies refer to, beside the agents NHI knows.
	Entities string `toml:"entities"`
	// Schema is a Cedar schema every policy is validated against.
	Schema string `toml:"schema"`
	// MetaPolicies is a directory of Cedar policies that replace the
	// built-in ones deciding who may call what on the node (docs/server.md).
	MetaPolicies string `toml:"meta_policies"`
}

// Defaults.
const (
	DefaultDataDir         = "creto-data"
	DefaultGRPCAddr        = "127.0.0.1:50051"
	DefaultHTTPAddr        = "127.0.0.1:50080"
	DefaultMaxRecvMsgBytes = 16 << 20
	DefaultShutdownTimeout = 10 * time.Second
)

// withDefaults fills zero fields and rejects settings that cannot work, so
// a mistake fails at start rather than at the first request.
func (c Config) withDefaults() (Config, error) {
	s := &c.Server
	setDefault(&s.DataDir, DefaultDataDir)
	setDefault(&s.PKIDir, filepath.Join(s.DataDir, "tls"))
	setDefault(&s.GRPCAddr, DefaultGRPCAddr)
	setDefault(&s.HTTPAddr, DefaultHTTPAddr)
	setDefault(&s.MaxRecvMsgBytes, DefaultMaxRecvMsgBytes)
	setDefault(&s.ShutdownTimeout, DefaultShutdownTimeout)
	setDefault(&c.Log.Level, "info")
	setDefault(&c.Log.Format, "text")
	a := &c.Authz
	setDefault(&a.CacheEnabled, ptr(true))
	setDefault(&a.CacheTTLSeconds, 60)
	setDefault(&a.CacheMaxEntries, 10000)
	setDefault(&a.ExtensionsEnabled, ptr(true))
	setDefault(&c.Vault.Unseal, UnsealAuto)
	switch {
	case (s.TLSCert == "") != (s.TLSKey == ""):
		return c, errors.New("config: server.tls_cert and server.tls_key go together")
	case (s.NodeCert == "") != (s.NodeKey == ""):
		return c, errors.New("config: server.node_cert and server.node_key go together")
	case s.ClientCA != "" && s.NodeCert == "" && !s.Plaintext:
		return c, errors.New("config: server.client_ca is set: give the node its certificate from that CA too (server.node_cert, node_key)")
	case s.NodeCert != "" && s.ClientCA == "":
		return c, errors.New("config: server.node_cert needs server.client_ca, the CA that signed it and every other node's")
	case s.MaxRecvMsgBytes < 4<<10:
		return c, fmt.Errorf("config: server.max_recv_msg_bytes %d is under 4 KiB", s.MaxRecvMsgBytes)
	case a.CacheTTLSeconds < 0 || a.CacheMaxEntries < 0:
		return c, errors.New("config: authz cache settings must not be negative")
	case c.Vault.Unseal != "" && c.Vault.Unseal != UnsealAuto && c.Vault.Unseal != UnsealShamir:
		return c, fmt.Errorf("config: vault.unseal %q: want %s or %s", c.Vault.Unseal, UnsealAuto, UnsealShamir)
	case c.Log.Format != "text" && c.Log.Format != "json":
		return c, fmt.Errorf("config: log.format %q: want text or json", c.Log.Format)
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		return c, err
	}
	var err error
	if c.Audit, err = c.Audit.withDefaults(s.DataDir); err != nil {
		return c, err
	}
	return c, c.checkHTTP()
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

func ptr[T any](v T) *T { return &v }

// LoadConfig reads a TOML file (none when path is empty), then applies
// CRETO_<SECTION>_<KEY> environment variables, which win over the file.
// Keys the node does not know are errors, so a typo never passes silently.
func LoadConfig(path string, environ []string) (Config, error) {
	var c Config
	if path != "" {
		md, err := toml.DecodeFile(path, &c)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		if un := md.Undecoded(); len(un) > 0 {
			keys := make([]string, len(un))
			for i, k := range un {
				keys[i] = k.String()
			}
			return c, fmt.Errorf("config: %s: unknown keys: %s", path, strings.Join(keys, ", "))
		}
	}
	if err := applyEnv(&c, environ); err != nil {
		return c, err
	}
	return c, nil
}

// EnvPrefix starts every environment variable the node reads.
const EnvPrefix = "CRETO_"

// applyEnv sets the fields named by CRETO_SECTION_KEY variables, the key
// being the field's TOML name upper-cased (CRETO_SERVER_GRPC_ADDR).
func applyEnv(c *Config, environ []string) error {
	vars := map[string]string{}
	for _, kv := range environ {
		if name, value, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(name, EnvPrefix) {
			vars[name] = value
		}
	}
	if len(vars) == 0 {
		return nil
	}
	known := map[string]bool{}
	err := walkFields(reflect.ValueOf(c).Elem(), EnvPrefix, func(name string, f reflect.Value) error {
		known[name] = true
		v, ok := vars[name]
		if !ok {
			return nil
		}
		if err := setField(f, v); err != nil {
			return fmt.Errorf("config: %s=%q: %w", name, v, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// A variable in a section's namespace that names no key is a typo;
	// other CRETO_ variables (a client's CRETO_ADDR, say) are not ours.
	t := reflect.TypeFor[Config]()
	for name := range vars {
		for i := range t.NumField() {
			section := EnvPrefix + strings.ToUpper(t.Field(i).Tag.Get("toml")) + "_"
			if strings.HasPrefix(name, section) && !known[name] {
				return fmt.Errorf("config: unknown environment variable %s", name)
			}
		}
	}
	return nil
}

// walkFields calls fn with the environment name of every settable leaf
// field (skipping fields tagged toml:"-"). An embedded struct without a
// tag is flattened into its parent's section, as TOML decodes it.
func walkFields(v reflect.Value, prefix string, fn func(name string, f reflect.Value) error) error {
	t := v.Type()
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if t.Field(i).Anonymous && tag == "" && v.Field(i).Kind() == reflect.Struct {
			if err := walkFields(v.Field(i), prefix, fn); err != nil {
				return err
			}
			continue
		}
		if tag == "" || tag == "-" || !t.Field(i).IsExported() {
			continue
		}
		name := prefix + strings.ToUpper(tag)
		f := v.Field(i)
		if f.Kind() == reflect.Struct {
			if err := walkFields(f, name+"_", fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(name, f); err != nil {
			return err
		}
	}
	return nil
}

var durationType = reflect.TypeFor[time.Duration]()

func setField(f reflect.Value, s string) error {
	if f.Kind() == reflect.Pointer {
		p := reflect.New(f.Type().Elem())
		if err := setField(p.Elem(), s); err != nil {
			return err
		}
		f.Set(p)
		return nil
	}
	switch {
	case f.Type() == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String:
		f.SetString(s)
	case f.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case f.CanInt():
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		f.SetInt(n)
	case f.CanUint():
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return err
		}
		if f.OverflowUint(n) {
			return fmt.Errorf("%d is out of range", n)
		}
		f.SetUint(n)
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		// A list is comma-separated: CRETO_CONSENSUS_JOIN=a:1,b:2.
		var list []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		f.Set(reflect.ValueOf(list))
	case f.CanFloat():
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		f.SetFloat(x)
	default:
		return fmt.Errorf("cannot be set from the environment (%s)", f.Type())
	}
	return nil
}

// Effective returns the configuration a node would run with — defaults,
// file and environment applied — as TOML.
func (c Config) Effective() ([]byte, error) {
	full, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	full.NHI = nhiDefaults(full.NHI)
	full.Memory = memoryDefaults(full.Memory)
	fillZero(reflect.ValueOf(&full.Consensus).Elem(), reflect.ValueOf(consensus.DefaultConfig()))
	fillZero(reflect.ValueOf(&full.Vault.Config).Elem(), reflect.ValueOf(vault.DefaultConfig()))
	fillZero(reflect.ValueOf(&full.Audit.Config).Elem(), reflect.ValueOf(audit.DefaultConfig()))
	fillZero(reflect.ValueOf(&full.Audit.Logger).Elem(), reflect.ValueOf(audit.DefaultLoggerConfig()))
	fillZero(reflect.ValueOf(&full.Storage).Elem(), reflect.ValueOf(storage.DefaultConfig()))
	var b bytes.Buffer
	enc := toml.NewEncoder(&b)
	if err := enc.Encode(full); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return b.Bytes(), nil
}

// nhiDefaults and memoryDefaults show the services' own defaults for zero
// fields, so the printed configuration is the one that runs.
func nhiDefaults(c nhi.Config) nhi.Config {
	fillZero(reflect.ValueOf(&c).Elem(), reflect.ValueOf(nhi.DefaultConfig()))
	return c
}

func memoryDefaults(c memory.Config) memory.Config {
	fillZero(reflect.ValueOf(&c).Elem(), reflect.ValueOf(memory.DefaultConfig()))
	return c
}

func fillZero(dst, def reflect.Value) {
	for i := range dst.NumField() {
		if f := dst.Field(i); f.CanSet() && f.IsZero() {
			f.Set(def.Field(i))
		}
	}
}

// readFile reads a file named in the configuration, naming the key in
// the error.
func readFile(key, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", key, err)
	}
	return b, nil
}
