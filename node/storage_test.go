package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	authzv1 "github.com/creto-systems/creto/api/creto/authz/v1"
	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	storagev1 "github.com/creto-systems/creto/api/creto/storage/v1"
	"github.com/creto-systems/creto/internal/pki"
	"github.com/creto-systems/creto/services/nhi"
	"github.com/creto-systems/creto/services/storage"
)

const (
	agentData   = storagev1.Classification_CLASSIFICATION_AGENT_DATA
	sandboxData = storagev1.Classification_CLASSIFICATION_SANDBOX_STATE
	compliance  = storagev1.Classification_CLASSIFICATION_COMPLIANCE
	presignGet  = storagev1.PresignedOperation_PRESIGNED_OPERATION_GET
	presignPut  = storagev1.PresignedOperation_PRESIGNED_OPERATION_PUT
)

func objectRef(bucket, key string) *storagev1.StorageRef {
	return &storagev1.StorageRef{Bucket: bucket, Key: key}
}

// storageClient connects as an agent, registering it if new.
func (tn *testNode) storageClient(id string) storagev1.StorageServiceClient {
	return storagev1.NewStorageServiceClient(tn.agent(id))
}

// storeObject stores data through c as agent data.
func storeObject(t testing.TB, c storagev1.StorageServiceClient, ref *storagev1.StorageRef, data string) *storagev1.StoreResponse {
	t.Helper()
	resp, err := c.Store(bg, &storagev1.StoreRequest{Reference: ref, Data: []byte(data), Classification: agentData})
	if err != nil {
		t.Fatalf("store %v: %v", ref, err)
	}
	return resp
}

// errorInfo returns the ErrorInfo detail with the given reason.
func errorInfo(t *testing.T, err error, reason string) *errdetails.ErrorInfo {
	t.Helper()
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == reason {
			return info
		}
	}
	t.Fatalf("no ErrorInfo %s in %v", reason, err)
	return nil
}

// keys lists an owner's keys, every live version, in order.
func (tn *testNode) keys(t *testing.T, owner string) []string {
	t.Helper()
	resp, err := tn.storage.List(bg, storage.Caller{Agent: owner}, storage.ListRequest{AllVersions: true})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, md := range resp.Objects {
		out = append(out, md.Ref.Bucket+"/"+md.Ref.Key)
	}
	return out
}

// Seed §11.2, storage contract: Store accepts the Classification enum —
// agent data, sandbox state and message payloads — over real gRPC.
func TestStorageClassificationContract(t *testing.T) {
	tn := startNode(t, "", nil)
	c := tn.storageClient("test-agent")
	for _, class := range []storagev1.Classification{
		storagev1.Classification_CLASSIFICATION_AGENT_DATA,
		storagev1.Classification_CLASSIFICATION_SANDBOX_STATE,
		storagev1.Classification_CLASSIFICATION_MESSAGE_PAYLOAD,
	} {
		resp, err := c.Store(bg, &storagev1.StoreRequest{Data: []byte("test"), Owner: agentRef("test-agent"), Classification: class})
		if err != nil {
			t.Fatalf("classification %v not accepted: %v", class, err)
		}
		ref := resp.GetReference()
		md := resp.GetMetadata()
		if ref.GetBucket() != "default" || len(ref.GetKey()) != 32 || len(ref.GetVersionId()) != 32 || len(ref.GetContentHash()) != 32 ||
			md.GetClassification() != class || md.GetOwner().GetId() != "test-agent" || md.GetSizeBytes() != 4 || md.GetExpiresAt() == nil {
			t.Fatalf("stored %v", resp)
		}
		got, err := c.Retrieve(bg, &storagev1.RetrieveRequest{Reference: ref})
		if err != nil || string(got.GetData()) != "test" || got.GetMetadata().GetClassification() != class {
			t.Fatalf("retrieve %v: %v %v", class, got, err)
		}
	}
}

// heapWatch samples the heap in use while a transfer runs and reports its
// largest growth over the level at the start.
type heapWatch struct {
	stop chan struct{}
	done chan uint64
}

