package consensus

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// Every kind of bad input gets a typed error and changes nothing: no log
// entry, no event, no state.
func TestBadInputChangesNothing(t *testing.T) {
	ctx := context.Background()
	h := &counter{}
	tn := newTestNode(t, "solo", func(c *Config) {
		c.Handlers = map[string]Handler{counterType: h}
		c.MaxBatchEvents = 10
		c.MaxEventBytes = 100
		c.MaxTimestampBatch = 50
	})
	waitServing(t, tn)
	n := tn.n
	before := tn.status()
	long := strings.Repeat("x", 300)
	events := func(k int) []Event {
		out := make([]Event, k)
		for i := range out {
			out[i] = Event{ID: "e"}
		}
		return out
	}
	call := func(f func() error) func() error { return f }
	cases := []struct {
		name string
		do   func() error
		want []error
	}{
		{"empty caller", call(func() error {
			_, err := n.GetTimestamp(ctx, "", GetTimestampRequest{})
			return err
		}), []error{ErrInvalidArgument}},
		{"long caller", call(func() error {
			_, err := n.OrderEvents(ctx, long, OrderEventsRequest{Events: events(1)})
			return err
		}), []error{ErrInvalidArgument}},
		{"caller with control characters", call(func() error {
			_, err := n.Propose(ctx, "a\nb", Command{Type: counterType, Payload: []byte("x")})
			return err
		}), []error{ErrInvalidArgument}},
		{"too many timestamps", call(func() error {
			_, err := n.GetTimestamp(ctx, "agent", GetTimestampRequest{Count: 51})
			return err
		}), []error{ErrInvalidArgument, ErrTooLarge}},
		{"empty batch", call(func() error {
			_, err := n.OrderEvents(ctx, "agent", OrderEventsRequest{})
			return err
		}), []error{ErrInvalidArgument}},
		{"oversized batch", call(func() error {
			_, err := n.OrderEvents(ctx, "agent", OrderEventsRequest{Events: events(11)})
			return err
		}), []error{ErrInvalidArgument, ErrTooLarge}},
		{"event without id", call(func() error {
			_, err := n.OrderEvents(ctx, "agent", OrderEventsRequest{Events: []Event{{ID: "a"}, {Payload: []byte("p")}}})
			return err
		}), []error{ErrInvalidArgument}},
		{"oversized event", call(func() error {
			_, err := n.OrderEvents(ctx, "agent", OrderEventsRequest{Events: []Event{{ID: "a", Payload: make([]byte, 101)}}})
			return err
		}), []error{ErrInvalidArgument, ErrTooLarge}},
		{"long idempotency key", call(func() error {
			_, err := n.OrderEvents(ctx, "agent", OrderEventsRequest{Events: events(1), IdempotencyKey: long})
			return err
		}), []error{ErrInvalidArgument, ErrTooLarge}},
		{"unknown command type", call(func() error {
			_, err := n.Propose(ctx, "agent", Command{Type: "vault.uses", Payload: []byte("x")})
			return err
		}), []error{ErrInvalidArgument, ErrUnknownCommand}},
		{"malformed command type", call(func() error {
			_, err := n.Propose(ctx, "agent", Command{Type: "Vault/Uses", Payload: []byte("x")})
			return err
		}), []error{ErrInvalidArgument, ErrUnknownCommand}},
		{"reserved command type", call(func() error {
			_, err := n.Propose(ctx, "agent", Command{Type: eventsType, Payload: []byte("x")})
			return err
		}), []error{ErrInvalidArgument, ErrUnknownCommand}},
		{"malformed payload", call(func() error {
			_, err := n.Propose(ctx, "agent", Command{Type: counterType})
			return err
		}), []error{ErrInvalidArgument}},
		{"oversized command", call(func() error {
			_, err := n.Propose(ctx, "agent", Command{Type: counterType, Payload: make([]byte, 5<<20)})
			return err
		}), []error{ErrInvalidArgument, ErrTooLarge}},
		{"read limit", call(func() error {
			_, err := n.ReadEvents(ctx, "agent", ReadEventsRequest{Limit: 1001})
			return err
		}), []error{ErrInvalidArgument, ErrTooLarge}},
		{"state key", call(func() error {
			_, err := n.Get(ctx, "agent", counterType, nil)
			return err
		}), []error{ErrInvalidArgument}},
		{"membership by a non-admin", call(func() error {
			_, err := n.AddServer(ctx, "agent", AddServerRequest{ID: "n2", Address: "127.0.0.1:1"})
			return err
		}), []error{ErrAccessDenied}},
		{"server without address", call(func() error {
			_, err := n.AddServer(ctx, admin, AddServerRequest{ID: "n2", Address: "nowhere"})
			return err
		}), []error{ErrInvalidArgument}},
		{"transfer to a stranger", call(func() error {
			return n.TransferLeadership(ctx, admin, TransferLeadershipRequest{ID: "n9"})
		}), []error{ErrInvalidArgument}},
		{"cancelled context", call(func() error {
			c, cancel := context.WithCancel(ctx)
			cancel()
			_, err := n.OrderEvents(c, "agent", OrderEventsRequest{Events: events(1)})
			return err
		}), []error{context.Canceled}},
	}
	for _, c := range cases {
		err := c.do()
		for _, w := range c.want {
			if !errors.Is(err, w) {
				t.Errorf("%s: %v, want %v", c.name, err, w)
			}
		}
		if err != nil && strings.Contains(err.Error(), long) {
			t.Errorf("%s: the error carries the whole caller-supplied id", c.name)
		}
	}
	after := tn.status()
	if after.LastLogIndex != before.LastLogIndex && !onlyHighWater(t, n, before.LastLogIndex, after.LastLogIndex) {
		t.Fatalf("bad input reached the log: index %d → %d", before.LastLogIndex, after.LastLogIndex)
	}
	if h.applies.Load() != 0 {
		t.Fatal("bad input reached a handler")
	}
	if r, _ := n.ReadEvents(ctx, "agent", ReadEventsRequest{}); len(r.Events) != 0 || r.Last != 0 {
		t.Fatalf("bad input ordered events: %+v", r)
	}
}

