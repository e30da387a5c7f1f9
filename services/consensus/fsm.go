package consensus

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/creto-systems/creto/internal/kv"
)

// Store layout. Everything the state machine owns is under
// "consensus/r/", and snapshots carry exactly that prefix, so every
// handler's state is in every snapshot. docs/consensus.md describes it.
const (
	prefixReplicated = "consensus/r/"
	// keyApplied sorts first under the prefix, so it is the first record
	// of a snapshot and Open can read a snapshot's applied index cheaply.
	keyApplied        = prefixReplicated + "a/applied" // 8 bytes: last applied raft index
	prefixHandlers    = prefixReplicated + "h/"        // + type + "/" + handler key
	prefixIdemRecords = prefixReplicated + "i/k/"      // + caller NUL key: idempotency record
	prefixIdemExpiry  = prefixReplicated + "i/t/"      // + 8-byte time + 8-byte index: caller NUL key
)

const (
	idemRecordVersion = 1
	fingerprintSize   = 32   // SHA-256 of the payload
	maxEvictPerBatch  = 1000 // idempotency records collected per batch
)

// errReplayed answers an entry the store already holds; no proposer ever
// waits for one.
var errReplayed = errors.New("consensus: entry already applied")

func handlerPrefix(typ string) string { return prefixHandlers + typ + "/" }

// applyResult is what the state machine hands back to the proposer of an
// entry through raft's ApplyFuture.
type applyResult struct {
	data      []byte
	err       error
	index     uint64
	duplicate bool // an idempotent retry: data is the first result
}

// fsm is the replicated state machine. Its state lives in the node's kv
// store, with the last applied index written in the same atomic commit as
// the state it describes, so a restart skips exactly the entries already
// applied (raft#396) instead of applying them twice.
type fsm struct {
	store    kv.Store
	handlers map[string]Handler
	window   time.Duration
	log      *slog.Logger

	applied atomic.Uint64
	halted  atomic.Pointer[error]
	onHalt  func(error) // set once by the node before raft starts
}

func newFSM(ctx context.Context, store kv.Store, handlers map[string]Handler, window time.Duration, log *slog.Logger) (*fsm, error) {
	f := &fsm{store: store, handlers: handlers, window: window, log: log}
	v, err := store.Get(ctx, []byte(keyApplied))
	switch {
	case errors.Is(err, kv.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("consensus: open: %w", err)
	case len(v) != 8:
		return nil, fmt.Errorf("%w: applied index of %d bytes", ErrCorrupt, len(v))
	default:
		f.applied.Store(binary.BigEndian.Uint64(v))
	}
	return f, nil
}

// haltErr returns the error the state machine halted with, if any.
func (f *fsm) haltErr() error {
	if p := f.halted.Load(); p != nil {
		return *p
	}
	return nil
}

// halt stops applying for good: the next entry would be applied
// differently here than elsewhere, or not durably.
func (f *fsm) halt(err error) {
	err = fmt.Errorf("%w: %w", ErrHalted, err)
	if f.halted.CompareAndSwap(nil, &err) {
		f.log.Error("consensus: state machine halted; this node stops", "error", err)
		if f.onHalt != nil {
			go f.onHalt(err)
		}
	}
}

// Apply is raft's single-entry path, used only if batching is off.
func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies committed entries in order and commits their writes,
// and the new applied index, in one fsync'd store write.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	if err := f.haltErr(); err != nil {
		fillErr(out, err)
		return out
	}
	b := newApplyBatch(f.store)
	applied := f.applied.Load()
	last := applied
	var lastTime time.Time
	for i, l := range logs {
		if l.Index <= applied {
			// Replayed after a restart or behind a restored snapshot: the
			// store already holds its effect, and nobody waits for it.
			out[i] = applyResult{err: errReplayed}
			continue
		}
		if l.Type == raft.LogCommand {
			r, fatal := f.applyEntry(b, l)
			if fatal != nil {
				// Keep what came before it, then stop.
				f.halt(fmt.Errorf("entry %d: %w", l.Index, fatal))
				if err := f.commit(b, last, lastTime); err != nil {
					fillErr(out[:i], err)
				}
				fillErr(out[i:], f.haltErr())
				return out
			}
			out[i] = r
			lastTime = l.AppendedAt
		}
		last = l.Index
	}
	if last == applied {
		return out
	}
	if err := f.commit(b, last, lastTime); err != nil {
		fillErr(out, err)
	}
	return out
}

