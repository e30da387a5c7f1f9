package consensus

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// The leader is killed while clients keep taking timestamps and ordering
// events, then restarted: no acknowledged event is lost or reordered, every
// node stores the same order, and timestamps never go back.
func TestLeaderFailoverKeepsOrder(t *testing.T) {
	c := newCluster(t, 3, nil)
	h := newHistory()
	stop := runClients(t, c, h, 4, 2*time.Millisecond, true)
	time.Sleep(700 * time.Millisecond)
	old := c.waitLeader()
	old.kill()
	time.Sleep(1200 * time.Millisecond)
	now := c.waitLeader()
	if now == old {
		t.Fatal("the killed node still leads")
	}
	old.start()
	time.Sleep(700 * time.Millisecond)
	stop()
	h.check(t, c)
}

// With two of three nodes down, writes fail at once with ErrNoQuorum —
// never hanging past the caller's deadline — and timestamps fall back to
// the local clock when asked to; once the nodes are back, writes resume
// and consensus timestamps carry on above the old ones.
func TestNoQuorumPausesWrites(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 3, func(c *Config) { c.Handlers = map[string]Handler{counterType: &counter{}} })
	leader := c.waitLeader()
	before, err := leader.n.OrderEvents(ctx, "agent", OrderEventsRequest{Events: []Event{{ID: "before"}}})
	if err != nil {
		t.Fatal(err)
	}
	last, err := leader.n.GetTimestamp(ctx, "agent", GetTimestampRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var down []*testNode
	for _, tn := range c.nodes {
		if tn != leader {
			tn.kill()
			down = append(down, tn)
		}
	}

	// Calls in flight as the quorum goes return by their deadline. One that
	// times out after it was proposed is indeterminate: it may still
	// commit once the quorum is back. One refused with ErrNoQuorum never
	// does.
	outcome := map[string]error{}
	deadline := time.Now().Add(5 * time.Second)
	var sawNoQuorum bool
	for i := 0; !sawNoQuorum && time.Now().Before(deadline); i++ {
		id := "during-" + strconv.Itoa(i)
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		start := time.Now()
		_, err := leader.n.OrderEvents(cctx, "agent", OrderEventsRequest{Events: []Event{{ID: id}}})
		cancel()
		if took := time.Since(start); took > 800*time.Millisecond {
			t.Fatalf("a write took %v past its 300ms deadline: %v", took, err)
		}
		outcome[id] = err
		sawNoQuorum = errors.Is(err, ErrNoQuorum)
	}
	if !sawNoQuorum {
		t.Fatal("writes did not pause with ErrNoQuorum")
	}
	// Now every write fails fast.
	for range 20 {
		start := time.Now()
		_, err1 := leader.n.OrderEvents(ctx, "agent", OrderEventsRequest{Events: []Event{{ID: "during"}}})
		_, err2 := leader.n.Propose(ctx, "agent", Command{Type: counterType, Payload: []byte("x")})
		_, err3 := leader.n.GetTimestamp(ctx, "agent", GetTimestampRequest{})
		if took := time.Since(start); took > 100*time.Millisecond {
			t.Fatalf("failing fast took %v", took)
		}
		for _, err := range []error{err1, err2, err3} {
			if !errors.Is(err, ErrNoQuorum) || !errors.Is(err, ErrUnavailable) {
				t.Fatalf("without a quorum: %v", err)
			}
		}
	}
	// The local fallback: flagged, increasing, above what this node served.
	prev := last.Timestamp
	for range 5 {
		r, err := leader.n.GetTimestamp(ctx, "agent", GetTimestampRequest{AllowLocal: true, Count: 2})
		if err != nil || r.Consensus || r.Warning == "" || r.Count != 2 {
			t.Fatalf("local fallback: %+v %v", r, err)
		}
		if r.Logical <= prev.Logical {
			t.Fatalf("local timestamp %v not above %v", r.Timestamp, prev)
		}
		prev = r.At(1)
	}
	st := leader.status()
	if st.Writable || st.ServingTimestamps {
		t.Fatalf("status without a quorum: %+v", st)
	}

	for _, tn := range down {
		tn.start()
	}
	now := c.waitLeader()
	after, err := now.n.OrderEvents(ctx, "agent", OrderEventsRequest{Events: []Event{{ID: "after"}}})
	if err != nil {
		t.Fatal(err)
	}
	if after.Events[0].Timestamp.Logical <= last.Logical {
		t.Fatalf("after recovery %+v; last timestamp %v", after.Events[0], last)
	}
	c.waitApplied()
	stored := readAll(t, now.n)
	if stored[0].ID != before.Events[0].ID || stored[len(stored)-1].ID != "after" {
		t.Fatalf("stored %+v", stored)
	}
	for _, e := range stored[1 : len(stored)-1] {
		if err, ok := outcome[e.ID]; !ok || err != nil && !errors.Is(err, ErrIndeterminate) {
			t.Fatalf("%s was applied, but its call returned %v", e.ID, err)
		}
	}
}

