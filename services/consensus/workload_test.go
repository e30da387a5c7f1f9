package consensus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The workload: clients that take timestamps and order events against a
// cluster the way the gRPC client will — follow ErrNotLeader, retry
// ErrUnavailable and ErrIndeterminate (with the same idempotency key) until
// the call succeeds — while the test kills, restarts and partitions nodes.
// Every completed call goes into a history that is checked two ways: by
// porcupine against a sequential model of the oracle, and by direct
// assertions over what every node stored.

// opInput and opOutput are one call in the history. A timestamp call takes
// count timestamps; an order call orders count events.
type opInput struct {
	order bool
	count uint64
}

type opOutput struct {
	firstSeq, firstTS uint64
}

// oracleState is the sequential model: the last timestamp issued and the
// next sequence number.
type oracleState struct {
	lastTS, nextSeq uint64
}

// oracleModel says a history is correct if the calls can be put in one
// order, consistent with real time, in which every call's timestamps are
// above all earlier ones and every batch's sequence numbers follow the
// previous batch's.
var oracleModel = porcupine.Model{
	Init: func() any { return oracleState{nextSeq: 1} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(oracleState), input.(opInput), output.(opOutput)
		if out.firstTS <= s.lastTS {
			return false, s
		}
		if in.order {
			if out.firstSeq != s.nextSeq {
				return false, s
			}
			s.nextSeq += in.count
		}
		s.lastTS = out.firstTS + in.count - 1
		return true, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(opInput), output.(opOutput)
		if in.order {
			return fmt.Sprintf("order(%d) → seq %d ts %d", in.count, out.firstSeq, out.firstTS)
		}
		return fmt.Sprintf("ts(%d) → %d", in.count, out.firstTS)
	},
}

// history is what the clients saw.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
	acked map[string]EventOrder // event id → its acknowledged order
}

func newHistory() *history {
	return &history{start: time.Now(), acked: map[string]EventOrder{}}
}

func (h *history) now() int64 { return int64(time.Since(h.start)) }

func (h *history) add(client int, in opInput, out opOutput, call int64, events []EventOrder) {
	ret := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret})
	for _, e := range events {
		h.acked[e.ID] = e
	}
}

// client is one workload client.
type client struct {
	c     *cluster
	id    int
	rng   *rand.Rand
	hint  string // the node believed to lead
	nodes []*testNode
}

func newClient(c *cluster, id int, nodes []*testNode) *client {
	if nodes == nil {
		nodes = c.nodes
	}
	return &client{c: c, id: id, rng: rand.New(rand.NewPCG(uint64(id), 42)), nodes: nodes}
}

func (cl *client) target(attempt int) *testNode {
	if cl.hint != "" {
		for _, tn := range cl.nodes {
			if tn.id == cl.hint {
				return tn
			}
		}
	}
	return cl.nodes[(cl.id+attempt)%len(cl.nodes)]
}

// call runs op until it succeeds or ctx ends, moving between nodes as the
// errors say.
func (cl *client) call(ctx context.Context, op func(context.Context, *Node) error) error {
	for attempt := 0; ; attempt++ {
		tn := cl.target(attempt)
		err := ErrClosed
		if n := tn.node(); n != nil {
			actx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err = op(actx, n)
			cancel()
		}
		if err == nil {
			cl.hint = tn.id
			return nil
		}
		var nl *NotLeaderError
		switch {
		case errors.As(err, &nl):
			cl.hint = nl.LeaderID
		case errors.Is(err, ErrUnavailable), errors.Is(err, ErrIndeterminate), errors.Is(err, ErrClosed):
			cl.hint = ""
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("client %d gave up: %w", cl.id, err)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// run issues calls until stop closes, pausing think between them.
func (cl *client) run(ctx context.Context, h *history, stop <-chan struct{}, think time.Duration, orders bool) error {
	caller := fmt.Sprintf("client-%d", cl.id)
	for k := 0; ; k++ {
		select {
		case <-stop:
			return nil
		case <-time.After(think):
		}
		if err := cl.op(ctx, h, caller, k, orders); err != nil {
			return err
		}
	}
}

// op makes one call, giving up if the cluster cannot complete it in 30s.
func (cl *client) op(ctx context.Context, h *history, caller string, k int, orders bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	count := uint64(1 + cl.rng.IntN(3))
	call := h.now()
	if !orders || cl.rng.IntN(2) == 0 {
		var res TimestampResult
		err := cl.call(ctx, func(ctx context.Context, n *Node) (err error) {
			res, err = n.GetTimestamp(ctx, caller, GetTimestampRequest{Count: uint32(count)})
			return err
		})
		if err != nil {
			return err
		}
		if !res.Consensus || res.Count != uint32(count) {
			return fmt.Errorf("timestamp result %+v", res)
		}
		h.add(cl.id, opInput{count: count}, opOutput{firstTS: res.Logical}, call, nil)
		return nil
	}
	req := OrderEventsRequest{IdempotencyKey: fmt.Sprintf("batch-%d", k)}
	for j := range count {
		req.Events = append(req.Events, Event{ID: fmt.Sprintf("c%d-%d-%d", cl.id, k, j), Payload: []byte{byte(k), byte(j)}})
	}
	var res OrderEventsResponse
	err := cl.call(ctx, func(ctx context.Context, n *Node) (err error) {
		res, err = n.OrderEvents(ctx, caller, req)
		return err
	})
	if err != nil {
		return err
	}
	h.add(cl.id, opInput{order: true, count: count},
		opOutput{firstSeq: res.Events[0].Sequence, firstTS: res.Events[0].Timestamp.Logical}, call, res.Events)
	return nil
}

// runClients runs k clients until stop closes and reports their errors.
func runClients(t testing.TB, c *cluster, h *history, k int, think time.Duration, orders bool) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, k)
	for i := range k {
		cl := newClient(c, i, nil)
		wg.Go(func() { errs[i] = cl.run(ctx, h, done, think, orders) })
	}
	return func() {
		close(done)
		wg.Wait()
		cancel()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
}

// check verifies the history and what the nodes stored.
func (h *history) check(t testing.TB, c *cluster) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.ops) == 0 {
		t.Fatal("empty history")
	}
	res, info := porcupine.CheckOperationsVerbose(oracleModel, h.ops, 30*time.Second)
	if res != porcupine.Ok {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("%s-history.html", t.Name()))
		if err := porcupine.VisualizePath(oracleModel, info, path); err == nil {
			t.Logf("visualization: %s", path)
		}
		t.Fatalf("the history of %d calls is not linearizable: %s", len(h.ops), res)
	}
	h.checkRealTime(t)
	if c != nil {
		h.checkStored(t, c)
	}
	t.Logf("%d calls, %d events: linearizable", len(h.ops), len(h.acked))
}

