package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/creto-systems/creto/internal/kv"
)

// minCheckpointGap bounds how often proofs for fresh records can make the
// log sign: requests within it share the next checkpoint, so a client
// asking for proof after proof cannot make the log sign and store a
// checkpoint per request.
const minCheckpointGap = 100 * time.Millisecond

// appendReq is one Append waiting for its commit.
type appendReq struct {
	recs []pending
	done chan appendResult // buffered: the sequencer never blocks on it
}

type appendResult struct {
	first, loggedAt int64
	err             error
}

// sequencer is the state only the sequencer goroutine touches: the
// provisional tree while a batch is built, and what the next commit
// needs. It is published to Service.t only after the commit is durable.
type sequencer struct {
	batch    kv.Batch
	reqs     []*appendReq
	size     int64
	last     [maxLevels]tlog.Hash
	added    [maxLevels][]tlog.Hash
	loggedAt int64
	buf      []byte // scratch for leaves; Batch.Set copies
	key      []byte // scratch for keys
	// frontier serves tlog's reads while appending record q.size.
	frontier tlog.HashReader
	postings map[postingKey][]int64

	cp        signedCheckpoint
	cpAt      time.Time // when cp was signed by this process (wall clock); zero: never
	cpWaiters []chan error
	cpTimer   *time.Timer

	page             int64 // the page the last record went to, -1 for none
	pageMin, pageMax int64 // its timestamp range
}

func (q *sequencer) init(t *tree, latest signedCheckpoint, loggedAt int64) {
	q.size, q.last, q.cp, q.loggedAt, q.page = t.size, t.last, latest, loggedAt, -1
	q.postings = map[postingKey][]int64{}
	q.frontier = tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) {
		return frontierReader(q.size, &q.last).ReadHashes(ix)
	})
}

// loadPage restores the timestamp range of a partly filled last page, so
// its summary keeps covering the records already in it.
func (q *sequencer) loadPage(ctx context.Context, store kv.Store, t *tree, latest signedCheckpoint, loggedAt int64) error {
	q.init(t, latest, loggedAt)
	if t.size == 0 {
		return nil
	}
	page := (t.size - 1) >> pageBits
	v, err := store.Get(ctx, pageKey([]byte(prefixPageTimes), page))
	if err != nil {
		return fmt.Errorf("page %d summary: %w", page, err)
	}
	if len(v) != 16 {
		return detail(ErrMalformed, "page %d summary", page)
	}
	q.page, q.pageMin, q.pageMax = page, int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:]))
	return nil
}

// run is the sequencer goroutine: it commits queued appends in groups,
// signs checkpoints when due or asked for, and on stop commits what is
// queued, signs a final checkpoint and exits.
func (s *Service) run() {
	defer close(s.done)
	q := &s.seq
	tick := time.NewTicker(s.cfg.CheckpointInterval)
	defer tick.Stop()
	q.cpTimer = time.NewTimer(time.Hour)
	q.cpTimer.Stop()
	for {
		select {
		case r := <-s.reqs:
			q.reqs = append(q.reqs[:0], r)
			s.gather()
			s.commit()
		case w := <-s.cpReqs:
			q.cpWaiters = append(q.cpWaiters, w)
			s.checkpointIfDue()
		case <-tick.C:
			s.checkpointIfDue()
		case <-q.cpTimer.C:
			s.checkpointIfDue()
		case <-s.stop:
			for {
				q.reqs = q.reqs[:0]
				s.gather()
				if len(q.reqs) == 0 {
					break
				}
				s.commit()
			}
			s.finalCheckpoint()
			return
		}
	}
}

// gather adds whatever appends are queued, up to MaxCommitRecords, to the
// group being committed.
func (s *Service) gather() {
	q := &s.seq
	n := 0
	for _, r := range q.reqs {
		n += len(r.recs)
	}
	for n < s.cfg.MaxCommitRecords {
		select {
		case r := <-s.reqs:
			q.reqs = append(q.reqs, r)
			n += len(r.recs)
		default:
			return
		}
	}
}

