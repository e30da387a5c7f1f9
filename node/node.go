// Package node runs a Creto node: it opens the node's store, composes the
// services on it, and serves them over gRPC (with health, reflection and
// the meta-policies that decide who may call what) and HTTP (/metrics,
// /healthz). `creto serve` is this package with flags; a Go program can
// embed a whole node the same way. docs/server.md is the user guide.
package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/hosts"
	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/internal/pki"
	"github.com/creto-systems/creto/services/audit"
	"github.com/creto-systems/creto/services/authz"
	"github.com/creto-systems/creto/services/memory"
	"github.com/creto-systems/creto/services/nhi"
	"github.com/creto-systems/creto/services/storage"
	"github.com/creto-systems/creto/services/vault"
)

// Node is a running Creto node.
type Node struct {
	cfg Config
	log *slog.Logger

	store  kv.Store
	nhi    *nhi.Service
	memory *memory.Service
	vault  *vault.Service
	state  *hosts.DurableState
	engine *engine.Engine
	authz  *authz.Service
	access *access
	// cluster is the node's consensus membership (cluster.go).
	cluster *cluster

	audit       *audit.Service
	auditLogger *audit.Logger
	storage     *storage.Service

	metrics *metrics
	grpc    *grpc.Server
	health  *health.Server
	http    *http.Server
	tls     *tls.Config // nil when serving plaintext

	grpcLis, httpLis net.Listener
	serveErr         chan error
	closeOnce        sync.Once
	closers          []func() error // in reverse order of opening
}

