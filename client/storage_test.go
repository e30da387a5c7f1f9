package client_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/creto-systems/creto/client"
	"github.com/creto-systems/creto/node"
)

// An object's life through the client: stored, read whole, described,
// listed page by page, fetched with a presigned URL, deleted.
func TestStorage(t *testing.T) {
	tn := startNode(t, "")
	tn.seed("planner", "intruder")
	c := tn.clients(t, tn.config(tn.GRPCAddr().String())).Storage

	req := client.StoreObjectRequest{Requester: "planner", Ref: client.StorageRef{Bucket: "plans", Key: "q3/budget.txt"},
		Classification: client.AgentData, ContentType: "text/plain", Metadata: map[string]string{"quarter": "q3"}, TTL: time.Hour}
	md, err := c.Store(bg, req, []byte("quarterly numbers\n"))
	if err != nil {
		t.Fatal(err)
	}
	if md.Owner != "planner" || md.Size != 18 || md.Ref.VersionID == "" || len(md.Ref.ContentHash) != 32 ||
		md.Classification != client.AgentData || md.Metadata["quarter"] != "q3" || md.ExpiresAt.IsZero() {
		t.Fatalf("stored %+v", md)
	}
	latest := client.ObjectRequest{Requester: "planner", Ref: client.StorageRef{Bucket: "plans", Key: "q3/budget.txt"}}
	obj, err := c.Retrieve(bg, latest)
	if err != nil || string(obj.Data) != "quarterly numbers\n" || obj.Metadata.Ref.VersionID != md.Ref.VersionID {
		t.Fatalf("retrieve: %+v %v", obj, err)
	}
	if got, err := c.GetMetadata(bg, latest); err != nil || got.Size != 18 || got.ContentType != "text/plain" {
		t.Fatalf("metadata: %+v %v", got, err)
	}

	// A second object, and a listing one object per page.
	if _, err := c.Store(bg, client.StoreObjectRequest{Requester: "planner", Ref: client.StorageRef{Bucket: "plans", Key: "q4/budget.txt"},
		Classification: client.AgentData, NoExpiry: true}, []byte("next quarter")); err != nil {
		t.Fatal(err)
	}
	var keys []string
	page := client.ListObjectsRequest{Requester: "planner", Bucket: "plans", PageSize: 1}
	for {
		p, err := c.List(bg, page)
		if err != nil || len(p.Objects) > 1 {
			t.Fatalf("list: %+v %v", p, err)
		}
		for _, o := range p.Objects {
			keys = append(keys, o.Ref.Key)
		}
		if p.NextPageToken == "" {
			break
		}
		page.PageToken = p.NextPageToken
	}
	if strings.Join(keys, ",") != "q3/budget.txt,q4/budget.txt" {
		t.Fatalf("listed %v", keys)
	}

	// A presigned GET, a bearer credential: printed redacted, and usable
	// by anyone holding it.
	u, err := c.PresignedURL(bg, client.PresignRequest{Requester: "planner", Op: client.PresignGet, Ref: latest.Ref, TTL: time.Minute})
	if err != nil || u.Method != "GET" || u.Ref.VersionID != md.Ref.VersionID || u.ExpiresAt.IsZero() {
		t.Fatalf("presign: %+v %v", u, err)
	}
	if printed := fmt.Sprintf("%v %+v", u, u); strings.Contains(printed, "https://") {
		t.Fatalf("the URL prints: %s", printed)
	}
	resp, err := tn.https().Get(string(u.URL.Expose()))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "quarterly numbers\n" {
		t.Fatalf("GET %d %q", resp.StatusCode, body)
	}

	// Another agent holds no delegation: denied, and told nothing.
	if _, err := c.Retrieve(bg, client.ObjectRequest{Requester: "intruder", Ref: latest.Ref}); !errors.Is(err, client.ErrDenied) || !client.IsSecurityCritical(err) {
		t.Fatalf("another agent's read: %v", err)
	}

	if err := c.Delete(bg, latest); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Retrieve(bg, latest); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	// A delete that finds nothing on its first attempt says so.
	var ce *client.Error
	if err := c.Delete(bg, latest); !errors.As(err, &ce) || !errors.Is(err, client.ErrNotFound) || ce.Attempts != 1 {
		t.Fatalf("delete again: %v", err)
	}
}

