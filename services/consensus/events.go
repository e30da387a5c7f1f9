package consensus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/creto-systems/creto/internal/kv"
)

// Event is one event to order: an id the client chose (it comes back with
// the event's place in the order) and an opaque payload.
type Event struct {
	ID      string
	Payload []byte
}

// OrderEventsRequest is the seed's OrderEventsRequest: a batch ordered as
// one raft entry.
type OrderEventsRequest struct {
	Events []Event
	// IdempotencyKey, if set, makes a retry of the same batch by the same
	// caller return the first ordering instead of ordering it again (for
	// Config.IdempotencyWindow). Retry with it after ErrIndeterminate.
	IdempotencyKey string
}

// EventOrder is an event's place in the total order.
type EventOrder struct {
	ID        string
	Sequence  uint64
	Timestamp Timestamp
}

// OrderEventsResponse gives each event of the request, in request order,
// its sequence number and timestamp. Sequence numbers are consecutive
// within a batch and across the cluster's history (1, 2, 3 …); timestamps
// increase with them.
type OrderEventsResponse struct {
	Events []EventOrder
	// Duplicate reports that the batch was ordered before, by an earlier
	// call with the same idempotency key, whose ordering this is.
	Duplicate bool
}

// OrderedEvent is an event as every node stores it.
type OrderedEvent struct {
	Sequence  uint64
	Timestamp Timestamp
	ID        string
	Payload   []byte
	// Caller is who ordered it.
	Caller string
}

// ReadEventsRequest reads ordered events from a sequence number on.
type ReadEventsRequest struct {
	// From is the first sequence number wanted (0 means the oldest kept).
	From uint64
	// Limit caps the events returned: 0 means 100, at most 1000.
	Limit int
}

// ReadEventsResponse holds events in sequence order.
type ReadEventsResponse struct {
	Events []OrderedEvent
	// Next is the sequence number to read from next.
	Next uint64
	// Oldest is the oldest sequence number this node still keeps
	// (Config.EventRetention); Last the newest it has applied.
	Oldest, Last uint64
}

const (
	eventsType       = reservedPrefix + "events"
	eventsVersion    = 1
	defaultReadLimit = 100
	maxReadLimit     = 1000
	// Whole batches past retention are deleted at most this many per
	// entry, so lowering event_retention drains gradually.
	maxRetentionDeletes = 64
	// blockBits groups sequence numbers in blocks of 256 for reads.
	blockBits = 8
)

// Keys of the events handler, under its prefix. A batch is stored as one
// record under its first sequence number, which costs the store one key
// per batch rather than one per event. A pointer per block of 256
// sequence numbers names the batch that holds the block's first one, so a
// read from any sequence number finds its batch without scanning from the
// beginning.
var (
	keySeq    = []byte("seq")    // last sequence number assigned
	keyLast   = []byte("last")   // Logical timestamp of the last event
	keyOldest = []byte("oldest") // first sequence number of the oldest batch kept
)

func batchKey(first uint64) []byte { return binary.BigEndian.AppendUint64([]byte("b/"), first) }

func blockKey(block uint64) []byte { return binary.BigEndian.AppendUint64([]byte("p/"), block) }

// blocksOf returns the blocks whose first sequence number lies in
// [first, last].
func blocksOf(first, last uint64) (from, to uint64) {
	return (first + 1<<blockBits - 1) >> blockBits, last >> blockBits
}

// eventBatch is the payload of one events entry:
//
//	0x01 | uvarint retain | u64 first Logical | string node | body
//
// where body is uvarint n | n × (string id, bytes payload), as
// encodeEventBody wrote it; the state machine stores the body as it came.
type eventBatch struct {
	retain uint64
	first  uint64
	node   string
	body   []byte
	n      uint64
}

// encodeEventBody encodes the part of a batch that does not depend on the
// timestamps, before the leader reserves them.
func encodeEventBody(events []Event) []byte {
	size := uvarintLen(uint64(len(events)))
	for _, e := range events {
		size += uvarintLen(uint64(len(e.ID))) + len(e.ID) + uvarintLen(uint64(len(e.Payload))) + len(e.Payload)
	}
	b := binary.AppendUvarint(make([]byte, 0, size), uint64(len(events)))
	for _, e := range events {
		b = appendString(b, e.ID)
		b = appendBytes(b, e.Payload)
	}
	return b
}

