package consensus

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creto-systems/creto/internal/kv"
)

// counter is a test command type: the payload names a counter, Apply adds
// one to it and returns the new value. "reject" is refused by Apply and
// "" by Validate; "panic" panics. applies counts Apply calls across every
// node sharing the handler.
type counter struct{ applies atomic.Int64 }

const counterType = "test.counter"

func (*counter) Validate(p []byte) error {
	if len(p) == 0 {
		return fmt.Errorf("%w: empty counter name", ErrInvalidArgument)
	}
	return nil
}

var errRejected = errors.New("counter rejected")

func (c *counter) Apply(tx *Tx, p []byte) ([]byte, error) {
	c.applies.Add(1)
	switch string(p) {
	case "reject":
		return nil, errRejected
	case "panic":
		panic("counter panic")
	}
	v, err := readUint64(tx, p)
	if err != nil {
		return nil, err
	}
	out := be64(v + 1)
	return out, tx.Set(p, out)
}

func decodeCount(t testing.TB, b []byte) uint64 {
	t.Helper()
	if len(b) != 8 {
		t.Fatalf("counter result of %d bytes", len(b))
	}
	return binary.BigEndian.Uint64(b)
}

// syncBuffer collects a test's log lines; they are printed if it fails.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func testLogger(t testing.TB) *slog.Logger {
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			buf.mu.Lock()
			t.Logf("node logs:\n%s", buf.b.String())
			buf.mu.Unlock()
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

const admin = "admin"

// testConfig is a node config with timeouts short enough for tests and
// long enough for a busy two-core machine under the race detector.
func testConfig(t testing.TB, id string) Config {
	return Config{
		NodeID:             id,
		BindAddress:        "127.0.0.1:0",
		HeartbeatTimeout:   600 * time.Millisecond,
		ElectionTimeout:    600 * time.Millisecond,
		LeaderLeaseTimeout: 400 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		TSOWindow:          500 * time.Millisecond,
		TSOUpdateInterval:  10 * time.Millisecond,
		LogSegmentBytes:    1 << 20,
		Admins:             []string{admin},
		Logger:             testLogger(t),
	}
}

// testNode is a node with its own store and directory, which a test can
// kill and restart on the same address.
type testNode struct {
	t     testing.TB
	id    string
	dir   string
	cfg   Config
	now   func() time.Time
	net   *network
	store kv.Store
	n     *Node // set and cleared by the test goroutine only

	mu   sync.Mutex
	live *Node // what client goroutines see (node)
}

// node returns the running node, or nil; safe from any goroutine.
func (tn *testNode) node() *Node {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return tn.live
}

func (tn *testNode) setLive(n *Node) {
	tn.mu.Lock()
	tn.live = n
	tn.mu.Unlock()
}

func newTestNode(t testing.TB, id string, configure func(*Config)) *testNode {
	t.Helper()
	tn := &testNode{t: t, id: id, dir: t.TempDir(), cfg: testConfig(t, id), now: time.Now}
	if configure != nil {
		configure(&tn.cfg)
	}
	tn.start()
	t.Cleanup(tn.kill)
	return tn
}

// start opens the store and the node; a restart reuses the address.
func (tn *testNode) start() {
	tn.t.Helper()
	if tn.store == nil {
		s, err := kv.Open(tn.dir + "/kv")
		if err != nil {
			tn.t.Fatal(err)
		}
		tn.store = s
	}
	cfg := tn.cfg
	if tn.net != nil {
		cfg.StreamLayer = tn.net.listen(tn.t, tn.id, cfg.BindAddress)
	}
	n, err := open(context.Background(), tn.dir, tn.store, cfg, tn.now)
	if err != nil {
		tn.t.Fatalf("open %s: %v", tn.id, err)
	}
	tn.n = n
	tn.setLive(n)
	tn.cfg.BindAddress = n.Address() // the same port after a restart
}

// kill closes the node and its store, as a crash would leave them (minus
// whatever was not fsync'd).
func (tn *testNode) kill() {
	tn.setLive(nil)
	if tn.n != nil {
		_ = tn.n.Close()
		tn.n = nil
	}
	if tn.store != nil {
		_ = tn.store.Close()
		tn.store = nil
	}
}

func (tn *testNode) restart() {
	tn.t.Helper()
	tn.kill()
	tn.start()
}

func (tn *testNode) status() ClusterStatus {
	tn.t.Helper()
	st, err := tn.n.GetClusterStatus(context.Background(), admin)
	if err != nil {
		tn.t.Fatalf("%s: status: %v", tn.id, err)
	}
	return st
}

// cluster is a set of test nodes on loopback.
type cluster struct {
	t     testing.TB
	nodes []*testNode
	net   *network
	// setup, if set, runs on each node add starts, before it joins.
	setup func(*testNode)
}

// newCluster starts size nodes: n1 bootstraps, the others join through
// it.
func newCluster(t testing.TB, size int, configure func(*Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, net: newNetwork()}
	for i := 1; i <= size; i++ {
		c.add(fmt.Sprintf("n%d", i), configure)
	}
	c.waitMembers(size)
	return c
}

