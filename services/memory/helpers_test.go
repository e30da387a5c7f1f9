package memory

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/creto-systems/creto/internal/kv"
)

// clock is a settable time source, so TTL tests need not sleep.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Each reading advances a nanosecond so memories stored in a row have
	// distinct, ordered creation times.
	c.t = c.t.Add(time.Nanosecond)
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a service on a fresh store in a temporary directory.
type fixture struct {
	t     testing.TB
	dir   string
	store kv.Store
	clock *clock
	cfg   Config
	svc   *Service
}

func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), clock: newClock(), cfg: cfg}
	f.open()
	t.Cleanup(f.close)
	return f
}

func (f *fixture) open() {
	f.t.Helper()
	store, err := kv.Open(f.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	svc, err := open(context.Background(), store, f.cfg, f.clock.now)
	if err != nil {
		store.Close()
		f.t.Fatal(err)
	}
	f.store, f.svc = store, svc
}

func (f *fixture) close() {
	if f.svc != nil {
		f.svc.Close()
		f.store.Close()
		f.svc, f.store = nil, nil
	}
}

// restart closes the service and its store and opens both again from disk.
func (f *fixture) restart() {
	f.t.Helper()
	f.close()
	f.open()
}

// records counts the memories on disk.
func (f *fixture) records() int {
	f.t.Helper()
	n := 0
	err := f.store.Scan(context.Background(), []byte(prefixRecords), func(_, _ []byte) error {
		n++
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *fixture) store1(caller string, req StoreRequest) string {
	f.t.Helper()
	id, err := f.svc.Store(context.Background(), caller, req)
	if err != nil {
		f.t.Fatalf("store %q: %v", req.Content, err)
	}
	return id
}

func (f *fixture) query(caller string, q Query) []Result {
	f.t.Helper()
	res, err := f.svc.Query(context.Background(), caller, q)
	if err != nil {
		f.t.Fatalf("query %q: %v", q.Text, err)
	}
	return res.Results
}

func contents(rs []Result) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Memory.Content
	}
	return out
}

// reopen opens a service on dir expecting failure, returning the store to
// close and the error.
func reopen(t testing.TB, dir string, cfg Config) (kv.Store, error) {
	t.Helper()
	store, err := kv.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := Open(context.Background(), store, cfg)
	if err == nil {
		svc.Close()
	}
	return store, err
}
