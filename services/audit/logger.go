package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Class says what a Logger may do with an event it cannot keep in memory.
type Class uint8

// Event classes.
const (
	// Ordinary events (authorization decisions, extension failures) are
	// dropped oldest first when the buffer is full, and counted (seed
	// §13.1).
	Ordinary Class = iota
	// Critical events (vault accesses, NHI changes) are never dropped:
	// whatever cannot stay in memory, or must wait for the log to come
	// back, goes to the durable spool.
	Critical
)

// Event is a record to log asynchronously, with its class.
type Event struct {
	Class  Class
	Record Record
	// Build, when set, makes the record on the Logger's goroutine rather
	// than the emitter's: an emitter on a hot path (the engine's
	// observer) then pays only for capturing what it saw, and an event
	// dropped under pressure is never built at all. Build must be cheap,
	// must not block, and must use nothing the emitter may change after
	// Emit; it may run more than once. A zero Timestamp in what it
	// returns is the time of Emit.
	Build func() Record
}

// resolve replaces a deferred event's record with the one Build makes.
func (e *Event) resolve() {
	if e.Build == nil {
		return
	}
	r := e.Build()
	if r.Timestamp.IsZero() {
		r.Timestamp = e.Record.Timestamp
	}
	e.Record, e.Build = r, nil
}

// Sink is where a Logger delivers records: *Service, or a client of a
// remote audit service. Append must be atomic (all or none) and return
// once the records are durable.
type Sink interface {
	Append(ctx context.Context, recs []Record) (uint64, error)
}

// LoggerConfig is the [audit.logger] section of the node's configuration.
// A zero field takes its default, except SpoolPath, which is required:
// without a spool, critical events could only be dropped or block.
type LoggerConfig struct {
	// SpoolPath is the spool file for critical events (created 0600).
	SpoolPath string `toml:"spool_path"`
	// BufferSize is how many events wait in memory for the log.
	BufferSize int `toml:"buffer_size"`
	// BatchSize caps the records of one Append; keep it within the
	// service's max_batch.
	BatchSize int `toml:"batch_size"`
	// RetryInterval is the first wait before retrying an unavailable log;
	// it doubles up to MaxRetryInterval.
	RetryInterval    time.Duration `toml:"retry_interval"`
	MaxRetryInterval time.Duration `toml:"max_retry_interval"`
	// AppendTimeout bounds one Append, so a hung remote log cannot hold
	// the writer forever.
	AppendTimeout time.Duration `toml:"append_timeout"`
	// Logger receives the Logger's own diagnostics; nil means
	// slog.Default().
	Logger *slog.Logger `toml:"-"`
}

// DefaultLoggerConfig returns the defaults every zero field takes.
func DefaultLoggerConfig() LoggerConfig {
	return LoggerConfig{
		BufferSize:       16384,
		BatchSize:        1000,
		RetryInterval:    100 * time.Millisecond,
		MaxRetryInterval: 5 * time.Second,
		AppendTimeout:    10 * time.Second,
	}
}

func (c LoggerConfig) resolve() (LoggerConfig, error) {
	d := DefaultLoggerConfig()
	if c.BufferSize == 0 {
		c.BufferSize = d.BufferSize
	}
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	for _, f := range []struct{ v, def *time.Duration }{
		{&c.RetryInterval, &d.RetryInterval},
		{&c.MaxRetryInterval, &d.MaxRetryInterval},
		{&c.AppendTimeout, &d.AppendTimeout},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.SpoolPath == "":
		return c, fmt.Errorf("audit: logger config: spool_path is required: %w", ErrInvalidArgument)
	case c.BufferSize < 1 || c.BatchSize < 1:
		return c, fmt.Errorf("audit: logger config: buffer and batch sizes must be positive: %w", ErrInvalidArgument)
	case c.RetryInterval < 0 || c.MaxRetryInterval < c.RetryInterval || c.AppendTimeout < 0:
		return c, fmt.Errorf("audit: logger config: intervals must satisfy 0 < retry <= max retry, timeout > 0: %w", ErrInvalidArgument)
	}
	return c, nil
}

