package pdp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A served PDP is one server process under one configuration, with the
// client the benchmarks and the agreement test call it through.
type served struct {
	name string // "creto/mtls", "opa/http", …
	proc *process
	d    decider
}

// fixture is every served PDP of one test binary run: they are built and
// started once, on first use, and stopped by TestMain.
var fixture struct {
	once   sync.Once
	w      *workload
	served []*served
	procs  []*process
	dir    string // scratch: data directories, configurations, logs
	err    error
}

// The configurations measured, in the order they are reported. Creto's
// decision cache is off unless the name says "cached" (its default is on;
// neither anchor caches decisions). Creto audits every decision that is
// not a plain allow, its default, unless the name says "unaudited" (the
// anchors keep no decision log: OPA's and Cerbos's are off by default).
var configs = []struct {
	name  string
	start func(e *env, name string) (*served, error)
}{
	{"creto/mtls", func(e *env, n string) (*served, error) { return e.creto(n, cretoOptions{tls: true, audit: true}) }},
	{"creto/mtls-cached", func(e *env, n string) (*served, error) {
		return e.creto(n, cretoOptions{tls: true, cache: true, audit: true})
	}},
	{"creto/mtls-unaudited", func(e *env, n string) (*served, error) { return e.creto(n, cretoOptions{tls: true}) }},
	{"creto/plaintext", func(e *env, n string) (*served, error) { return e.creto(n, cretoOptions{audit: true}) }},
	{"opa/https-mtls", func(e *env, n string) (*served, error) { return e.opa(n, true) }},
	{"opa/http", func(e *env, n string) (*served, error) { return e.opa(n, false) }},
	{"cerbos/grpc-mtls", func(e *env, n string) (*served, error) { return e.cerbos(n, true) }},
	{"cerbos/grpc", func(e *env, n string) (*served, error) { return e.cerbos(n, false) }},
}

// servers returns every served PDP, building and starting them on the
// first call.
func servers(tb testing.TB) (*workload, []*served) {
	tb.Helper()
	fixture.once.Do(func() {
		fixture.w = newWorkload()
		fixture.served, fixture.err = startAll(fixture.w)
	})
	if fixture.err != nil {
		tb.Fatal(fixture.err)
	}
	return fixture.w, fixture.served
}

func TestMain(m *testing.M) {
	if profileServe() {
		return
	}
	code := m.Run()
	for _, p := range fixture.procs {
		p.stop()
	}
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

// env is what starting a server needs: the binaries, a scratch
// directory, the workload's files, and the PKI every TLS configuration
// shares (the development CA of the first Creto node started with TLS).
type env struct {
	w        *workload
	bin      binaries
	dir      string
	entities string // Creto's entity file
	bundle   string // OPA's bundle directory
	pki      *pki
}

var errNoPKI = errors.New("no PKI yet: a Creto configuration with TLS must be started first")

// pki is a development PKI in Creto's layout (docs/server.md): a CA, a
// server certificate for localhost and 127.0.0.1, and an operator's
// client certificate.
type pki struct{ dir string }

func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

// client is the TLS configuration of a caller presenting the operator
// certificate.
func (p *pki) client() (*tls.Config, error) {
	ca, err := os.ReadFile(p.path("ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s holds no certificate", p.path("ca.crt"))
	}
	cert, err := tls.LoadX509KeyPair(p.path("admin.crt"), p.path("admin.key"))
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "localhost", MinVersion: tls.VersionTLS13}, nil
}