// eventHeaderMax bounds the header, so a batch's size is known before its
// timestamps are.
const eventHeaderMax = 1 + 10 + 8 + 2 + maxIDBytes

func encodeEventBatch(retain, first uint64, node string, body []byte) []byte {
	b := make([]byte, 0, eventHeaderMax+len(body))
	b = append(b, eventsVersion)
	b = binary.AppendUvarint(b, retain)
	b = binary.BigEndian.AppendUint64(b, first)
	b = appendString(b, node)
	return append(b, body...)
}

// events reads what encodeEventBody wrote: a count, then each event's id
// and payload (at most limit bytes).
func (r *reader) events(limit int) []Event {
	n := r.uvarint()
	if r.err == nil && (n == 0 || n > uint64(len(r.b))) {
		r.fail("event count %d", n)
	}
	var out []Event
	for i := uint64(0); r.err == nil && i < n; i++ {
		out = append(out, Event{ID: r.string(maxIDBytes), Payload: r.bytes(limit)})
	}
	return out
}

// eventCount checks an event body the way events reads it, without
// copying anything, and returns how many events it holds.
func eventCount(body []byte) (uint64, error) {
	r := reader{b: body}
	n := r.uvarint()
	if r.err == nil && (n == 0 || n > uint64(len(r.b))) {
		r.fail("event count %d", n)
	}
	for i := uint64(0); r.err == nil && i < n; i++ {
		r.bytes(maxIDBytes)
		r.bytes(len(body))
	}
	r.done()
	return n, r.err
}

func decodeEventBatch(p []byte) (eventBatch, error) {
	r := reader{b: p}
	var b eventBatch
	if v := r.byte(); v != eventsVersion {
		r.fail("event batch version %d", v)
	}
	b.retain = r.uvarint()
	b.first = r.u64()
	b.node = r.string(maxIDBytes)
	b.body = r.rest()
	if r.err == nil {
		b.n, r.err = eventCount(b.body)
	}
	if r.err == nil && (b.retain == 0 || b.first == 0 || b.first+b.n < b.first) {
		r.fail("retention %d, first timestamp %d", b.retain, b.first)
	}
	if r.err != nil {
		return b, invalid(nil, "event batch: %v", r.err)
	}
	return b, nil
}

// eventsHandler assigns sequence numbers and stores events. The leader
// chose the timestamps; the handler checks that they follow the last
// event's, so sequence order and timestamp order are one order.
type eventsHandler struct{ hlc *HLC }

func (eventsHandler) Validate(payload []byte) error {
	_, err := decodeEventBatch(payload)
	return err
}

func (h eventsHandler) Apply(tx *Tx, payload []byte) ([]byte, error) {
	b, err := decodeEventBatch(payload)
	if err != nil {
		return nil, err
	}
	seq, err := readUint64(tx, keySeq)
	if err != nil {
		return nil, err
	}
	last, err := readUint64(tx, keyLast)
	if err != nil {
		return nil, err
	}
	oldest, err := readUint64(tx, keyOldest)
	if err != nil {
		return nil, err
	}
	if b.first <= last {
		// The leader's ordering lock makes this impossible; refusing keeps
		// the invariant even so, and the proposer retries.
		return nil, unavailable("timestamp %d does not follow the last ordered event's %d", b.first, last)
	}
	n := b.n
	first, lastSeq := seq+1, seq+n
	// The record: the batch's first timestamp, leader, caller and events.
	rec := binary.BigEndian.AppendUint64(nil, b.first)
	rec = appendString(rec, b.node)
	rec = appendString(rec, tx.Caller())
	rec = append(rec, b.body...)
	if err := tx.Set(batchKey(first), rec); err != nil {
		return nil, err
	}
	for k, to := blocksOf(first, lastSeq); k <= to; k++ {
		if err := tx.Set(blockKey(k), be64(first)); err != nil {
			return nil, err
		}
	}
	if oldest, err = h.retire(tx, max(oldest, 1), lastSeq, b.retain); err != nil {
		return nil, err
	}
	lastLogical := b.first + n - 1
	for _, kv := range []struct {
		k []byte
		v uint64
	}{{keySeq, lastSeq}, {keyLast, lastLogical}, {keyOldest, oldest}} {
		if err := tx.Set(kv.k, be64(kv.v)); err != nil {
			return nil, err
		}
	}
	h.hlc.Observe(makeTimestamp(lastLogical, b.node))
	res := binary.AppendUvarint(nil, first)
	res = binary.BigEndian.AppendUint64(res, b.first)
	return appendString(res, b.node), nil
}

