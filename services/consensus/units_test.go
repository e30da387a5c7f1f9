package consensus

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creto-systems/creto/internal/kv"
)

func TestHLCIsMonotonicAndObserves(t *testing.T) {
	wall := time.UnixMilli(1_800_000_000_000)
	var mu sync.Mutex
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return wall
	}
	c := newHLC("n1", clock)
	a := c.Now()
	if a.Logical>>logicalBits != uint64(wall.UnixMilli()) || a.Physical != wall.UnixNano() || a.NodeID != "n1" {
		t.Fatalf("first timestamp %+v", a)
	}
	b := c.Now()
	if b.Logical != a.Logical+1 || b.Physical != a.Physical {
		t.Fatalf("same millisecond: %+v after %+v", b, a)
	}
	// The wall clock steps back an hour: timestamps still increase.
	mu.Lock()
	wall = wall.Add(-time.Hour)
	mu.Unlock()
	if d := c.Now(); d.Logical != b.Logical+1 {
		t.Fatalf("after the clock went back: %+v", d)
	}
	// A timestamp seen from the cluster lifts the clock above it.
	far := makeTimestamp(uint64(wall.Add(2*time.Hour).UnixMilli())<<logicalBits+7, "leader")
	c.Observe(far)
	if e := c.Now(); e.Logical != far.Logical+1 {
		t.Fatalf("after observing %v: %v", far, e)
	}
	c.Observe(a) // an older one changes nothing
	if f := c.Now(); f.Logical != far.Logical+2 {
		t.Fatalf("after observing an older timestamp: %v", f)
	}
	// Concurrent callers never get the same value.
	seen := sync.Map{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if _, dup := seen.LoadOrStore(c.Now().Logical, true); dup {
					t.Error("duplicate local timestamp")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestTimestampFormatting(t *testing.T) {
	ts := makeTimestamp(uint64(time.Date(2031, 3, 14, 9, 26, 53, 589e6, time.UTC).UnixMilli())<<logicalBits+42, "n1")
	if got, want := ts.String(), "2031-03-14T09:26:53.589Z+42@n1"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	later := makeTimestamp(ts.Logical+1, "n2")
	if ts.Compare(later) != -1 || later.Compare(ts) != 1 || ts.Compare(ts) != 0 {
		t.Fatal("Compare")
	}
	if !ts.Time().Equal(time.Date(2031, 3, 14, 9, 26, 53, 589e6, time.UTC)) {
		t.Fatalf("Time() = %v", ts.Time())
	}
}

func TestConfigRejectsImpossibleValues(t *testing.T) {
	if _, err := (Config{}).resolve(); err != nil {
		t.Fatalf("the zero config: %v", err)
	}
	h := &counter{}
	bad := []func(*Config){
		func(c *Config) { c.NodeID = "bad\nid" },
		func(c *Config) { c.BindAddress = "nowhere" },
		func(c *Config) { c.AdvertiseAddress = "10.0.0.1:0" },
		func(c *Config) { c.HeartbeatTimeout = time.Millisecond },
		func(c *Config) { c.ElectionTimeout = 100 * time.Millisecond; c.HeartbeatTimeout = time.Second },
		func(c *Config) { c.LeaderLeaseTimeout = 2 * time.Second },
		func(c *Config) { c.TSOWindow = 60 * time.Millisecond },
		func(c *Config) { c.MaxTimestampBatch = 1 << 20 },
		func(c *Config) { c.MaxCommandBytes = 1 << 27 },
		func(c *Config) { c.MaxBatchEvents = -1 },
		func(c *Config) { c.MaxEventBytes = 8 << 20 },
		func(c *Config) { c.IdempotencyWindow = time.Millisecond },
		func(c *Config) { c.SnapshotsRetained = -1 },
		func(c *Config) { c.LogSegmentBytes = 1024 },
		func(c *Config) { c.Handlers = map[string]Handler{"Bad Name": h} },
		func(c *Config) { c.Handlers = map[string]Handler{"consensus.mine": h} },
		func(c *Config) { c.Handlers = map[string]Handler{"vault.uses": nil} },
	}
	for i, f := range bad {
		var c Config
		f(&c)
		if _, err := c.resolve(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("case %d: %v", i, err)
		}
	}
}

func TestDataDirBelongsToOneNode(t *testing.T) {
	tn := newTestNode(t, "n1", nil)
	tn.kill()
	tn.cfg.NodeID = "n2"
	s, err := kv.Open(filepath.Join(tn.dir, "kv"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(context.Background(), tn.dir, s, tn.cfg); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), `"n1"`) {
		t.Fatalf("opening n1's data as n2: %v", err)
	}
	cfg := testConfig(t, "n3")
	cfg.BindAddress = "0.0.0.0:0"
	if _, err := Open(context.Background(), t.TempDir(), s, cfg); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("a wildcard bind without an advertised address: %v", err)
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	in := envelope{typ: "vault.uses", caller: "agent-7", idemKey: "k", fingerprint: bytes.Repeat([]byte{1}, 32), payload: []byte("payload")}
	b := in.encode()
	if len(b) != in.encodedLen() {
		t.Fatalf("encodedLen %d, encoded %d", in.encodedLen(), len(b))
	}
	out, err := decodeEnvelope(b)
	if err != nil || out.typ != in.typ || out.caller != in.caller || out.idemKey != in.idemKey ||
		!bytes.Equal(out.fingerprint, in.fingerprint) || !bytes.Equal(out.payload, in.payload) {
		t.Fatalf("%+v, %v", out, err)
	}
	for _, bad := range [][]byte{nil, {2}, b[:3], append([]byte{1, 200}, b[2:]...),
		envelope{typ: "t", caller: "c", idemKey: "k"}.encode()} {
		if _, err := decodeEnvelope(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%x: %v", bad, err)
		}
	}
}

// Retention drops the oldest events on every node alike; reads page
// across the store's 256-event blocks.
func TestEventRetentionAndPaging(t *testing.T) {
	ctx := context.Background()
	tn := newTestNode(t, "solo", func(c *Config) { c.EventRetention = 300 })
	waitServing(t, tn)
	for b := range 12 {
		var req OrderEventsRequest
		for i := range 50 {
			req.Events = append(req.Events, Event{ID: "e" + string(rune('a'+b)) + strings.Repeat("x", i%3), Payload: []byte{byte(b), byte(i)}})
		}
		if _, err := tn.n.OrderEvents(ctx, "agent", req); err != nil {
			t.Fatal(err)
		}
	}
	r, err := tn.n.ReadEvents(ctx, "agent", ReadEventsRequest{From: 2, Limit: 5})
	if err != nil || r.Oldest != 301 || r.Last != 600 || len(r.Events) != 5 || r.Events[0].Sequence != 301 || r.Next != 306 {
		t.Fatalf("read from a dropped event: %+v %v", r, err)
	}
	r, err = tn.n.ReadEvents(ctx, "agent", ReadEventsRequest{From: 510, Limit: 10})
	if err != nil || len(r.Events) != 10 || r.Events[0].Sequence != 510 || r.Events[9].Sequence != 519 || r.Next != 520 {
		t.Fatalf("read across a block boundary: %+v %v", r, err)
	}
	if e := r.Events[0]; e.Caller != "agent" || !bytes.Equal(e.Payload, []byte{10, 9}) || e.Timestamp.NodeID != "solo" {
		t.Fatalf("event %+v", e)
	}
	all := readAll(t, tn.n)
	if len(all) != 300 || all[0].Sequence != 301 || all[299].Sequence != 600 {
		t.Fatalf("%d events kept, %d..%d", len(all), all[0].Sequence, all[len(all)-1].Sequence)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Sequence != all[i-1].Sequence+1 || all[i].Timestamp.Logical <= all[i-1].Timestamp.Logical {
			t.Fatalf("order broken at %d", all[i].Sequence)
		}
	}
	r, err = tn.n.ReadEvents(ctx, "agent", ReadEventsRequest{From: 601})
	if err != nil || len(r.Events) != 0 || r.Next != 601 {
		t.Fatalf("read past the end: %+v %v", r, err)
	}
	// One batch across several blocks retires every earlier one (whole
	// batches only), and reads start inside it.
	big := OrderEventsRequest{Events: make([]Event, 700)}
	for i := range big.Events {
		big.Events[i] = Event{ID: "big-" + strconv.Itoa(i)}
	}
	if _, err := tn.n.OrderEvents(ctx, "agent", big); err != nil {
		t.Fatal(err)
	}
	r, err = tn.n.ReadEvents(ctx, "agent", ReadEventsRequest{From: 1000, Limit: 3})
	if err != nil || r.Oldest != 601 || r.Last != 1300 || len(r.Events) != 3 || r.Events[0].ID != "big-399" || r.Events[2].Sequence != 1002 {
		t.Fatalf("read inside a large batch: %+v %v", r, err)
	}
	if all := readAll(t, tn.n); len(all) != 700 || all[0].Sequence != 601 {
		t.Fatalf("after retiring: %d events from %d", len(all), all[0].Sequence)
	}
}

func TestAdminList(t *testing.T) {
	ctx := context.Background()
	a := AdminList("ops")
	if a.Authorize(ctx, "agent", OpTimestamp, "") != nil || a.Authorize(ctx, "ops", OpMembership, "n2") != nil {
		t.Fatal("allowed calls refused")
	}
	if err := a.Authorize(ctx, "agent", OpMembership, "n2"); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("a non-admin: %v", err)
	}
	if err := AdminList().Authorize(ctx, "", OpMembership, ""); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("no admins: %v", err)
	}
	if OpMembership.String() != "membership" || Operation(99).String() != "operation(99)" {
		t.Fatal("Operation.String")
	}
}