// commit writes the batch with the applied index last, collecting expired
// idempotency records on the way.
func (f *fsm) commit(b *applyBatch, last uint64, now time.Time) error {
	if last <= f.applied.Load() {
		return nil
	}
	if !now.IsZero() {
		if err := f.evictIdempotency(b, now); err != nil {
			f.halt(err)
			return f.haltErr()
		}
	}
	b.set(keyApplied, be64(last))
	if err := b.commit(); err != nil {
		f.halt(fmt.Errorf("committing entries up to %d: %w", last, err))
		return f.haltErr()
	}
	f.applied.Store(last)
	return nil
}

func fillErr(out []any, err error) {
	for i := range out {
		out[i] = applyResult{err: err}
	}
}

// applyEntry applies one command. A non-nil second result is fatal: the
// entry cannot be applied the way every other node applies it.
func (f *fsm) applyEntry(b *applyBatch, l *raft.Log) (r applyResult, fatal error) {
	env, err := decodeEnvelope(l.Data)
	if err != nil {
		return applyResult{err: err, index: l.Index}, nil
	}
	h, ok := f.handlers[env.typ]
	if !ok {
		return r, fmt.Errorf("%w %s: register its handler on every node", ErrUnknownCommand, quote(env.typ))
	}
	if env.idemKey != "" {
		rec, found, err := f.lookupIdempotency(b, env, l.AppendedAt)
		switch {
		case err != nil:
			return r, err
		case found && (rec.typ != env.typ || !bytes.Equal(rec.fingerprint, env.fingerprint)):
			return applyResult{index: l.Index, err: invalid(ErrIdempotencyConflict,
				"key %s was used at index %d for another command", quote(env.idemKey), rec.index)}, nil
		case found:
			return applyResult{data: rec.result, index: rec.index, duplicate: true}, nil
		}
	}
	tx := b.newTx(env.typ, env.caller, l.Index, l.AppendedAt)
	data, herr := safeApply(h, tx, env.payload)
	if tx.err != nil {
		return r, tx.err
	}
	if herr != nil {
		if errors.Is(herr, errHandlerPanic) {
			return r, herr
		}
		return applyResult{index: l.Index, err: fmt.Errorf("consensus: command %s rejected: %w", quote(env.typ), herr)}, nil
	}
	b.merge(tx.writes)
	if env.idemKey != "" {
		f.recordIdempotency(b, env, l, data)
	}
	return applyResult{data: data, index: l.Index}, nil
}

var errHandlerPanic = errors.New("handler panicked")

// safeApply turns a handler's panic into a halt rather than a crash of the
// node: a panic is as deterministic as the handler, so every node would
// meet it, and a halted node says why.
func safeApply(h Handler, tx *Tx, payload []byte) (data []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errHandlerPanic, p)
		}
	}()
	return h.Apply(tx, payload)
}

// Idempotency records. A record remembers the first result of a command
// proposed with an idempotency key, scoped to its caller, for Config
// IdempotencyWindow of log time. Whether a record is live is decided by
// the entry's log time alone, so every node answers a retry alike even
// though each collects expired records at its own pace.

type idemRecord struct {
	typ         string
	fingerprint []byte
	index       uint64
	at          int64
	result      []byte
}

func idemSuffix(env envelope) string { return env.caller + "\x00" + env.idemKey }

