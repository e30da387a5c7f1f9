package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the tests run this binary as the real creto command: a
// child started with CRETO_TEST_MAIN=1 executes the command line instead
// of the tests.
func TestMain(m *testing.M) {
	if os.Getenv("CRETO_TEST_MAIN") == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// tool returns the path of a pinned client installed by `make tools`; the
// end-to-end tests need the real ones.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", ".tools", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing: run `make tools` (it installs the pinned gRPC clients the end-to-end tests drive)", p)
	}
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// server is a `creto serve` process.
type server struct {
	cmd              *exec.Cmd
	grpc, http, data string
	exited           chan error
	// args and env (beyond the test binary's) are its command line, kept
	// to start it again.
	args, env []string
}

// startServer runs `creto serve` in a child process with the example
// policies and entities, and waits until it serves.
func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	s := &server{grpc: freeAddr(t), http: freeAddr(t), data: t.TempDir()}
	s.args = append([]string{"serve", "--data-dir", s.data, "--grpc-addr", s.grpc, "--http-addr", s.http, "--raft-addr", freeAddr(t),
		"--import-policies", examplePolicies, "--entities", exampleEntities}, extra...)
	s.start(t)
	return s
}

// start runs the server's command line in a child process and waits until
// it serves; it may run again once the last process has exited.
func (s *server) start(t *testing.T) {
	t.Helper()
	s.exited = make(chan error, 1)
	s.cmd = exec.Command(os.Args[0], s.args...)
	s.cmd.Env = append(append(os.Environ(), "CRETO_TEST_MAIN=1"), s.env...)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	var logged strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logged.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "creto node serving") {
				close(ready)
			}
		}
	}()
	cmd, exited := s.cmd, s.exited
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case <-ready:
	case err := <-exited:
		t.Fatalf("creto serve exited: %v\n%s", err, logged.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("creto serve did not start\n%s", logged.String())
	}
}

func (s *server) tls(name string) string { return filepath.Join(s.data, "tls", name) }

// grpcurl runs the real grpcurl against the server as the development
// operator (or with extra flags instead).
func (s *server) grpcurl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	base := []string{"-cacert", s.tls("ca.crt")}
	if !strings.Contains(strings.Join(args, " "), "-cert") {
		base = append(base, "-cert", s.tls("admin.crt"), "-key", s.tls("admin.key"))
	}
	out, err := exec.Command(tool(t, "grpcurl"), append(append(base, args[:len(args)-1]...), s.grpc, args[len(args)-1])...).CombinedOutput()
	return string(out), err
}