// Bad input gets a typed error and stores nothing; the figures of a quota
// and of a size limit come with their errors, from the node's ErrorInfo
// or, before anything is sent, from the client's own limit.
func TestStorageErrors(t *testing.T) {
	tn := startNodeWith(t, "", func(c *node.Config) {
		c.Storage.DefaultQuotaBytes = 100 << 10
		c.Storage.MaxObjectSizeBytes = 64 << 10
	})
	tn.seed("planner")
	cfg := tn.config(tn.GRPCAddr().String())
	cfg.Storage.MaxObjectSizeBytes = 80 << 10 // above the node's, to reach its limit
	cfg.Storage.ChunkSizeBytes = 16 << 10
	c := tn.clients(t, cfg).Storage
	store := func(key string, data []byte) (client.ObjectMetadata, error) {
		return c.Store(bg, client.StoreObjectRequest{Requester: "planner", Ref: client.StorageRef{Bucket: "b", Key: key},
			Classification: client.SandboxState, NoExpiry: true}, data)
	}

	// The client's limit: refused before a byte is sent.
	before := tn.requests("storage", "StoreStream") + tn.requests("storage", "Store")
	_, err := store("huge", make([]byte, 81<<10))
	var big *client.TooLargeError
	var ce *client.Error
	if !errors.As(err, &big) || big.Size != 81<<10 || big.Max != 80<<10 || !errors.Is(err, client.ErrTooLarge) ||
		!errors.As(err, &ce) || ce.Attempts != 0 {
		t.Fatalf("over the client's limit: %v", err)
	}
	// The node's limit, with its figures, streamed without a known size:
	// the node ends the stream when it passes 64 KiB.
	_, err = c.StoreStream(bg, client.StoreObjectRequest{Requester: "planner", Ref: client.StorageRef{Bucket: "b", Key: "big"},
		Classification: client.SandboxState}, bytes.NewReader(make([]byte, 70<<10)))
	if !errors.As(err, &big) || big.Max != 64<<10 || big.Size <= 64<<10 || !errors.Is(err, client.ErrTooLarge) {
		t.Fatalf("over the node's limit: %v", err)
	}
	if after := tn.requests("storage", "StoreStream") + tn.requests("storage", "Store"); after != before+1 {
		t.Fatalf("the node saw %v stores, want the one it refused", after-before)
	}

	// The quota: 60 KiB stored, 60 more would pass 100.
	if _, err := store("first", make([]byte, 60<<10)); err != nil {
		t.Fatal(err)
	}
	_, err = store("second", make([]byte, 60<<10))
	var quota *client.QuotaExceededError
	if !errors.As(err, &quota) || quota.Used != 60<<10 || quota.Limit != 100<<10 || quota.Unit != "bytes" ||
		!errors.Is(err, client.ErrQuotaExceeded) || !errors.Is(err, client.ErrResourceExhausted) || client.IsRetryable(err) {
		t.Fatalf("quota: %v %+v", err, quota)
	}

	for name, tc := range map[string]struct {
		req  client.StoreObjectRequest
		want error
	}{
		"no classification": {client.StoreObjectRequest{Requester: "planner", Ref: client.StorageRef{Key: "k"}}, client.ErrInvalidRequest},
		"negative TTL":      {client.StoreObjectRequest{Requester: "planner", Classification: client.AgentData, TTL: -time.Second}, client.ErrInvalidRequest},
		"TTL and NoExpiry":  {client.StoreObjectRequest{Requester: "planner", Classification: client.AgentData, TTL: time.Second, NoExpiry: true}, client.ErrInvalidRequest},
		"a version":         {client.StoreObjectRequest{Requester: "planner", Classification: client.AgentData, Ref: client.StorageRef{Key: "k", VersionID: "00"}}, client.ErrInvalidRequest},
		"bad bucket":        {client.StoreObjectRequest{Requester: "planner", Classification: client.AgentData, Ref: client.StorageRef{Bucket: "Bad Bucket!"}}, client.ErrInvalidRequest},
		"unknown owner":     {client.StoreObjectRequest{Requester: "planner", Owner: "nobody", Classification: client.AgentData}, client.ErrDenied},
		"wrong size":        {client.StoreObjectRequest{Requester: "planner", Classification: client.AgentData, Size: 3}, client.ErrInvalidRequest},
	} {
		if _, err := c.Store(bg, tc.req, []byte("data")); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	// A stream whose reader fails, or gives less than it announced, stores
	// nothing.
	broken := errors.New("disk gone")
	_, err = c.StoreStream(bg, client.StoreObjectRequest{Requester: "planner", Ref: client.StorageRef{Bucket: "b", Key: "broken"},
		Classification: client.AgentData}, io.MultiReader(bytes.NewReader(make([]byte, 20<<10)), iotestErr{broken}))
	if !errors.Is(err, client.ErrInvalidRequest) || !errors.Is(err, broken) {
		t.Fatalf("a failing reader: %v", err)
	}
	_, err = c.StoreStream(bg, client.StoreObjectRequest{Requester: "planner", Ref: client.StorageRef{Bucket: "b", Key: "short"},
		Classification: client.AgentData, Size: 30 << 10}, bytes.NewReader(make([]byte, 20<<10)))
	if !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("a short reader: %v", err)
	}
	p, err := c.List(bg, client.ListObjectsRequest{Requester: "planner", Bucket: "b"})
	if err != nil || len(p.Objects) != 1 || p.Objects[0].Ref.Key != "first" {
		t.Fatalf("only the first object is stored: %+v %v", p, err)
	}
	if _, err := c.List(bg, client.ListObjectsRequest{Requester: "planner", PageSize: 1001}); !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("page size: %v", err)
	}
	if _, err := c.PresignedURL(bg, client.PresignRequest{Requester: "planner"}); !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("presign without an operation: %v", err)
	}
	// A reference pinned to a content hash the version does not have.
	_, err = c.Retrieve(bg, client.ObjectRequest{Requester: "planner", Ref: client.StorageRef{Bucket: "b", Key: "first", ContentHash: make([]byte, 32)}})
	if !errors.Is(err, client.ErrConflict) {
		t.Fatalf("stale reference: %v", err)
	}
	// Compliance retention.
	retained, err := c.Store(bg, client.StoreObjectRequest{Requester: "planner", Ref: client.StorageRef{Bucket: "b", Key: "invoice"},
		Classification: client.Compliance}, []byte("invoice 42"))
	if err != nil || retained.RetainUntil.IsZero() {
		t.Fatalf("compliance object: %+v %v", retained, err)
	}
	if err := c.Delete(bg, client.ObjectRequest{Requester: "planner", Ref: retained.Ref}); !errors.Is(err, client.ErrRetained) {
		t.Fatalf("delete under retention: %v", err)
	}
}

