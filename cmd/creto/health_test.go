package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/creto-systems/creto/client"
)

// `creto health` against a real `creto serve`: healthy, then unhealthy
// once the vault is sealed, unhealthy when nothing listens, and bad input
// for what cannot be used.
func TestHealthCommand(t *testing.T) {
	s := startServer(t)
	// Timeouts above the seed's 10 ms for authz: this machine is shared,
	// and "slow" is not what this test is about.
	cfg := writeTemp(t, "[authz]\ntimeout_ms = 2000\n[nhi]\ntimeout_ms = 2000\n[memory]\ntimeout_ms = 2000\n[vault]\ntimeout_ms = 2000\n"+
		"[storage]\ntimeout_ms = 2000\n[audit]\ntimeout_ms = 2000\n[consensus]\ntimeout_ms = 2000\n")
	health := func(args ...string) (int, client.Report, string) {
		t.Helper()
		code, stdout, stderr := creto(t, nil, append([]string{"health", "--config", cfg}, args...)...)
		var r client.Report
		if code != exitBadInput {
			if err := json.Unmarshal([]byte(stdout), &r); err != nil {
				t.Fatalf("output is not a report: %v\n%s\n%s", err, stdout, stderr)
			}
		}
		return code, r, stderr
	}
	conn := []string{"--addr", s.grpc, "--cacert", s.tls("ca.crt")}

	code, r, stderr := health(conn...)
	if code != exitOK || r.Status != client.Healthy || len(r.Services) != 8 {
		t.Fatalf("healthy node: %d %+v %s", code, r, stderr)
	}
	for _, name := range []string{"authz", "nhi", "memory", "vault", "storage", "audit", "consensus", "crypto"} {
		if r.Services[name].Status != client.Healthy {
			t.Fatalf("%s: %+v", name, r.Services[name])
		}
	}

	if code, _, stderr := creto(t, nil, append([]string{"vault", "seal", "--cert", s.tls("admin.crt"), "--key", s.tls("admin.key")}, conn...)...); code != exitOK {
		t.Fatalf("seal: %d %s", code, stderr)
	}
	code, r, _ = health(append(conn, "--cert", s.tls("admin.crt"), "--key", s.tls("admin.key"))...)
	if code != exitFailed || r.Status != client.Unhealthy || r.Services["vault"].Status != client.Unhealthy ||
		r.Reason != "critical service unavailable: vault" {
		t.Fatalf("sealed vault: %d %+v", code, r)
	}

	code, r, _ = health("--addr", freeAddr(t), "--cacert", s.tls("ca.crt"))
	if code != exitFailed || r.Status != client.Unhealthy || !strings.Contains(r.Services["authz"].Reason, "service unavailable") {
		t.Fatalf("nothing listening: %d %+v", code, r)
	}

	for name, args := range map[string][]string{
		"missing CA":       {"--addr", s.grpc, "--cacert", "/nonexistent/ca.crt"},
		"missing cert":     {"--addr", s.grpc, "--cacert", s.tls("ca.crt"), "--cert", "/nonexistent/a.crt", "--key", "/nonexistent/a.key"},
		"bad address":      {"--addr", "no-port", "--cacert", s.tls("ca.crt")},
		"token, plaintext": {"--addr", s.grpc, "--plaintext", "--token", "t"},
	} {
		if code, _, stderr := health(args...); code != exitBadInput || !strings.HasPrefix(stderr, "creto: ") {
			t.Errorf("%s: %d %s", name, code, stderr)
		}
	}
	if code, _, stderr := creto(t, nil, "health", "--config", writeTemp(t, "[authz]\ntimeout = 5\n"), "--addr", s.grpc); code != exitBadInput ||
		!strings.Contains(stderr, "authz.timeout") {
		t.Errorf("unknown key: %d %s", code, stderr)
	}
}