func watchHeap() *heapWatch {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	w := &heapWatch{stop: make(chan struct{}), done: make(chan uint64)}
	go func() {
		var peak uint64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-w.stop:
				w.done <- peak - min(peak, base)
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *heapWatch) growth() uint64 { close(w.stop); return <-w.done }

// A 64 MiB object goes in through StoreStream and out through
// RetrieveStream, over real gRPC and TLS, while the process's heap grows
// by a small fraction of it: neither side ever holds the object. (The GC
// runs eagerly during the test so that the heap shows what is held, not
// garbage waiting for a cycle.)
func TestStorageStreams64MiBInBoundedMemory(t *testing.T) {
	const size, chunk = 64 << 20, 1 << 20
	// Measured: 8 to 12 MiB in all, client and server — the chunks in
	// flight, gRPC's buffers, the service's two chunk buffers, and garbage
	// between cycles. Holding the object would take 64.
	const bound = 24 << 20
	tn := startNode(t, "", nil)
	c := tn.storageClient("sandbox-7")
	storeObject(t, c, objectRef("checkpoints", "warm-up"), "connect and fill the pools first")
	defer debug.SetGCPercent(debug.SetGCPercent(10))

	w := watchHeap()
	stream, err := c.StoreStream(bg)
	if err != nil {
		t.Fatal(err)
	}
	header := &storagev1.StoreStreamHeader{Reference: objectRef("checkpoints", "run-1/step-9"), Classification: sandboxData,
		SizeBytes: size, ContentType: "application/octet-stream"}
	if err := stream.Send(&storagev1.StoreStreamRequest{Part: &storagev1.StoreStreamRequest_Header{Header: header}}); err != nil {
		t.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{7})
	sent := sha256.New()
	for range size / chunk {
		buf := make([]byte, chunk) // gRPC may hold a sent message: never reuse it
		rng.Read(buf)
		sent.Write(buf)
		if err := stream.Send(&storagev1.StoreStreamRequest{Part: &storagev1.StoreStreamRequest_Chunk{Chunk: buf}}); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	storeGrowth := w.growth()
	if md := stored.GetMetadata(); md.GetSizeBytes() != size || md.GetOwner().GetId() != "sandbox-7" || md.GetContentType() != "application/octet-stream" {
		t.Fatalf("stored %v", md)
	}

	w = watchHeap()
	out, err := c.RetrieveStream(bg, &storagev1.RetrieveStreamRequest{Reference: stored.GetReference()})
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	var n, messages int
	for {
		msg, err := out.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if (msg.GetMetadata() != nil) != (messages == 0) || len(msg.GetChunk()) > storage.RetrieveChunkBytes {
			t.Fatalf("message %d: metadata %v, %d bytes", messages, msg.GetMetadata() != nil, len(msg.GetChunk()))
		}
		messages++
		n += len(msg.GetChunk())
		got.Write(msg.GetChunk())
	}
	retrieveGrowth := w.growth()
	if n != size || !bytes.Equal(got.Sum(nil), sent.Sum(nil)) || messages != size/storage.RetrieveChunkBytes {
		t.Fatalf("retrieved %d bytes in %d messages, hash equal %v", n, messages, bytes.Equal(got.Sum(nil), sent.Sum(nil)))
	}
	t.Logf("heap growth: store %.1f MiB, retrieve %.1f MiB (object 64 MiB)", float64(storeGrowth)/(1<<20), float64(retrieveGrowth)/(1<<20))
	if storeGrowth > bound || retrieveGrowth > bound {
		t.Fatalf("heap grew by %d (store) and %d (retrieve) bytes for a %d-byte object; bound %d", storeGrowth, retrieveGrowth, size, bound)
	}
}

// curl runs the real curl with the node's development CA and returns its
// output (the body, or what -w asks for).
func (tn *testNode) curl(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "curl", append([]string{"-sS", "--cacert", filepath.Join(tn.tlsDir(), pki.CACert)}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// httpStatus is the status curl got for method on url, sending body when
// not empty.
func (tn *testNode) httpStatus(t *testing.T, method, url, body string) int {
	t.Helper()
	args := []string{"-o", "/dev/null", "-w", "%{http_code}", "-X", method, url}
	if body != "" {
		args = append(args, "--data-binary", body, "-H", "Content-Type: text/plain")
	}
	code, err := strconv.Atoi(tn.curl(t, args...))
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// Presigned URLs on the node's HTTP listener, used with the real curl:
// a GET serves the pinned version, a PUT stores an upload as the issuer;
// expired, tampered and misused URLs get 403 and change nothing.
func TestStoragePresignedURLsWithCurl(t *testing.T) {
	tn := startNode(t, "", nil)
	c := tn.storageClient("sandbox-7")
	stored := storeObject(t, c, objectRef("checkpoints", "run-1/step-3"), `{"step":3,"cursor":"page-9"}`)

	u, err := c.GeneratePresignedUrl(bg, &storagev1.GeneratePresignedUrlRequest{Reference: objectRef("checkpoints", "run-1/step-3"), Operation: presignGet})
	if err != nil {
		t.Fatal(err)
	}
	base := "https://" + tn.HTTPAddr().String() + "/storage/v1/presigned?"
	if !strings.HasPrefix(u.GetUrl(), base) || u.GetMethod() != "GET" || u.GetReference().GetVersionId() != stored.GetReference().GetVersionId() ||
		time.Until(u.GetExpiresAt().AsTime()) > 15*time.Minute || time.Until(u.GetExpiresAt().AsTime()) < 14*time.Minute {
		t.Fatalf("presigned GET %v, want a URL under %s", u, base)
	}
	headers := filepath.Join(t.TempDir(), "headers")
	if body := tn.curl(t, "-f", "-D", headers, u.GetUrl()); body != `{"step":3,"cursor":"page-9"}` {
		t.Fatalf("curl GET: %q", body)
	}
	h, err := os.ReadFile(headers)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"etag: \"" + hex.EncodeToString(stored.GetReference().GetContentHash()) + "\"",
		"x-creto-version-id: " + stored.GetReference().GetVersionId(),
		"content-length: 28",
	} {
		if !strings.Contains(strings.ToLower(string(h)), want) {
			t.Errorf("headers lack %q:\n%s", want, h)
		}
	}

	// A PUT URL: the upload is stored as the issuer's object.
	up, err := c.GeneratePresignedUrl(bg, &storagev1.GeneratePresignedUrlRequest{Reference: objectRef("uploads", "report.txt"),
		Operation: presignPut, ContentType: "text/plain", MaxSizeBytes: 64, Classification: agentData})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "report.txt")
	if err := os.WriteFile(file, []byte("quarterly numbers\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := tn.curl(t, "-f", "-T", file, "-H", "Content-Type: text/plain", up.GetUrl()); !strings.Contains(out, `"key":"report.txt"`) {
		t.Fatalf("curl PUT: %s", out)
	}
	got, err := c.Retrieve(bg, &storagev1.RetrieveRequest{Reference: objectRef("uploads", "report.txt")})
	if err != nil || string(got.GetData()) != "quarterly numbers\n" || got.GetMetadata().GetOwner().GetId() != "sandbox-7" ||
		got.GetMetadata().GetContentType() != "text/plain" {
		t.Fatalf("the upload: %v %v", got, err)
	}

	// Refusals change nothing.
	before := tn.keys(t, "sandbox-7")
	tampered := strings.Replace(u.GetUrl(), "step-3", "step-4", 1)
	expiring, err := c.GeneratePresignedUrl(bg, &storagev1.GeneratePresignedUrlRequest{Reference: objectRef("checkpoints", "run-1/step-3"),
		Operation: presignGet, Ttl: durationpb.New(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		method, url, body string
		want              int
	}{
		"tampered key":           {"GET", tampered, "", http.StatusForbidden},
		"tampered signature":     {"GET", u.GetUrl()[:len(u.GetUrl())-2] + "AA", "", http.StatusForbidden},
		"GET URL used to PUT":    {"PUT", u.GetUrl(), "overwrite", http.StatusForbidden},
		"PUT URL used to GET":    {"GET", up.GetUrl(), "", http.StatusForbidden},
		"upload over its max":    {"PUT", up.GetUrl(), strings.Repeat("x", 65), http.StatusRequestEntityTooLarge},
		"another path":           {"GET", strings.Replace(u.GetUrl(), "/presigned?", "/presignedx?", 1), "", http.StatusNotFound},
		"an unknown parameter":   {"GET", u.GetUrl() + "&x=1", "", http.StatusForbidden},
		"a repeated parameter":   {"GET", u.GetUrl() + "&bucket=checkpoints", "", http.StatusForbidden},
		"no signature at all":    {"GET", base + "bucket=checkpoints&key=run-1%2Fstep-3", "", http.StatusForbidden},
		"wrong content type PUT": {"PUT", up.GetUrl(), "x", http.StatusForbidden},
	} {
		if name == "wrong content type PUT" {
			code, err := strconv.Atoi(tn.curl(t, "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "--data-binary", "x",
				"-H", "Content-Type: application/json", c.url))
			if err != nil || code != c.want {
				t.Errorf("%s: %d %v, want %d", name, code, err, c.want)
			}
			continue
		}
		if got := tn.httpStatus(t, c.method, c.url, c.body); got != c.want {
			t.Errorf("%s: %d, want %d", name, got, c.want)
		}
	}
	time.Sleep(time.Until(expiring.GetExpiresAt().AsTime()) + 50*time.Millisecond)
	if got := tn.httpStatus(t, "GET", expiring.GetUrl(), ""); got != http.StatusForbidden {
		t.Fatalf("expired URL: %d", got)
	}
	if after := tn.keys(t, "sandbox-7"); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("refused requests changed the objects: %v, was %v", after, before)
	}
	obj, err := c.Retrieve(bg, &storagev1.RetrieveRequest{Reference: objectRef("checkpoints", "run-1/step-3")})
	if err != nil || string(obj.GetData()) != `{"step":3,"cursor":"page-9"}` {
		t.Fatalf("the object after refusals: %v %v", obj, err)
	}

	// Every request to the presigned path is counted by method and status;
	// the one to another path is not.
	metrics := httpsGet(t, tn, "/metrics")
	for _, want := range []string{
		`storage_presigned_requests_total{code="200",method="get"} 1`,
		`storage_presigned_requests_total{code="201",method="put"} 1`,
		`storage_presigned_requests_total{code="403",method="get"} 7`,
		`storage_presigned_requests_total{code="403",method="put"} 2`,
		`storage_presigned_requests_total{code="413",method="put"} 1`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Log(metrics[strings.Index(metrics, "# HELP storage_presigned"):])
	}
}

// Over quota, a store is RESOURCE_EXHAUSTED with the owner's used and
// limit bytes as details, and stores nothing.
func TestStorageQuotaOverTheWire(t *testing.T) {
	tn := startNode(t, "", func(c *Config) { c.Storage.DefaultQuotaBytes = 1000 })
	c := tn.storageClient("bot")
	storeObject(t, c, objectRef("default", "a"), strings.Repeat("a", 800))
	_, err := c.Store(bg, &storagev1.StoreRequest{Reference: objectRef("default", "b"), Data: bytes.Repeat([]byte("b"), 300), Classification: agentData})
	wantCode(t, err, codes.ResourceExhausted)
	info := errorInfo(t, err, "QUOTA_EXCEEDED")
	if m := info.GetMetadata(); m["used"] != "800" || m["limit"] != "1000" || m["unit"] != "bytes" || info.GetDomain() != "creto.storage.v1.StorageService" {
		t.Fatalf("quota details %v", info)
	}
	var violation *errdetails.QuotaFailure
	for _, d := range status.Convert(err).Details() {
		if q, ok := d.(*errdetails.QuotaFailure); ok {
			violation = q
		}
	}
	if violation == nil || violation.GetViolations()[0].GetSubject() != "owner:bot" {
		t.Fatalf("QuotaFailure %v", violation)
	}
	// A stream that declares its size is refused before any chunk; one
	// that does not, as soon as it passes the quota.
	for _, declared := range []int64{300, 0} {
		stream, err := c.StoreStream(bg)
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.Send(&storagev1.StoreStreamRequest{Part: &storagev1.StoreStreamRequest_Header{Header: &storagev1.StoreStreamHeader{
			Reference: objectRef("default", "c"), Classification: agentData, SizeBytes: declared}}})
		_ = stream.Send(&storagev1.StoreStreamRequest{Part: &storagev1.StoreStreamRequest_Chunk{Chunk: bytes.Repeat([]byte("c"), 300)}})
		_, err = stream.CloseAndRecv()
		wantCode(t, err, codes.ResourceExhausted)
		if m := errorInfo(t, err, "QUOTA_EXCEEDED").GetMetadata(); m["used"] != "800" {
			t.Fatalf("stream quota details %v", m)
		}
	}
	if keys := tn.keys(t, "bot"); strings.Join(keys, ",") != "default/a" {
		t.Fatalf("objects after refusals: %v", keys)
	}
}

// Another agent's object is PERMISSION_DENIED; an NHI delegation from its
// owner opens exactly the permissions it grants, through its id in the
// request, until it is revoked — presigned URLs its delegate issued
// included.
func TestStorageAccessFollowsNHIDelegations(t *testing.T) {
	tn := startNode(t, "", nil)
	sandbox, supervisor := tn.storageClient("sandbox-7"), tn.storageClient("supervisor")
	ref := objectRef("checkpoints", "run-1/step-3")
	storeObject(t, sandbox, ref, "state")

	_, err := supervisor.Retrieve(bg, &storagev1.RetrieveRequest{Reference: ref})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")
	_, err = supervisor.GetMetadata(bg, &storagev1.GetMetadataRequest{Reference: ref})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")
	_, err = supervisor.List(bg, &storagev1.ListRequest{Owner: agentRef("sandbox-7")})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")
	_, err = supervisor.Delete(bg, &storagev1.DeleteRequest{Reference: ref})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")
	_, err = supervisor.Store(bg, &storagev1.StoreRequest{Reference: ref, Data: []byte("overwrite"), Classification: agentData})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")
	// An agent acts only as itself.
	_, err = supervisor.Retrieve(bg, &storagev1.RetrieveRequest{Reference: ref, Requester: agentRef("sandbox-7")})
	wantReason(t, err, codes.PermissionDenied, "NOT_SELF")

	// sandbox-7 delegates storage:read to the supervisor through NHI.
	d, err := nhiv1.NewNhiServiceClient(tn.agent("sandbox-7")).CreateDelegation(bg, &nhiv1.CreateDelegationRequest{
		DelegateeId: "supervisor", Permissions: []string{storage.PermRead}})
	if err != nil {
		t.Fatal(err)
	}
	id := d.GetDelegation().GetId()
	got, err := supervisor.Retrieve(bg, &storagev1.RetrieveRequest{Reference: ref, DelegationId: id})
	if err != nil || string(got.GetData()) != "state" {
		t.Fatalf("delegated read: %v %v", got, err)
	}
	list, err := supervisor.List(bg, &storagev1.ListRequest{Owner: agentRef("sandbox-7"), DelegationId: id})
	if err != nil || len(list.GetObjects()) != 1 {
		t.Fatalf("delegated list: %v %v", list, err)
	}
	// Read only.
	_, err = supervisor.Delete(bg, &storagev1.DeleteRequest{Reference: ref, DelegationId: id})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")
	_, err = supervisor.Store(bg, &storagev1.StoreRequest{Reference: ref, Data: []byte("x"), Classification: agentData, DelegationId: id})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")
	// The delegation is the supervisor's: another agent holding its id
	// gains nothing.
	_, err = tn.storageClient("intruder").Retrieve(bg, &storagev1.RetrieveRequest{Reference: ref, DelegationId: id})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")
	// A malformed delegation id is no delegation.
	_, err = supervisor.Retrieve(bg, &storagev1.RetrieveRequest{Reference: ref, DelegationId: "not-an-id"})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")

	// A presigned URL the delegate issued works while the delegation does.
	u, err := supervisor.GeneratePresignedUrl(bg, &storagev1.GeneratePresignedUrlRequest{Reference: ref, Operation: presignGet, DelegationId: id})
	if err != nil {
		t.Fatal(err)
	}
	if body := tn.curl(t, "-f", u.GetUrl()); body != "state" {
		t.Fatalf("delegate's URL: %q", body)
	}
	if _, err := nhiv1.NewNhiServiceClient(tn.agent("sandbox-7")).RevokeDelegation(bg, &nhiv1.RevokeDelegationRequest{DelegationId: id}); err != nil {
		t.Fatal(err)
	}
	_, err = supervisor.Retrieve(bg, &storagev1.RetrieveRequest{Reference: ref, DelegationId: id})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")
	if got := tn.httpStatus(t, "GET", u.GetUrl(), ""); got != http.StatusForbidden {
		t.Fatalf("the revoked delegate's URL: %d", got)
	}

	// An operator acts as the agent it names, and must name one.
	op := storagev1.NewStorageServiceClient(tn.operator())
	got, err = op.Retrieve(bg, &storagev1.RetrieveRequest{Reference: ref, Requester: agentRef("sandbox-7")})
	if err != nil || string(got.GetData()) != "state" {
		t.Fatalf("operator as the owner: %v %v", got, err)
	}
	_, err = op.Retrieve(bg, &storagev1.RetrieveRequest{Reference: ref})
	wantReason(t, err, codes.InvalidArgument, "NO_AGENT")
	_, err = op.Retrieve(bg, &storagev1.RetrieveRequest{Reference: ref, Requester: agentRef("supervisor")})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")
}

// A Compliance version cannot be deleted or changed over the wire by
// anyone, its owner included: FAILED_PRECONDITION, reason RETAINED, with
// the end of the retention.
func TestStorageComplianceRetentionOverTheWire(t *testing.T) {
	tn := startNode(t, "", nil)
	c := tn.storageClient("metering")
	ref := objectRef("invoices", "2025-11/INV-42.pdf")
	resp, err := c.Store(bg, &storagev1.StoreRequest{Reference: ref, Data: []byte("%PDF-1.7 invoice"), Classification: compliance,
		ContentType: "application/pdf"})
	if err != nil {
		t.Fatal(err)
	}
	until := resp.GetMetadata().GetRetainUntil().AsTime()
	if resp.GetMetadata().GetExpiresAt() != nil || time.Until(until) < 2554*24*time.Hour {
		t.Fatalf("a compliance version: %v", resp.GetMetadata())
	}
	for _, del := range []*storagev1.DeleteRequest{{Reference: ref}, {Reference: resp.GetReference()}} {
		_, err := c.Delete(bg, del)
		wantCode(t, err, codes.FailedPrecondition)
		if got := errorInfo(t, err, "RETAINED").GetMetadata()["retain_until"]; got != until.UTC().Format(time.RFC3339) {
			t.Fatalf("retain_until %q, want %s", got, until.UTC().Format(time.RFC3339))
		}
	}
	_, err = storagev1.NewStorageServiceClient(tn.operator()).Delete(bg, &storagev1.DeleteRequest{Reference: ref, Requester: agentRef("metering")})
	wantCode(t, err, codes.FailedPrecondition)
	_, err = c.UpdateMetadata(bg, &storagev1.UpdateMetadataRequest{Reference: ref, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"custom_metadata"}},
		CustomMetadata: map[string]string{"paid": "yes"}})
	wantReason(t, err, codes.FailedPrecondition, "RETAINED")
	_, err = c.UpdateMetadata(bg, &storagev1.UpdateMetadataRequest{Reference: ref, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"ttl"}},
		Ttl: durationpb.New(time.Hour)})
	wantReason(t, err, codes.FailedPrecondition, "RETAINED")
	got, err := c.Retrieve(bg, &storagev1.RetrieveRequest{Reference: ref})
	if err != nil || string(got.GetData()) != "%PDF-1.7 invoice" || len(got.GetMetadata().GetCustomMetadata()) != 0 {
		t.Fatalf("the retained invoice: %v %v", got, err)
	}
	// Extending it is allowed.
	ext, err := c.UpdateMetadata(bg, &storagev1.UpdateMetadataRequest{Reference: ref, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"ttl"}},
		Ttl: durationpb.New(3000 * 24 * time.Hour)})
	if err != nil || ext.GetMetadata().GetExpiresAt().AsTime().Before(until) {
		t.Fatalf("extending the retained version's life: %v %v", ext, err)
	}
}