type iotestErr struct{ err error }

func (r iotestErr) Read([]byte) (int, error) { return 0, r.err }

// chacha is a reader of n pseudo-random bytes, the same for a seed: an
// object a test can send and check again without holding it.
func chacha(seed byte, n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{seed}), n)
}

// A 32 MiB object goes in through StoreStream and out through
// RetrieveStream while the process's heap — client and node together —
// grows by a fraction of it: neither side holds the object. The data is
// checked against the same generator, 1 MiB at a time.
func TestStorageStreamsInBoundedMemory(t *testing.T) {
	const size = 32 << 20
	// Measured: about 6 to 10 MiB in all. Holding the object would take 32.
	const bound = 20 << 20
	tn := startNode(t, "")
	tn.seed("sandbox-7")
	c := tn.clients(t, tn.config(tn.GRPCAddr().String())).Storage
	if _, err := c.Store(bg, client.StoreObjectRequest{Requester: "sandbox-7", Classification: client.SandboxState}, []byte("warm-up")); err != nil {
		t.Fatal(err)
	}
	defer debug.SetGCPercent(debug.SetGCPercent(10))

	w := watchHeap()
	md, err := c.StoreStream(bg, client.StoreObjectRequest{Requester: "sandbox-7", Ref: client.StorageRef{Bucket: "checkpoints", Key: "run-1"},
		Classification: client.SandboxState}, chacha(7, size))
	storeGrowth := w.growth()
	if err != nil || md.Size != size {
		t.Fatalf("store: %+v %v", md, err)
	}

	w = watchHeap()
	r, err := c.RetrieveStream(bg, client.ObjectRequest{Requester: "sandbox-7", Ref: md.Ref})
	if err != nil {
		t.Fatal(err)
	}
	if r.Metadata().Size != size {
		t.Fatalf("metadata %+v", r.Metadata())
	}
	if err := sameStream(r, chacha(7, size)); err != nil {
		t.Fatal(err)
	}
	r.Close()
	retrieveGrowth := w.growth()
	t.Logf("heap growth: store %.1f MiB, retrieve %.1f MiB (object 32 MiB)", float64(storeGrowth)/(1<<20), float64(retrieveGrowth)/(1<<20))
	if storeGrowth > bound || retrieveGrowth > bound {
		t.Fatalf("heap grew by %d (store) and %d (retrieve) bytes; bound %d", storeGrowth, retrieveGrowth, bound)
	}
}

