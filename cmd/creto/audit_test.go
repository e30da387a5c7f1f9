package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/audit"
	"github.com/creto-systems/creto/services/nhi"
)

// auditNode writes a node data directory holding an audit log of n
// records, laid out as a node keeps it (DIR/kv, DIR/node.key), and
// stops it.
func auditNode(t *testing.T, n int) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := kv.Open(filepath.Join(dir, "kv"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sealer, err := nhi.CreateFileSealer(filepath.Join(dir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	defer sealer.Close()
	log, err := audit.Open(ctx, st, sealer, audit.Config{Origin: "audit.example/test"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		r := audit.Record{Who: "agent", What: fmt.Sprintf("action-%d", i), Resource: `Doc::"d"`}
		if _, err := log.Append(ctx, []audit.Record{r}); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestAuditVerifyExportAndKeys(t *testing.T) {
	dir := auditNode(t, 20)
	code, keys, stderr := creto(t, nil, "audit", "verifier-key", "--data-dir", dir)
	if code != 0 || len(strings.Split(strings.TrimSpace(keys), "\n")) != 2 || !strings.HasPrefix(keys, "audit.example/test+") {
		t.Fatalf("verifier-key: %d %q %s", code, keys, stderr)
	}
	keyFile := filepath.Join(t.TempDir(), "audit.keys")
	os.WriteFile(keyFile, []byte(keys), 0o644)

	code, out, stderr := creto(t, nil, "audit", "verify", "--data-dir", dir, "--verifier-key", keyFile)
	if code != 0 || !strings.HasPrefix(out, "ok: audit.example/test: 20 entries") || strings.Contains(out, "--verifier-key") {
		t.Fatalf("verify store: %d %q %s", code, out, stderr)
	}
	code, out, _ = creto(t, nil, "audit", "verify", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "pass --verifier-key") {
		t.Fatalf("verify without keys: %d %q", code, out)
	}

	exp := filepath.Join(t.TempDir(), "log.export")
	if code, _, stderr := creto(t, nil, "audit", "export", "--data-dir", dir, "-o", exp); code != 0 || !strings.Contains(stderr, "exported 20 entries") {
		t.Fatalf("export: %d %s", code, stderr)
	}
	if code, _, stderr := creto(t, nil, "audit", "export", "--data-dir", dir, "-o", exp); code != 2 || !strings.Contains(stderr, "exists") {
		t.Fatalf("export over an existing file: %d %s", code, stderr)
	}
	code, out, _ = creto(t, nil, "audit", "verify", exp, "--verifier-key", keyFile, "--json")
	var rep struct {
		OK          bool  `json:"ok"`
		Entries     int64 `json:"entries"`
		TreeSize    int64 `json:"tree_size"`
		TrustedKeys bool  `json:"trusted_keys"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || !rep.OK || rep.Entries != 20 || rep.TreeSize != 20 || !rep.TrustedKeys {
		t.Fatalf("verify export: %d %s", code, out)
	}

	// Entry 13 altered in the export: exit 1, and the entry is named.
	data, _ := os.ReadFile(exp)
	i := bytes.Index(data, []byte("action-13"))
	data[i] ^= 0x20
	bad := filepath.Join(t.TempDir(), "bad.export")
	os.WriteFile(bad, data, 0o600)
	code, out, _ = creto(t, nil, "audit", "verify", bad, "--verifier-key", keyFile)
	if code != 1 || !strings.Contains(out, "FAILED: verify export: audit: verification failed at entry 13") {
		t.Fatalf("tampered export: %d %q", code, out)
	}
	// Someone else's keys: exit 1.
	other := auditNode(t, 1)
	_, otherKeys, _ := creto(t, nil, "audit", "verifier-key", "--data-dir", other)
	otherFile := filepath.Join(t.TempDir(), "other.keys")
	os.WriteFile(otherFile, []byte(otherKeys), 0o644)
	if code, out, _ := creto(t, nil, "audit", "verify", exp, "--verifier-key", otherFile); code != 1 || !strings.Contains(out, "keys other than the trusted ones") {
		t.Fatalf("other keys: %d %q", code, out)
	}
}

func TestAuditVerifyTamperedStore(t *testing.T) {
	dir := auditNode(t, 10)
	st, err := kv.Open(filepath.Join(dir, "kv"))
	if err != nil {
		t.Fatal(err)
	}
	// The last record goes missing.
	var b kv.Batch
	b.Delete(append([]byte("audit/rec/"), 0, 0, 0, 0, 0, 0, 0, 9))
	if err := st.Apply(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, out, _ := creto(t, nil, "audit", "verify", "--data-dir", dir)
	if code != 1 || !strings.Contains(out, "at entry 9: missing") {
		t.Fatalf("truncated store: %d %q", code, out)
	}
}

func TestAuditBadInput(t *testing.T) {
	dir := auditNode(t, 1)
	notExport := filepath.Join(t.TempDir(), "x")
	os.WriteFile(notExport, []byte("not an export"), 0o600)
	badKeys := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(badKeys, []byte("one line\n"), 0o600)
	empty := t.TempDir()
	for name, args := range map[string][]string{
		"no input":            {"audit", "verify"},
		"both inputs":         {"audit", "verify", notExport, "--data-dir", dir},
		"no such dir":         {"audit", "verify", "--data-dir", filepath.Join(empty, "nope")},
		"no store in dir":     {"audit", "verify", "--data-dir", empty},
		"no such file":        {"audit", "verify", filepath.Join(empty, "nope")},
		"not an export":       {"audit", "verify", notExport},
		"bad key file":        {"audit", "verify", "--data-dir", dir, "--verifier-key", badKeys},
		"export no dir":       {"audit", "export"},
		"key no dir, no node": {"audit", "verifier-key", "--addr", "127.0.0.1:1", "--plaintext", "--timeout", "2s"},
	} {
		if code, _, stderr := creto(t, nil, args...); code != 2 || stderr == "" {
			t.Errorf("%s: exit %d, stderr %q; want 2 and a message", name, code, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(empty, "nope")); err == nil {
		t.Fatal("verify created the directory it was pointed at")
	}
}

// A node's own log: `creto serve` records a denied check and a record
// logged over the wire with the real grpcurl; once the node has stopped,
// `creto audit verify --data-dir` checks the whole log, and after a byte
// of one record is flipped in the store it fails naming that entry.
func TestAuditVerifyANodesLog(t *testing.T) {
	s := startServer(t)
	out, err := s.grpcurl(t, "-d", `{"principal": {"id": "crawler"}, "action": "network_egress", "resource": "Host::\"evil.example\""}`,
		"creto.authz.v1.AuthorizationService/Check")
	if err != nil || !strings.Contains(out, `"deny"`) {
		t.Fatalf("Check: %v\n%s", err, out)
	}
	out, err = s.grpcurl(t, "-d", `{"record": {"who": {"id": "payments-bot"}, "what": "wire_transfer", "resource": "Account::\"acme\"", "outcome": "OUTCOME_SUCCESS"}}`,
		"creto.audit.v1.AuditService/Log")
	if err != nil {
		t.Fatalf("Log: %v\n%s", err, out)
	}
	// The denial reaches the log through the node's asynchronous Logger.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err = s.grpcurl(t, "-d", `{"source": "authz"}`, "creto.audit.v1.AuditService/Query")
		if err == nil && strings.Contains(out, `"policyId": "forbid-egress-unlisted"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the denied check is not in the log: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-s.exited; err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}

	code, out, stderr := creto(t, nil, "audit", "verify", "--data-dir", s.data, "--json")
	var rep struct {
		OK        bool  `json:"ok"`
		Entries   int64 `json:"entries"`
		TreeSize  int64 `json:"tree_size"`
		Uncovered int64 `json:"uncovered"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || !rep.OK || rep.Entries < 2 || rep.TreeSize != rep.Entries || rep.Uncovered != 0 {
		t.Fatalf("verify the stopped node: %d %s %s", code, out, stderr)
	}

	st, err := kv.Open(filepath.Join(s.data, "kv"))
	if err != nil {
		t.Fatal(err)
	}
	var key, leaf []byte
	err = st.Scan(context.Background(), []byte("audit/rec/"), func(k, v []byte) error {
		if bytes.Contains(v, []byte("wire_transfer")) {
			key, leaf = bytes.Clone(k), bytes.Clone(v)
		}
		return nil
	})
	if err != nil || key == nil {
		t.Fatalf("the logged record is not in the store: %v", err)
	}
	leaf[bytes.Index(leaf, []byte("wire_transfer"))] ^= 0x20
	var b kv.Batch
	b.Set(key, leaf)
	if err := st.Apply(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	st.Close()
	entry := binary.BigEndian.Uint64(key[len("audit/rec/"):])
	code, out, _ = creto(t, nil, "audit", "verify", "--data-dir", s.data)
	if code != 1 || !strings.Contains(out, fmt.Sprintf("verification failed at entry %d:", entry)) {
		t.Fatalf("a flipped byte in entry %d: %d %q", entry, code, out)
	}
}