// Bad input of every kind is INVALID_ARGUMENT and changes nothing.
func TestStorageBadInputChangesNothing(t *testing.T) {
	tn := startNode(t, "", nil)
	c := tn.storageClient("bot")
	ref := objectRef("default", "kept")
	kept := storeObject(t, c, ref, "kept")
	used := func() int64 {
		u, err := tn.storage.Usage(bg, storage.Caller{Agent: "bot"}, "bot")
		if err != nil {
			t.Fatal(err)
		}
		return u.Used + u.Reserved
	}
	usedBefore := used()
	store := func(mut func(r *storagev1.StoreRequest)) *storagev1.StoreRequest {
		r := &storagev1.StoreRequest{Reference: objectRef("default", "new"), Data: []byte("data"), Classification: agentData}
		mut(r)
		return r
	}
	many := map[string]string{}
	for i := range 33 {
		many[strconv.Itoa(i)] = "v"
	}
	for name, req := range map[string]*storagev1.StoreRequest{
		"unspecified classification":   store(func(r *storagev1.StoreRequest) { r.Classification = 0 }),
		"unknown classification":       store(func(r *storagev1.StoreRequest) { r.Classification = 42 }),
		"bad bucket":                   store(func(r *storagev1.StoreRequest) { r.Reference.Bucket = "Bad Bucket" }),
		"control character in the key": store(func(r *storagev1.StoreRequest) { r.Reference.Key = "a\x01b" }),
		"key over 1024 bytes":          store(func(r *storagev1.StoreRequest) { r.Reference.Key = strings.Repeat("k", 1025) }),
		"a version id":                 store(func(r *storagev1.StoreRequest) { r.Reference.VersionId = kept.GetReference().GetVersionId() }),
		"a content hash":               store(func(r *storagev1.StoreRequest) { r.Reference.ContentHash = make([]byte, 32) }),
		"negative ttl":                 store(func(r *storagev1.StoreRequest) { r.Ttl = durationpb.New(-time.Hour) }),
		"33 metadata entries":          store(func(r *storagev1.StoreRequest) { r.Metadata = many }),
		"non-ASCII content type":       store(func(r *storagev1.StoreRequest) { r.ContentType = "text/plaïn" }),
		"customer key":                 store(func(r *storagev1.StoreRequest) { r.Encryption = &storagev1.EncryptionConfig{CustomerKeyId: "k1"} }),
		"unknown algorithm":            store(func(r *storagev1.StoreRequest) { r.Encryption = &storagev1.EncryptionConfig{Algorithm: "rot13"} }),
		"another key wrap": store(func(r *storagev1.StoreRequest) {
			r.Encryption = &storagev1.EncryptionConfig{KeyWrapAlgorithm: "ml-kem-768"}
		}),
		"owner id with a space":     store(func(r *storagev1.StoreRequest) { r.Owner = agentRef("b ot") }),
		"another owner for the key": store(func(r *storagev1.StoreRequest) { r.Reference = ref; r.Owner = agentRef("alice") }),
	} {
		if _, err := c.Store(bg, req); !isInvalid(err) {
			t.Errorf("store, %s: %v", name, err)
		}
	}

	// Streams: no header first, a second header, a negative or a wrong
	// declared size.
	header := func(size int64) *storagev1.StoreStreamRequest {
		return &storagev1.StoreStreamRequest{Part: &storagev1.StoreStreamRequest_Header{Header: &storagev1.StoreStreamHeader{
			Reference: objectRef("default", "streamed"), Classification: agentData, SizeBytes: size}}}
	}
	chunk := &storagev1.StoreStreamRequest{Part: &storagev1.StoreStreamRequest_Chunk{Chunk: []byte("12345")}}
	for name, msgs := range map[string][]*storagev1.StoreStreamRequest{
		"no message":            nil,
		"a chunk first":         {chunk, header(0)},
		"two headers":           {header(0), chunk, header(0)},
		"negative size":         {header(-1), chunk},
		"shorter than declared": {header(10), chunk},
		"longer than declared":  {header(4), chunk},
	} {
		stream, err := c.StoreStream(bg)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if err := stream.Send(m); err != nil {
				break // the server answered already; CloseAndRecv has it
			}
		}
		if _, err := stream.CloseAndRecv(); !isInvalid(err) {
			t.Errorf("stream, %s: %v", name, err)
		}
	}

	bad := []struct {
		name string
		call func() error
	}{
		{"retrieve without a reference", func() error {
			_, err := c.Retrieve(bg, &storagev1.RetrieveRequest{})
			return err
		}},
		{"retrieve a malformed version", func() error {
			_, err := c.Retrieve(bg, &storagev1.RetrieveRequest{Reference: &storagev1.StorageRef{Bucket: "default", Key: "kept", VersionId: "xyz"}})
			return err
		}},
		{"stream a 5-byte content hash", func() error {
			s, err := c.RetrieveStream(bg, &storagev1.RetrieveStreamRequest{Reference: &storagev1.StorageRef{Bucket: "default", Key: "kept", ContentHash: []byte("short")}})
			if err == nil {
				_, err = s.Recv()
			}
			return err
		}},
		{"list a prefix without a bucket", func() error {
			_, err := c.List(bg, &storagev1.ListRequest{Prefix: "k"})
			return err
		}},
		{"list a negative page", func() error {
			_, err := c.List(bg, &storagev1.ListRequest{PageSize: -1})
			return err
		}},
		{"list with a forged page token", func() error {
			_, err := c.List(bg, &storagev1.ListRequest{PageToken: "bm90IGEgY3Vyc29y"})
			return err
		}},
		{"update with no mask", func() error {
			_, err := c.UpdateMetadata(bg, &storagev1.UpdateMetadataRequest{Reference: ref})
			return err
		}},
		{"update an unknown field", func() error {
			_, err := c.UpdateMetadata(bg, &storagev1.UpdateMetadataRequest{Reference: ref, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"owner"}}})
			return err
		}},
		{"update to 33 metadata entries", func() error {
			_, err := c.UpdateMetadata(bg, &storagev1.UpdateMetadataRequest{Reference: ref,
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"custom_metadata"}}, CustomMetadata: many})
			return err
		}},
		{"presign no operation", func() error {
			_, err := c.GeneratePresignedUrl(bg, &storagev1.GeneratePresignedUrlRequest{Reference: ref})
			return err
		}},
		{"presign for 8 days", func() error {
			_, err := c.GeneratePresignedUrl(bg, &storagev1.GeneratePresignedUrlRequest{Reference: ref, Operation: presignGet, Ttl: durationpb.New(8 * 24 * time.Hour)})
			return err
		}},
		{"presign a PUT of a version", func() error {
			_, err := c.GeneratePresignedUrl(bg, &storagev1.GeneratePresignedUrlRequest{Reference: kept.GetReference(), Operation: presignPut, Classification: agentData})
			return err
		}},
		{"presign a PUT without a classification", func() error {
			_, err := c.GeneratePresignedUrl(bg, &storagev1.GeneratePresignedUrlRequest{Reference: objectRef("default", "up"), Operation: presignPut})
			return err
		}},
		{"delete from a bad bucket", func() error {
			_, err := c.Delete(bg, &storagev1.DeleteRequest{Reference: objectRef("-bad", "kept")})
			return err
		}},
	}
	for _, b := range bad {
		if err := b.call(); !isInvalid(err) {
			t.Errorf("%s: %v", b.name, err)
		}
	}
	if keys := tn.keys(t, "bot"); strings.Join(keys, ",") != "default/kept" {
		t.Fatalf("objects after bad input: %v", keys)
	}
	if u := used(); u != usedBefore {
		t.Fatalf("usage %d after bad input, was %d", u, usedBefore)
	}
	md, err := c.GetMetadata(bg, &storagev1.GetMetadataRequest{Reference: ref})
	if err != nil || md.GetMetadata().GetReference().GetVersionId() != kept.GetReference().GetVersionId() || len(md.GetMetadata().GetCustomMetadata()) != 0 {
		t.Fatalf("the kept object: %v %v", md, err)
	}
	// A reference pinning another content hash is the caller's failed
	// precondition, not lost data.
	pinned := &storagev1.StorageRef{Bucket: "default", Key: "kept", ContentHash: bytes.Repeat([]byte{1}, 32)}
	_, err = c.Retrieve(bg, &storagev1.RetrieveRequest{Reference: pinned})
	wantReason(t, err, codes.FailedPrecondition, "REFERENCE_HASH_MISMATCH")
	_, err = c.Delete(bg, &storagev1.DeleteRequest{Reference: pinned})
	wantReason(t, err, codes.FailedPrecondition, "REFERENCE_HASH_MISMATCH")
	if _, err := c.GetMetadata(bg, &storagev1.GetMetadataRequest{Reference: ref}); err != nil {
		t.Fatalf("a delete with the wrong hash deleted: %v", err)
	}
}

