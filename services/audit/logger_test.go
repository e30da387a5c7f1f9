package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gate puts a switchable outage (and a hold) in front of the real log:
// fault injection for the Logger, which is what is under test.
type gate struct {
	svc  *Service
	down atomic.Bool
	mu   sync.RWMutex // held for writing = appends wait
}

func (g *gate) Append(ctx context.Context, recs []Record) (uint64, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.down.Load() {
		return 0, fmt.Errorf("injected outage: %w", ErrUnavailable)
	}
	return g.svc.Append(ctx, recs)
}

type loggerEnv struct {
	*logEnv
	gate  *gate
	spool string
	l     *Logger
}

func newLoggerEnv(t *testing.T, cfg LoggerConfig) *loggerEnv {
	t.Helper()
	e := &loggerEnv{logEnv: startEnv(t, Config{Authorizer: auditor}, true), spool: filepath.Join(t.TempDir(), "audit.spool")}
	e.gate = &gate{svc: e.svc}
	e.startLogger(cfg)
	return e
}

func (e *loggerEnv) startLogger(cfg LoggerConfig) {
	e.t.Helper()
	cfg.SpoolPath = e.spool
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l, err := NewLogger(e.gate, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.l = l
}

func flush(t *testing.T, l *Logger) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func ev(class Class, who, what string) Event {
	return Event{Class: class, Record: Record{Who: who, What: what, Source: "test"}}
}

// logged returns the What of every record in the log, in log order.
func (e *loggerEnv) logged() []string {
	e.t.Helper()
	var out []string
	for _, r := range queryAll(e.t.(*testing.T), e.svc, "auditor", QueryRequest{Limit: 1000}) {
		out = append(out, r.What)
	}
	return out
}

func TestLoggerDeliversInOrder(t *testing.T) {
	e := newLoggerEnv(t, LoggerConfig{})
	const workers, each = 4, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := e.l.Emit(context.Background(), ev(Ordinary, fmt.Sprintf("w%d", w), fmt.Sprint(i))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	flush(t, e.l)
	st := e.l.Stats()
	if st.Emitted != workers*each || st.Delivered != workers*each || st.Dropped != 0 || e.svc.Size() != workers*each {
		t.Fatalf("stats %+v, log size %d", st, e.svc.Size())
	}
	for w := range workers {
		who := fmt.Sprintf("w%d", w)
		rs := queryAll(t, e.svc, "auditor", QueryRequest{Who: who, Limit: 1000})
		for i, r := range rs {
			if r.What != fmt.Sprint(i) {
				t.Fatalf("%s: event %d logged as %q: out of order", who, i, r.What)
			}
		}
	}
	if err := e.l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.l.Emit(context.Background(), ev(Ordinary, "a", "b")); !errors.Is(err, ErrClosed) {
		t.Fatalf("emit after close: %v", err)
	}
}

// TestLoggerNeverBlocksAndDropsOldest holds the log while far more events
// than the buffer holds are emitted: every Emit returns at once, the
// oldest ordinary events are dropped and counted, and the newest are
// delivered when the log lets go.
func TestLoggerNeverBlocksAndDropsOldest(t *testing.T) {
	e := newLoggerEnv(t, LoggerConfig{BufferSize: 100, BatchSize: 10})
	e.gate.mu.Lock() // appends now wait
	const total = 5000
	start := time.Now()
	for i := range total {
		if err := e.l.Emit(context.Background(), ev(Ordinary, "a", fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("%d emits took %v with the log held: Emit blocked", total, d)
	}
	st := e.l.Stats()
	// The writer may hold one batch (at most 10) in flight.
	if st.Buffered != 100 || st.Dropped < total-110 || st.Dropped > total-100 {
		t.Fatalf("stats with the log held: %+v", st)
	}
	e.gate.mu.Unlock()
	flush(t, e.l)
	got := e.logged()
	if uint64(len(got))+e.l.Dropped() != total {
		t.Fatalf("%d logged + %d dropped != %d emitted", len(got), e.l.Dropped(), total)
	}
	// The last 100 emitted are the last 100 logged, in order.
	for i := range 100 {
		if want := fmt.Sprint(total - 100 + i); got[len(got)-100+i] != want {
			t.Fatalf("logged %v, want the newest events", got[len(got)-100:])
		}
	}
}

// TestLoggerNeverDropsCritical: with the buffer full and the log held,
// critical events go to the spool instead of being dropped, and all of
// them reach the log, in emission order.
func TestLoggerNeverDropsCritical(t *testing.T) {
	e := newLoggerEnv(t, LoggerConfig{BufferSize: 20, BatchSize: 5})
	e.gate.mu.Lock()
	var critical []string
	for i := range 400 {
		class := Ordinary
		if i%7 == 0 {
			class = Critical
			critical = append(critical, fmt.Sprint(i))
		}
		if err := e.l.Emit(context.Background(), ev(class, "v", fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if st := e.l.Stats(); st.Spooled == 0 || st.Dropped == 0 {
		t.Fatalf("stats %+v: expected spooled critical and dropped ordinary events", st)
	}
	e.gate.mu.Unlock()
	flush(t, e.l)
	var gotCritical []string
	prev := -1
	for _, w := range e.logged() {
		var i int
		fmt.Sscan(w, &i)
		if i <= prev {
			t.Fatalf("event %d logged after %d: out of order", i, prev)
		}
		prev = i
		if i%7 == 0 {
			gotCritical = append(gotCritical, w)
		}
	}
	if fmt.Sprint(gotCritical) != fmt.Sprint(critical) {
		t.Fatalf("critical events logged %v, want %v", gotCritical, critical)
	}
	st := e.l.Stats()
	if st.Delivered+st.Dropped != 400 || st.SpoolPending != 0 {
		t.Fatalf("stats %+v", st)
	}
	if fi, err := os.Stat(e.spool); err != nil || fi.Size() != 0 {
		t.Fatalf("spool not truncated after its events were committed: %v %v", fi.Size(), err)
	}
}

// TestLoggerBuffersThroughOutage: while the log fails, events wait (the
// critical ones on disk) and are replayed in order once it is back.
func TestLoggerBuffersThroughOutage(t *testing.T) {
	e := newLoggerEnv(t, LoggerConfig{RetryInterval: 5 * time.Millisecond, MaxRetryInterval: 20 * time.Millisecond})
	emit := func(from, to int) {
		for i := from; i < to; i++ {
			class := Ordinary
			if i%3 == 0 {
				class = Critical
			}
			if err := e.l.Emit(context.Background(), ev(class, "n", fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	emit(0, 10)
	flush(t, e.l)
	e.gate.down.Store(true)
	emit(10, 60)
	deadline := time.Now().Add(10 * time.Second)
	for !e.l.Stats().Unavailable {
		if time.Now().After(deadline) {
			t.Fatal("the logger never noticed the outage")
		}
		time.Sleep(time.Millisecond)
	}
	emit(60, 100)
	if st := e.l.Stats(); st.SpoolPending < 30 {
		t.Fatalf("during the outage %d critical events are spooled, want every one emitted since (≥ 30): %+v", st.SpoolPending, st)
	}
	e.gate.down.Store(false)
	flush(t, e.l)
	got := e.logged()
	if len(got) != 100 {
		t.Fatalf("%d logged", len(got))
	}
	for i, w := range got {
		if w != fmt.Sprint(i) {
			t.Fatalf("log order %v", got)
		}
	}
	if e.l.Stats().Unavailable {
		t.Fatal("still unavailable")
	}
}

// TestSpoolSurvivesRestart: critical events spooled during an outage are
// replayed by the next process, a torn frame at the spool's end is cut,
// and the spool is emptied once they are committed.
func TestSpoolSurvivesRestart(t *testing.T) {
	e := newLoggerEnv(t, LoggerConfig{RetryInterval: 5 * time.Millisecond})
	e.gate.down.Store(true)
	if err := e.l.Emit(context.Background(), ev(Critical, "vault", "prime")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !e.l.Stats().Unavailable {
		if time.Now().After(deadline) {
			t.Fatal("outage not noticed")
		}
		time.Sleep(time.Millisecond)
	}
	for i := range 5 {
		if err := e.l.Emit(context.Background(), ev(Critical, "vault", fmt.Sprint("secret_read-", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.l.Emit(context.Background(), ev(Ordinary, "a", "lost")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.l.Close(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("close during an outage should report the dropped ordinary event: %v", err)
	}
	// A crash mid-append left half a frame.
	f, err := os.OpenFile(e.spool, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0, 0, 1, 0, 7, 7})
	f.Close()

	e.gate.down.Store(false)
	e.startLogger(LoggerConfig{})
	flush(t, e.l)
	got := e.logged()
	want := []string{"prime", "secret_read-0", "secret_read-1", "secret_read-2", "secret_read-3", "secret_read-4"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replayed %v, want %v", got, want)
	}
	if fi, _ := os.Stat(e.spool); fi.Size() != 0 {
		t.Fatalf("spool is %d bytes after replay", fi.Size())
	}
}

func TestLoggerInvalidEvents(t *testing.T) {
	e := newLoggerEnv(t, LoggerConfig{RetryInterval: 5 * time.Millisecond})
	for _, x := range []Event{ev(Ordinary, "a", "1"), ev(Ordinary, "", "no who"), ev(Ordinary, "a", "2")} {
		if err := e.l.Emit(context.Background(), x); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, e.l)
	if got := e.logged(); fmt.Sprint(got) != "[1 2]" || e.l.Stats().Invalid != 1 {
		t.Fatalf("logged %v, stats %+v", got, e.l.Stats())
	}
	// The log refusing one record (post-dated past its skew) does not
	// hold back the others in its batch.
	future := ev(Ordinary, "a", "future")
	future.Record.Timestamp = time.Now().Add(time.Hour)
	e.gate.mu.Lock()
	for _, x := range []Event{ev(Ordinary, "a", "3"), future, ev(Ordinary, "a", "4")} {
		e.l.Emit(context.Background(), x)
	}
	e.gate.mu.Unlock()
	flush(t, e.l)
	if got := e.logged(); fmt.Sprint(got) != "[1 2 3 4]" || e.l.Stats().Invalid != 2 {
		t.Fatalf("logged %v, stats %+v", got, e.l.Stats())
	}
	e.gate.down.Store(true)
	e.l.Emit(context.Background(), ev(Ordinary, "a", "x")) // makes the logger notice
	for !e.l.Stats().Unavailable {
		time.Sleep(time.Millisecond)
	}
	if err := e.l.Emit(context.Background(), ev(Critical, "", "bad")); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("an invalid critical event during an outage: %v", err)
	}
	if err := e.l.Emit(context.Background(), Event{Class: 9}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("unknown class: %v", err)
	}
	if _, err := NewLogger(e.gate, LoggerConfig{}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("no spool path: %v", err)
	}
}

// TestDeferredEventsBuiltByTheWriter: an event with Build is made into a
// record on the Logger's goroutine, stamped with the time of Emit, and a
// dropped one is never built.
func TestDeferredEventsBuiltByTheWriter(t *testing.T) {
	e := newLoggerEnv(t, LoggerConfig{BufferSize: 2, BatchSize: 1})
	var built atomic.Int32
	mk := func(what string) Event {
		return Event{Build: func() Record {
			built.Add(1)
			return Record{Who: "a", What: what}
		}}
	}
	before := time.Now()
	e.gate.mu.Lock()
	for _, w := range []string{"1", "2", "3", "4", "5"} {
		if err := e.l.Emit(context.Background(), mk(w)); err != nil {
			t.Fatal(err)
		}
	}
	e.gate.mu.Unlock()
	flush(t, e.l)
	rs := queryAll(t, e.svc, "auditor", QueryRequest{})
	st := e.l.Stats()
	if int(st.Delivered) != len(rs) || st.Delivered+st.Dropped != 5 || int(built.Load()) != len(rs) {
		t.Fatalf("%d logged, stats %+v, %d built: a dropped event was built, or a built one lost", len(rs), st, built.Load())
	}
	for _, r := range rs {
		if r.Timestamp.Before(before) || r.Timestamp.After(r.LoggedAt) {
			t.Fatalf("timestamp %v not the time of Emit (logged %v)", r.Timestamp, r.LoggedAt)
		}
	}
}