// retire deletes the oldest whole batches that lie entirely before the
// last retain events, and returns the new oldest sequence number.
func (eventsHandler) retire(tx *Tx, oldest, last, retain uint64) (uint64, error) {
	if last <= retain {
		return oldest, nil
	}
	keepFrom := last - retain + 1
	for range maxRetentionDeletes {
		v, err := tx.Get(batchKey(oldest))
		if errors.Is(err, ErrNotFound) {
			return oldest, nil // nothing stored yet
		}
		if err != nil {
			return 0, err
		}
		sb, err := decodeStoredBatch(oldest, v)
		if err != nil {
			return 0, err
		}
		end := oldest + uint64(len(sb.events)) - 1
		if end >= keepFrom {
			return oldest, nil
		}
		if err := tx.Delete(batchKey(oldest)); err != nil {
			return 0, err
		}
		for k, to := blocksOf(oldest, end); k <= to; k++ {
			if err := tx.Delete(blockKey(k)); err != nil {
				return 0, err
			}
		}
		oldest = end + 1
	}
	return oldest, nil
}

// OrderEvents gives a batch of events consecutive sequence numbers and
// increasing timestamps with one raft entry; every node stores the same
// order. Only the leader can; without a quorum it fails at once with
// ErrNoQuorum.
func (n *Node) OrderEvents(ctx context.Context, caller string, req OrderEventsRequest) (OrderEventsResponse, error) {
	if err := n.authorize(ctx, caller, OpOrderEvents, ""); err != nil {
		return OrderEventsResponse{}, err
	}
	if err := n.checkEvents(req); err != nil {
		return OrderEventsResponse{}, err
	}
	body := encodeEventBody(req.Events)
	env := envelope{typ: eventsType, caller: caller, idemKey: req.IdempotencyKey,
		fingerprint: n.fingerprint(req.IdempotencyKey, body)}
	if size := env.encodedLen() + eventHeaderMax + len(body); size > n.cfg.MaxCommandBytes {
		return OrderEventsResponse{}, invalid(ErrTooLarge, "event batch of %d bytes (limit %d)", size, n.cfg.MaxCommandBytes)
	}
	if err := n.writable(); err != nil {
		return OrderEventsResponse{}, err
	}
	// Reserving timestamps and queueing the entry under one lock makes the
	// log order of batches their timestamp order.
	var f raft.ApplyFuture
	if _, err := n.reserve(ctx, uint32(len(req.Events)), func(first uint64) {
		env.payload = encodeEventBatch(n.cfg.EventRetention, first, n.id, body)
		f = n.raft.Apply(env.encode(), enqueueTimeout(ctx))
	}); err != nil {
		return OrderEventsResponse{}, err
	}

	res, err := n.await(ctx, f)
	if err != nil {
		return OrderEventsResponse{}, err
	}
	if res.err != nil {
		return OrderEventsResponse{}, res.err
	}
	r := reader{b: res.data}
	seq, logical, node := r.uvarint(), r.u64(), r.string(maxIDBytes)
	r.done()
	if r.err != nil {
		return OrderEventsResponse{}, fmt.Errorf("%w: events result: %w", ErrCorrupt, r.err)
	}
	out := OrderEventsResponse{Events: make([]EventOrder, len(req.Events)), Duplicate: res.duplicate}
	for i, e := range req.Events {
		out.Events[i] = EventOrder{ID: e.ID, Sequence: seq + uint64(i), Timestamp: makeTimestamp(logical+uint64(i), node)}
	}
	return out, nil
}

func (n *Node) checkEvents(req OrderEventsRequest) error {
	if len(req.Events) == 0 {
		return invalid(nil, "no events to order")
	}
	if len(req.Events) > n.cfg.MaxBatchEvents {
		return invalid(ErrTooLarge, "%d events in a batch (limit %d)", len(req.Events), n.cfg.MaxBatchEvents)
	}
	for i, e := range req.Events {
		if err := checkID(fmt.Sprintf("event %d id", i), e.ID); err != nil {
			return err
		}
		if len(e.Payload) > n.cfg.MaxEventBytes {
			return invalid(ErrTooLarge, "event %s payload of %d bytes (limit %d)", quote(e.ID), len(e.Payload), n.cfg.MaxEventBytes)
		}
	}
	return checkIdemKey(req.IdempotencyKey)
}