// Unary calls carry one message, bounded by server.max_recv_msg_bytes:
// a larger object stores and reads through the streams only.
func TestStorageUnaryCallsAreBoundedByTheMessageSize(t *testing.T) {
	tn := startNode(t, "", func(c *Config) { c.Server.MaxRecvMsgBytes = 256 << 10 })
	c := tn.storageClient("bot")
	big := bytes.Repeat([]byte("z"), 300<<10)
	_, err := c.Store(bg, &storagev1.StoreRequest{Reference: objectRef("default", "big"), Data: big, Classification: agentData})
	wantCode(t, err, codes.ResourceExhausted) // gRPC refuses the message itself

	stream, err := c.StoreStream(bg)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&storagev1.StoreStreamRequest{Part: &storagev1.StoreStreamRequest_Header{Header: &storagev1.StoreStreamHeader{
		Reference: objectRef("default", "big"), Classification: agentData}}})
	for i := 0; i < len(big); i += 100 << 10 {
		_ = stream.Send(&storagev1.StoreStreamRequest{Part: &storagev1.StoreStreamRequest_Chunk{Chunk: big[i:min(i+100<<10, len(big))]}})
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
	_, err = c.Retrieve(bg, &storagev1.RetrieveRequest{Reference: objectRef("default", "big")})
	wantCode(t, err, codes.InvalidArgument)
	if m := errorInfo(t, err, "TOO_LARGE").GetMetadata(); m["size"] != strconv.Itoa(len(big)) || m["max"] != strconv.Itoa(256<<10-64<<10) {
		t.Fatalf("TOO_LARGE details %v", m)
	}
	if got := retrieveAll(t, c, objectRef("default", "big")); !bytes.Equal(got, big) {
		t.Fatalf("streamed back %d bytes", len(got))
	}
}