// Logger is the asynchronous audit front (seed §9.3). Emit never blocks:
// it puts the event in a bounded in-memory buffer, and one goroutine
// delivers the buffer to the sink in batches, in emission order. While
// the sink fails, events wait and are delivered, still in order, once it
// is back. When the buffer is full the oldest event leaves it: an
// ordinary one is dropped and counted, a critical one goes to the spool.
// While the sink is down every critical event goes to the spool, so a
// crash during an outage loses none. docs/audit.md describes the
// guarantees. A Logger is safe for concurrent use.
type Logger struct {
	cfg   LoggerConfig
	sink  Sink
	spool *spool

	mu     sync.Mutex
	ring   []spooled // the buffer, oldest at head
	head   int
	n      int
	seq    uint64
	down   bool // the sink failed and has not succeeded since
	busy   bool // a batch is with the sink
	closed bool

	wake chan struct{}
	stop chan struct{}
	done chan struct{}

	emitted, delivered, dropped, spooled, invalid atomic.Uint64
}

// NewLogger starts a Logger delivering to sink. Critical events a
// previous process left in the spool are delivered first.
func NewLogger(sink Sink, cfg LoggerConfig) (*Logger, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	l := &Logger{cfg: cfg, sink: sink, ring: make([]spooled, cfg.BufferSize),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	l.spool, err = openSpool(cfg.SpoolPath, cfg.Logger, l.poke)
	if err != nil {
		return nil, opError("new logger", "", err)
	}
	pending, _ := l.spool.counts()
	l.seq = uint64(pending)
	go l.run()
	l.poke()
	return l, nil
}

func (l *Logger) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Emit hands an event to the logger and returns at once; it never waits
// for the log or a disk. A zero Timestamp is set to now: the event's
// time is when it happened, not when the log commits it. The logger
// keeps the record: do not modify it afterwards (or let Build make it). Emit fails only for an
// unknown class, after Close, and for a critical event that must go to
// the spool but is not a valid record (ordinary events are validated
// when delivered, off the emitter's path; invalid ones are counted in
// LoggerStats.Invalid).
func (l *Logger) Emit(_ context.Context, e Event) error {
	if e.Class > Critical {
		return opError("emit", "", detail(ErrInvalidArgument, "event class %d", e.Class))
	}
	if e.Record.Timestamp.IsZero() {
		e.Record.Timestamp = time.Now()
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return opError("emit", "", ErrClosed)
	}
	ev := spooled{seq: l.seq, ev: e}
	l.seq++
	l.emitted.Add(1)
	var err error
	if l.down && e.Class == Critical {
		err = l.toSpool(ev)
	} else {
		if l.n == len(l.ring) {
			l.evict()
		}
		l.ring[(l.head+l.n)%len(l.ring)] = ev
		l.n++
	}
	l.mu.Unlock()
	l.poke()
	if err != nil {
		return opError("emit", "", err)
	}
	return nil
}

// toSpool validates and encodes an event and queues it for the spool.
// The caller holds mu.
func (l *Logger) toSpool(ev spooled) error {
	ev.ev.resolve()
	body, err := ev.ev.Record.validate()
	if err != nil {
		l.rejected(&ev.ev.Record, err)
		return err
	}
	ev.tail = appendTail(body, ev.ev.Record.Signature)
	l.spool.add(ev)
	l.spooled.Add(1)
	return nil
}

// evict makes room by taking the oldest event out of the buffer: an
// ordinary one is dropped, a critical one spooled. The caller holds mu.
func (l *Logger) evict() {
	old := l.ring[l.head]
	l.ring[l.head] = spooled{}
	l.head = (l.head + 1) % len(l.ring)
	l.n--
	if old.ev.Class == Critical {
		_ = l.toSpool(old) // an invalid event is counted and logged there
		return
	}
	l.dropped.Add(1)
}

// run is the writer goroutine.
func (l *Logger) run() {
	defer close(l.done)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	backoff := l.cfg.RetryInterval
	for {
		select {
		case <-l.wake:
		case <-retry.C:
		case <-l.stop:
			return
		}
		if l.deliver(context.Background()) {
			backoff = l.cfg.RetryInterval
			continue
		}
		retry.Reset(backoff)
		backoff = min(2*backoff, l.cfg.MaxRetryInterval)
	}
}

// batchEvent is an event taken for delivery, remembering whether it came
// from the spool (to be committed there) or the buffer (to be put back
// if the sink fails).
type batchEvent struct {
	spooled
	inSpool bool
}

// deliver sends batches until nothing is deliverable; it reports false if
// the sink failed.
func (l *Logger) deliver(ctx context.Context) bool {
	for {
		batch := l.take()
		if len(batch) == 0 {
			return true
		}
		for i := range batch {
			batch[i].ev.resolve()
		}
		resolved, err := l.send(ctx, batch)
		var done []uint64
		for _, e := range batch[:resolved] {
			if e.inSpool {
				done = append(done, e.seq)
			}
		}
		l.spool.committed(done)
		l.mu.Lock()
		l.busy = false
		if err != nil {
			var back []spooled
			for _, e := range batch[resolved:] {
				if !e.inSpool {
					back = append(back, e.spooled)
				}
			}
			l.putBack(back)
			if !l.down {
				l.cfg.Logger.Warn("audit: the log is unavailable; buffering, and spooling critical events", "error", err)
				l.goDown()
			}
			l.mu.Unlock()
			return false
		}
		if l.down {
			l.cfg.Logger.Info("audit: the log is back; replaying")
			l.down = false
		}
		l.mu.Unlock()
	}
}

// take removes the next batch from the buffer and the spool, merged in
// emission order, never passing an event still on its way into the spool.
func (l *Logger) take() []batchEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	limit := l.spool.minQueued()
	durable := l.spool.peek(l.cfg.BatchSize)
	var batch []batchEvent
	fromRing, fromSpool := 0, 0
	for len(batch) < l.cfg.BatchSize {
		var r *spooled
		if fromRing < l.n {
			r = &l.ring[(l.head+fromRing)%len(l.ring)]
			if r.seq >= limit {
				r = nil
			}
		}
		if fromSpool < len(durable) && (r == nil || durable[fromSpool].seq < r.seq) {
			batch = append(batch, batchEvent{durable[fromSpool], true})
			fromSpool++
		} else if r != nil {
			batch = append(batch, batchEvent{*r, false})
			fromRing++
		} else {
			break
		}
	}
	l.pop(fromRing)
	l.busy = len(batch) > 0
	return batch
}