// onlyHighWater reports whether every entry in (from, to] is the oracle's
// own high-water mark, which the leader raises as time passes.
func onlyHighWater(t *testing.T, n *Node, from, to uint64) bool {
	t.Helper()
	for i := from + 1; i <= to; i++ {
		var l raft.Log
		if err := n.logs.GetLog(i, &l); err != nil {
			t.Fatal(err)
		}
		if l.Type != raft.LogCommand {
			return false
		}
		if env, err := decodeEnvelope(l.Data); err != nil || env.typ != tsoType {
			return false
		}
	}
	return true
}

// A handler's rejection reaches the proposer, and its writes are dropped;
// the log moves on.
func TestHandlerRejection(t *testing.T) {
	ctx := context.Background()
	h := &counter{}
	tn := newTestNode(t, "solo", func(c *Config) { c.Handlers = map[string]Handler{counterType: h} })
	waitServing(t, tn)
	_, err := tn.n.Propose(ctx, "agent", Command{Type: counterType, Payload: []byte("reject")})
	if !errors.Is(err, errRejected) {
		t.Fatalf("rejection: %v", err)
	}
	if _, err := tn.n.Get(ctx, "agent", counterType, []byte("reject")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a rejected command wrote state: %v", err)
	}
	res, err := tn.n.Propose(ctx, "agent", Command{Type: counterType, Payload: []byte("ok")})
	if err != nil || decodeCount(t, res.Result) != 1 {
		t.Fatalf("after a rejection: %+v %v", res, err)
	}
}

// An entry the state machine cannot apply like every other node — an
// unknown command type, a panicking handler — halts it, loudly, before it
// applies anything else; a restart meets the same entry again until the
// node knows how to apply it.
func TestUnknownCommandInLogHalts(t *testing.T) {
	ctx := context.Background()
	tn := newTestNode(t, "solo", nil)
	waitServing(t, tn)
	if _, err := tn.n.OrderEvents(ctx, "agent", OrderEventsRequest{Events: []Event{{ID: "before"}}}); err != nil {
		t.Fatal(err)
	}
	// A newer node proposed a type this one does not know.
	ghost := envelope{typ: counterType, caller: "agent", payload: []byte("x")}.encode()
	if res, err := tn.n.apply(ctx, ghost); err != nil || !errors.Is(res.err, ErrHalted) {
		t.Fatalf("an unknown command type: %+v, %v", res, err)
	}
	if _, err := tn.n.OrderEvents(ctx, "agent", OrderEventsRequest{Events: []Event{{ID: "after"}}}); !errors.Is(err, ErrHalted) {
		t.Fatalf("a halted node took a write: %v", err)
	}
	r, err := tn.n.GetTimestamp(ctx, "agent", GetTimestampRequest{AllowLocal: true})
	if err != nil || r.Consensus || r.Warning == "" {
		t.Fatalf("a halted node should fall back to local time: %+v %v", r, err)
	}

	tn.restart()
	time.Sleep(3 * tn.cfg.HeartbeatTimeout)
	if _, err := tn.n.OrderEvents(ctx, "agent", OrderEventsRequest{Events: []Event{{ID: "after"}}}); !errors.Is(err, ErrHalted) {
		t.Fatalf("restarted without the handler: %v", err)
	}

	h := &counter{}
	tn.cfg.Handlers = map[string]Handler{counterType: h}
	tn.restart()
	waitServing(t, tn)
	if v, err := tn.n.Get(ctx, "agent", counterType, []byte("x")); err != nil || decodeCount(t, v) != 1 {
		t.Fatalf("the entry was not applied once the handler was registered: %x %v", v, err)
	}
	read, _ := tn.n.ReadEvents(ctx, "agent", ReadEventsRequest{})
	if len(read.Events) != 1 || read.Events[0].ID != "before" {
		t.Fatalf("events %+v", read.Events)
	}
}

func TestHandlerPanicHalts(t *testing.T) {
	ctx := context.Background()
	tn := newTestNode(t, "solo", func(c *Config) { c.Handlers = map[string]Handler{counterType: &counter{}} })
	waitServing(t, tn)
	if _, err := tn.n.Propose(ctx, "agent", Command{Type: counterType, Payload: []byte("panic")}); !errors.Is(err, ErrHalted) {
		t.Fatalf("panic: %v", err)
	}
	if _, err := tn.n.Propose(ctx, "agent", Command{Type: counterType, Payload: []byte("x")}); !errors.Is(err, ErrHalted) {
		t.Fatalf("after a panic: %v", err)
	}
}