// retrieveAll reads an object through RetrieveStream.
func retrieveAll(t *testing.T, c storagev1.StorageServiceClient, ref *storagev1.StorageRef) []byte {
	t.Helper()
	s, err := c.RetrieveStream(bg, &storagev1.RetrieveStreamRequest{Reference: ref})
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for {
		msg, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, msg.GetChunk()...)
	}
}

// A version whose last segment was tampered with on disk streams its
// intact chunks, then ends with DATA_LOSS: the terminal status that tells
// the client to discard what it got. The unary call returns no data.
func TestStorageRetrieveStreamEndsInDataLossAfterChunks(t *testing.T) {
	tn := startNode(t, "", nil)
	c := tn.storageClient("bot")
	data := bytes.Repeat([]byte("0123456789abcdef"), (3<<20+1000)/16)
	stream, err := c.StoreStream(bg)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&storagev1.StoreStreamRequest{Part: &storagev1.StoreStreamRequest_Header{Header: &storagev1.StoreStreamHeader{
		Reference: objectRef("default", "tampered"), Classification: agentData}}})
	for i := 0; i < len(data); i += 1 << 20 {
		_ = stream.Send(&storagev1.StoreStreamRequest{Part: &storagev1.StoreStreamRequest_Chunk{Chunk: data[i:min(i+1<<20, len(data))]}})
	}
	stored, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	vid := stored.GetReference().GetVersionId()
	path := filepath.Join(tn.dir, "objects", vid[len(vid)-2:], vid)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, fi.Size()-20); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1
	if _, err := f.WriteAt(b, fi.Size()-20); err != nil {
		t.Fatal(err)
	}
	f.Close()

	out, err := c.RetrieveStream(bg, &storagev1.RetrieveStreamRequest{Reference: stored.GetReference()})
	if err != nil {
		t.Fatal(err)
	}
	received := 0
	for {
		msg, err := out.Recv()
		if err == nil {
			received += len(msg.GetChunk())
			continue
		}
		wantReason(t, err, codes.DataLoss, "DECRYPTION_FAILED")
		break
	}
	if received != 3<<20 {
		t.Fatalf("%d bytes arrived before the failure, want the 3 intact MiB", received)
	}
	_, err = c.Retrieve(bg, &storagev1.RetrieveRequest{Reference: stored.GetReference()})
	wantReason(t, err, codes.DataLoss, "DECRYPTION_FAILED")
}