// A leader cut off from the others stops serving before a new leader
// starts: the timestamps taken from every node — the isolated leader
// included — form one linearizable history.
func TestPartitionedLeaderStopsServing(t *testing.T) {
	c := newCluster(t, 3, nil)
	old := c.waitLeader()
	h := newHistory()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan struct{})
	errs := make(chan error, len(c.nodes))
	// One client per node, each asking only its node, so the isolated
	// leader keeps being asked.
	for i, tn := range c.nodes {
		cl := newClient(c, i, []*testNode{tn})
		go func() {
			caller := "client-" + strconv.Itoa(i)
			for {
				select {
				case <-done:
					errs <- nil
					return
				case <-time.After(time.Millisecond):
				}
				n := tn.node()
				call := h.now()
				r, err := n.GetTimestamp(ctx, caller, GetTimestampRequest{})
				if err == nil {
					h.add(cl.id, opInput{count: 1}, opOutput{firstTS: r.Logical}, call, nil)
				} else if !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrNotLeader) {
					errs <- err
					return
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	var others []string
	for _, tn := range c.nodes {
		if tn != old {
			others = append(others, tn.id)
		}
	}
	c.net.isolate(old.id, others...)
	cut := time.Now()
	// Writes on the isolated leader pause.
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, err := old.n.OrderEvents(ctx, "agent", OrderEventsRequest{Events: []Event{{ID: "cut-off"}}})
		if errors.Is(err, ErrNoQuorum) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the isolated leader still takes writes: %v", err)
		}
	}
	if waited := time.Since(cut); waited > 2*time.Second {
		t.Fatalf("writes paused only after %v", waited)
	}
	var next *testNode
	for next == nil || next == old {
		next = c.waitLeader()
	}
	time.Sleep(500 * time.Millisecond)
	c.net.heal()
	time.Sleep(500 * time.Millisecond)
	close(done)
	for range c.nodes {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	h.check(t, nil)
	if st := old.status(); st.Role == RoleLeader && st.Term <= next.status().Term && st.ServingTimestamps {
		t.Fatalf("two leaders serve: %+v", st)
	}
}

// Leadership moves on request; the old leader stops serving before the
// transfer and redirects, and timestamps keep increasing.
func TestLeadershipTransfer(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 3, nil)
	old := c.waitLeader()
	a, err := old.n.GetTimestamp(ctx, "agent", GetTimestampRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var to *testNode
	for _, tn := range c.nodes {
		if tn != old {
			to = tn
			break
		}
	}
	if err := old.n.TransferLeadership(ctx, "agent", TransferLeadershipRequest{ID: to.id}); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("a non-admin moved leadership: %v", err)
	}
	if err := old.n.TransferLeadership(ctx, admin, TransferLeadershipRequest{ID: to.id}); err != nil {
		t.Fatal(err)
	}
	_, err = old.n.GetTimestamp(ctx, "agent", GetTimestampRequest{})
	var nl *NotLeaderError
	if !errors.As(err, &nl) && !errors.Is(err, ErrUnavailable) {
		t.Fatalf("the old leader after the transfer: %v", err)
	}
	if got := c.waitLeader(); got != to {
		t.Fatalf("%s leads, want %s", got.id, to.id)
	}
	b, err := to.n.GetTimestamp(ctx, "agent", GetTimestampRequest{})
	if err != nil || b.Logical <= a.Logical || b.NodeID != to.id {
		t.Fatalf("after the transfer %+v (before %+v): %v", b, a, err)
	}
	if _, err := old.n.GetTimestamp(ctx, "agent", GetTimestampRequest{}); !errors.As(err, &nl) || nl.LeaderID != to.id || nl.LeaderAddress != to.n.Address() {
		t.Fatalf("redirect: %v", err)
	}
	// Writes on a follower are refused with the leader's address, and
	// change nothing.
	if _, err := old.n.OrderEvents(ctx, "agent", OrderEventsRequest{Events: []Event{{ID: "misdirected"}}}); !errors.As(err, &nl) || nl.LeaderAddress != to.n.Address() {
		t.Fatalf("a write on a follower: %v", err)
	}
	if r, _ := to.n.ReadEvents(ctx, "agent", ReadEventsRequest{}); r.Last != 0 {
		t.Fatalf("a refused write was ordered: %+v", r)
	}
	// Without a target raft picks the most up-to-date voter.
	if err := to.n.TransferLeadership(ctx, admin, TransferLeadershipRequest{}); err != nil {
		t.Fatal(err)
	}
	third := c.waitLeader()
	if third == to {
		t.Fatal("leadership did not move")
	}
	d, err := third.n.GetTimestamp(ctx, "agent", GetTimestampRequest{})
	if err != nil || d.Logical <= b.Logical {
		t.Fatalf("after the second transfer %+v (before %+v): %v", d, b, err)
	}
	if err := to.n.TransferLeadership(ctx, admin, TransferLeadershipRequest{}); !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a follower moved leadership: %v", err)
	}
}

