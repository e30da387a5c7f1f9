package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/nhi"
)

// testClock is a clock tests move by hand, so expiry and retention happen
// on cue. NHI keeps the real clock: only storage's view of time moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is the node a test runs: one kv store in a temporary directory
// shared by a real NHI service and the storage service, as in production.
type env struct {
	t     testing.TB
	dir   string
	cfg   Config
	clock *testClock
	store kv.Store
	ids   *nhi.Service
	s     *Service
}

// testConfig keeps chunks small so multi-chunk objects stay small.
func testConfig() Config {
	return Config{ChunkSizeBytes: minChunkSize, InlineMaxBytes: 8 << 10, SweepInterval: -1}
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), cfg: cfg, clock: &testClock{t: time.Now().UTC()}}
	e.open()
	t.Cleanup(e.close)
	return e
}

// openNode opens the node's store, sealer and identity service in dir.
func openNode(ctx context.Context, dir string) (kv.Store, *nhi.FileSealer, *nhi.Service, error) {
	store, err := kv.Open(filepath.Join(dir, "kv"))
	if err != nil {
		return nil, nil, nil, err
	}
	keyPath := filepath.Join(dir, "node.key")
	sealer, err := nhi.OpenFileSealer(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		sealer, err = nhi.CreateFileSealer(keyPath)
	}
	if err != nil {
		store.Close()
		return nil, nil, nil, err
	}
	ids, err := nhi.New(ctx, store, sealer, nhi.Config{})
	if err != nil {
		store.Close()
		return nil, nil, nil, err
	}
	return store, sealer, ids, nil
}

func (e *env) open() {
	e.t.Helper()
	ctx := context.Background()
	store, sealer, ids, err := openNode(ctx, e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	defer sealer.Close()
	s, err := open(ctx, e.dir, store, ids, sealer, e.cfg, e.clock.now)
	if err != nil {
		ids.Close()
		store.Close()
		e.t.Fatal(err)
	}
	e.store, e.ids, e.s = store, ids, s
}

func (e *env) close() {
	if e.s == nil {
		return
	}
	e.s.Close()
	e.ids.Close()
	e.store.Close()
	e.s = nil
}

func (e *env) restart() {
	e.t.Helper()
	e.close()
	e.open()
}

// agents registers agents in NHI.
func (e *env) agents(ids ...string) {
	e.t.Helper()
	for _, id := range ids {
		if _, err := e.ids.Register(context.Background(), nhi.AgentIdentity{ID: id, Type: nhi.AgentTypeAutonomous, OwnerID: "org"}); err != nil {
			e.t.Fatal(err)
		}
	}
}

// delegate records a delegation from→to and returns the caller that acts
// through it.
func (e *env) delegate(from, to string, perms ...string) Caller {
	e.t.Helper()
	d, err := e.ids.CreateDelegation(context.Background(), from, to, perms, time.Time{}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return Caller{Agent: to, Delegation: d.ID().String()}
}

func (e *env) put(caller Caller, req StoreRequest, data []byte) ObjectMetadata {
	e.t.Helper()
	if req.Classification == 0 {
		req.Classification = AgentData
	}
	md, err := e.s.Store(context.Background(), caller, req, bytes.NewReader(data))
	if err != nil {
		e.t.Fatalf("store: %v", err)
	}
	return md
}

func (e *env) get(caller Caller, ref StorageRef) []byte {
	e.t.Helper()
	obj, err := e.s.Retrieve(context.Background(), caller, ref)
	if err != nil {
		e.t.Fatalf("retrieve %v: %v", ref, err)
	}
	return obj.Data
}

// record reads a version's record straight from the store.
func (e *env) record(ref StorageRef) *record {
	e.t.Helper()
	key := objectKey(ref.Bucket, ref.Key, ref.VersionID)
	v, err := e.store.Get(context.Background(), key)
	if err != nil {
		e.t.Fatalf("record %v: %v", ref, err)
	}
	r, err := decodeRecord(key, v)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// putRecord overwrites a version's record in the store, bypassing the
// service, as someone with write access to the store could.
func (e *env) putRecord(r *record) {
	e.t.Helper()
	var b kv.Batch
	putRecord(&b, r)
	if err := e.store.Apply(context.Background(), &b); err != nil {
		e.t.Fatal(err)
	}
}

// files lists the object files on disk.
func (e *env) files() []string {
	e.t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(e.dir, "objects"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// count returns how many store keys start with prefix.
func (e *env) count(prefix string) int {
	e.t.Helper()
	n := 0
	if err := e.store.Scan(context.Background(), []byte(prefix), func(_, _ []byte) error { n++; return nil }); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// unchanged asserts that nothing was stored: no records, index entries,
// blobs or files beyond the counts given.
func (e *env) unchanged(what string, records, files int) {
	e.t.Helper()
	if n := e.count(prefixObj); n != records {
		e.t.Fatalf("%s: %d records, want %d", what, n, records)
	}
	if n := e.count(prefixOwner); n != records {
		e.t.Fatalf("%s: %d owner index entries, want %d", what, n, records)
	}
	if n := len(e.files()); n != files {
		e.t.Fatalf("%s: %d object files, want %d", what, n, files)
	}
}

// payload returns n random bytes from a seeded generator.
func payload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// wantErr fails unless err matches every target.
func wantErr(t testing.TB, what string, err error, targets ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %v", what, targets)
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Fatalf("%s: %v, want it to match %v", what, err, target)
		}
	}
}

// readAll reads r to the end in small reads, returning what it got and the
// error that ended it (nil at a clean io.EOF).
func readAll(r io.Reader) ([]byte, error) {
	var out []byte
	buf := make([]byte, 3000)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// fileOf returns the path of a version's envelope file.
func (e *env) fileOf(ref StorageRef) string { return e.s.filePath(ref.VersionID) }