// Open opens the node's data directory, composes the services and builds
// the servers, without listening yet (Start does).
func Open(ctx context.Context, cfg Config, log *slog.Logger) (_ *Node, err error) {
	if cfg, err = cfg.withDefaults(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	n := &Node{cfg: cfg, log: log, serveErr: make(chan error, 2)}
	defer func() {
		if err != nil {
			n.closeAll()
		}
	}()
	dir := cfg.Server.DataDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("node: data directory: %w", err)
	}
	if n.store, err = kv.Open(filepath.Join(dir, "kv")); err != nil {
		return nil, err
	}
	n.closers = append(n.closers, n.store.Close)
	if err := n.openServices(ctx); err != nil {
		return nil, err
	}
	if err := n.buildServers(ctx); err != nil {
		return nil, err
	}
	if err := n.openCluster(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// openServices composes the services over the node's one store.
func (n *Node) openServices(ctx context.Context) error {
	cfg, dir := n.cfg, n.cfg.Server.DataDir
	sealer, err := openSealer(ctx, n.store, filepath.Join(dir, "keys", "node.key"))
	if err != nil {
		return err
	}
	// The audit log first, so that no identity change goes unaudited.
	if err := n.openAudit(ctx, sealer); err != nil {
		sealer.Close()
		return err
	}
	ncfg := cfg.NHI
	ncfg.Events = n.nhiEvents()
	n.nhi, err = nhi.New(ctx, n.store, sealer, ncfg)
	if err != nil {
		sealer.Close()
		n.closeAuditLogger()
		return err
	}
	n.closers = append(n.closers, n.nhi.Close, n.closeAuditLogger)
	err = n.openStorage(ctx, sealer)
	sealer.Close()
	if err != nil {
		return err
	}

	mcfg := cfg.Memory
	if mcfg.Authorizer == nil {
		mcfg.Authorizer = memoryGrants{n.nhi}
	}
	if n.memory, err = memory.Open(ctx, n.store, mcfg); err != nil {
		return err
	}
	n.closers = append(n.closers, n.memory.Close)

	if err := n.openVault(ctx); err != nil {
		return err
	}

	if n.state, err = hosts.OpenDurableState(ctx, n.store, time.Second); err != nil {
		return err
	}
	n.closers = append(n.closers, func() error { return n.state.Close(context.Background()) })

	base := engine.NewEntities()
	if cfg.Authz.Entities != "" {
		b, err := readFile("authz.entities", cfg.Authz.Entities)
		if err != nil {
			return err
		}
		if err := base.ReplaceJSON(b); err != nil {
			return fmt.Errorf("config: authz.entities: %w", err)
		}
	}
	n.engine = engine.New(
		engine.WithEntities(n.nhi.Entities(base)),
		engine.WithCache(engine.CacheConfig{
			Enabled:    *cfg.Authz.CacheEnabled,
			TTL:        time.Duration(cfg.Authz.CacheTTLSeconds) * time.Second,
			MaxEntries: cfg.Authz.CacheMaxEntries,
		}),
		engine.WithLogger(n.log),
		engine.WithExtensionCacheDir(filepath.Join(dir, "wasm-cache")),
		engine.WithHostModules(hosts.State{Store: n.state}, hosts.Clock{}, hosts.NHI{Agents: n.nhi},
			hosts.Vault{Secrets: n.vault}, hosts.VaultReveal{Secrets: n.vault}, hosts.Audit{Events: n.auditLogger},
			hosts.Storage{Objects: extensionObjects{Service: n.storage, nhi: n.nhi}}, hosts.Consensus{Timestamps: hostTimestamps{n}}),
		engine.WithObserver(n.decisionObserver()),
	)
	n.closers = append(n.closers, n.engine.Close)
	if cfg.Authz.Schema != "" {
		b, err := readFile("authz.schema", cfg.Authz.Schema)
		if err != nil {
			return err
		}
		if err := n.engine.SetSchema(cfg.Authz.Schema, b); err != nil {
			return fmt.Errorf("config: authz.schema: %w", err)
		}
	}
	if n.authz, err = authz.Open(ctx, n.engine, n.store, authz.Options{Log: n.log, NoExtensions: !*cfg.Authz.ExtensionsEnabled}); err != nil {
		return err
	}
	if cfg.Authz.ImportPolicies != "" {
		count, err := n.authz.ImportPolicies(ctx, cfg.Authz.ImportPolicies)
		if err != nil {
			return err
		}
		if count > 0 {
			n.log.Info("imported policies into a fresh node", "dir", cfg.Authz.ImportPolicies, "policies", count)
		}
	}
	return nil
}

// openSealer opens the node key that seals NHI's data key and the audit
// log's signing keys, creating it only for a store that holds no sealed
// keys yet: a fresh key for a store sealed under a lost one would hide the
// loss.
func openSealer(ctx context.Context, store kv.Store, path string) (*nhi.FileSealer, error) {
	s, err := nhi.OpenFileSealer(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	used := false
	for _, prefix := range []string{"nhi/", "audit/"} {
		if err := store.Scan(ctx, []byte(prefix), func(_, _ []byte) error { used = true; return errStop }); err != nil && !errors.Is(err, errStop) {
			return nil, err
		}
	}
	if used {
		return nil, fmt.Errorf("node: %s is missing but the store holds sealed keys: %w", path, nhi.ErrSealed)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return nhi.CreateFileSealer(path)
}

var errStop = errors.New("stop")

// services lists the gRPC services a node serves, for health and metrics.
func (n *Node) services() []grpc.ServiceDesc {
	return []grpc.ServiceDesc{authzServiceDesc(), nhiServiceDesc(), memoryServiceDesc(), vaultServiceDesc(), vaultAdminServiceDesc(),
		auditServiceDesc(), storageServiceDesc(), consensusServiceDesc(), consensusAdminServiceDesc()}
}

func (n *Node) buildServers(ctx context.Context) error {
	cfg := n.cfg.Server
	if cfg.Plaintext {
		if err := requireLoopback("server.grpc_addr", cfg.GRPCAddr); err != nil {
			return err
		}
	} else {
		var err error
		if n.tls, err = n.serverTLS(); err != nil {
			return err
		}
	}
	sources, err := metaPolicies(n.cfg.Authz.MetaPolicies)
	if err != nil {
		return fmt.Errorf("config: authz.meta_policies: %w", err)
	}
	n.access, err = newAccess(ctx, sources, methodClasses(n.services()), n.resolveToken, cfg.Plaintext, n.log, n.auditDenial)
	if err != nil {
		return err
	}
	n.closers = append(n.closers, func() error { n.access.close(); return nil })

	var names []string
	for _, d := range n.services() {
		names = append(names, d.ServiceName)
	}
	n.metrics = newMetrics(names)
	n.metrics.reg.MustRegister(n.auditMetrics()...)
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgBytes),
		// A pool of goroutines that keep their grown stacks between calls:
		// with a fresh goroutine per call, growing its stack was a fifth of
		// a served check's CPU. When all are busy, gRPC starts another.
		grpc.NumStreamWorkers(uint32(max(32, 16*runtime.GOMAXPROCS(0)))),
		grpc.ChainUnaryInterceptor(n.metrics.unary, n.recoverUnary, n.access.unary),
		grpc.ChainStreamInterceptor(n.metrics.stream, n.recoverStream, n.access.stream),
	}
	if n.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(n.tls)))
	}
	n.grpc = grpc.NewServer(opts...)
	authz.NewServer(n.authz, n.nhiAgentType(), n.resolveDelegation, n.log).Register(n.grpc)
	nhi.NewServer(n.nhi, n.log).Register(n.grpc)
	memory.NewServer(n.memory, n.log).Register(n.grpc)
	vault.NewServer(n.vault, n.log).Register(n.grpc)
	vault.NewAdminServer(n.vault, vault.AdminOptions{Log: n.log, Backend: n.vaultBackend, Changed: n.reportVault}).Register(n.grpc)
	audit.NewServer(n.audit, n.log).Register(n.grpc)
	storage.NewServer(n.storage, storage.ServerOptions{Log: n.log, MaxMessageBytes: cfg.MaxRecvMsgBytes, BaseURL: n.httpBaseURL}).Register(n.grpc)

	n.health = health.NewServer()
	healthpb.RegisterHealthServer(n.grpc, n.health)
	for _, name := range names {
		n.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	if st, err := n.vault.Status(ctx); err == nil {
		n.reportVault(st)
	}
	stopWatch := make(chan struct{})
	go n.watchAuditHealth(stopWatch)
	n.closers = append(n.closers, func() error { close(stopWatch); return nil })
	reflection.Register(n.grpc)

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", n.metricsHandler())
	mux.HandleFunc("GET /healthz", n.healthz)
	mux.Handle(n.cfg.presignPath(), n.presignedHandler())
	n.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelWarn)}
	return nil
}

