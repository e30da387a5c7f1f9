package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/creto-systems/creto/api/creto/audit/v1"
)

// eventIDKey is the context key under which the logger gives each
// unsigned event a random id: when a batch's fate is unknown (its answer
// was lost), the logger asks the log for the id before sending the batch
// again, so no event is logged twice. A signed event keeps its context as
// signed; its signature, randomised (ML-DSA is hedged), identifies it.
const eventIDKey = "creto_event_id"

// maxContextEntries is the log's limit on a record's context.
const maxContextEntries = 64

// maxBatchBytes bounds the encoded records of one batch the logger sends,
// well under the node's 16 MiB message limit.
const maxBatchBytes = 4 << 20

// maxLoggerBackoff bounds the wait between the logger's tries while the
// log is unavailable.
const maxLoggerBackoff = 5 * time.Second

// AuditEvent is a record for the asynchronous logger (Emit).
type AuditEvent struct {
	Record AuditRecord
	// Critical events — vault accesses, identity changes — are never
	// dropped: each is written to the spool (fsync'd off the caller's
	// path) until the log has it, and read back if the process restarts
	// first. Ordinary events wait in memory, and when buffer_size of them
	// are waiting the oldest is dropped and counted (seed §13.1).
	Critical bool
}

// AuditLoggerStats are the logger's counters (counts only grow) and
// gauges.
type AuditLoggerStats struct {
	Emitted   uint64
	Delivered uint64
	// Dropped counts ordinary events dropped because the buffer was full,
	// or still waiting at Close.
	Dropped uint64
	// Refused counts events the log refused (invalid, too large, about an
	// agent the caller may not log for): never loggable.
	Refused uint64
	// Spooled counts critical events written to the spool.
	Spooled uint64
	// Relogged counts events whose answer was lost and that the log turned
	// out to have: not sent again.
	Relogged uint64
	// Waiting is how many events are not yet in the log; SpoolWaiting how
	// many of them are critical.
	Waiting, SpoolWaiting int
	SpoolWriteFailures    uint64
	// Unavailable is set while the log cannot be reached.
	Unavailable bool
}

// pending is an event on its way to the log: its place in emission order
// and its wire form, with its id.
type pending struct {
	seq      uint64
	rec      *auditv1.AuditRecord
	critical bool
	size     int
}

func newPending(seq uint64, rec *auditv1.AuditRecord, critical bool) *pending {
	return &pending{seq: seq, rec: rec, critical: critical, size: proto.Size(rec)}
}

// is reports whether r, read from the log, is this event.
func (p *pending) is(r *auditv1.AuditRecord) bool {
	if id := p.rec.GetContext()[eventIDKey]; id != "" {
		return r.GetContext()[eventIDKey] == id
	}
	s, mine := r.GetSignature(), p.rec.GetSignature()
	return mine != nil && bytes.Equal(s.GetEd25519Signature(), mine.GetEd25519Signature()) && bytes.Equal(s.GetMlDsaSignature(), mine.GetMlDsaSignature())
}

// auditLogger is the seed's §9.3 asynchronous writer: Emit queues, one
// goroutine delivers in batches, in emission order, and waits out the
// log's outages. It follows services/audit's Logger (a bounded ring for
// ordinary events, a fsync'd spool for critical ones, delivery in
// sequence order) with what a client needs besides: answers can be lost
// on the network, so a batch whose fate is unknown is looked for in the
// log before it is sent again.
type auditLogger struct {
	c       *AuditClient
	log     *slog.Logger
	bufSize int
	batch   int
	spool   *spool // nil without spool_path: critical events are refused

	mu       sync.Mutex
	ordinary []*pending // waiting, oldest first
	critical []*pending // waiting, oldest first, each in the spool
	// held is the batch in flight, or one that may have been logged
	// before its answer was lost (unsure, since unsureAt): it is looked for
	// in the log before anything else is sent.
	held     []*pending
	unsure   bool
	unsureAt time.Time
	// recovering is how many of the first critical events were read back
	// from the spool: a previous process may have delivered some.
	recovering int
	seq        uint64
	down       bool
	closed     bool

	wake   chan struct{}
	ctx    context.Context // ends the writer
	cancel context.CancelFunc
	done   chan struct{}

	emitted, delivered, dropped, refused, spooled, relogged atomic.Uint64
}