// checkpointDue reports whether the next commit should carry a new
// checkpoint: the log grew since the last one, and either the interval
// has passed or someone waits for one and the minimum gap has passed.
// When someone waits but the gap has not passed, it arms the timer.
func (s *Service) checkpointDue(now time.Time) bool {
	q := &s.seq
	if q.size == q.cp.Size {
		return false
	}
	since := now.Sub(q.cpAt)
	if since >= s.cfg.CheckpointInterval || (len(q.cpWaiters) > 0 && since >= minCheckpointGap) {
		return true
	}
	if len(q.cpWaiters) > 0 {
		q.cpTimer.Reset(minCheckpointGap - since)
	}
	return false
}

// checkpointIfDue signs and commits a checkpoint on its own when one is
// due, and releases waiters that the latest already satisfies.
func (s *Service) checkpointIfDue() {
	q := &s.seq
	if s.failed.Load() == nil && s.checkpointDue(time.Now()) {
		q.reqs = q.reqs[:0]
		s.commit()
		return
	}
	if q.size == q.cp.Size {
		s.releaseWaiters(nil)
	}
}

// finalCheckpoint covers every committed record before the log closes.
func (s *Service) finalCheckpoint() {
	q := &s.seq
	if s.failed.Load() == nil && q.size > q.cp.Size {
		q.cpAt = time.Time{}
		q.reqs = q.reqs[:0]
		s.commit()
	}
	s.releaseWaiters(ErrClosed)
}

func (s *Service) releaseWaiters(err error) {
	q := &s.seq
	for _, w := range q.cpWaiters {
		w <- err
	}
	q.cpWaiters = q.cpWaiters[:0]
}

// commit appends the gathered requests (possibly none) in one store batch
// with the new tree hashes, index entries and size, plus a checkpoint if
// one is due, commits it with one fsync, and only then publishes the new
// tree and answers the callers.
func (s *Service) commit() {
	q := &s.seq
	if p := s.failed.Load(); p != nil {
		s.answer(0, 0, fmt.Errorf("%w: %w", ErrUnavailable, *p))
		return
	}
	b := &q.batch
	b.Reset()
	start := q.size
	q.loggedAt = max(q.loggedAt, s.now().UnixNano())
	pin := s.t.pin // only this goroutine changes it
	for l := range q.added {
		q.added[l] = q.added[l][:0]
	}
	for _, r := range q.reqs {
		for i := range r.recs {
			if err := s.appendOne(b, &r.recs[i], pin); err != nil {
				s.fail(err, start)
				return
			}
		}
	}
	if q.size > start {
		q.writePage(b)
		q.writePostings(b)
	}
	b.Set([]byte(keySize), binary.BigEndian.AppendUint64(nil, uint64(q.size)))
	var cp signedCheckpoint
	// Checkpoint cadence runs on the process's clock, not the log's
	// (which tests set): it paces work, it is not a fact in the log.
	now := time.Now()
	withCP := s.checkpointDue(now)
	if withCP {
		var err error
		if cp, err = s.sign(q.size); err != nil {
			s.fail(err, start)
			return
		}
		b.Set(checkpointKey(cp.Size), cp.note)
		b.Set([]byte(keyLatest), cp.note)
	}
	// The sequencer's own context: a caller giving up must not abandon a
	// commit that other callers' records share.
	if err := s.store.Apply(context.Background(), b); err != nil {
		s.fail(err, start)
		return
	}
	s.commits.Add(1)
	s.appended.Add(uint64(q.size - start))
	if withCP {
		s.signed.Add(1)
	}
	s.mu.Lock()
	s.t.publish(q.size, &q.last, &q.added)
	if withCP {
		s.latest = cp
	}
	s.mu.Unlock()
	if withCP {
		q.cp, q.cpAt = cp, now
		s.releaseWaiters(nil)
	}
	s.answer(start, q.loggedAt, nil)
}