func (f *fsm) lookupIdempotency(b *applyBatch, env envelope, now time.Time) (idemRecord, bool, error) {
	v, err := b.get(prefixIdemRecords + idemSuffix(env))
	if errors.Is(err, ErrNotFound) {
		return idemRecord{}, false, nil
	}
	if err != nil {
		return idemRecord{}, false, err
	}
	rec, err := decodeIdemRecord(v)
	if err != nil {
		return idemRecord{}, false, err
	}
	return rec, !f.expired(rec.at, now), nil
}

func (f *fsm) expired(at int64, now time.Time) bool {
	return now.UnixNano()-at >= int64(f.window)
}

func (f *fsm) recordIdempotency(b *applyBatch, env envelope, l *raft.Log, result []byte) {
	suffix := idemSuffix(env)
	at := l.AppendedAt.UnixNano()
	v := []byte{idemRecordVersion}
	v = appendString(v, env.typ)
	v = append(v, env.fingerprint...)
	v = binary.BigEndian.AppendUint64(v, l.Index)
	v = binary.BigEndian.AppendUint64(v, uint64(at))
	v = append(v, result...)
	b.set(prefixIdemRecords+suffix, v)
	b.set(idemExpiryKey(at, l.Index), []byte(suffix))
}

func idemExpiryKey(at int64, index uint64) string {
	k := binary.BigEndian.AppendUint64([]byte(prefixIdemExpiry), uint64(at))
	return string(binary.BigEndian.AppendUint64(k, index))
}

func decodeIdemRecord(v []byte) (idemRecord, error) {
	r := reader{b: v}
	var rec idemRecord
	if ver := r.byte(); ver != idemRecordVersion {
		r.fail("version %d", ver)
	}
	rec.typ = r.string(maxTypeBytes)
	if len(r.b) < fingerprintSize+16 {
		r.fail("truncated")
	}
	if r.err == nil {
		rec.fingerprint = r.b[:fingerprintSize]
		r.b = r.b[fingerprintSize:]
	}
	rec.index = r.u64()
	rec.at = int64(r.u64())
	rec.result = clone(r.rest())
	if r.err != nil {
		return rec, fmt.Errorf("%w: idempotency record: %w", ErrCorrupt, r.err)
	}
	return rec, nil
}

// evictIdempotency deletes records that expired by now, oldest first, at
// most maxEvictPerBatch at a time. A record is deleted only if it is still
// the one its expiry entry was written for (the key may have been reused
// since).
var errStopScan = errors.New("stop scan")

func (f *fsm) evictIdempotency(b *applyBatch, now time.Time) error {
	type expiry struct {
		key, suffix string
		index       uint64
	}
	var due []expiry
	err := f.store.Scan(context.Background(), []byte(prefixIdemExpiry), func(k, v []byte) error {
		if len(k) != len(prefixIdemExpiry)+16 || len(due) == maxEvictPerBatch {
			return errStopScan
		}
		at := int64(binary.BigEndian.Uint64(k[len(prefixIdemExpiry):]))
		if !f.expired(at, now) {
			return errStopScan
		}
		due = append(due, expiry{key: string(k), suffix: string(v), index: binary.BigEndian.Uint64(k[len(prefixIdemExpiry)+8:])})
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return fmt.Errorf("collecting idempotency records: %w", err)
	}
	for _, e := range due {
		b.delete(e.key)
		v, err := b.get(prefixIdemRecords + e.suffix)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if rec, err := decodeIdemRecord(v); err != nil || rec.index == e.index {
			b.delete(prefixIdemRecords + e.suffix)
		}
	}
	return nil
}

// Snapshots. Persist streams the replicated prefix from the store while
// raft keeps applying, through one store scan, which is a consistent
// snapshot of the store: the applied index in it matches the state in it,
// even if it is newer than the index raft files the snapshot under. A node
// restoring it skips the entries up to that applied index, so nothing is
// applied twice.
//
// Format: magic, then records (uvarint key length, key relative to the
// prefix, uvarint value length, value), then a zero key length and the
// record count as 8 bytes, then end of stream.

var snapshotMagic = []byte("creto-consensus-snapshot-v1\n")

const maxSnapshotValue = 1 << 26

// Snapshot is called by raft between applies; the work happens in Persist.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.haltErr(); err != nil {
		return nil, err
	}
	return fsmSnapshot{store: f.store}, nil
}

