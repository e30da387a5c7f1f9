package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The README's storage tour, with the real clients: an operator registers
// an agent and issues its token with grpcurl; the agent stores an object
// (base64 data) and asks for a presigned URL; curl fetches the object
// through the URL from the node's HTTP listener.
func TestServeStorageTourWithGrpcurlAndCurl(t *testing.T) {
	s := startServer(t)
	if out, err := s.grpcurl(t, "-d", `{"agent": {"id": "sandbox-7", "type": "AGENT_TYPE_AUTONOMOUS", "owner_id": "alice"}}`,
		"creto.nhi.v1.NhiService/RegisterAgent"); err != nil {
		t.Fatalf("RegisterAgent: %v\n%s", err, out)
	}
	out, err := s.grpcurl(t, "-d", `{"agent_id": "sandbox-7", "ttl": "3600s"}`, "creto.nhi.v1.NhiService/IssueToken")
	var issued struct{ Token string }
	if err != nil || json.Unmarshal([]byte(out), &issued) != nil || issued.Token == "" {
		t.Fatalf("IssueToken: %v\n%s", err, out)
	}
	agent := []string{"-cert", "", "-key", "", "-H", "authorization: Bearer " + issued.Token}

	// {"step":3} in base64, as grpcurl's JSON carries bytes.
	out, err = s.grpcurl(t, append(agent, "-d", `{"reference": {"bucket": "checkpoints", "key": "run-1/step-3"}, "data": "eyJzdGVwIjozfQ==",
		"classification": "CLASSIFICATION_SANDBOX_STATE", "content_type": "application/json"}`, "creto.storage.v1.StorageService/Store")...)
	if err != nil || !strings.Contains(out, `"versionId"`) || !strings.Contains(out, `"id": "sandbox-7"`) {
		t.Fatalf("Store: %v\n%s", err, out)
	}
	out, err = s.grpcurl(t, append(agent, "-d", `{"reference": {"bucket": "checkpoints", "key": "run-1/step-3"}, "operation": "PRESIGNED_OPERATION_GET"}`,
		"creto.storage.v1.StorageService/GeneratePresignedUrl")...)
	var presigned struct{ URL string }
	if err != nil || json.Unmarshal([]byte(out), &presigned) != nil || !strings.HasPrefix(presigned.URL, "https://"+s.http+"/storage/v1/presigned?") {
		t.Fatalf("GeneratePresignedUrl: %v\n%s", err, out)
	}
	body, err := exec.Command("curl", "-sSf", "--cacert", s.tls("ca.crt"), presigned.URL).Output()
	if err != nil || string(body) != `{"step":3}` {
		t.Fatalf("curl the URL: %v %q", err, body)
	}
}

// ext validate links storage guests against the storage module, and
// refuses them without the grant.
func TestExtValidateLinksStorageGuests(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "m.json")
	if err := os.WriteFile(manifest, []byte(`{"name": "hook", "capabilities": ["storage"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "ext.wasm")
	src := filepath.Join("..", "..", "hosts", "testdata", "storage_ops.wasm")
	if code, _, stderr := creto(t, nil, "ext", "annotate", src, "--manifest", manifest, "-o", out); code != exitOK {
		t.Fatal(stderr)
	}
	if code, _, stderr := creto(t, nil, "ext", "validate", out); code != exitBadInput || !strings.Contains(stderr, "not grant") {
		t.Fatalf("without the grant: %d %s", code, stderr)
	}
	code, stdout, stderr := creto(t, nil, "ext", "validate", out, "--grant", "storage")
	if code != exitOK || !strings.Contains(stdout, "creto:storage/v1.put") || !strings.Contains(stdout, "creto:storage/v1.delete") {
		t.Fatalf("with the grant: %d %s %s", code, stdout, stderr)
	}
}