// checkRealTime asserts directly that a call that started after another
// returned got later timestamps, and that no timestamp was issued twice.
func (h *history) checkRealTime(t testing.TB) {
	t.Helper()
	byReturn := slices.Clone(h.ops)
	slices.SortFunc(byReturn, func(a, b porcupine.Operation) int { return int(a.Return - b.Return) })
	byCall := slices.Clone(h.ops)
	slices.SortFunc(byCall, func(a, b porcupine.Operation) int { return int(a.Call - b.Call) })
	var maxDone uint64
	i := 0
	for _, op := range byCall {
		for ; i < len(byReturn) && byReturn[i].Return < op.Call; i++ {
			o := byReturn[i]
			maxDone = max(maxDone, o.Output.(opOutput).firstTS+o.Input.(opInput).count-1)
		}
		if first := op.Output.(opOutput).firstTS; first <= maxDone {
			t.Fatalf("a call starting at %v got timestamp %d, not above %d issued before it started", time.Duration(op.Call), first, maxDone)
		}
	}
	type span struct{ first, last uint64 }
	var spans []span
	for _, op := range h.ops {
		first := op.Output.(opOutput).firstTS
		spans = append(spans, span{first, first + op.Input.(opInput).count - 1})
	}
	slices.SortFunc(spans, func(a, b span) int { return cmpUint(a.first, b.first) })
	for i := 1; i < len(spans); i++ {
		if spans[i].first <= spans[i-1].last {
			t.Fatalf("timestamps %d..%d and %d..%d overlap", spans[i-1].first, spans[i-1].last, spans[i].first, spans[i].last)
		}
	}
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkStored asserts that every live node stores the same events, in
// sequence order 1..N with increasing timestamps, and that they are
// exactly the acknowledged ones, where they were acknowledged.
func (h *history) checkStored(t testing.TB, c *cluster) {
	t.Helper()
	c.waitApplied()
	var ref []OrderedEvent
	var refNode string
	for _, tn := range c.live() {
		got := readAll(t, tn.n)
		if ref == nil {
			ref, refNode = got, tn.id
			continue
		}
		if len(got) != len(ref) {
			t.Fatalf("%s stores %d events, %s %d", tn.id, len(got), refNode, len(ref))
		}
		for i := range got {
			if got[i].Sequence != ref[i].Sequence || got[i].ID != ref[i].ID || got[i].Timestamp != ref[i].Timestamp {
				t.Fatalf("event %d differs: %s has %+v, %s has %+v", i, tn.id, got[i], refNode, ref[i])
			}
		}
	}
	if len(ref) != len(h.acked) {
		t.Fatalf("%d events stored, %d acknowledged", len(ref), len(h.acked))
	}
	for i, e := range ref {
		if e.Sequence != uint64(i+1) {
			t.Fatalf("sequence %d at position %d", e.Sequence, i)
		}
		if i > 0 && e.Timestamp.Logical <= ref[i-1].Timestamp.Logical {
			t.Fatalf("event %d's timestamp %v does not follow %v", e.Sequence, e.Timestamp, ref[i-1].Timestamp)
		}
		a, ok := h.acked[e.ID]
		if !ok {
			t.Fatalf("event %s stored but never acknowledged", e.ID)
		}
		if a.Sequence != e.Sequence || a.Timestamp != e.Timestamp {
			t.Fatalf("event %s acknowledged as %+v, stored as %+v", e.ID, a, e)
		}
	}
}
