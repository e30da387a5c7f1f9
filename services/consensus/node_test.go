package consensus

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSingleNodeBootstrapsAndServes(t *testing.T) {
	ctx := context.Background()
	tn := newTestNode(t, "solo", nil)
	waitServing(t, tn)

	st := tn.status()
	if st.Role != RoleLeader || st.LeaderID != "solo" || len(st.Members) != 1 || st.Members[0].Suffrage != Voter || !st.Writable {
		t.Fatalf("status %+v", st)
	}
	a, err := tn.n.GetTimestamp(ctx, "agent", GetTimestampRequest{})
	if err != nil || !a.Consensus || a.Count != 1 || a.NodeID != "solo" {
		t.Fatalf("timestamp %+v, %v", a, err)
	}
	b, err := tn.n.GetTimestamp(ctx, "agent", GetTimestampRequest{Count: 100})
	if err != nil || b.Count != 100 || b.Logical <= a.Logical {
		t.Fatalf("batch %+v after %+v: %v", b, a, err)
	}
	if b.At(99).Logical != b.Logical+99 || b.At(99).Physical < a.Physical {
		t.Fatalf("batch range %+v", b.At(99))
	}
	if d := time.Since(a.Time()); d < -time.Second || d > 5*time.Second {
		t.Fatalf("physical part %v away from the wall clock", d)
	}
	c, _ := tn.n.GetTimestamp(ctx, "agent", GetTimestampRequest{})
	if c.Logical <= b.At(99).Logical {
		t.Fatalf("%v not after the batch ending %v", c, b.At(99))
	}
}