type fsmSnapshot struct{ store kv.Store }

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	w := &snapshotWriter{w: bufio.NewWriter(sink)}
	w.write(snapshotMagic)
	var n uint64
	err := s.store.Scan(context.Background(), []byte(prefixReplicated), func(k, v []byte) error {
		w.write(appendBytes(nil, k[len(prefixReplicated):]))
		w.write(appendBytes(nil, v))
		n++
		return w.err
	})
	w.write(binary.AppendUvarint(nil, 0))
	w.write(be64(n))
	if err == nil {
		err = w.flush()
	}
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("consensus: snapshot: %w", err)
	}
	return sink.Close()
}

func (fsmSnapshot) Release() {}

// Restore replaces the replicated state with a snapshot's, in one atomic
// store write, and takes its applied index.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	recs, applied, err := readSnapshot(rc, false)
	if err != nil {
		return err
	}
	var b kv.Batch
	err = f.store.Scan(context.Background(), []byte(prefixReplicated), func(k, _ []byte) error {
		b.Delete(k)
		return nil
	})
	if err != nil {
		return fmt.Errorf("consensus: restore: %w", err)
	}
	for _, r := range recs {
		b.Set(r[0], r[1])
	}
	if err := f.store.Apply(context.Background(), &b); err != nil {
		return fmt.Errorf("consensus: restore: %w", err)
	}
	f.applied.Store(applied)
	f.log.Info("consensus: restored state from a snapshot", "applied_index", applied, "records", len(recs))
	return nil
}

// readSnapshot decodes a snapshot into store records. With firstOnly it
// stops after the first record, to learn the applied index cheaply.
func readSnapshot(r io.Reader, firstOnly bool) (recs [][2][]byte, applied uint64, err error) {
	br := snapshotReader{bufio.NewReader(r)}
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || !bytes.Equal(magic, snapshotMagic) {
		return nil, 0, fmt.Errorf("%w: snapshot header", ErrCorrupt)
	}
	for {
		k, err := br.field(kv.MaxKeySize)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: snapshot record %d: %w", ErrCorrupt, len(recs), err)
		}
		if len(k) == 0 {
			break
		}
		v, err := br.field(maxSnapshotValue)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: snapshot record %d: %w", ErrCorrupt, len(recs), err)
		}
		key := append([]byte(prefixReplicated), k...)
		if string(key) == keyApplied {
			if len(v) != 8 {
				return nil, 0, fmt.Errorf("%w: snapshot applied index of %d bytes", ErrCorrupt, len(v))
			}
			applied = binary.BigEndian.Uint64(v)
		}
		if firstOnly {
			return nil, applied, nil
		}
		recs = append(recs, [2][]byte{key, v})
	}
	var count [8]byte
	if _, err := io.ReadFull(br, count[:]); err != nil || binary.BigEndian.Uint64(count[:]) != uint64(len(recs)) {
		return nil, 0, fmt.Errorf("%w: snapshot truncated: trailer does not count %d records", ErrCorrupt, len(recs))
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, 0, fmt.Errorf("%w: snapshot has trailing data", ErrCorrupt)
	}
	return recs, applied, nil
}

type snapshotWriter struct {
	w   *bufio.Writer
	err error
}

func (w *snapshotWriter) write(b []byte) {
	if w.err == nil {
		_, w.err = w.w.Write(b)
	}
}

func (w *snapshotWriter) flush() error {
	if w.err == nil {
		w.err = w.w.Flush()
	}
	return w.err
}

type snapshotReader struct{ *bufio.Reader }

// field reads a length-prefixed field of at most limit bytes.
func (r snapshotReader) field(limit int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > uint64(limit) {
		return nil, fmt.Errorf("field of %d bytes (limit %d)", n, limit)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}