// pop removes k events from the head of the buffer. The caller holds mu.
func (l *Logger) pop(k int) {
	for range k {
		l.ring[l.head] = spooled{}
		l.head = (l.head + 1) % len(l.ring)
		l.n--
	}
}

// send delivers a batch in one Append, leaving out (and counting) events
// that are not valid records; when the sink refuses the batch as invalid
// it delivers the events one by one to find the culprits. It returns how
// many events, from the start of the batch, are resolved (delivered or
// given up as invalid) and the sink's error if it failed.
func (l *Logger) send(ctx context.Context, batch []batchEvent) (int, error) {
	recs := make([]Record, 0, len(batch))
	for _, e := range batch {
		if _, err := e.ev.Record.validate(); err != nil {
			l.rejected(&e.ev.Record, err)
			continue
		}
		recs = append(recs, e.ev.Record)
	}
	err := l.append(ctx, recs)
	if err == nil {
		l.delivered.Add(uint64(len(recs)))
		return len(batch), nil
	}
	if !errors.Is(err, ErrInvalidArgument) && !errors.Is(err, ErrTooLarge) {
		return 0, err
	}
	for k, e := range batch {
		if _, verr := e.ev.Record.validate(); verr != nil {
			continue // counted above
		}
		err := l.append(ctx, []Record{e.ev.Record})
		switch {
		case err == nil:
			l.delivered.Add(1)
		case errors.Is(err, ErrInvalidArgument) || errors.Is(err, ErrTooLarge):
			l.rejected(&e.ev.Record, err)
		default:
			return k, err
		}
	}
	return len(batch), nil
}

// rejected counts and reports an event that can never be logged.
func (l *Logger) rejected(r *Record, err error) {
	l.invalid.Add(1)
	l.cfg.Logger.Error("audit: dropping an event that is not a valid record", "what", r.What, "error", err)
}

func (l *Logger) append(ctx context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.AppendTimeout)
	defer cancel()
	_, err := l.sink.Append(ctx, recs)
	return err
}