func waitServing(t testing.TB, tn *testNode) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !tn.status().ServingTimestamps {
		if time.Now().After(deadline) {
			t.Fatalf("%s does not serve timestamps", tn.id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A restart resumes from disk: no second bootstrap, no entry applied
// twice (raft#396), timestamps and sequence numbers carry on.
func TestRestartDoesNotReapplyOrRebootstrap(t *testing.T) {
	ctx := context.Background()
	h := &counter{}
	tn := newTestNode(t, "solo", func(c *Config) { c.Handlers = map[string]Handler{counterType: h} })
	waitServing(t, tn)
	for i := 1; i <= 5; i++ {
		res, err := tn.n.Propose(ctx, "agent", Command{Type: counterType, Payload: []byte("x")})
		if err != nil || decodeCount(t, res.Result) != uint64(i) {
			t.Fatalf("propose %d: %+v %v", i, res, err)
		}
	}
	ev, err := tn.n.OrderEvents(ctx, "agent", OrderEventsRequest{Events: []Event{{ID: "a"}, {ID: "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := tn.n.GetTimestamp(ctx, "agent", GetTimestampRequest{})
	before := tn.status()
	applies := h.applies.Load()

	tn.restart()
	waitServing(t, tn)
	after := tn.status()
	if after.Term < before.Term || after.LastLogIndex < before.LastLogIndex || len(after.Members) != 1 {
		t.Fatalf("restart changed the cluster: %+v then %+v", before, after)
	}
	if got := h.applies.Load(); got != applies {
		t.Fatalf("restart re-applied %d committed commands", got-applies)
	}
	v, err := tn.n.Get(ctx, "agent", counterType, []byte("x"))
	if err != nil || decodeCount(t, v) != 5 {
		t.Fatalf("counter after restart %x, %v", v, err)
	}
	res, err := tn.n.Propose(ctx, "agent", Command{Type: counterType, Payload: []byte("x")})
	if err != nil || decodeCount(t, res.Result) != 6 {
		t.Fatalf("propose after restart: %+v %v", res, err)
	}
	ev2, err := tn.n.OrderEvents(ctx, "agent", OrderEventsRequest{Events: []Event{{ID: "c"}}})
	if err != nil || ev2.Events[0].Sequence != ev.Events[1].Sequence+1 {
		t.Fatalf("sequence after restart: %+v %v", ev2, err)
	}
	ts2, _ := tn.n.GetTimestamp(ctx, "agent", GetTimestampRequest{})
	if ts2.Logical <= ts.Logical || ev2.Events[0].Timestamp.Logical <= ts.Logical {
		t.Fatalf("timestamps went back across a restart: %v then %v, %v", ts, ts2, ev2.Events[0].Timestamp)
	}
}

// A node restarted with its clock an hour behind still issues timestamps
// above every one it issued before: it starts above the persisted
// high-water mark.
func TestTimestampsSurviveClockGoingBack(t *testing.T) {
	ctx := context.Background()
	tn := newTestNode(t, "solo", nil)
	waitServing(t, tn)
	var last Timestamp
	for range 1000 {
		r, err := tn.n.GetTimestamp(ctx, "agent", GetTimestampRequest{})
		if err != nil {
			t.Fatal(err)
		}
		last = r.Timestamp
	}
	tn.kill()
	tn.now = func() time.Time { return time.Now().Add(-time.Hour) }
	tn.start()
	waitServing(t, tn)
	for range 1000 {
		r, err := tn.n.GetTimestamp(ctx, "agent", GetTimestampRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Logical <= last.Logical {
			t.Fatalf("timestamp %v after %v", r.Timestamp, last)
		}
		last = r.Timestamp
	}
	// Events are stamped from the same oracle.
	ev, err := tn.n.OrderEvents(ctx, "agent", OrderEventsRequest{Events: []Event{{ID: "e"}}})
	if err != nil || ev.Events[0].Timestamp.Logical <= last.Logical {
		t.Fatalf("event %+v after %v: %v", ev, last, err)
	}
}

func TestIdempotentRetries(t *testing.T) {
	ctx := context.Background()
	h := &counter{}
	tn := newTestNode(t, "solo", func(c *Config) {
		c.Handlers = map[string]Handler{counterType: h}
		c.IdempotencyWindow = time.Second
	})
	waitServing(t, tn)
	cmd := Command{Type: counterType, Payload: []byte("x"), IdempotencyKey: "req-1"}
	first, err := tn.n.Propose(ctx, "agent", cmd)
	if err != nil || first.Duplicate {
		t.Fatal(first, err)
	}
	again, err := tn.n.Propose(ctx, "agent", cmd)
	if err != nil || !again.Duplicate || again.Index != first.Index || decodeCount(t, again.Result) != 1 {
		t.Fatalf("retry: %+v %v", again, err)
	}
	// Another caller's key of the same name is its own.
	other, err := tn.n.Propose(ctx, "other-agent", cmd)
	if err != nil || other.Duplicate || decodeCount(t, other.Result) != 2 {
		t.Fatalf("other caller: %+v %v", other, err)
	}
	// The same key for another payload is refused, and applies nothing.
	_, err = tn.n.Propose(ctx, "agent", Command{Type: counterType, Payload: []byte("y"), IdempotencyKey: "req-1"})
	if !errors.Is(err, ErrIdempotencyConflict) || !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("conflict: %v", err)
	}
	if _, err := tn.n.Get(ctx, "agent", counterType, []byte("y")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("conflicting command applied: %v", err)
	}
	// A batch of events retried with its key keeps its first order.
	req := OrderEventsRequest{Events: []Event{{ID: "a", Payload: []byte("1")}, {ID: "b"}}, IdempotencyKey: "batch-1"}
	e1, err := tn.n.OrderEvents(ctx, "agent", req)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := tn.n.OrderEvents(ctx, "agent", req)
	if err != nil || !e2.Duplicate || e2.Events[0] != e1.Events[0] || e2.Events[1] != e1.Events[1] {
		t.Fatalf("retried batch %+v, first %+v, %v", e2, e1, err)
	}
	read, _ := tn.n.ReadEvents(ctx, "agent", ReadEventsRequest{})
	if len(read.Events) != 2 {
		t.Fatalf("a retried batch was stored twice: %+v", read.Events)
	}
	// Past the window the key is free again.
	time.Sleep(1100 * time.Millisecond)
	late, err := tn.n.Propose(ctx, "agent", cmd)
	if err != nil || late.Duplicate || decodeCount(t, late.Result) != 3 {
		t.Fatalf("after the window: %+v %v", late, err)
	}
}

// Callers that take timestamps faster than 262,144 a millisecond use up
// the window; they wait for the mark to be raised rather than fail, and
// Physical never runs more than the window ahead of the wall clock.
func TestExhaustedWindowWaits(t *testing.T) {
	ctx := context.Background()
	tn := newTestNode(t, "solo", func(c *Config) {
		c.TSOWindow = 200 * time.Millisecond
		c.TSOUpdateInterval = 100 * time.Millisecond
		c.MaxTimestampBatch = 1 << logicalBits
	})
	waitServing(t, tn)
	start := time.Now()
	var last Timestamp
	for range 600 { // 600 ms of timestamps
		r, err := tn.n.GetTimestamp(ctx, "agent", GetTimestampRequest{Count: 1 << logicalBits})
		if err != nil {
			t.Fatal(err)
		}
		if r.Logical <= last.Logical {
			t.Fatalf("%v after %v", r.Timestamp, last)
		}
		if ahead := time.Until(r.At(r.Count - 1).Time()); ahead > 250*time.Millisecond {
			t.Fatalf("Physical %v ahead of the wall clock", ahead)
		}
		last = r.At(r.Count - 1)
	}
	if took := time.Since(start); took < 350*time.Millisecond {
		t.Fatalf("600 ms of timestamps in %v: the window did not hold", took)
	}
}