func TestServeEndToEndWithRealClients(t *testing.T) {
	s := startServer(t)

	// Health, with the real probe, for the server and for each service.
	probe := tool(t, "grpc-health-probe")
	for _, svc := range []string{"", "creto.authz.v1.AuthorizationService"} {
		out, err := exec.Command(probe, "-addr", s.grpc, "-tls", "-tls-ca-cert", s.tls("ca.crt"), "-service", svc).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SERVING") {
			t.Fatalf("grpc-health-probe %q: %v\n%s", svc, err, out)
		}
	}

	// Reflection lists the services.
	out, err := s.grpcurl(t, "list")
	if err != nil || !strings.Contains(out, "creto.authz.v1.AuthorizationService") {
		t.Fatalf("grpcurl list: %v\n%s", err, out)
	}

	// A check decided by the imported example policies: a forbid with
	// its reason.
	out, err = s.grpcurl(t, "-d", `{"principal": {"id": "crawler"}, "action": "network_egress", "resource": "Host::\"evil.example\""}`,
		"creto.authz.v1.AuthorizationService/Check")
	if err != nil || !strings.Contains(out, `"policyId": "forbid-egress-unlisted"`) || !strings.Contains(out, "not on the egress allowlist") {
		t.Fatalf("grpcurl Check: %v\n%s", err, out)
	}

	// A policy created over the network decides at once.
	out, err = s.grpcurl(t, "-d", `{"id": "users-delete", "text": "permit (principal is User, action == Action::\"delete\", resource);"}`,
		"creto.authz.v1.AuthorizationService/CreatePolicy")
	if err != nil {
		t.Fatalf("grpcurl CreatePolicy: %v\n%s", err, out)
	}
	req := `{"principal": {"type": "User", "id": "alice"}, "action": "delete", "resource": "Doc::\"d\""}`
	out, err = s.grpcurl(t, "-d", req, "creto.authz.v1.AuthorizationService/Check")
	if err != nil || !strings.Contains(out, `"allow"`) {
		t.Fatalf("grpcurl Check: %v\n%s", err, out)
	}

	// Without a certificate the node refuses to answer.
	out, err = s.grpcurl(t, "-cert", "", "-d", req, "creto.authz.v1.AuthorizationService/Check")
	if err == nil || !strings.Contains(out, "Unauthenticated") {
		t.Fatalf("grpcurl without a certificate: %v\n%s", err, out)
	}

	// An extension registered over the network changes the decision.
	conn := []string{"--addr", s.grpc, "--cacert", s.tls("ca.crt"), "--cert", s.tls("admin.crt"), "--key", s.tls("admin.key")}
	module := filepath.Join(t.TempDir(), "no-deletes.wasm")
	code, _, stderr := creto(t, nil, "ext", "annotate", "../../engine/testdata/ext/deny_delete.wasm", "-o", module,
		"--manifest", writeTemp(t, `{"name": "no-deletes"}`))
	if code != 0 {
		t.Fatalf("annotate: %s", stderr)
	}
	code, stdout, stderr := creto(t, nil, append([]string{"ext", "register", module}, conn...)...)
	if code != 0 || !strings.Contains(stdout, `"no-deletes"`) {
		t.Fatalf("ext register: %d %s %s", code, stdout, stderr)
	}
	code, stdout, _ = creto(t, nil, append([]string{"ext", "list"}, conn...)...)
	if code != 0 || !strings.Contains(stdout, `"no-deletes"`) {
		t.Fatalf("ext list: %s", stdout)
	}
	out, err = s.grpcurl(t, "-d", req, "creto.authz.v1.AuthorizationService/Check")
	if err != nil || !strings.Contains(out, `"deny"`) {
		t.Fatalf("Check after registering the extension: %v\n%s", err, out)
	}
	code, _, stderr = creto(t, nil, append([]string{"ext", "register", module}, conn...)...)
	if code != exitBadInput || !strings.Contains(stderr, "AlreadyExists") {
		t.Fatalf("registering twice: %d %s", code, stderr)
	}

	// Metrics carry the seed's names.
	metrics, err := exec.Command("curl", "-sf", "--cacert", s.tls("ca.crt"), "https://"+s.http+"/metrics").Output()
	if err != nil || !strings.Contains(string(metrics), "authz_check_duration_seconds_count") || !strings.Contains(string(metrics), `authz_requests_total{code="OK",method="Check",status="ok"}`) {
		t.Fatalf("metrics: %v\n%.2000s", err, metrics)
	}

	// SIGTERM stops the node gracefully.
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigPrint(t *testing.T) {
	file := writeTemp(t, "[server]\ngrpc_addr = \"127.0.0.1:6000\"\n[authz]\ncache_ttl_seconds = 5\n")
	t.Setenv("CRETO_SERVER_HTTP_ADDR", "127.0.0.1:6001")
	t.Setenv("CRETO_AUTHZ_CACHE_TTL_SECONDS", "7")
	code, stdout, stderr := creto(t, nil, "config", "print", "--config", file, "--data-dir", "/srv/creto")
	if code != 0 {
		t.Fatalf("config print: %s", stderr)
	}
	for _, want := range []string{
		`grpc_addr = "127.0.0.1:6000"`, // file
		`http_addr = "127.0.0.1:6001"`, // environment
		`cache_ttl_seconds = 7`,        // environment over file
		`data_dir = "/srv/creto"`,      // flag
		`default_token_ttl = "15m0s"`,  // a service's default
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("missing %s in\n%s", want, stdout)
		}
	}

	bad := writeTemp(t, "[server]\ngrpc_adr = \"x\"\n")
	code, _, stderr = creto(t, nil, "config", "print", "--config", bad)
	if code != exitBadInput || !strings.Contains(stderr, "server.grpc_adr") {
		t.Fatalf("unknown key: %d %s", code, stderr)
	}
	t.Setenv("CRETO_SERVER_MAX_RECV_MSG_BYTES", "lots")
	code, _, stderr = creto(t, nil, "config", "print")
	if code != exitBadInput || !strings.Contains(stderr, "CRETO_SERVER_MAX_RECV_MSG_BYTES") {
		t.Fatalf("bad environment value: %d %s", code, stderr)
	}
}

// TestRunANodeTour runs the README's "Run a node" commands against a node
// started as make run starts it.
func TestRunANodeTour(t *testing.T) {
	s := startServer(t, "--schema", exampleSchema)
	out, err := s.grpcurl(t, "list")
	for _, svc := range []string{"creto.authz.v1.AuthorizationService", "creto.nhi.v1.NhiService", "creto.memory.v1.MemoryService",
		"creto.vault.v1.VaultService", "creto.storage.v1.StorageService", "creto.audit.v1.AuditService", "creto.consensus.v1.ConsensusService"} {
		if err != nil || !strings.Contains(out, svc) {
			t.Fatalf("list lacks %s: %v\n%s", svc, err, out)
		}
	}
	if out, err := s.grpcurl(t, "-d", `{"agent": {"id": "ci-bot", "type": "AGENT_TYPE_SERVICE", "owner_id": "alice"}}`,
		"creto.nhi.v1.NhiService/RegisterAgent"); err != nil {
		t.Fatalf("RegisterAgent: %v\n%s", err, out)
	}
	out, err = s.grpcurl(t, "-d", `{"principal": {"id": "ci-bot"}, "action": "read_file", "resource": "File::\"engineering/design.md\""}`,
		"creto.authz.v1.AuthorizationService/Check")
	if err != nil || !strings.Contains(out, `"allow"`) || !strings.Contains(out, "files-team-read") {
		t.Fatalf("read_file: %v\n%s", err, out)
	}
	out, err = s.grpcurl(t, "-d", `{"principal": {"id": "ci-bot"}, "action": "network_egress", "resource": "Host::\"evil.example\"", "context": {"port": 443}}`,
		"creto.authz.v1.AuthorizationService/Check")
	if err != nil || !strings.Contains(out, `"policyId": "forbid-egress-unlisted"`) {
		t.Fatalf("network_egress: %v\n%s", err, out)
	}
}
