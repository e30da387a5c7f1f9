package vault

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/creto-systems/creto/internal/kv"
)

// testClock is a settable time source and a tick source the test fires,
// so rotation and expiry tests never sleep.
type testClock struct {
	mu   sync.Mutex
	t    time.Time
	tick chan time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), tick: make(chan time.Time)}
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Each reading advances a microsecond, so events and versions written
	// in a row have distinct, ordered times.
	c.t = c.t.Add(time.Microsecond)
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *testClock) ticker(time.Duration) (<-chan time.Time, func()) { return c.tick, func() {} }

// runScheduler fires the scheduler and returns once that pass is done:
// the tick channel is unbuffered and the loop handles one tick at a time,
// so the second send completes only after the first pass.
func (c *testClock) runScheduler() {
	c.tick <- time.Time{}
	c.tick <- time.Time{}
}

// fixture is a vault on a fresh store in a temporary directory,
// initialized with a 2-of-3 Shamir split and unsealed.
type fixture struct {
	t      testing.TB
	dir    string
	store  kv.Store
	clock  *testClock
	cfg    Config
	svc    *Service
	shares []string
}

func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	f := newSealedFixture(t, cfg)
	var err error
	if f.shares, err = f.svc.InitShamir(context.Background(), 2, 3); err != nil {
		t.Fatal(err)
	}
	f.unseal()
	return f
}

// newSealedFixture opens a vault that is not initialized yet.
func newSealedFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), clock: newTestClock(), cfg: cfg}
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
	svc, err := open(context.Background(), store, f.cfg, f.clock)
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

func (f *fixture) unseal() {
	f.t.Helper()
	st, err := f.svc.SubmitUnsealShares(context.Background(), f.shares[0], f.shares[2])
	if err != nil || st.Sealed {
		f.t.Fatalf("unseal: %+v %v", st, err)
	}
}

// restart closes the service and its store, opens both again from disk
// and unseals.
func (f *fixture) restart() {
	f.t.Helper()
	f.close()
	f.open()
	f.unseal()
}

func ref(path, name string) SecretRef { return SecretRef{Path: path, Name: name} }

func val(s string) SecretValue { return NewSecretValue([]byte(s)) }

// create makes a GENERIC secret owned by caller.
func (f *fixture) create(caller string, r SecretRef, value string) *Secret {
	f.t.Helper()
	s, err := f.svc.CreateSecret(context.Background(), caller, CreateSecretRequest{Ref: r, Value: val(value), Metadata: SecretMetadata{Type: TypeGeneric}})
	if err != nil {
		f.t.Fatalf("create %v: %v", r, err)
	}
	return s
}

// get reads the current value as a string.
func (f *fixture) get(caller string, r SecretRef) (string, error) {
	s, err := f.svc.GetSecret(context.Background(), caller, GetSecretRequest{Ref: r})
	if err != nil {
		return "", err
	}
	defer s.Destroy()
	return string(s.Value.Expose()), nil
}

// dump copies every key and value under prefix.
func (f *fixture) dump(prefix string) map[string][]byte {
	f.t.Helper()
	out := map[string][]byte{}
	err := f.store.Scan(context.Background(), []byte(prefix), func(k, v []byte) error {
		out[string(k)] = bytes.Clone(v)
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// events returns the access log of r in the last day, as the owner sees it.
func (f *fixture) events(owner string, r SecretRef) []AccessEvent {
	f.t.Helper()
	resp, err := f.svc.GetAccessLog(context.Background(), owner, GetAccessLogRequest{Ref: r, Limit: 1000})
	if err != nil {
		f.t.Fatalf("access log of %v: %v", r, err)
	}
	return resp.Events
}

func wantErr(t testing.TB, err error, sentinels ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %v", sentinels)
	}
	for _, s := range sentinels {
		if !errors.Is(err, s) {
			t.Fatalf("error %q does not match %v", err, s)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

// setRaw writes a store value directly, bypassing the vault.
func setRaw(t testing.TB, f *fixture, key, value []byte) {
	t.Helper()
	var b kv.Batch
	b.Set(key, value)
	must(t, f.store.Apply(context.Background(), &b))
}
