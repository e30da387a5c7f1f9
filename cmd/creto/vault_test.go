package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// vaultStatus is `creto vault status`'s output.
type vaultStatus struct {
	Initialized, Sealed bool
	Mode                string
	Threshold, Shares   int
	Progress            int
}

// The operator's seal workflow against a real `creto serve` started with
// unseal = "shamir": init prints the shares once, unseal takes them as
// arguments or on standard input, seal closes the vault again, and the
// real health probe follows.
func TestVaultCommandsUnsealANode(t *testing.T) {
	s := startServer(t, "--config", writeTemp(t, "[vault]\nunseal = \"shamir\"\n"))
	conn := []string{"--addr", s.grpc, "--cacert", s.tls("ca.crt"), "--cert", s.tls("admin.crt"), "--key", s.tls("admin.key")}
	vault := func(stdin string, args ...string) (int, string, string) {
		t.Helper()
		return creto(t, strings.NewReader(stdin), append(append([]string{"vault"}, args...), conn...)...)
	}
	status := func() vaultStatus {
		t.Helper()
		code, stdout, stderr := vault("", "status")
		var st vaultStatus
		if code != 0 || json.Unmarshal([]byte(stdout), &st) != nil {
			t.Fatalf("status: %d %s %s", code, stdout, stderr)
		}
		return st
	}
	probe := func() string {
		out, _ := exec.Command(tool(t, "grpc-health-probe"), "-addr", s.grpc, "-tls", "-tls-ca-cert", s.tls("ca.crt"),
			"-service", "creto.vault.v1.VaultService").CombinedOutput()
		return string(out)
	}

	if st := status(); st.Initialized || !st.Sealed {
		t.Fatalf("fresh shamir node: %+v", st)
	}
	if out := probe(); !strings.Contains(out, "NOT_SERVING") {
		t.Fatalf("probe of a sealed vault: %s", out)
	}
	code, stdout, stderr := vault("", "init", "--shares", "3", "--threshold", "2")
	shares := strings.Fields(stdout)
	if code != 0 || len(shares) != 3 || !strings.Contains(stderr, "shown once") {
		t.Fatalf("init: %d %q %s", code, stdout, stderr)
	}
	for _, sh := range shares {
		if len(sh) != 88 {
			t.Fatalf("share %q is not 88 characters", sh)
		}
	}
	if code, _, stderr := vault("", "init"); code != exitBadInput || !strings.Contains(stderr, "already initialized") {
		t.Fatalf("second init: %d %s", code, stderr)
	}
	if code, _, stderr := vault("", "unseal"); code != exitBadInput || !strings.Contains(stderr, "no shares") {
		t.Fatalf("unseal without shares: %d %s", code, stderr)
	}
	if code, _, stderr := vault("", "unseal", "not-a-share"); code != exitBadInput || !strings.Contains(stderr, "malformed share") {
		t.Fatalf("unseal with garbage: %d %s", code, stderr)
	}
	code, stdout, stderr = vault("", "unseal", shares[0])
	if code != 0 || !strings.Contains(stdout, `"progress": 1`) || !strings.Contains(stdout, `"sealed": true`) {
		t.Fatalf("first share: %d %s %s", code, stdout, stderr)
	}
	// The second share on standard input, out of the shell history.
	code, stdout, stderr = vault("\n"+shares[2]+"\n\n", "unseal")
	if code != 0 || strings.Contains(stdout, `"sealed"`) {
		t.Fatalf("second share from stdin: %d %s %s", code, stdout, stderr)
	}
	if st := status(); !st.Initialized || st.Sealed || st.Mode != "shamir" || st.Threshold != 2 || st.Shares != 3 {
		t.Fatalf("unsealed: %+v", st)
	}
	if out := probe(); strings.Contains(out, "NOT_SERVING") || !strings.Contains(out, "SERVING") {
		t.Fatalf("probe of an unsealed vault: %s", out)
	}
	if code, stdout, stderr := vault("", "seal"); code != 0 || !strings.Contains(stdout, `"sealed": true`) {
		t.Fatalf("seal: %d %s %s", code, stdout, stderr)
	}
	if out := probe(); !strings.Contains(out, "NOT_SERVING") {
		t.Fatalf("probe after seal: %s", out)
	}
}