// putBack returns a batch that could not be delivered to the front of the
// buffer, evicting the oldest events if new ones have filled it
// meanwhile. The caller holds mu.
func (l *Logger) putBack(evs []spooled) {
	for k := len(evs) - 1; k >= 0; k-- {
		if l.n == len(l.ring) {
			// The put-back events are the oldest: this one leaves.
			l.n++
			l.head = (l.head - 1 + len(l.ring)) % len(l.ring)
			l.ring[l.head] = evs[k]
			l.evict()
			continue
		}
		l.head = (l.head - 1 + len(l.ring)) % len(l.ring)
		l.ring[l.head] = evs[k]
		l.n++
	}
}

// goDown marks the sink unavailable and moves the buffered critical
// events to the spool, so none depends on this process surviving the
// outage. The caller holds mu.
func (l *Logger) goDown() {
	l.down = true
	kept := 0
	for k := range l.n {
		e := l.ring[(l.head+k)%len(l.ring)]
		if e.ev.Class == Critical {
			_ = l.toSpool(e)
			continue
		}
		l.ring[(l.head+kept)%len(l.ring)] = e
		kept++
	}
	for k := kept; k < l.n; k++ {
		l.ring[(l.head+k)%len(l.ring)] = spooled{}
	}
	l.n = kept
}

// Flush waits until every event emitted so far has been delivered,
// dropped or spooled-and-delivered, or ctx ends. While the log is down it
// waits for the log.
func (l *Logger) Flush(ctx context.Context) error {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		l.mu.Lock()
		idle := l.n == 0 && !l.busy
		l.mu.Unlock()
		if pending, _ := l.spool.counts(); idle && pending == 0 {
			return nil
		}
		l.poke()
		select {
		case <-ctx.Done():
			return opError("flush", "", ErrUnavailable, ctx.Err())
		case <-tick.C:
		}
	}
}

// Close stops taking events, delivers what it can until ctx ends, then
// spools the critical events still buffered and drops (and counts) the
// ordinary ones, and closes the spool. It returns an error matching
// ErrUnavailable if ordinary events were dropped at close.
func (l *Logger) Close(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return opError("close logger", "", ErrClosed)
	}
	l.closed = true
	l.mu.Unlock()
	flushErr := l.Flush(ctx)
	close(l.stop)
	<-l.done
	l.mu.Lock()
	lost := 0
	for l.n > 0 {
		if l.ring[l.head].ev.Class == Ordinary {
			lost++
		}
		l.evict()
	}
	l.mu.Unlock()
	err := l.spool.close()
	if lost > 0 {
		return opError("close logger", "", fmt.Errorf("%w: %d ordinary events dropped: %w", ErrUnavailable, lost, flushErr))
	}
	if err != nil {
		return opError("close logger", "", err)
	}
	return nil
}

// LoggerStats are a Logger's counters, metric-ready: the counts only
// grow; Buffered, SpoolPending and Unavailable are gauges.
type LoggerStats struct {
	Emitted   uint64
	Delivered uint64
	// Dropped counts ordinary events dropped because the buffer was full
	// (seed §13.1) or still buffered at Close.
	Dropped uint64
	// Spooled counts critical events written to the spool.
	Spooled uint64
	// Invalid counts events that are not valid records: never loggable.
	Invalid            uint64
	Buffered           int
	SpoolPending       int
	SpoolWriteFailures uint64
	Unavailable        bool
}

// Stats returns the Logger's counters.
func (l *Logger) Stats() LoggerStats {
	l.mu.Lock()
	buffered, down := l.n, l.down
	l.mu.Unlock()
	pending, failed := l.spool.counts()
	return LoggerStats{
		Emitted: l.emitted.Load(), Delivered: l.delivered.Load(), Dropped: l.dropped.Load(),
		Spooled: l.spooled.Load(), Invalid: l.invalid.Load(),
		Buffered: buffered, SpoolPending: pending, SpoolWriteFailures: failed, Unavailable: down,
	}
}

// Dropped returns the number of ordinary events dropped: the counter seed
// §13.1 asks to watch.
func (l *Logger) Dropped() uint64 { return l.dropped.Load() }
