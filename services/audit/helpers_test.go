package audit

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/nhi"
)

// testStore opens a real store in a scratch directory.
func testStore(t testing.TB) (kv.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "kv")
	st, err := kv.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, dir
}

// testSealer is NHI's software sealer: the audit log reuses it through
// its own Sealer interface.
func testSealer(t testing.TB) *nhi.FileSealer {
	t.Helper()
	s, err := nhi.CreateFileSealer(filepath.Join(t.TempDir(), "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// clock is a settable clock for tests that need time to pass.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// logEnv is a log on a real store, reopenable as a node restart would.
type logEnv struct {
	t      testing.TB
	store  kv.Store
	sealer Sealer
	cfg    Config
	clock  *clock
	// realTime runs the log on the wall clock, for tests whose records
	// are stamped by something else (the Logger).
	realTime bool
	svc      *Service
}

func newEnv(t testing.TB, cfg Config) *logEnv {
	t.Helper()
	return startEnv(t, cfg, false)
}

func startEnv(t testing.TB, cfg Config, realTime bool) *logEnv {
	t.Helper()
	st, _ := testStore(t)
	e := &logEnv{t: t, store: st, sealer: testSealer(t), cfg: cfg, clock: newClock(), realTime: realTime}
	e.reopen()
	return e
}

// reopen closes the service (if open) and opens it again on the same
// store and sealer.
func (e *logEnv) reopen() *Service {
	e.t.Helper()
	if e.svc != nil {
		if err := e.svc.Close(); err != nil {
			e.t.Fatal(err)
		}
	}
	now := e.clock.now
	if e.realTime {
		now = time.Now
	}
	s, err := open(context.Background(), e.store, e.sealer, e.cfg, now)
	if err != nil {
		e.t.Fatal(err)
	}
	e.svc = s
	e.t.Cleanup(func() { s.Close() })
	return s
}

// rec is a small valid record.
func rec(who, what string) Record {
	return Record{Who: who, What: what, Resource: `Doc::"q3"`, Source: "test"}
}

// appendN appends n records in batches of batch and returns them as
// logged (index set).
func (e *logEnv) appendN(n, batch int, mk func(i int) Record) {
	e.t.Helper()
	for i := 0; i < n; i += batch {
		recs := make([]Record, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			recs = append(recs, mk(j))
		}
		if _, err := e.svc.Append(context.Background(), recs); err != nil {
			e.t.Fatal(err)
		}
	}
}