// sameStream reads got and want to their ends, 1 MiB at a time, and
// reports the first difference or got's error.
func sameStream(got, want io.Reader) error {
	a, b := make([]byte, 1<<20), make([]byte, 1<<20)
	var off int64
	for {
		n, err := io.ReadFull(got, a)
		m, _ := io.ReadFull(want, b)
		if !bytes.Equal(a[:n], b[:m]) {
			return fmt.Errorf("differs within the MiB at %d", off)
		}
		off += int64(n)
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return nil
		case err != nil:
			return err
		}
	}
}

type heapWatch struct {
	stop chan struct{}
	done chan uint64
}

// watchHeap samples the heap in use until growth is called, which returns
// the peak above where it started.
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

// An object over the node's limit on one message is read whole through
// the stream; one damaged on disk fails the read with a typed error after
// its intact chunks — never io.EOF — and Retrieve returns no data.
func TestStorageLargeAndDamagedObjects(t *testing.T) {
	tn := startNodeWith(t, "", func(c *node.Config) { c.Server.MaxRecvMsgBytes = 1 << 20 })
	tn.seed("bot")
	cfg := tn.config(tn.GRPCAddr().String())
	cfg.Storage.ChunkSizeBytes = 256 << 10 // a chunk and its framing in one message
	c := tn.clients(t, cfg).Storage
	data, _ := io.ReadAll(chacha(1, 3<<20+1000))
	md, err := c.Store(bg, client.StoreObjectRequest{Requester: "bot", Ref: client.StorageRef{Bucket: "b", Key: "k"},
		Classification: client.Artifact}, data)
	if err != nil {
		t.Fatal(err)
	}
	streamed := tn.requests("storage", "RetrieveStream")
	obj, err := c.Retrieve(bg, client.ObjectRequest{Requester: "bot", Ref: md.Ref})
	if err != nil || !bytes.Equal(obj.Data, data) {
		t.Fatalf("a 3 MiB object through a 1 MiB message limit: %d bytes, %v", len(obj.Data), err)
	}
	if tn.requests("storage", "RetrieveStream") != streamed+1 {
		t.Fatal("Retrieve did not fall back to the stream")
	}

	// Flip a byte of the last segment on disk.
	vid := md.Ref.VersionID
	path := filepath.Join(tn.dir, "objects", vid[len(vid)-2:], vid)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	b := make([]byte, 1)
	f.ReadAt(b, fi.Size()-20)
	b[0] ^= 1
	f.WriteAt(b, fi.Size()-20)
	f.Close()

	r, err := c.RetrieveStream(bg, client.ObjectRequest{Requester: "bot", Ref: md.Ref})
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r)
	if !errors.Is(err, client.ErrDecryptionFailed) || n != 3<<20 {
		t.Fatalf("read %d bytes, then %v; want the 3 intact MiB, then ErrDecryptionFailed", n, err)
	}
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, client.ErrDecryptionFailed) {
		t.Fatalf("the error sticks: %v", err)
	}
	if obj, err := c.Retrieve(bg, client.ObjectRequest{Requester: "bot", Ref: md.Ref}); !errors.Is(err, client.ErrDecryptionFailed) || obj.Data != nil {
		t.Fatalf("retrieve of a damaged object: %d bytes, %v", len(obj.Data), err)
	}
}