// Storage is in health and /healthz, and an error it answers counts in
// storage_requests_total{status="error"} (seed §14.2's alert).
func TestStorageHealthAndErrorMetrics(t *testing.T) {
	tn := startNode(t, "", nil)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS(t, tn.tlsDir(), "", "")}}
	get := func(path string) string {
		t.Helper()
		resp, err := client.Get("https://localhost:" + strings.Split(tn.HTTPAddr().String(), ":")[1] + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if h := get("/healthz"); !strings.Contains(h, `"creto.storage.v1.StorageService":"SERVING"`) {
		t.Fatalf("/healthz: %s", h)
	}
	errorsCounted := func() int {
		t.Helper()
		const series = `storage_requests_total{code="NotFound",method="Retrieve",status="error"} `
		for _, line := range strings.Split(get("/metrics"), "\n") {
			if v, ok := strings.CutPrefix(line, series); ok {
				n, err := strconv.Atoi(v)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
		}
		return 0
	}
	before := errorsCounted()
	c := tn.storageClient("bot")
	_, err := c.Retrieve(bg, &storagev1.RetrieveRequest{Reference: objectRef("default", "missing")})
	wantReason(t, err, codes.NotFound, "NOT_FOUND")
	if after := errorsCounted(); after != before+1 {
		t.Fatalf("storage_requests_total{status=\"error\"} went from %d to %d", before, after)
	}
	storeObject(t, c, objectRef("default", "here"), "x")
	if m := get("/metrics"); !strings.Contains(m, `storage_requests_total{code="OK",method="Store",status="ok"} 1`) {
		t.Fatal("a successful Store is not counted")
	}
}

// The [storage] section reads from the file and CRETO_STORAGE_*
// variables; the presign path is where the HTTP listener serves URLs and
// public_http_url what they start with; impossible values stop the node.
func TestStorageConfigSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creto.toml")
	toml := "[server]\npublic_http_url = \"https://objects.example.com/creto/\"\n" +
		"[storage]\npresign_path = \"/o/signed\"\ndefault_quota_bytes = 5000\nsweep_interval = \"5s\"\n"
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path, []string{"CRETO_STORAGE_MAX_PRESIGN_TTL=1h"})
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Storage; s.PresignPath != "/o/signed" || s.DefaultQuotaBytes != 5000 || s.SweepInterval != 5*time.Second || s.MaxPresignTTL != time.Hour {
		t.Fatalf("storage config %+v", s)
	}
	if _, err := LoadConfig("", []string{"CRETO_STORAGE_NO_SUCH_KEY=1"}); err == nil {
		t.Fatal("an unknown CRETO_STORAGE_ variable was accepted")
	}

	tn := startNode(t, "", func(c *Config) { c.Storage = cfg.Storage; c.Server.PublicHTTPURL = cfg.Server.PublicHTTPURL })
	c := tn.storageClient("bot")
	storeObject(t, c, objectRef("default", "a"), "hello")
	u, err := c.GeneratePresignedUrl(bg, &storagev1.GeneratePresignedUrlRequest{Reference: objectRef("default", "a"), Operation: presignGet})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.GetUrl(), "https://objects.example.com/creto/o/signed?") {
		t.Fatalf("URL %s", u.GetUrl())
	}
	// Through the proxy the public URL names, the path arrives without its
	// prefix; here the test is the proxy.
	local := "https://" + tn.HTTPAddr().String() + strings.TrimPrefix(u.GetUrl(), "https://objects.example.com/creto")
	if body := tn.curl(t, "-f", local); body != "hello" {
		t.Fatalf("served at the configured path: %q", body)
	}
	if got := tn.httpStatus(t, "GET", strings.Replace(local, "/o/signed", "/storage/v1/presigned", 1), ""); got != http.StatusNotFound {
		t.Fatalf("the default path still serves: %d", got)
	}
	_, err = c.GeneratePresignedUrl(bg, &storagev1.GeneratePresignedUrlRequest{Reference: objectRef("default", "a"), Operation: presignGet,
		Ttl: durationpb.New(2 * time.Hour)})
	wantCode(t, err, codes.InvalidArgument) // over max_presign_ttl

	for name, mut := range map[string]func(c *Config){
		"presign path with a space":  func(c *Config) { c.Storage.PresignPath = "/a b" },
		"presign path on /metrics":   func(c *Config) { c.Storage.PresignPath = "/metrics" },
		"presign path as a pattern":  func(c *Config) { c.Storage.PresignPath = "/o/{id}" },
		"relative presign path":      func(c *Config) { c.Storage.PresignPath = "o/signed" },
		"public URL with a query":    func(c *Config) { c.Server.PublicHTTPURL = "https://x.example/?a=1" },
		"public URL of another kind": func(c *Config) { c.Server.PublicHTTPURL = "ftp://x.example" },
		"public URL without a host":  func(c *Config) { c.Server.PublicHTTPURL = "https:///p" },
		"chunk size under 64 KiB":    func(c *Config) { c.Storage.ChunkSizeBytes = 1024 },
		"unknown algorithm":          func(c *Config) { c.Storage.DefaultAlgorithm = "rot13" },
	} {
		cfg := Config{Server: ServerConfig{DataDir: t.TempDir(), GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}}
		mut(&cfg)
		if n, err := Open(bg, cfg, nil); err == nil {
			n.Close()
			t.Errorf("%s: the node opened", name)
		}
	}
}