// add starts one more node and joins it to the cluster.
func (c *cluster) add(id string, configure func(*Config)) *testNode {
	c.t.Helper()
	first := len(c.nodes) == 0
	tn := &testNode{t: c.t, id: id, dir: c.t.TempDir(), now: time.Now, net: c.net}
	tn.cfg = testConfig(c.t, id)
	if !first {
		tn.cfg.Join = []string{c.nodes[0].n.Address()}
	}
	if configure != nil {
		configure(&tn.cfg)
	}
	tn.start()
	c.t.Cleanup(tn.kill)
	if c.setup != nil {
		c.setup(tn)
	}
	c.nodes = append(c.nodes, tn)
	if first {
		c.waitLeader()
		return tn
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.join(ctx, tn); err != nil {
		c.t.Fatalf("join %s: %v", id, err)
	}
	return tn
}

// join joins tn through whichever node leads, retrying while leadership
// moves.
func (c *cluster) join(ctx context.Context, tn *testNode) error {
	for {
		leader := c.waitLeaderCtx(ctx)
		if leader == nil {
			return ctx.Err()
		}
		err := tn.n.Join(ctx, admin, leader.n)
		if err == nil || !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrUnavailable) {
			return err
		}
	}
}

// live returns the nodes that are running.
func (c *cluster) live() []*testNode {
	var out []*testNode
	for _, tn := range c.nodes {
		if tn.n != nil {
			out = append(out, tn)
		}
	}
	return out
}

// waitLeader waits for a live node to serve timestamps.
func (c *cluster) waitLeader() *testNode {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tn := c.waitLeaderCtx(ctx)
	if tn == nil {
		c.t.Fatal("no leader serving timestamps within 20s")
	}
	return tn
}

func (c *cluster) waitLeaderCtx(ctx context.Context) *testNode {
	for {
		for _, tn := range c.live() {
			st, err := tn.n.GetClusterStatus(ctx, admin)
			if err == nil && st.ServingTimestamps {
				return tn
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// waitMembers waits until every live node sees size voters.
func (c *cluster) waitMembers(size int) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		for _, tn := range c.live() {
			st := tn.status()
			voters := 0
			for _, m := range st.Members {
				if m.Suffrage == Voter {
					voters++
				}
			}
			ok = ok && voters == size
		}
		if ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatalf("the cluster did not reach %d voters", size)
}

// waitApplied waits until every live node's state machine has applied
// what the leader's has, and the leader's stopped moving.
func (c *cluster) waitApplied() {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		leader := c.waitLeader()
		target := leader.n.fsm.applied.Load()
		same := true
		for _, tn := range c.live() {
			same = same && tn.n.fsm.applied.Load() == target
		}
		if same && leader.n.fsm.applied.Load() == target {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("the nodes did not converge")
}

// network is a StreamLayer fabric for tests: real TCP on loopback, with
// partitions. Each connection starts with the dialling node's id, so the
// fabric knows which link it belongs to and can cut it.
type network struct {
	mu      sync.Mutex
	addrs   map[string]string // address → node id
	blocked map[[2]string]bool
	conns   map[*netConn]struct{}
}

func newNetwork() *network {
	return &network{addrs: map[string]string{}, blocked: map[[2]string]bool{}, conns: map[*netConn]struct{}{}}
}

type netLayer struct {
	net.Listener
	fabric *network
	self   string
}

func (w *network) listen(t testing.TB, id, address string) *netLayer {
	ln, err := net.Listen("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	w.addrs[ln.Addr().String()] = id
	w.mu.Unlock()
	return &netLayer{Listener: ln, fabric: w, self: id}
}

func (l *netLayer) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		var hdr [1]byte
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			c.Close()
			continue
		}
		from := make([]byte, hdr[0])
		if _, err := io.ReadFull(c, from); err != nil {
			c.Close()
			continue
		}
		_ = c.SetReadDeadline(time.Time{})
		if nc := l.fabric.track(c, string(from), l.self); nc != nil {
			return nc, nil
		}
	}
}

func (l *netLayer) Dial(address string, timeout time.Duration) (net.Conn, error) {
	l.fabric.mu.Lock()
	to := l.fabric.addrs[address]
	blocked := l.fabric.blocked[[2]string{l.self, to}]
	l.fabric.mu.Unlock()
	if blocked {
		return nil, fmt.Errorf("partitioned from %s", to)
	}
	c, err := net.DialTimeout("tcp", address, timeout)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(append([]byte{byte(len(l.self))}, l.self...)); err != nil {
		c.Close()
		return nil, err
	}
	if nc := l.fabric.track(c, l.self, to); nc != nil {
		return nc, nil
	}
	return nil, fmt.Errorf("partitioned from %s", to)
}

type netConn struct {
	net.Conn
	fabric   *network
	from, to string
}

func (c *netConn) Close() error {
	c.fabric.mu.Lock()
	delete(c.fabric.conns, c)
	c.fabric.mu.Unlock()
	return c.Conn.Close()
}

// track registers a connection, or closes it if its link is cut.
func (w *network) track(c net.Conn, from, to string) *netConn {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.blocked[[2]string{from, to}] {
		c.Close()
		return nil
	}
	nc := &netConn{Conn: c, fabric: w, from: from, to: to}
	w.conns[nc] = struct{}{}
	return nc
}

// isolate cuts every link between id and the other nodes, both ways.
func (w *network) isolate(id string, others ...string) {
	w.mu.Lock()
	var cut []*netConn
	for _, o := range others {
		w.blocked[[2]string{id, o}] = true
		w.blocked[[2]string{o, id}] = true
	}
	for c := range w.conns {
		if w.blocked[[2]string{c.from, c.to}] {
			cut = append(cut, c)
		}
	}
	w.mu.Unlock()
	for _, c := range cut {
		c.Close()
	}
}

// heal restores every link.
func (w *network) heal() {
	w.mu.Lock()
	defer w.mu.Unlock()
	clear(w.blocked)
}
