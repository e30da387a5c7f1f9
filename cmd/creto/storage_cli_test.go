package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
)

// registerAgent registers an agent with the operator's connection flags
// and returns a token for it.
func registerAgent(t *testing.T, s *server, id string) string {
	t.Helper()
	conn := &connFlags{addr: s.grpc, caCert: s.tls("ca.crt"), cert: s.tls("admin.crt"), key: s.tls("admin.key"), timeout: 30 * time.Second}
	cc, err := conn.dial()
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := conn.context(context.Background())
	defer cancel()
	nhi := nhiv1.NewNhiServiceClient(cc)
	if _, err := nhi.RegisterAgent(ctx, &nhiv1.RegisterAgentRequest{Agent: &nhiv1.AgentIdentity{Id: id, Type: nhiv1.AgentType_AGENT_TYPE_AUTONOMOUS, OwnerId: "alice"}}); err != nil {
		t.Fatalf("RegisterAgent: %v", err)
	}
	tok, err := nhi.IssueToken(ctx, &nhiv1.IssueTokenRequest{AgentId: id, Ttl: durationpb.New(time.Hour)})
	if err != nil {
		t.Fatalf("IssueToken: %v", err)
	}
	return tok.GetToken()
}

// The README's storage tour with `creto storage`: an agent stores a file
// larger than one chunk, fetches it back to a file and to standard output,
// lists and describes it, presigns a GET that curl follows, and deletes
// it; refusals and bad input are exit status 2 with one clear line, and a
// failed get never touches its target.
func TestStorageCommands(t *testing.T) {
	s := startServer(t)
	token := registerAgent(t, s, "sandbox-7")
	agent := []string{"--addr", s.grpc, "--cacert", s.tls("ca.crt"), "--token", token}
	operator := []string{"--addr", s.grpc, "--cacert", s.tls("ca.crt"), "--cert", s.tls("admin.crt"), "--key", s.tls("admin.key")}
	storage := func(stdin io.Reader, conn []string, args ...string) (int, string, string) {
		t.Helper()
		return creto(t, stdin, append(append([]string{"storage"}, args...), conn...)...)
	}

	// 3 MiB and a bit: three full chunks of the client's 1 MiB and a
	// partial one.
	dir := t.TempDir()
	data := make([]byte, 3<<20+12345)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	src := filepath.Join(dir, "state.json")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := storage(nil, agent, "put", "checkpoints/run-1/state.json", src, "--class", "sandbox-state")
	var put objectJSON
	if code != exitOK || json.Unmarshal([]byte(stdout), &put) != nil {
		t.Fatalf("put: %d %s %s", code, stdout, stderr)
	}
	if put.Bucket != "checkpoints" || put.Key != "run-1/state.json" || put.Size != int64(len(data)) || put.Owner != "sandbox-7" ||
		put.Classification != "sandbox-state" || put.ContentType != "application/json" || len(put.VersionID) == 0 || len(put.ContentHash) != 64 {
		t.Fatalf("put metadata: %+v", put)
	}

	// Back to a file, byte for byte, with no temporary file left beside it.
	dst := filepath.Join(dir, "out", "state.json")
	if err := os.Mkdir(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := storage(nil, agent, "get", "checkpoints/run-1/state.json", dst); code != exitOK {
		t.Fatalf("get to a file: %d %s", code, stderr)
	}
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get to a file: %v, %d bytes, equal %v", err, len(got), bytes.Equal(got, data))
	}
	if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 1 {
		t.Fatalf("get left %d entries beside the file", len(entries))
	}
	// And to standard output.
	code, stdout, stderr = storage(nil, agent, "get", "checkpoints/run-1/state.json")
	if code != exitOK || stdout != string(data) {
		t.Fatalf("get to stdout: %d, %d bytes, %s", code, len(stdout), stderr)
	}

	// From standard input, by an operator acting for the agent; the
	// content type follows the key.
	code, stdout, stderr = storage(strings.NewReader(`{"step":3}`), operator, "put", "checkpoints/run-1/step-3.json", "-", "--as", "sandbox-7")
	if code != exitOK || !strings.Contains(stdout, `"owner": "sandbox-7"`) || !strings.Contains(stdout, `"classification": "agent-data"`) {
		t.Fatalf("operator put: %d %s %s", code, stdout, stderr)
	}
	// An operator who names no agent is told how to.
	code, _, stderr = storage(nil, operator, "stat", "checkpoints/run-1/step-3.json")
	if code != exitBadInput || !strings.Contains(stderr, "--as") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("operator without --as: %d %s", code, stderr)
	}

	// stat and ls.
	code, stdout, stderr = storage(nil, agent, "stat", "checkpoints/run-1/state.json")
	var st objectJSON
	if code != exitOK || json.Unmarshal([]byte(stdout), &st) != nil || st.VersionID != put.VersionID || st.ContentHash != put.ContentHash || st.Size != put.Size {
		t.Fatalf("stat: %d %s %s", code, stdout, stderr)
	}
	code, stdout, stderr = storage(nil, agent, "ls", "checkpoints")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != exitOK || len(lines) != 2 || !strings.Contains(lines[0], `"key":"run-1/state.json"`) || !strings.Contains(lines[1], `"key":"run-1/step-3.json"`) {
		t.Fatalf("ls: %d %s %s", code, stdout, stderr)
	}
	// --limit stops early; a prefix narrows.
	if code, stdout, _ = storage(nil, agent, "ls", "checkpoints", "--limit", "1"); code != exitOK || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("ls --limit 1: %d %s", code, stdout)
	}
	if code, stdout, _ = storage(nil, agent, "ls", "checkpoints/run-1/step"); code != exitOK || strings.Count(stdout, "\n") != 1 || !strings.Contains(stdout, "step-3") {
		t.Fatalf("ls with a prefix: %d %s", code, stdout)
	}

	// The README's two lines: a put from standard input, and a presigned
	// GET followed by the real curl.
	if code, stdout, stderr = storage(strings.NewReader(`{"step":3}`), agent, "put", "checkpoints/run-1/step-3", "--class", "sandbox-state"); code != exitOK {
		t.Fatalf("put from stdin: %d %s %s", code, stdout, stderr)
	}
	code, stdout, stderr = storage(nil, agent, "presign", "get", "checkpoints/run-1/step-3", "--ttl", "5m")
	url := strings.TrimSpace(stdout)
	if code != exitOK || !strings.HasPrefix(url, "https://"+s.http+"/storage/v1/presigned?") || !strings.Contains(stderr, "GET, expires") {
		t.Fatalf("presign get: %d %s %s", code, stdout, stderr)
	}
	body, err := exec.Command("curl", "-sSf", "--cacert", s.tls("ca.crt"), url).Output()
	if err != nil || string(body) != `{"step":3}` {
		t.Fatalf("curl the URL: %v %q", err, body)
	}

	// A presigned PUT, uploaded with curl -T, then read back.
	code, stdout, stderr = storage(nil, agent, "presign", "put", "checkpoints/upload.txt", "--class", "artifact", "--content-type", "text/plain", "--max-size", "100")
	url = strings.TrimSpace(stdout)
	if code != exitOK || !strings.Contains(stderr, "PUT, expires") {
		t.Fatalf("presign put: %d %s %s", code, stdout, stderr)
	}
	upload := writeTemp(t, "uploaded with curl")
	if body, err := exec.Command("curl", "-sSf", "--cacert", s.tls("ca.crt"), "-T", upload, "-H", "Content-Type: text/plain", url).Output(); err != nil ||
		!strings.Contains(string(body), `"key":"upload.txt"`) {
		t.Fatalf("curl -T the URL: %v %s", err, body)
	}
	if code, stdout, stderr = storage(nil, agent, "get", "checkpoints/upload.txt"); code != exitOK || stdout != "uploaded with curl" {
		t.Fatalf("get the upload: %d %q %s", code, stdout, stderr)
	}

	// rm, then get: not found, exit 2, one line naming the object; the
	// existing target file is untouched and nothing is left beside it.
	if code, _, stderr = storage(nil, agent, "rm", "checkpoints/run-1/state.json"); code != exitOK {
		t.Fatalf("rm: %d %s", code, stderr)
	}
	code, _, stderr = storage(nil, agent, "get", "checkpoints/run-1/state.json", dst)
	if code != exitBadInput || !strings.Contains(stderr, `get "checkpoints/run-1/state.json": not found`) || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("get after rm: %d %s", code, stderr)
	}
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("a failed get changed its target: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 1 {
		t.Fatalf("a failed get left %d entries", len(entries))
	}

	// Bad input, refused before anything is sent.
	for _, args := range [][]string{
		{"put", "no-key", src},
		{"get", "/key"},
		{"put", "checkpoints/k", src, "--class", "secret-sauce"},
		{"presign", "delete", "checkpoints/k"},
		{"presign", "get", "checkpoints/k", "--max-size", "10"},
	} {
		if code, stdout, stderr := storage(nil, agent, args...); code != exitBadInput || stdout != "" || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: %d %q %q", args, code, stdout, stderr)
		}
	}
	// A bucket the node refuses is bad input too.
	if code, _, stderr := storage(nil, agent, "put", "Bad Bucket/k", src); code != exitBadInput || !strings.Contains(stderr, "invalid request") {
		t.Errorf("a bad bucket: %d %s", code, stderr)
	}
}

// failingReader yields some bytes, then fails, as an object stream that
// breaks off or whose hash does not match does.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

// A fetch that fails part way leaves the target as it was and nothing
// beside it; one that ends soundly replaces it whole.
func TestWriteAtomically(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "f")
	if err := os.WriteFile(target, []byte("before"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeAtomically(target, &failingReader{n: 100 << 10}); err == nil {
		t.Fatal("a failed read was written")
	}
	if got, _ := os.ReadFile(target); string(got) != "before" {
		t.Fatalf("the target changed: %q", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("%d entries left", len(entries))
	}
	if err := writeAtomically(target, strings.NewReader("after")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(target); string(got) != "after" {
		t.Fatalf("the target is %q", got)
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	// A target in a directory that does not exist is an error, not a
	// stray file.
	if err := writeAtomically(filepath.Join(dir, "no", "f"), strings.NewReader("x")); err == nil {
		t.Fatal("no error for a missing directory")
	}
}