// appendOne adds one record at index q.size to the batch: the leaf, the
// tree hashes tlog says to store for it, its index entries and its page's
// timestamp range.
func (s *Service) appendOne(b *kv.Batch, p *pending, pin int) error {
	q := &s.seq
	idx := q.size
	// Batch.Set copies, so the leaf and keys are built in scratch space.
	leaf := append(appendLeafHeader(q.buf[:0], uint64(idx), q.loggedAt), p.tail...)
	hashes, err := tlog.StoredHashesForRecordHash(idx, tlog.RecordHash(leaf), q.frontier)
	if err != nil {
		return err
	}
	q.buf = leaf
	q.key = binary.BigEndian.AppendUint64(append(q.key[:0], prefixRecords...), uint64(idx))
	b.Set(q.key, leaf)
	for l, h := range hashes {
		q.key = binary.BigEndian.AppendUint64(append(append(q.key[:0], prefixHashes...), byte(l)), uint64(idx>>l))
		b.Set(q.key, h[:])
		q.last[l] = h
		if l >= pin {
			q.added[l] = append(q.added[l], h)
		}
	}
	for _, f := range [...]postingKey{{indexWho, p.who, 0}, {indexWhat, p.what, 0}, {indexResource, p.resource, 0}} {
		if f.value != "" {
			f.page = idx >> pageBits
			q.postings[f] = append(q.postings[f], idx)
		}
	}
	if page := idx >> pageBits; page != q.page {
		if q.page >= 0 {
			q.writePage(b) // the previous page is full: its range is final
		}
		q.page, q.pageMin, q.pageMax = page, p.ts, p.ts
	} else {
		q.pageMin, q.pageMax = min(q.pageMin, p.ts), max(q.pageMax, p.ts)
	}
	q.size++
	return nil
}

// postingKey is one index list being built: a field value's records in
// one page.
type postingKey struct {
	field byte
	value string
	page  int64
}

// writePostings writes, for each field value the commit's records carry,
// one index entry listing them: the key is the value's prefix, the page
// and the first record's index; the value, the gaps to the others as
// uvarints. A commit of many records by a few agents writes a few keys
// rather than three per record, which is most of what keeps group commit
// fast; a commit of one record writes one per field, as before.
func (q *sequencer) writePostings(b *kv.Batch) {
	for k, idxs := range q.postings {
		// The first index's top 6 bytes are the page, so the page's
		// lists share a prefix.
		key := binary.BigEndian.AppendUint64(indexPrefix(k.field, k.value), uint64(idxs[0]))
		v := q.buf[:0]
		for i := 1; i < len(idxs); i++ {
			v = binary.AppendUvarint(v, uint64(idxs[i]-idxs[i-1]))
		}
		b.Set(key, v)
		q.buf = v
		delete(q.postings, k)
	}
}

// writePage records the timestamp range of the current page.
func (q *sequencer) writePage(b *kv.Batch) {
	v := binary.BigEndian.AppendUint64(q.buf[:0], uint64(q.pageMin))
	b.Set(pageKey([]byte(prefixPageTimes), q.page), binary.BigEndian.AppendUint64(v, uint64(q.pageMax)))
}

// sign makes the checkpoint of the provisional tree of size records.
func (s *Service) sign(size int64) (signedCheckpoint, error) {
	root, err := tlog.TreeHash(size, frontierReader(size, &s.seq.last))
	if err != nil {
		return signedCheckpoint{}, err
	}
	c := Checkpoint{Origin: s.keys.verifier.origin, Size: size, Root: root}
	note, err := signCheckpoint(c, s.keys.ed, s.keys.hybrid)
	if err != nil {
		return signedCheckpoint{}, fmt.Errorf("sign checkpoint: %w", err)
	}
	return signedCheckpoint{c, note}, nil
}

// fail stops the log taking appends. What the failed commit left on disk
// is unknown (an fsync error can lose writes the OS had accepted), so the
// log does not guess: it answers everyone with ErrUnavailable, keeps
// serving reads of what was published, and a restart reloads the truth.
func (s *Service) fail(err error, start int64) {
	s.seq.size = start
	s.failed.CompareAndSwap(nil, &err)
	s.cfg.Logger.Error("audit log commit failed; the log takes no more appends until restarted", "error", err)
	s.answer(0, 0, fmt.Errorf("%w: %w", ErrUnavailable, err))
	s.releaseWaiters(fmt.Errorf("%w: %w", ErrUnavailable, err))
}

// answer tells every gathered request its outcome: on success, each its
// own first index, in the order they were appended.
func (s *Service) answer(first, loggedAt int64, err error) {
	q := &s.seq
	for _, r := range q.reqs {
		r.done <- appendResult{first: first, loggedAt: loggedAt, err: err}
		first += int64(len(r.recs))
	}
	q.reqs = q.reqs[:0]
}

// requestCheckpoint asks the sequencer for a checkpoint covering the
// records committed so far and waits for it.
func (s *Service) requestCheckpoint(ctx context.Context) error {
	w := make(chan error, 1)
	select {
	case s.cpReqs <- w:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-w:
		if errors.Is(err, ErrClosed) {
			return ErrClosed
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
