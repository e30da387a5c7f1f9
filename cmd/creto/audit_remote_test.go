package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	auditv1 "github.com/creto-systems/creto/api/creto/audit/v1"
	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/audit"
	"github.com/creto-systems/creto/services/nhi"
)

// otherLog creates a log of origin elsewhere, with its own keys, and
// returns those keys as 'creto audit verifier-key' prints them and the
// checkpoint it signed over one record.
func otherLog(t *testing.T, origin string) (keys, checkpoint string) {
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
	log, err := audit.Open(ctx, st, sealer, audit.Config{Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	if _, err := log.Append(ctx, []audit.Record{{Who: "agent", What: "x"}}); err != nil {
		t.Fatal(err)
	}
	p, err := log.GetProof(ctx, "agent", audit.GetProofRequest{Kind: audit.Inclusion, Index: 0})
	if err != nil {
		t.Fatal(err)
	}
	v := log.Verifier()
	return v.Ed25519Key() + "\n" + v.HybridKey() + "\n", string(p.Checkpoint)
}

// The remote audit commands against a real `creto serve`: records logged
// over the wire are found by query (across pages), proven with the keys
// verifier-key fetched and pinned, and the proof fails loudly under
// another log's keys; checkpoint prints a note those keys verify and
// proves a later one consistent with it.
func TestAuditRemoteCommands(t *testing.T) {
	s := startServer(t)
	conn := []string{"--addr", s.grpc, "--cacert", s.tls("ca.crt"), "--cert", s.tls("admin.crt"), "--key", s.tls("admin.key")}
	cmd := func(args ...string) (int, string, string) {
		t.Helper()
		return creto(t, nil, append(append([]string{"audit"}, args...), conn...)...)
	}
	cf := connFlags{addr: s.grpc, caCert: s.tls("ca.crt"), cert: s.tls("admin.crt"), key: s.tls("admin.key"), timeout: 30 * time.Second}
	cc, err := cf.dial()
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	api := auditv1.NewAuditServiceClient(cc)
	ctx := context.Background()

	// The keys, from the running node, pinned in a file.
	code, keys, stderr := cmd("verifier-key")
	if code != 0 || len(strings.Split(strings.TrimSpace(keys), "\n")) != 2 {
		t.Fatalf("verifier-key from the node: %d %q %s", code, keys, stderr)
	}
	keyFile := filepath.Join(t.TempDir(), "audit.keys")
	os.WriteFile(keyFile, []byte(keys), 0o600)
	origin, _, _ := strings.Cut(keys, "+")

	// A few records, then a batch that takes more than one page.
	var wire uint64
	for i, who := range []string{"payments-bot", "payments-bot", "crawler"} {
		resp, err := api.Log(ctx, &auditv1.LogRequest{Record: &auditv1.AuditRecord{Who: &nhiv1.AgentIdentity{Id: who},
			What: fmt.Sprintf("wire_transfer-%d", i), Resource: `Account::"acme"`, Outcome: auditv1.Outcome_OUTCOME_SUCCESS}})
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			wire = resp.GetIndex()
		}
	}
	const bulk = maxQueryPage + 200
	for n := 0; n < bulk; n += 600 {
		batch := &auditv1.LogBatchRequest{}
		for range 600 {
			batch.Records = append(batch.Records, &auditv1.AuditRecord{Who: &nhiv1.AgentIdentity{Id: "bulk-bot"}, What: "tick",
				Outcome: auditv1.Outcome_OUTCOME_DENIED})
		}
		if _, err := api.LogBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}

	records := func(args ...string) []map[string]any {
		t.Helper()
		code, stdout, stderr := cmd(append([]string{"query"}, args...)...)
		if code != 0 {
			t.Fatalf("query %v: %d %s", args, code, stderr)
		}
		var out []map[string]any
		for line := range strings.Lines(stdout) {
			var r map[string]any
			if err := json.Unmarshal([]byte(line), &r); err != nil || r["index"] == nil {
				t.Fatalf("query %v: line %q is not a record in JSON: %v", args, line, err)
			}
			out = append(out, r)
		}
		return out
	}
	got := records("--who", "payments-bot")
	if len(got) != 2 || got[0]["what"] != "wire_transfer-0" || got[0]["index"] != fmt.Sprint(wire-1) || got[1]["what"] != "wire_transfer-1" || got[1]["index"] != fmt.Sprint(wire) {
		t.Fatalf("query --who payments-bot: %v", got)
	}
	if got := records("--what", "wire_transfer-2", "--outcome", "success", "--since", "1h ago"); len(got) != 1 || got[0]["who"].(map[string]any)["id"] != "crawler" {
		t.Fatalf("query --what wire_transfer-2: %v", got)
	}
	if got := records("--what", "wire_transfer-2", "--until", "1h"); len(got) != 0 {
		t.Fatalf("query --until an hour ago: %v", got)
	}
	if got := records("--who", "bulk-bot", "--outcome", "denied"); len(got) != 1200 {
		t.Fatalf("query across pages: %d records, want 1200", len(got))
	}
	if got := records("--who", "bulk-bot", "--limit", "7"); len(got) != 7 {
		t.Fatalf("query --limit 7: %d records", len(got))
	}

	// prove, with the pinned keys and then with the node's, warned about.
	code, stdout, stderr := cmd("prove", fmt.Sprint(wire), "--verifier-key", keyFile)
	if code != 0 || !strings.HasPrefix(stdout, fmt.Sprintf("ok: entry %d is in %s's log of ", wire, origin)) ||
		!strings.Contains(stdout, "pinned") || !strings.Contains(stdout, `"what":"wire_transfer-1"`) || stderr != "" {
		t.Fatalf("prove %d: %d %q %s", wire, code, stdout, stderr)
	}
	code, stdout, stderr = cmd("prove", fmt.Sprint(wire), "--json")
	var proven struct {
		OK         bool         `json:"ok"`
		TreeSize   int64        `json:"tree_size"`
		PinnedKeys bool         `json:"pinned_keys"`
		Record     audit.Record `json:"record"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &proven) != nil || !proven.OK || proven.PinnedKeys || proven.Record.Index != wire ||
		proven.TreeSize <= int64(wire) || !strings.Contains(stderr, "trust on first use") {
		t.Fatalf("prove without pinned keys: %d %s %s", code, stdout, stderr)
	}

	// Under another log's keys, of the same origin, nothing verifies.
	wrongKeys, foreign := otherLog(t, origin)
	wrongFile := filepath.Join(t.TempDir(), "wrong.keys")
	os.WriteFile(wrongFile, []byte(wrongKeys), 0o600)
	code, stdout, _ = cmd("prove", fmt.Sprint(wire), "--verifier-key", wrongFile)
	if code != exitFailed || !strings.HasPrefix(stdout, fmt.Sprintf("FAILED: entry %d: verification failed", wire)) {
		t.Fatalf("prove under the wrong keys: %d %q", code, stdout)
	}
	code, stdout, _ = cmd("checkpoint", "--verifier-key", wrongFile)
	if code != exitFailed || !strings.HasPrefix(stdout, "FAILED: the latest checkpoint: verification failed") {
		t.Fatalf("checkpoint under the wrong keys: %d %q", code, stdout)
	}

	// An index beyond the tree is a refusal.
	if code, stdout, stderr := cmd("prove", "100000", "--verifier-key", keyFile); code != exitBadInput || stdout != "" || !strings.Contains(stderr, "NotFound") {
		t.Fatalf("prove beyond the tree: %d %q %s", code, stdout, stderr)
	}

	// checkpoint prints the note; the pinned keys open it.
	code, note, stderr := cmd("checkpoint", "--verifier-key", keyFile)
	v, err := readVerifierKeys(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := v.Open([]byte(note))
	if code != 0 || err != nil || cp.Origin != origin || cp.Size <= int64(wire) || stderr != "" {
		t.Fatalf("checkpoint: %d %q %s: %v", code, note, stderr, err)
	}
	oldFile := filepath.Join(t.TempDir(), "old.checkpoint")
	os.WriteFile(oldFile, []byte(note), 0o600)

	// The log grows (proving its last record signs a checkpoint covering
	// it); the new checkpoint is proven consistent with the saved one.
	resp, err := api.Log(ctx, &auditv1.LogRequest{Record: &auditv1.AuditRecord{What: "later", Outcome: auditv1.Outcome_OUTCOME_FAILURE}})
	if err != nil {
		t.Fatal(err)
	}
	if code, stdout, _ := cmd("prove", fmt.Sprint(resp.GetIndex()), "--verifier-key", keyFile); code != 0 {
		t.Fatalf("prove the last record: %d %s", code, stdout)
	}
	code, note, stderr = cmd("checkpoint", "--verifier-key", keyFile, "--consistent-with", oldFile)
	newer, err := v.Open([]byte(note))
	if code != 0 || err != nil || newer.Size != int64(resp.GetIndex())+1 ||
		!strings.Contains(stderr, fmt.Sprintf("consistent: %s's log of %d entries", origin, newer.Size)) ||
		!strings.Contains(stderr, fmt.Sprintf("extends the one of %d entries", cp.Size)) {
		t.Fatalf("checkpoint --consistent-with: %d %q %s", code, note, stderr)
	}

	// Bad input: one line on standard error, exit 2, nothing on standard output.
	foreignFile := filepath.Join(t.TempDir(), "foreign.checkpoint")
	os.WriteFile(foreignFile, []byte(foreign), 0o600)
	for name, args := range map[string][]string{
		"prove no index":         {"prove"},
		"prove bad index":        {"prove", "-1"},
		"prove bad key file":     {"prove", "0", "--verifier-key", oldFile},
		"query bad since":        {"query", "--since", "yesterday"},
		"query bad outcome":      {"query", "--outcome", "unspecified"},
		"query negative limit":   {"query", "--limit", "-1"},
		"foreign old checkpoint": {"checkpoint", "--verifier-key", keyFile, "--consistent-with", foreignFile},
		"missing old checkpoint": {"checkpoint", "--consistent-with", filepath.Join(t.TempDir(), "nope")},
		"key from dir and node":  {"verifier-key", "--data-dir", s.data},
	} {
		code, stdout, stderr := cmd(args...)
		if code != exitBadInput || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "creto: ") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 2 and one line", name, code, stdout, stderr)
		}
	}

	// The keys the node sent are the ones in its store.
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-s.exited; err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if code, offline, stderr := creto(t, nil, "audit", "verifier-key", "--data-dir", s.data); code != 0 || offline != keys {
		t.Fatalf("verifier-key offline: %d %q %s; the node sent %q", code, offline, stderr, keys)
	}
}

// A node whose data directory is put back to an earlier copy has rolled its
// log back: checkpoint --consistent-with a checkpoint it signed before
// fails (exit 1), and so it does once the restored log has grown past the
// saved size with another history: a fork under the same keys.
func TestAuditCheckpointCatchesRollbackAndFork(t *testing.T) {
	s := startServer(t)
	conn := []string{"--addr", s.grpc, "--cacert", s.tls("ca.crt"), "--cert", s.tls("admin.crt"), "--key", s.tls("admin.key")}
	cmd := func(args ...string) (int, string, string) {
		t.Helper()
		return creto(t, nil, append(append([]string{"audit"}, args...), conn...)...)
	}
	code, keys, stderr := cmd("verifier-key")
	if code != 0 {
		t.Fatalf("verifier-key: %d %s", code, stderr)
	}
	keyFile := filepath.Join(t.TempDir(), "audit.keys")
	os.WriteFile(keyFile, []byte(keys), 0o600)
	// grow logs records and proves the last, which makes the node sign a
	// checkpoint covering them, and returns that checkpoint in a file.
	grow := func(what string, n int) string {
		t.Helper()
		cf := connFlags{addr: s.grpc, caCert: s.tls("ca.crt"), cert: s.tls("admin.crt"), key: s.tls("admin.key"), timeout: 30 * time.Second}
		cc, err := cf.dial()
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		batch := &auditv1.LogBatchRequest{}
		for range n {
			batch.Records = append(batch.Records, &auditv1.AuditRecord{What: what, Outcome: auditv1.Outcome_OUTCOME_SUCCESS})
		}
		resp, err := auditv1.NewAuditServiceClient(cc).LogBatch(context.Background(), batch)
		if err != nil {
			t.Fatal(err)
		}
		if code, stdout, stderr := cmd("prove", fmt.Sprint(resp.GetFirstIndex()+uint64(n)-1), "--verifier-key", keyFile); code != 0 {
			t.Fatalf("prove: %d %s %s", code, stdout, stderr)
		}
		code, note, stderr := cmd("checkpoint", "--verifier-key", keyFile)
		if code != 0 {
			t.Fatalf("checkpoint: %d %s", code, stderr)
		}
		f := filepath.Join(t.TempDir(), "checkpoint")
		os.WriteFile(f, []byte(note), 0o600)
		return f
	}
	stop := func() {
		t.Helper()
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := <-s.exited; err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	}
	copyDir := func(from, to string) {
		t.Helper()
		if err := os.RemoveAll(to); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
	}

	grow("before", 3)
	stop()
	backup := filepath.Join(t.TempDir(), "backup")
	copyDir(s.data, backup)
	s.start(t)
	later := grow("after", 5)
	stop()
	copyDir(backup, s.data)
	s.start(t)

	code, stdout, _ := cmd("checkpoint", "--verifier-key", keyFile, "--consistent-with", later)
	if code != exitFailed || !strings.Contains(stdout, "rolled back or forked") {
		t.Fatalf("a rolled-back log: %d %q", code, stdout)
	}
	grow("forked", 10)
	code, stdout, _ = cmd("checkpoint", "--verifier-key", keyFile, "--consistent-with", later)
	if code != exitFailed || !strings.HasPrefix(stdout, "FAILED: consistency from size ") || !strings.Contains(stdout, ": verification failed") {
		t.Fatalf("a forked log: %d %q", code, stdout)
	}
}