// ReadEvents returns ordered events from this node's applied state. Any
// node answers; a follower may lag the leader by a commit (read from the
// leader, or after your own OrderEvents returned, to see your writes).
func (n *Node) ReadEvents(ctx context.Context, caller string, req ReadEventsRequest) (ReadEventsResponse, error) {
	if err := n.authorize(ctx, caller, OpReadEvents, ""); err != nil {
		return ReadEventsResponse{}, err
	}
	if err := n.usable(); err != nil {
		return ReadEventsResponse{}, err
	}
	limit := req.Limit
	switch {
	case limit == 0:
		limit = defaultReadLimit
	case limit < 0 || limit > maxReadLimit:
		return ReadEventsResponse{}, invalid(ErrTooLarge, "limit %d outside 0..%d", limit, maxReadLimit)
	}
	ns := handlerPrefix(eventsType)
	get := func(k []byte) (uint64, bool, error) {
		v, err := n.store.Get(ctx, []byte(ns+string(k)))
		switch {
		case errors.Is(err, kv.ErrNotFound):
			return 0, false, nil
		case err != nil:
			return 0, false, fmt.Errorf("consensus: read events: %w", err)
		case len(v) != 8:
			return 0, false, fmt.Errorf("%w: event counter of %d bytes", ErrCorrupt, len(v))
		}
		return binary.BigEndian.Uint64(v), true, nil
	}
	// The last is read before the oldest, and the batches after both, so a
	// concurrent apply can only add events past Last or retire ones below
	// Oldest — both of which the loop below tolerates.
	last, _, err := get(keySeq)
	if err != nil {
		return ReadEventsResponse{}, err
	}
	oldest, _, err := get(keyOldest)
	if err != nil {
		return ReadEventsResponse{}, err
	}
	out := ReadEventsResponse{Oldest: max(oldest, 1), Last: last}
	from := max(req.From, out.Oldest)
	out.Next = from
	if from > last {
		return out, nil
	}
	// start is a batch's first sequence number at or before from: the
	// batch holding the first of from's block, or the oldest kept.
	start, ok, err := get(blockKey(from >> blockBits))
	if err != nil {
		return ReadEventsResponse{}, err
	}
	if !ok || start < out.Oldest {
		start = out.Oldest
	}
	for block := start >> blockBits; len(out.Events) < limit && block <= last>>blockBits; block++ {
		prefix := ns + string(batchKey(block << blockBits)[:2+7])
		err := n.store.Scan(ctx, []byte(prefix), func(k, v []byte) error {
			first := binary.BigEndian.Uint64(k[len(ns)+2:])
			if first < start {
				return nil
			}
			sb, err := decodeStoredBatch(first, v)
			if err != nil {
				return err
			}
			for i, e := range sb.events {
				seq := first + uint64(i)
				if seq < from || seq > last {
					continue
				}
				if len(out.Events) == limit {
					return errStopScan
				}
				out.Events = append(out.Events, OrderedEvent{
					Sequence:  seq,
					Timestamp: makeTimestamp(sb.logical+uint64(i), sb.node),
					ID:        e.ID,
					Payload:   clone(e.Payload),
					Caller:    sb.caller,
				})
				out.Next = seq + 1
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStopScan) {
			return ReadEventsResponse{}, fmt.Errorf("consensus: read events: %w", err)
		}
	}
	return out, nil
}

// storedBatch is a batch as the events handler stores it:
//
//	u64 first Logical | string node | string caller | uvarint n | n × (string id, bytes payload)
type storedBatch struct {
	logical      uint64
	node, caller string
	events       []Event
}

func decodeStoredBatch(first uint64, v []byte) (storedBatch, error) {
	r := reader{b: v}
	sb := storedBatch{logical: r.u64(), node: r.string(maxIDBytes), caller: r.string(maxIDBytes)}
	sb.events = r.events(len(v))
	r.done()
	if r.err != nil {
		return sb, fmt.Errorf("%w: events from %d: %w", ErrCorrupt, first, r.err)
	}
	return sb, nil
}