// A node listening on every interface names no host: without
// public_http_url its URLs say localhost, with the listener's port.
func TestStorageURLsOfANodeOnEveryInterface(t *testing.T) {
	tn := startNode(t, "", func(c *Config) { c.Server.HTTPAddr = "0.0.0.0:0" })
	c := tn.storageClient("bot")
	storeObject(t, c, objectRef("default", "a"), "hello")
	u, err := c.GeneratePresignedUrl(bg, &storagev1.GeneratePresignedUrlRequest{Reference: objectRef("default", "a"), Operation: presignGet})
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(tn.HTTPAddr().String(), "]:")
	if port == "" {
		_, port, _ = strings.Cut(tn.HTTPAddr().String(), ":")
	}
	if want := "https://localhost:" + port + "/storage/v1/presigned?"; !strings.HasPrefix(u.GetUrl(), want) {
		t.Fatalf("URL %s, want it under %s", u.GetUrl(), want)
	}
	if body := tn.curl(t, "-f", u.GetUrl()); body != "hello" {
		t.Fatalf("curl: %q", body)
	}
}

// The example extension inactive-guard (examples/wasm/wat), registered
// over gRPC with the nhi and storage capabilities, denies an agent NHI
// holds as suspended or revoked and logs each denial in storage, as the
// extension identity the node registered for it at its first put.
func TestInactiveGuardExtensionInANode(t *testing.T) {
	module, err := os.ReadFile(filepath.Join("..", "examples", "wasm", "wat", "build", "inactive_guard.wasm"))
	if err != nil {
		if os.Getenv("CRETO_SKIP_WASM") == "1" {
			t.Skipf("%v (CRETO_SKIP_WASM=1)", err)
		}
		t.Fatalf("%v: run make wasm", err)
	}
	tn := startNode(t, "", nil)
	ctx := context.Background()
	authz := authzv1.NewAuthorizationServiceClient(tn.operator())
	if _, err := authz.CreatePolicy(ctx, &authzv1.CreatePolicyRequest{Id: "all", Text: `permit (principal, action, resource);`}); err != nil {
		t.Fatal(err)
	}
	_, err = authz.RegisterExtension(ctx, &authzv1.RegisterExtensionRequest{Module: module, Grants: []string{"nhi"}})
	wantCode(t, err, codes.PermissionDenied) // storage not granted
	if _, err := authz.RegisterExtension(ctx, &authzv1.RegisterExtensionRequest{Module: module, Grants: []string{"nhi", "storage"}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"planner", "payments-bot"} {
		if _, err := tn.nhi.Register(ctx, nhiAgent(id)); err != nil {
			t.Fatal(err)
		}
	}
	decide := func(agent string) *authzv1.Decision {
		return check(t, authz, agent, "pay", `Invoice::"42"`).GetDecision()
	}
	if d := decide("planner"); d.GetAllow() == nil {
		t.Fatalf("active agent: %v", d)
	}
	admin := nhiv1.NewNhiServiceClient(tn.operator())
	if _, err := admin.UpdateAgent(ctx, &nhiv1.UpdateAgentRequest{Agent: &nhiv1.AgentIdentity{Id: "payments-bot", Status: nhiv1.AgentStatus_AGENT_STATUS_SUSPENDED},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"status"}}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if d := decide("payments-bot"); d.GetDeny().GetPolicyId() != "inactive-agent" {
			t.Fatalf("suspended agent: %v", d)
		}
	}
	if _, err := admin.RevokeAgent(ctx, &nhiv1.RevokeAgentRequest{Id: "planner"}); err != nil {
		t.Fatal(err)
	}
	if d := decide("planner"); d.GetDeny().GetReason() != "the agent is not active in the identity registry" {
		t.Fatalf("revoked agent: %v", d)
	}

	// The node registered the extension's identity in NHI at its first put.
	ident, err := admin.GetAgent(ctx, &nhiv1.GetAgentRequest{Id: "extension:inactive-guard"})
	if err != nil || ident.GetAgent().GetOwnerId() != "creto-node" || ident.GetAgent().GetType() != nhiv1.AgentType_AGENT_TYPE_SERVICE {
		t.Fatalf("the extension's identity: %v %v", ident, err)
	}
	// An operator reads the denial log as that identity, over gRPC.
	op := storagev1.NewStorageServiceClient(tn.operator())
	log, err := op.List(ctx, &storagev1.ListRequest{Requester: agentRef("extension:inactive-guard"), Bucket: "inactive-guard", AllVersions: true})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, md := range log.GetObjects() {
		obj, err := op.Retrieve(ctx, &storagev1.RetrieveRequest{Requester: agentRef("extension:inactive-guard"), Reference: md.GetReference()})
		if err != nil {
			t.Fatal(err)
		}
		got[md.GetReference().GetKey()] = append(got[md.GetReference().GetKey()], string(obj.GetData()))
	}
	if want := map[string][]string{"payments-bot": {"status=2", "status=2"}, "planner": {"status=3"}}; len(got) != 2 ||
		strings.Join(got["payments-bot"], ",") != strings.Join(want["payments-bot"], ",") || strings.Join(got["planner"], ",") != "status=3" {
		t.Fatalf("denial log %v, want %v", got, want)
	}

	// A token issued to the extension's identity opens none of its objects.
	tok, err := tn.nhi.IssueToken(ctx, "extension:inactive-guard", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	impostor := storagev1.NewStorageServiceClient(tn.dial(clientTLS(t, tn.tlsDir(), "", ""), grpcBearer(tok)))
	_, err = impostor.List(ctx, &storagev1.ListRequest{Bucket: "inactive-guard"})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")
}

// The extension identity the node registers for storage is an ordinary
// NHI agent: registered once, however many instances race to it.
func TestExtensionIdentityIsRegisteredOnce(t *testing.T) {
	tn := startNode(t, "", nil)
	objects := extensionObjects{Service: tn.storage, nhi: tn.nhi}
	c := storage.Caller{Agent: storage.ExtensionAgent("hook")}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			_, err := objects.Store(bg, c, storage.StoreRequest{Key: "k" + strconv.Itoa(i), Classification: storage.AgentData}, strings.NewReader("v"))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	a, err := tn.nhi.Get(bg, c.Agent)
	if err != nil || a.Status != nhi.StatusActive || a.OwnerID != nhi.ExtensionOwner {
		t.Fatalf("identity %+v %v", a, err)
	}
	if keys := tn.keys(t, c.Agent); len(keys) != 8 {
		t.Fatalf("%d objects stored", len(keys))
	}
}

// A presigned upload still running when the node stops is cut at the
// shutdown timeout, stores nothing, and does not fail the stop.
func TestShutdownCutsAPresignedUploadInFlight(t *testing.T) {
	tn := startNode(t, "", func(c *Config) { c.Server.ShutdownTimeout = 500 * time.Millisecond })
	c := tn.storageClient("bot")
	up, err := c.GeneratePresignedUrl(bg, &storagev1.GeneratePresignedUrlRequest{Reference: objectRef("default", "slow"),
		Operation: presignPut, Classification: agentData})
	if err != nil {
		t.Fatal(err)
	}
	body, feed := io.Pipe()
	defer feed.Close()
	req, err := http.NewRequest(http.MethodPut, up.GetUrl(), body)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS(t, tn.tlsDir(), "", "")}}
	done := make(chan error, 1)
	go func() {
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			err = errors.New(resp.Status)
		}
		done <- err
	}()
	if _, err := feed.Write(bytes.Repeat([]byte("x"), 64<<10)); err != nil { // the upload has begun
		t.Fatal(err)
	}
	dir := tn.dir
	start := time.Now()
	if err := tn.Shutdown(bg); err != nil {
		t.Fatalf("shutdown with an upload in flight: %v", err)
	}
	tn.Node = nil
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("shutdown took %v", took)
	}
	feed.CloseWithError(errors.New("the client gives up too")) // the client waits for its body before it reports
	if err := <-done; err == nil {
		t.Fatal("the cut upload succeeded")
	}
	// Nothing was stored.
	tn = startNode(t, dir, nil)
	if keys := tn.keys(t, "bot"); len(keys) != 0 {
		t.Fatalf("objects after the cut upload: %v", keys)
	}
}