func newAuditLogger(c *AuditClient, cfg AuditConfig) (*auditLogger, error) {
	l := &auditLogger{c: c, log: c.svc.log, bufSize: cfg.BufferSize, batch: cfg.BatchSize,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	if cfg.SpoolPath != "" {
		s, left, err := openSpool(cfg.SpoolPath, l.log)
		if err != nil {
			return nil, fmt.Errorf("%w: audit.spool_path %q: %v", ErrConfig, bound(cfg.SpoolPath), err)
		}
		l.spool, l.critical, l.recovering, l.seq = s, left, len(left), uint64(len(left))
		if len(left) > 0 {
			l.log.Info("creto client: audit: critical events from the spool will be delivered first", "events", len(left))
		}
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	go l.run()
	l.poke()
	return l, nil
}

// Emit hands an event to the logger and returns at once: it never waits
// for the log, the network or a disk (seed §9.3). A zero Timestamp is set
// to now — when it happened, not when the log commits it. Events reach
// the log in the order they were emitted, each once, however often the
// log or the network fails meanwhile; see AuditEvent for what happens when
// they must wait. Emit fails at once only for what the log would never
// take (no What, no Outcome, a context full or holding creto_event_id), a
// critical event without audit.spool_path, and after Close.
func (c *AuditClient) Emit(_ context.Context, ev AuditEvent) error { return c.logger.emit(ev) }

func (l *auditLogger) emit(ev AuditEvent) error {
	r := ev.Record
	if err := checkLoggable("Emit", r); err != nil {
		return err
	}
	if _, ok := r.Context[eventIDKey]; ok {
		return localError("audit", "Emit", ErrInvalidRequest, "the context key %s is the logger's", eventIDKey)
	}
	if r.Signature == nil && len(r.Context) >= maxContextEntries {
		return localError("audit", "Emit", ErrInvalidRequest, "a context of %d entries leaves no room for the event id (at most %d)", len(r.Context), maxContextEntries-1)
	}
	if ev.Critical && l.spool == nil {
		return localError("audit", "Emit", ErrFailedPrecondition, "a critical event needs audit.spool_path, to survive a crash")
	}
	if r.Timestamp.IsZero() {
		r.Timestamp = time.Now()
	}
	rec := auditRecordProto(r)
	if r.Signature == nil {
		if rec.Context == nil {
			rec.Context = map[string]string{}
		}
		rec.Context[eventIDKey] = newID()
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return localError("audit", "Emit", ErrUnavailable, "the logger is closed")
	}
	p := newPending(l.seq, rec, ev.Critical)
	if ev.Critical {
		// Under the lock, so the spool holds events in sequence order.
		if err := l.spool.add(p); err != nil {
			l.mu.Unlock()
			return localError("audit", "Emit", ErrInvalidRequest, "the event cannot be spooled: %v", err)
		}
		l.critical = append(l.critical, p)
		l.spooled.Add(1)
	} else {
		if len(l.ordinary) >= l.bufSize {
			l.ordinary[0] = nil
			l.ordinary = l.ordinary[1:]
			l.dropped.Add(1)
		}
		l.ordinary = append(l.ordinary, p)
	}
	l.seq++
	l.emitted.Add(1)
	l.mu.Unlock()
	l.poke()
	return nil
}

func (l *auditLogger) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run is the writer: it delivers whenever there is something to deliver,
// and while the log fails, tries again after a backoff that doubles from
// retry_backoff_ms up to five seconds.
func (l *auditLogger) run() {
	defer close(l.done)
	first := max(l.c.svc.pol.backoff, 10*time.Millisecond)
	backoff := first
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		select {
		case <-l.wake:
		case <-retry.C:
		case <-l.ctx.Done():
			return
		}
		if l.deliver() {
			backoff = first
			continue
		}
		retry.Reset(backoff)
		backoff = min(2*backoff, maxLoggerBackoff)
	}
}

// deliver sends batches until nothing is waiting (true) or the log fails
// (false).
func (l *auditLogger) deliver() bool {
	for l.ctx.Err() == nil {
		if !l.recover() {
			return false
		}
		batch, unsure, since := l.next()
		if len(batch) == 0 {
			return true
		}
		if unsure {
			// Let the node finish what it may have started: a batch it
			// took before the answer was lost commits within its own
			// commit time, not the client's timeout.
			if time.Since(since) < l.c.svc.pol.timeout {
				return false
			}
			landed, err := l.c.landed(l.ctx, batch[0])
			if err != nil {
				l.failed(err)
				return false
			}
			if landed {
				l.settle(batch, &l.relogged)
				continue
			}
		}
		err := l.send(batch)
		switch {
		case err == nil:
			l.settle(batch, &l.delivered)
		case refused(err):
			if !l.sendEach(batch) {
				return false
			}
		default:
			l.hold(batch, nil, err)
			return false
		}
	}
	return false
}

// next returns the held batch, or takes the next one from the queues:
// the oldest events of both, merged in emission order, up to batch_size
// records and maxBatchBytes.
func (l *auditLogger) next() (batch []*pending, unsure bool, since time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.held) > 0 {
		return l.held, l.unsure, l.unsureAt
	}
	size, o, c := 0, 0, 0
	for len(batch) < l.batch {
		var p *pending
		switch {
		case o < len(l.ordinary) && (c == len(l.critical) || l.ordinary[o].seq < l.critical[c].seq):
			p = l.ordinary[o]
		case c < len(l.critical):
			p = l.critical[c]
		}
		if p == nil || (len(batch) > 0 && size+p.size > maxBatchBytes) {
			break
		}
		if p.critical {
			c++
		} else {
			o++
		}
		size += p.size
		batch = append(batch, p)
	}
	clear(l.ordinary[:o])
	l.ordinary, l.critical = l.ordinary[o:], l.critical[c:]
	l.held = batch
	return batch, false, time.Time{}
}

