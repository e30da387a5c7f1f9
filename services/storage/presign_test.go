package storage

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/creto-systems/creto/services/nhi"
)

// presignEnv is a node serving presigned URLs on a loopback listener.
type presignEnv struct {
	*env
	srv *httptest.Server
}

func newPresignEnv(t *testing.T, cfg Config) *presignEnv {
	e := newEnv(t, cfg)
	e.agents("alice", "bob")
	mux := http.NewServeMux()
	// How the node mounts it: the handler at the configured path.
	mux.Handle(e.s.cfg.PresignPath, e.s.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &presignEnv{env: e, srv: srv}
}

func (p *presignEnv) presign(caller Caller, req PresignRequest) PresignedURL {
	p.t.Helper()
	u, err := p.s.Presign(context.Background(), caller, req)
	if err != nil {
		p.t.Fatalf("presign: %v", err)
	}
	return u
}

// do sends a request to a presigned URL and returns the status and body.
func (p *presignEnv) do(method, u string, body io.Reader, header http.Header) (int, []byte, http.Header) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.srv.URL+u, body)
	if err != nil {
		p.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := p.srv.Client().Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func TestPresignedGet(t *testing.T) {
	p := newPresignEnv(t, testConfig())
	data := payload(2*minChunkSize+7, 1)
	md := p.put(alice, StoreRequest{Bucket: "b", Key: "report.pdf", ContentType: "application/pdf"}, data)
	u := p.presign(alice, PresignRequest{Op: PresignGet, Ref: StorageRef{Bucket: "b", Key: "report.pdf"}, TTL: time.Hour})
	if u.Method != http.MethodGet || u.Ref.VersionID != md.Ref.VersionID || !strings.HasPrefix(u.URL, "/storage/v1/presigned?") {
		t.Fatalf("presigned %+v", u)
	}
	// A newer version does not change what the URL serves.
	p.put(alice, StoreRequest{Bucket: "b", Key: "report.pdf"}, []byte("v2"))
	status, body, h := p.do(http.MethodGet, u.URL, nil, nil)
	if status != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET: %d, %d bytes", status, len(body))
	}
	if h.Get("Content-Type") != "application/pdf" || h.Get("ETag") != `"`+hex.EncodeToString(md.ContentHash)+`"` ||
		h.Get("X-Creto-Version-Id") != md.Ref.VersionID {
		t.Fatalf("headers %v", h)
	}
	// A delegate's URL works while its delegation does.
	bob := p.delegate("alice", "bob", PermRead)
	bu := p.presign(bob, PresignRequest{Op: PresignGet, Ref: md.Ref})
	if status, _, _ := p.do(http.MethodGet, bu.URL, nil, nil); status != http.StatusOK {
		t.Fatalf("delegate's URL: %d", status)
	}
	id, _ := nhi.ParseDelegationID(bob.Delegation)
	if err := p.ids.RevokeDelegation(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := p.do(http.MethodGet, bu.URL, nil, nil); status != http.StatusForbidden {
		t.Fatalf("URL of a revoked delegation: %d", status)
	}
	// Deleted objects are gone from their URLs too.
	if err := p.s.Delete(context.Background(), alice, md.Ref); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := p.do(http.MethodGet, u.URL, nil, nil); status != http.StatusNotFound {
		t.Fatalf("URL of a deleted version: %d", status)
	}
}

// Expired, tampered and wrong-method requests get 403 and change nothing.
func TestPresignedRefusals(t *testing.T) {
	p := newPresignEnv(t, testConfig())
	md := p.put(alice, StoreRequest{Bucket: "b", Key: "k"}, []byte("data"))
	get := p.presign(alice, PresignRequest{Op: PresignGet, Ref: md.Ref, TTL: time.Minute})
	put := p.presign(alice, PresignRequest{Op: PresignPut, Ref: StorageRef{Bucket: "b", Key: "up"}, Classification: Artifact})
	edit := func(raw string, f func(url.Values)) string {
		u, _ := url.Parse(raw)
		q := u.Query()
		f(q)
		return u.Path + "?" + q.Encode()
	}
	cases := []struct {
		name, method, url string
	}{
		{"another key", http.MethodGet, edit(get.URL, func(q url.Values) { q.Set("key", "other") })},
		{"later expiry", http.MethodGet, edit(get.URL, func(q url.Values) { q.Set("expires", "9999999999") })},
		{"another agent", http.MethodGet, edit(get.URL, func(q url.Values) { q.Set("agent", "bob") })},
		{"flipped signature", http.MethodGet, edit(get.URL, func(q url.Values) {
			s := []byte(q.Get("sig"))
			s[0] ^= 1
			q.Set("sig", string(s))
		})},
		{"no signature", http.MethodGet, edit(get.URL, func(q url.Values) { q.Del("sig") })},
		{"extra parameter", http.MethodGet, edit(get.URL, func(q url.Values) { q.Set("x", "1") })},
		{"repeated parameter", http.MethodGet, edit(get.URL, func(q url.Values) { q.Add("key", "k") })},
		{"GET URL used to PUT", http.MethodPut, get.URL},
		{"PUT URL used to GET", http.MethodGet, put.URL},
		{"PUT URL with a bigger max", http.MethodPut, edit(put.URL, func(q url.Values) { q.Set("max", "99999999999") })},
		{"PUT URL for another owner", http.MethodPut, edit(put.URL, func(q url.Values) { q.Set("owner", "bob") })},
		{"DELETE", http.MethodDelete, get.URL},
	}
	for _, c := range cases {
		status, body, _ := p.do(c.method, c.url, strings.NewReader("payload"), nil)
		if status != http.StatusForbidden {
			t.Fatalf("%s: %d %s", c.name, status, body)
		}
	}
	if status, _, _ := p.do(http.MethodGet, "/elsewhere?"+strings.SplitN(get.URL, "?", 2)[1], nil, nil); status != http.StatusNotFound {
		t.Fatal("a presigned query on another path was served")
	}
	p.clock.advance(2 * time.Minute)
	if status, body, _ := p.do(http.MethodGet, get.URL, nil, nil); status != http.StatusForbidden || !strings.Contains(string(body), "expired") {
		t.Fatalf("expired URL: %d %s", status, body)
	}
	p.unchanged("after refused requests", 1, 0)
}

func TestPresignedPut(t *testing.T) {
	cfg := testConfig()
	cfg.DefaultQuotaBytes = 4 * minChunkSize
	p := newPresignEnv(t, cfg)
	u := p.presign(alice, PresignRequest{Op: PresignPut, Ref: StorageRef{Bucket: "up"}, Classification: Artifact,
		ContentType: "text/csv", MaxSize: 2 * minChunkSize})
	if u.Ref.Key == "" || u.Method != http.MethodPut {
		t.Fatalf("presigned %+v", u)
	}
	ct := http.Header{"Content-Type": {"text/csv"}}
	data := payload(minChunkSize+3, 2)
	status, body, _ := p.do(http.MethodPut, u.URL, bytes.NewReader(data), ct)
	if status != http.StatusCreated {
		t.Fatalf("PUT: %d %s", status, body)
	}
	var out struct {
		VersionID   string `json:"version_id"`
		ContentHash string `json:"content_hash"`
		Size        int64  `json:"size"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Size != int64(len(data)) {
		t.Fatalf("response %s: %v", body, err)
	}
	md, err := p.s.GetMetadata(context.Background(), alice, StorageRef{Bucket: "up", Key: u.Ref.Key, VersionID: out.VersionID})
	if err != nil || md.Owner != "alice" || md.Classification != Artifact || md.ContentType != "text/csv" || hex.EncodeToString(md.ContentHash) != out.ContentHash {
		t.Fatalf("stored %+v: %v", md, err)
	}
	if !bytes.Equal(p.get(alice, md.Ref), data) {
		t.Fatal("uploaded bytes differ")
	}

	refused := []struct {
		name   string
		body   io.Reader
		header http.Header
		status int
	}{
		{"wrong content type", bytes.NewReader(data), http.Header{"Content-Type": {"text/plain"}}, http.StatusForbidden},
		{"declared too large", bytes.NewReader(payload(2*minChunkSize+1, 3)), ct, http.StatusRequestEntityTooLarge},
		// No Content-Length: the limit is found while streaming.
		{"streamed too large", io.MultiReader(bytes.NewReader(payload(3*minChunkSize, 4))), ct, http.StatusRequestEntityTooLarge},
	}
	for _, c := range refused {
		status, body, _ := p.do(http.MethodPut, u.URL, c.body, c.header)
		if status != c.status {
			t.Fatalf("%s: %d %s", c.name, status, body)
		}
	}
	p.unchanged("after refused uploads", 1, 1)
	if usage, _ := p.s.Usage(context.Background(), alice, "alice"); usage.Reserved != 0 || usage.Used != int64(len(data)) {
		t.Fatalf("usage %+v", usage)
	}
	// Past the owner's quota: 507, nothing stored.
	p.put(alice, StoreRequest{Key: "filler"}, payload(2*minChunkSize, 5))
	if status, body, _ := p.do(http.MethodPut, u.URL, bytes.NewReader(data), ct); status != http.StatusInsufficientStorage {
		t.Fatalf("over quota: %d %s", status, body)
	}
	p.unchanged("after an upload over quota", 2, 2)
}

// An upload the client breaks off is the client's refusal: 400, nothing
// stored or reserved, and no error in the node's log, where anyone able to
// hold a URL could otherwise write errors at will.
func TestPresignedPutCutShort(t *testing.T) {
	p := newPresignEnv(t, testConfig())
	u := p.presign(alice, PresignRequest{Op: PresignPut, Ref: StorageRef{Bucket: "up"}, Classification: Artifact, MaxSize: 2 * minChunkSize})
	var logged bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})))

	// A chunked upload (no declared length) whose connection is reset.
	body := io.MultiReader(bytes.NewReader(payload(minChunkSize+7, 9)), iotest.ErrReader(syscall.ECONNRESET))
	req := httptest.NewRequest(http.MethodPut, u.URL, body)
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	p.s.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("a cut upload: %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(logged.String(), "level=DEBUG") || !strings.Contains(logged.String(), "cut short") || strings.Contains(logged.String(), "level=ERROR") {
		t.Fatalf("log:\n%s", logged.String())
	}
	p.unchanged("after a cut upload", 0, 0)
	if usage, _ := p.s.Usage(context.Background(), alice, "alice"); usage.Reserved != 0 || usage.Used != 0 {
		t.Fatalf("usage %+v", usage)
	}
}

// A PUT URL is refused when issued for an owner that could not receive
// the upload — unknown to NHI, or suspended — rather than failing when used.
func TestPresignPutNeedsAnOwnerWithAKey(t *testing.T) {
	p := newPresignEnv(t, testConfig())
	// Issued while bob could receive objects, used after he was suspended:
	// a refusal (403), not the node's failure.
	issued := p.presign(Caller{Agent: "bob"}, PresignRequest{Op: PresignPut, Ref: StorageRef{Bucket: "up", Key: "early"}, Classification: Artifact})
	for _, owner := range []string{"ghost", "bob"} {
		if owner == "bob" {
			suspended := nhi.StatusSuspended
			if _, err := p.ids.Update(context.Background(), "bob", nhi.AgentUpdate{Status: &suspended}); err != nil {
				t.Fatal(err)
			}
		}
		_, err := p.s.Presign(context.Background(), Caller{Agent: owner},
			PresignRequest{Op: PresignPut, Ref: StorageRef{Bucket: "up", Key: "k"}, Classification: Artifact})
		if !errors.Is(err, ErrEncryptionFailed) {
			t.Fatalf("a PUT URL for %s: %v", owner, err)
		}
	}
	if status, body, _ := p.do(http.MethodPut, issued.URL, strings.NewReader("x"), nil); status != http.StatusForbidden {
		t.Fatalf("a PUT URL of a suspended owner: %d %s", status, body)
	}
	p.unchanged("after refused PUT URLs", 0, 0)
}

func TestPresignRequestChecks(t *testing.T) {
	p := newPresignEnv(t, testConfig())
	ctx := context.Background()
	md := p.put(alice, StoreRequest{Key: "secret", Classification: Sensitive}, []byte("x"))
	plain := p.put(alice, StoreRequest{Key: "plain"}, []byte("x"))
	for name, c := range map[string]struct {
		caller Caller
		req    PresignRequest
		want   error
	}{
		"sensitive":                 {alice, PresignRequest{Op: PresignGet, Ref: md.Ref}, ErrAccessDenied},
		"stranger":                  {Caller{Agent: "bob"}, PresignRequest{Op: PresignGet, Ref: plain.Ref}, ErrAccessDenied},
		"over 7 days":               {alice, PresignRequest{Op: PresignGet, Ref: plain.Ref, TTL: 8 * day}, ErrInvalidArgument},
		"negative TTL":              {alice, PresignRequest{Op: PresignGet, Ref: plain.Ref, TTL: -time.Second}, ErrInvalidArgument},
		"unknown operation":         {alice, PresignRequest{Op: "DELETE", Ref: plain.Ref}, ErrInvalidArgument},
		"PUT to a version":          {alice, PresignRequest{Op: PresignPut, Ref: plain.Ref, Classification: AgentData}, ErrInvalidArgument},
		"PUT without class":         {alice, PresignRequest{Op: PresignPut, Ref: StorageRef{Key: "n"}}, ErrInvalidArgument},
		"PUT too large":             {alice, PresignRequest{Op: PresignPut, Ref: StorageRef{Key: "n"}, Classification: AgentData, MaxSize: 2 << 30}, ErrTooLarge},
		"PUT into another's object": {Caller{Agent: "bob"}, PresignRequest{Op: PresignPut, Ref: StorageRef{Bucket: "default", Key: "plain"}, Classification: AgentData}, ErrAccessDenied},
	} {
		_, err := p.s.Presign(ctx, c.caller, c.req)
		wantErr(t, name, err, c.want)
	}
	// An object that becomes sensitive after its URL was issued is refused.
	u := p.presign(alice, PresignRequest{Op: PresignGet, Ref: plain.Ref})
	if _, err := p.s.UpdateMetadata(ctx, alice, UpdateMetadataRequest{Ref: plain.Ref, Classification: Sensitive}); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := p.do(http.MethodGet, u.URL, nil, nil); status != http.StatusForbidden {
		t.Fatalf("reclassified object: %d", status)
	}
	// The default lifetime applies to a zero TTL.
	u = p.presign(alice, PresignRequest{Op: PresignPut, Ref: StorageRef{Key: "n"}, Classification: AgentData})
	if got := u.ExpiresAt.Sub(p.clock.now()); got > 15*time.Minute || got < 14*time.Minute {
		t.Fatalf("default lifetime %v", got)
	}
}

// The same URLs through the real curl binary over loopback TCP.
func TestPresignedWithCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl is required for this test and is not installed: %v", err)
	}
	p := newPresignEnv(t, testConfig())
	dir := t.TempDir()
	data := payload(3*minChunkSize+11, 7)
	in := filepath.Join(dir, "in.bin")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (status string, out []byte) {
		t.Helper()
		outFile := filepath.Join(dir, "out")
		os.Remove(outFile)
		cmd := exec.Command(curl, append([]string{"-sS", "-o", outFile, "-w", "%{http_code}"}, args...)...)
		code, err := cmd.Output()
		if err != nil {
			t.Fatalf("curl %v: %v", args, err)
		}
		out, _ = os.ReadFile(outFile)
		return string(code), out
	}

	put := p.presign(alice, PresignRequest{Op: PresignPut, Ref: StorageRef{Bucket: "c", Key: "upload.bin"},
		Classification: Artifact, ContentType: "application/octet-stream", MaxSize: 4 * minChunkSize})
	status, out := run("-X", "PUT", "--data-binary", "@"+in, "-H", "Content-Type: application/octet-stream", p.srv.URL+put.URL)
	if status != "201" {
		t.Fatalf("curl PUT: %s %s", status, out)
	}
	get := p.presign(alice, PresignRequest{Op: PresignGet, Ref: StorageRef{Bucket: "c", Key: "upload.bin"}})
	status, out = run(p.srv.URL + get.URL)
	if status != "200" || !bytes.Equal(out, data) {
		t.Fatalf("curl GET: %s, %d bytes", status, len(out))
	}
	tampered := strings.Replace(get.URL, "key=upload.bin", "key=upload.bim", 1)
	if status, _ := run(p.srv.URL + tampered); status != "403" {
		t.Fatalf("curl tampered GET: %s", status)
	}
	if status, _ := run("-X", "PUT", "--data-binary", "@"+in, p.srv.URL+get.URL); status != "403" {
		t.Fatalf("curl PUT with a GET URL: %s", status)
	}
	big := filepath.Join(dir, "big.bin")
	os.WriteFile(big, payload(5*minChunkSize, 8), 0o600)
	if status, _ := run("-X", "PUT", "--data-binary", "@"+big, "-H", "Content-Type: application/octet-stream", p.srv.URL+put.URL); status != "413" {
		t.Fatalf("curl oversize PUT: %s", status)
	}
	p.clock.advance(time.Hour)
	if status, _ := run(p.srv.URL + get.URL); status != "403" {
		t.Fatalf("curl expired GET: %s", status)
	}
	p.unchanged("after curl", 1, 1)
}