func startAll(w *workload) ([]*served, error) {
	bin, err := build()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "creto-bench-pdp-")
	if err != nil {
		return nil, err
	}
	fixture.dir = dir
	e := &env{w: w, bin: bin, dir: dir, entities: filepath.Join(dir, "entities.json"), bundle: filepath.Join(dir, "opa-bundle")}
	rego, err := os.ReadFile("testdata/opa/agents.rego")
	if err != nil {
		return nil, err
	}
	if err := errors.Join(
		os.WriteFile(e.entities, w.cretoEntities(), 0o600),
		os.MkdirAll(e.bundle, 0o700),
		os.WriteFile(filepath.Join(e.bundle, "agents.rego"), rego, 0o600),
		os.WriteFile(filepath.Join(e.bundle, "data.json"), w.opaData(), 0o600),
	); err != nil {
		return nil, err
	}
	var out []*served
	for _, c := range configs {
		s, err := c.start(e, c.name)
		if s != nil {
			fixture.procs = append(fixture.procs, s.proc)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// binaries are the three servers, built from source by this run.
type binaries struct{ creto, opa, cerbos string }

// build compiles the three servers, each from its own module: Creto from
// this repository, OPA and Cerbos from the modules in opa/ and cerbos/,
// which pin their versions and nothing else. The binaries go to a
// directory in the user's cache, where the go command leaves an
// up-to-date binary as it is.
func build() (binaries, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return binaries{}, err
	}
	dir := filepath.Join(cache, "creto", "bench-pdp")
	b := binaries{creto: filepath.Join(dir, "creto"), opa: filepath.Join(dir, "opa"), cerbos: filepath.Join(dir, "cerbos")}
	for _, t := range []struct{ moduleDir, pkg, out string }{
		{"../..", "./cmd/creto", b.creto},
		{"opa", "github.com/open-policy-agent/opa", b.opa},
		{"cerbos", "github.com/cerbos/cerbos/cmd/cerbos", b.cerbos},
	} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", t.out, t.pkg)
		cmd.Dir = t.moduleDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s: %w\n%s", t.pkg, err, out)
		}
	}
	return b, nil
}

// cretoOptions are the settings a Creto configuration varies.
type cretoOptions struct {
	tls, cache, audit bool
}

// creto starts `creto serve`, configured through its environment
// variables, with the workload's policy and entities. NHI's agents get a
// type of their own so that the workload's Agent entities come from the
// entity file.
func (e *env) creto(name string, o cretoOptions) (*served, error) {
	withTLS, cache := o.tls, o.cache
	dataDir := filepath.Join(e.dir, strings.ReplaceAll(name, "/", "-"))
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	raftAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs("testdata/creto")
	if err != nil {
		return nil, err
	}
	vars := []string{
		// Every node is a raft member; servers started side by side each
		// need a raft port of their own.
		"CRETO_CONSENSUS_BIND_ADDRESS=" + raftAddr,
		"CRETO_SERVER_DATA_DIR=" + dataDir,
		"CRETO_SERVER_GRPC_ADDR=" + grpcAddr,
		"CRETO_SERVER_HTTP_ADDR=" + httpAddr,
		"CRETO_SERVER_PLAINTEXT=" + fmt.Sprint(!withTLS),
		"CRETO_AUTHZ_IMPORT_POLICIES=" + abs,
		"CRETO_AUTHZ_ENTITIES=" + e.entities,
		"CRETO_AUTHZ_CACHE_ENABLED=" + fmt.Sprint(cache),
		"CRETO_AUDIT_DECISIONS=" + map[bool]string{true: "denied", false: "none"}[o.audit],
		"CRETO_NHI_ENTITY_TYPE=RegisteredAgent",
	}
	p, err := e.startCreto(name, vars)
	if err != nil {
		return nil, err
	}
	s := &served{name: name, proc: p}
	if err := waitListening(p, grpcAddr); err != nil {
		return s, err
	}
	var tlsCfg *tls.Config
	if withTLS {
		// The node created its development PKI before listening; the
		// first one serves every TLS configuration.
		p := &pki{dir: filepath.Join(dataDir, "tls")}
		if e.pki == nil {
			e.pki = p
		}
		if tlsCfg, err = p.client(); err != nil {
			return s, err
		}
	}
	if s.d, err = newCretoClient(e.w, grpcAddr, tlsCfg); err != nil {
		return s, err
	}
	return s, waitDeciding(p, s.d)
}

// startCreto runs the built binary, or, when a CPU profile is asked for,
// this test binary serving the same node under the profiler.
func (e *env) startCreto(name string, vars []string) (*process, error) {
	if dir := os.Getenv(profileDirEnv); dir != "" {
		prof := filepath.Join(dir, strings.ReplaceAll(name, "/", "-")+".cpu.pprof")
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		return start(name, e.dir, self, nil, append(vars, profileServeEnv+"="+prof))
	}
	return start(name, e.dir, e.bin.creto, []string{"serve"}, vars)
}