// send sends a batch once, through the breaker: never retried here, since
// only the logger can tell a lost answer from a lost request.
func (l *auditLogger) send(batch []*pending) error {
	in := &auditv1.LogBatchRequest{Records: make([]*auditv1.AuditRecord, len(batch))}
	for i, p := range batch {
		in.Records[i] = p.rec
	}
	_, err := l.c.logBatch(l.ctx, in)
	return err
}

// sendEach sends a refused batch's events one by one, to find the ones
// the log refuses: those are given up and counted, the others delivered.
func (l *auditLogger) sendEach(batch []*pending) bool {
	for i, p := range batch {
		err := l.send(batch[i : i+1])
		switch {
		case err == nil:
			l.settle(batch[i:i+1], &l.delivered)
		case refused(err):
			l.log.Error("creto client: audit: the log refused an event; dropping it", "what", quote(p.rec.GetWhat()), "err", reason(err))
			l.settle(batch[i:i+1], &l.refused)
		default:
			l.hold(batch[i:i+1], batch[i+1:], err)
			return false
		}
	}
	return true
}

// settle ends a batch's journey — in the log, found there, or refused —
// and counts it.
func (l *auditLogger) settle(batch []*pending, counter *atomic.Uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held, l.unsure = l.held[len(batch):], false
	if len(l.held) == 0 {
		l.held = nil
	}
	counter.Add(uint64(len(batch)))
	if l.down {
		l.down = false
		l.log.Info("creto client: audit: the log is back; replaying")
	}
	for k := len(batch) - 1; k >= 0; k-- {
		if batch[k].critical {
			// Delivery is in order: every critical event before it is
			// settled too.
			l.spool.settle(batch[k].seq + 1)
			break
		}
	}
}

// hold deals with events the log did not take: sent, the ones the failed
// call carried, and rest, the ones after them not sent yet. If the call
// may have logged them, sent is kept as it is, to look for in the log
// before anything else is sent; otherwise it goes back too. What goes
// back goes to the front of the queues, where its ordinary events are
// again the oldest, the first dropped if the buffer overflows while the
// log is down.
func (l *auditLogger) hold(sent, rest []*pending, err error) {
	l.mu.Lock()
	back := rest
	if maybeApplied(err) {
		l.held, l.unsure, l.unsureAt = sent, true, time.Now()
	} else {
		l.held, back = nil, append(sent, rest...)
	}
	var ordinary, critical []*pending
	for _, p := range back {
		if p.critical {
			critical = append(critical, p)
		} else {
			ordinary = append(ordinary, p)
		}
	}
	l.ordinary = append(ordinary, l.ordinary...)
	l.critical = append(critical, l.critical...)
	for len(l.ordinary) > l.bufSize {
		l.ordinary[0] = nil
		l.ordinary = l.ordinary[1:]
		l.dropped.Add(1)
	}
	l.mu.Unlock()
	l.failed(err)
}

// failed notes that the log cannot be used.
func (l *auditLogger) failed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.down {
		l.down = true
		l.log.Warn("creto client: audit: the log is unavailable; buffering, critical events in the spool", "err", reason(err))
	}
}