// A follower that was down while the leader compacted its log, and a
// fresh node joining, both catch up by installing a snapshot; the joiner
// becomes a voter, then leaves.
func TestSnapshotInstallAndMembership(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 3, func(c *Config) {
		c.TrailingLogs = 10
		c.SnapshotThreshold = 1 << 20 // snapshots only when the test asks
	})
	leader := c.waitLeader()
	var lagging *testNode
	for _, tn := range c.nodes {
		if tn != leader {
			lagging = tn
			break
		}
	}
	// raft-wal truncates whole segments, so the entries the lagging node
	// misses must fill a segment (1 MiB here) for compaction to drop them.
	orderOneByOne(t, leader.n, "a", 30, 8)
	lagging.kill()
	orderOneByOne(t, leader.n, "b", 60, 32<<10)
	if err := leader.n.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := leader.n.logs.GetLog(20, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("the leader's log was not compacted: %v", err)
	}

	lagging.start()
	joiner := c.add("n4", func(c *Config) { c.TrailingLogs = 10 })
	c.waitMembers(4)
	orderOneByOne(t, leader.n, "c", 5, 8)
	c.waitApplied()
	want := readAll(t, leader.n)
	for _, tn := range []*testNode{lagging, joiner} {
		if s := tn.n.raft.Stats()["last_snapshot_index"]; s == "0" || s == "" {
			t.Fatalf("%s caught up without a snapshot", tn.id)
		}
		got := readAll(t, tn.n)
		if len(got) != len(want) || len(got) != 95 {
			t.Fatalf("%s has %d events, the leader %d", tn.id, len(got), len(want))
		}
		for i := range got {
			if got[i].Sequence != want[i].Sequence || got[i].ID != want[i].ID || got[i].Timestamp != want[i].Timestamp {
				t.Fatalf("%s event %d: %+v, want %+v", tn.id, i, got[i], want[i])
			}
		}
	}
	st := joiner.status()
	for _, m := range st.Members {
		if m.Suffrage != Voter {
			t.Fatalf("member %+v", m)
		}
	}
	if ls := leader.status(); len(ls.Members) != 4 || ls.Members[3].ID != "n4" || ls.Members[3].Health != Healthy {
		t.Fatalf("leader's view: %+v", ls.Members)
	}

	if err := joiner.n.Leave(ctx, admin, leader.n); err != nil {
		t.Fatal(err)
	}
	joiner.kill()
	c.nodes = c.nodes[:3]
	c.waitMembers(3)

	// The leader leaves too: it steps down once its removal commits, and
	// the other two carry on above its timestamps.
	before, err := leader.n.GetTimestamp(ctx, "agent", GetTimestampRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.n.Leave(ctx, admin, leader.n); err != nil {
		t.Fatal(err)
	}
	leader.kill()
	var rest []*testNode
	for _, tn := range c.nodes {
		if tn != leader {
			rest = append(rest, tn)
		}
	}
	c.nodes = rest
	c.waitMembers(2)
	after, err := c.waitLeader().n.GetTimestamp(ctx, "agent", GetTimestampRequest{})
	if err != nil || after.Logical <= before.Logical {
		t.Fatalf("after the leader left: %+v (before %+v): %v", after, before, err)
	}
}

// A leader cut off with entries it could not commit becomes a follower
// whose log suffix conflicts with the new leader's; raft truncates it.
// The node must still open afterwards: raft-wal v0.4.0 sealed such a
// segment without its index and panicked on the next start
// (hashicorp/raft-wal#31, fixed in v0.4.1).
func TestDivergedLeaderRestarts(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 3, nil)
	old := c.waitLeader()
	orderOneByOne(t, old.n, "a", 5, 8)
	var others []string
	for _, tn := range c.nodes {
		if tn != old {
			others = append(others, tn.id)
		}
	}
	c.net.isolate(old.id, others...)
	// Within its lease the cut-off leader still appends; nothing commits.
	appended := 0
	for i := range 5 {
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err := old.n.OrderEvents(cctx, "agent", OrderEventsRequest{Events: []Event{{ID: "lost-" + strconv.Itoa(i)}}})
		cancel()
		if errors.Is(err, ErrIndeterminate) {
			appended++
		}
	}
	if appended == 0 {
		t.Fatal("the isolated leader appended nothing")
	}
	var next *testNode
	for next == nil || next == old {
		next = c.waitLeader()
	}
	orderOneByOne(t, next.n, "b", 5, 8)
	c.net.heal()
	c.waitApplied()
	old.restart()
	c.waitApplied()
	for _, tn := range c.nodes {
		got := readAll(t, tn.n)
		if len(got) != 10 || got[4].ID != "a-4" || got[5].ID != "b-0" {
			t.Fatalf("%s stores %d events: %+v", tn.id, len(got), got)
		}
	}
}