func (n *Node) nhiAgentType() string {
	if t := n.cfg.NHI.EntityType; t != "" {
		return t
	}
	return nhi.DefaultConfig().EntityType
}

// resolveToken identifies the agent an NHI token belongs to.
func (n *Node) resolveToken(ctx context.Context, token string) (string, error) {
	a, err := n.nhi.ResolveToken(ctx, token)
	if err != nil {
		return "", err
	}
	return a.ID, nil
}

// resolveDelegation verifies an NHI delegation and returns the agent it
// was granted to and its chain of identities.
func (n *Node) resolveDelegation(ctx context.Context, id string) (string, []engine.EntityRef, error) {
	did, err := nhi.ParseDelegationID(id)
	if err != nil {
		return "", nil, status.Errorf(codes.InvalidArgument, "delegation id: %v", err)
	}
	chain, err := n.nhi.VerifyDelegation(ctx, did)
	if err != nil {
		return "", nil, status.Errorf(codes.PermissionDenied, "delegation: %v", err)
	}
	refs, err := chain.EntityRefs()
	if err != nil {
		return "", nil, status.Errorf(codes.PermissionDenied, "delegation: %v", err)
	}
	return chain.Principal(), refs, nil
}

func (n *Node) serverTLS() (*tls.Config, error) {
	cfg := n.cfg.Server
	certFile, keyFile, caFile := cfg.TLSCert, cfg.TLSKey, cfg.ClientCA
	if certFile == "" || caFile == "" {
		dir := cfg.PKIDir
		dev, created, err := pki.EnsureDev(dir, loopbackHosts)
		if err != nil {
			return nil, err
		}
		if certFile == "" {
			certFile, keyFile = filepath.Join(dir, pki.ServerCert), filepath.Join(dir, pki.ServerKey)
		}
		if caFile == "" {
			caFile = filepath.Join(dir, pki.CACert)
		}
		verb := "using"
		if created {
			verb = "created"
		}
		n.log.Info(verb+" development certificates (use your own PKI in production: server.tls_cert, tls_key, client_ca)",
			"ca", caFile, "server_cert", certFile,
			"operator_cert", filepath.Join(dev.Dir, pki.DefaultOperator+".crt"),
			"operator_key", filepath.Join(dev.Dir, pki.DefaultOperator+".key"))
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("config: server certificate: %w", err)
	}
	caPEM, err := readFile("server.client_ca", caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("config: server.client_ca %s holds no PEM certificate", caFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		// Agents authenticate with tokens, operators with certificates:
		// a certificate is verified when presented, never required.
		ClientAuth: tls.VerifyClientCertIfGiven,
		MinVersion: tls.VersionTLS13,
	}, nil
}

func requireLoopback(key, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("config: %s %q: %w", key, addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("config: plaintext serving is allowed on a loopback address only, not %s %q", key, addr)
	}
	return nil
}

// Start listens on the configured addresses and serves in the background.
func (n *Node) Start() error {
	var err error
	if n.grpcLis, err = net.Listen("tcp", n.cfg.Server.GRPCAddr); err != nil {
		return fmt.Errorf("node: gRPC listener: %w", err)
	}
	if n.httpLis, err = net.Listen("tcp", n.cfg.Server.HTTPAddr); err != nil {
		n.grpcLis.Close()
		return fmt.Errorf("node: HTTP listener: %w", err)
	}
	go func() { n.serveErr <- n.grpc.Serve(n.grpcLis) }()
	n.startCluster()
	go func() {
		var err error
		if n.tls != nil {
			n.http.TLSConfig = n.tls.Clone()
			err = n.http.ServeTLS(n.httpLis, "", "")
		} else {
			err = n.http.Serve(n.httpLis)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		n.serveErr <- err
	}()
	n.log.Info("creto node serving", "grpc", n.grpcLis.Addr().String(), "http", n.httpLis.Addr().String(),
		"tls", n.tls != nil, "data_dir", n.cfg.Server.DataDir)
	return nil
}

// GRPCAddr and HTTPAddr return the listeners' addresses once Start ran.
func (n *Node) GRPCAddr() net.Addr { return n.grpcLis.Addr() }

// HTTPAddr returns the HTTP listener's address once Start ran.
func (n *Node) HTTPAddr() net.Addr { return n.httpLis.Addr() }

// Run starts the node and serves until ctx is done or a listener fails,
// then shuts down gracefully.
func (n *Node) Run(ctx context.Context) error {
	if err := n.Start(); err != nil {
		n.closeAll()
		return err
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-n.serveErr:
	}
	if serr := n.Shutdown(context.Background()); err == nil {
		err = serr
	}
	return err
}

// Shutdown stops accepting calls, reports NOT_SERVING to health checks,
// lets calls in flight finish (up to ShutdownTimeout, then cuts them),
// and closes the services.
func (n *Node) Shutdown(ctx context.Context) error {
	n.log.Info("creto node shutting down")
	n.health.Shutdown()
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Server.ShutdownTimeout)
	defer cancel()
	done := make(chan struct{})
	go func() { n.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		n.log.Warn("graceful stop timed out; cutting calls in flight")
		n.grpc.Stop()
	}
	// Presigned transfers can outlast the timeout as gRPC calls can; they
	// are cut the same way, and storage refuses what an upload cut short
	// would have stored.
	herr := n.http.Shutdown(ctx)
	if errors.Is(herr, context.DeadlineExceeded) {
		n.log.Warn("graceful stop timed out; cutting HTTP requests in flight")
		herr = n.http.Close()
	}
	return errors.Join(herr, n.closeAll())
}

// Close releases everything without serving (for a node that was opened
// but never started).
func (n *Node) Close() error { return n.closeAll() }

func (n *Node) closeAll() error {
	var errs []error
	n.closeOnce.Do(func() {
		for i := len(n.closers) - 1; i >= 0; i-- {
			errs = append(errs, n.closers[i]())
		}
	})
	return errors.Join(errs...)
}

func (n *Node) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer n.recovered(ctx, info.FullMethod, &err)
	return handler(ctx, req)
}

func (n *Node) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer n.recovered(ss.Context(), info.FullMethod, &err)
	return handler(srv, ss)
}

// recovered turns a panic in a handler into an Internal error: one bad
// request must never take the node down.
func (n *Node) recovered(ctx context.Context, method string, err *error) {
	if r := recover(); r != nil {
		n.log.ErrorContext(ctx, "panic in handler", "method", method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		*err = status.Error(codes.Internal, "internal error")
	}
}