// recover settles the critical events read back from the spool that the
// log already has. They are always the oldest of them: delivery is in
// order, so a binary search finds where they end.
func (l *auditLogger) recover() bool {
	l.mu.Lock()
	evs := l.critical[:l.recovering]
	l.mu.Unlock()
	lo, hi := 0, len(evs) // evs[:lo] are in the log, evs[hi:] are not
	for lo < hi {
		mid := (lo + hi) / 2
		landed, err := l.c.landed(l.ctx, evs[mid])
		if err != nil {
			l.failed(err)
			return false
		}
		if landed {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if lo > 0 {
		l.critical = l.critical[lo:]
		l.relogged.Add(uint64(lo))
		l.spool.settle(evs[lo-1].seq + 1)
	}
	l.recovering = 0
	return true
}

// landed asks the log whether it has the event: the records with its who,
// what and exact timestamp. An error means the log could not be asked; a
// log that refuses the question (the caller may not read the records) is
// taken to not have it, and the event is sent again.
func (c *AuditClient) landed(ctx context.Context, p *pending) (bool, error) {
	ts := p.rec.GetTimestamp().AsTime()
	q := &auditv1.QueryRequest{Who: p.rec.GetWho().GetId(), What: p.rec.GetWhat(),
		Since: timestamppb.New(ts), Until: timestamppb.New(ts.Add(time.Nanosecond)), PageSize: 1000}
	for {
		resp, err := c.query(ctx, q)
		if err != nil {
			if failure(err) || excluded(err) {
				return false, err
			}
			c.svc.log.Warn("creto client: audit: cannot look for an event whose answer was lost; sending it again", "err", reason(err))
			return false, nil
		}
		for _, r := range resp.GetRecords() {
			if p.is(r) {
				return true, nil
			}
		}
		if resp.GetNextPageToken() == "" {
			return false, nil
		}
		q.PageToken = resp.GetNextPageToken()
	}
}

// refused reports whether the log refused the records themselves:
// nothing was appended, and the same records would be refused again.
// An unauthenticated caller, or one the node's meta-policies deny, is not
// refused: it is an outage to wait out, not a reason to drop events.
func refused(err error) bool {
	var e *Error
	if !errors.As(err, &e) || e.local {
		return false
	}
	return errors.Is(e.Kind, ErrInvalidRequest) || e.Code == codes.ResourceExhausted ||
		(e.Kind == ErrDenied && e.Reason == "ACCESS_DENIED")
}

// maybeApplied reports whether a failed send may have been logged: the
// node did not answer (a timeout, a connection lost in the call) or failed
// inside. An answer from the node refusing the call, or a failure before
// anything was sent, applied nothing.
func maybeApplied(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return true
	}
	if e.local {
		return false
	}
	switch e.Code {
	case codes.DeadlineExceeded, codes.Canceled, codes.Unknown, codes.Internal, codes.DataLoss, codes.Aborted:
		return true
	case codes.Unavailable:
		// The node's own UNAVAILABLE carries a reason; a connection lost
		// under the call does not.
		return e.Reason == ""
	}
	return false
}

// Flush waits until every event emitted so far is in the log (or
// dropped or refused), or ctx ends. While the log is down it waits for
// the log.
func (c *AuditClient) Flush(ctx context.Context) error {
	l := c.logger
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		n := l.waiting()
		if n == 0 {
			return nil
		}
		l.poke()
		select {
		case <-ctx.Done():
			e := decode(ctx, "audit", "Flush", ctx.Err())
			e.Message = fmt.Sprintf("%d events are not in the log yet", n)
			return e
		case <-tick.C:
		}
	}
}

// waiting returns how many events are not in the log yet.
func (l *auditLogger) waiting() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ordinary) + len(l.critical) + len(l.held)
}

// LoggerStats returns the logger's counters.
func (c *AuditClient) LoggerStats() AuditLoggerStats {
	l := c.logger
	l.mu.Lock()
	st := AuditLoggerStats{Waiting: len(l.ordinary) + len(l.critical) + len(l.held), Unavailable: l.down}
	st.SpoolWaiting = len(l.critical)
	for _, p := range l.held {
		if p.critical {
			st.SpoolWaiting++
		}
	}
	l.mu.Unlock()
	st.Emitted, st.Delivered, st.Dropped, st.Refused = l.emitted.Load(), l.delivered.Load(), l.dropped.Load(), l.refused.Load()
	st.Spooled, st.Relogged = l.spooled.Load(), l.relogged.Load()
	if l.spool != nil {
		st.SpoolWriteFailures = l.spool.failed()
	}
	return st
}

// close stops the logger: no more events, delivery of what is waiting
// until ctx ends, then the writer stops. Critical events still waiting
// stay in the spool for the next start; ordinary ones are dropped and
// counted, and reported in the error.
func (l *auditLogger) close(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	_ = l.c.Flush(ctx) // what is left is counted below
	l.cancel()
	<-l.done
	l.mu.Lock()
	lost := len(l.ordinary)
	for _, p := range l.held {
		if !p.critical {
			lost++
		}
	}
	l.ordinary, l.held = nil, nil
	l.mu.Unlock()
	l.dropped.Add(uint64(lost))
	var err error
	if l.spool != nil {
		err = l.spool.close()
	}
	if lost > 0 {
		err = errors.Join(err, localError("audit", "Close", ErrUnavailable, "%d ordinary events were not in the log at close and are dropped", lost))
	}
	return err
}