// opa starts `opa run --server` on a bundle of the policy and its data,
// with per-request access logs off (--log-level error), as a throughput-
// minded operator runs it. With TLS, clients must present a certificate
// from the shared CA (--authentication=tls).
func (e *env) opa(name string, withTLS bool) (*served, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"run", "--server", "--addr", addr, "--log-level", "error", "--skip-version-check", "--bundle", e.bundle}
	var tlsCfg *tls.Config
	if withTLS {
		if e.pki == nil {
			return nil, errNoPKI
		}
		args = append(args, "--tls-cert-file", e.pki.path("server.crt"), "--tls-private-key-file", e.pki.path("server.key"),
			"--tls-ca-cert-file", e.pki.path("ca.crt"), "--authentication", "tls")
		if tlsCfg, err = e.pki.client(); err != nil {
			return nil, err
		}
	}
	p, err := start(name, e.dir, e.bin.opa, args, nil)
	if err != nil {
		return nil, err
	}
	s := &served{name: name, proc: p, d: newOPAClient(e.w, addr, tlsCfg)}
	if err := waitListening(p, addr); err != nil {
		return s, err
	}
	return s, waitDeciding(p, s.d)
}

// cerbos starts `cerbos server` with the policies on disk, telemetry and
// per-request logs off. With TLS, a client certificate from the shared CA
// is verified when presented, as Creto does.
func (e *env) cerbos(name string, withTLS bool) (*served, error) {
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	policies, err := filepath.Abs("testdata/cerbos/policies")
	if err != nil {
		return nil, err
	}
	var tlsCfg *tls.Config
	tlsConf := ""
	if withTLS {
		if e.pki == nil {
			return nil, errNoPKI
		}
		tlsConf = fmt.Sprintf("  tls:\n    cert: %q\n    key: %q\n    caCert: %q\n", e.pki.path("server.crt"), e.pki.path("server.key"), e.pki.path("ca.crt"))
		if tlsCfg, err = e.pki.client(); err != nil {
			return nil, err
		}
	}
	conf := fmt.Sprintf(`server:
  httpListenAddr: %q
  grpcListenAddr: %q
  requestLimits:
    maxActionsPerResource: 10
    maxResourcesPerRequest: %d
%sstorage:
  driver: disk
  disk:
    directory: %q
    watchForChanges: false
telemetry:
  disabled: true
`, httpAddr, grpcAddr, batchSize, tlsConf, policies)
	confFile := filepath.Join(e.dir, strings.ReplaceAll(name, "/", "-")+".yaml")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	p, err := start(name, e.dir, e.bin.cerbos, []string{"server", "--config", confFile, "--log-level", "error"}, []string{"CERBOS_NO_TELEMETRY=1"})
	if err != nil {
		return nil, err
	}
	s := &served{name: name, proc: p}
	if err := waitListening(p, grpcAddr); err != nil {
		return s, err
	}
	if s.d, err = newCerbosClient(e.w, grpcAddr, tlsCfg); err != nil {
		return s, err
	}
	return s, waitDeciding(p, s.d)
}

// freeAddr picks a free loopback port. Another process could take it
// before the server binds it; the server then fails to start and says so.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// process is a server process, its output kept in a file for the error
// that reports its failure.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done
}

func start(name, dir, bin string, args, vars []string) (*process, error) {
	p := &process{name: name, log: filepath.Join(dir, strings.ReplaceAll(name, "/", "-")+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	// The server gets this process's environment without any Creto
	// setting, plus its own.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CRETO_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, vars...)
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// failed wraps err with the end of the server's output.
func (p *process) failed(err error) error {
	out, _ := os.ReadFile(p.log)
	if len(out) > 4000 {
		out = out[len(out)-4000:]
	}
	return fmt.Errorf("%s: %w\n--- server output:\n%s", p.name, err, out)
}

// stop asks the server to shut down gracefully and kills it if it has
// not within ten seconds.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// startTimeout bounds a server's start: Cerbos compiles its policies and
// a node opens its store, on two cores busy with other work.
const startTimeout = 90 * time.Second

func waitListening(p *process, addr string) error {
	deadline := time.Now().Add(startTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.done:
			return p.failed(fmt.Errorf("exited before listening: %v", p.err))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return p.failed(fmt.Errorf("not listening on %s after %v", addr, startTimeout))
		}
	}
}

// waitDeciding waits until the server answers a decision: listening is
// not always serving (OPA activates its bundle after it listens).
func waitDeciding(p *process, d decider) error {
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := d.explain(ctx, 0)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return p.failed(fmt.Errorf("no decision after %v: %w", startTimeout, err))
		}
		select {
		case <-p.done:
			return p.failed(fmt.Errorf("exited: %v", p.err))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
