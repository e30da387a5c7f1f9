package nhi

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// testClock is a clock tests move by hand, so expiries happen on cue.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2031, 3, 14, 9, 26, 53, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testEnv is a service on a temporary directory with a hand-moved clock.
type testEnv struct {
	t     testing.TB
	dir   string
	clock *testClock
	cfg   Config
	s     *Service
}

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	e := &testEnv{t: t, dir: t.TempDir(), clock: newTestClock()}
	e.open()
	return e
}

func (e *testEnv) open() {
	e.t.Helper()
	s, err := open(context.Background(), e.dir, e.cfg, e.clock.Now)
	if err != nil {
		e.t.Fatal(err)
	}
	e.s = s
	e.t.Cleanup(func() { _ = s.Close() })
}

// restart closes the service and opens it again on the same directory.
func (e *testEnv) restart() {
	e.t.Helper()
	if err := e.s.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
}

func (e *testEnv) register(id, owner string) AgentIdentity {
	e.t.Helper()
	a, err := e.s.Register(context.Background(), AgentIdentity{ID: id, Name: id, Type: AgentTypeAutonomous, OwnerID: owner})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *testEnv) token(agentID string, ttl time.Duration) string {
	e.t.Helper()
	tok, err := e.s.IssueToken(context.Background(), agentID, ttl)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *testEnv) delegate(from, to string, perms []string, parent *Delegation) *Delegation {
	e.t.Helper()
	var pid *DelegationID
	if parent != nil {
		id := parent.ID()
		pid = &id
	}
	d, err := e.s.CreateDelegation(context.Background(), from, to, perms, time.Time{}, pid)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// wantErr fails unless err matches every sentinel in want.
func wantErr(t testing.TB, what string, err error, want ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %v", what, want)
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Fatalf("%s: %v, want it to match %v", what, err, w)
		}
	}
}
