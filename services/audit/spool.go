package audit

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/creto-systems/creto/internal/frames"
)

// The spool is a Logger's durable local file for critical events it could
// not hand to the log: appended and fsync'd by its own goroutine (so no
// emitter waits for a disk), read back at start, and truncated once
// everything in it has been committed to the log.
//
// Its frames (internal/frames) carry a u64 sequence number, a u8 class,
// and the record's leaf encoding minus its 17-byte header (what follows
// version, index and logged_at). Reading stops at the first torn or
// damaged frame, and the file is cut there.

// spooled is an event with its sequence number and, once it is bound for
// the spool, its encoding (validated on the way in, so the spool never
// holds an event the log would refuse).
type spooled struct {
	seq  uint64
	ev   Event
	tail []byte
}

type spool struct {
	path string
	log  *slog.Logger
	// onDurable is called after events become durable, to wake the
	// Logger's writer.
	onDurable func()

	fileMu sync.Mutex // serialises writes and truncation of f
	f      *os.File
	size   int64 // bytes of whole frames in f

	mu      sync.Mutex
	queue   []spooled // waiting to be written and fsync'd
	durable []spooled // in the file, not yet committed to the log; by seq
	failed  uint64    // write or fsync failures

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

// openSpool opens (creating with mode 0600) the spool at path and reads
// back what a previous process left in it.
func openSpool(path string, log *slog.Logger, onDurable func()) (*spool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	s := &spool{path: path, log: log, onDurable: onDurable, f: f,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.load(); err != nil {
		f.Close()
		return nil, err
	}
	go s.run()
	return s, nil
}

func (s *spool) load() error {
	r := bufio.NewReader(s.f)
	var off int64
	for {
		ev, seq, n, err := readFrame(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, frames.ErrDamaged) {
			// A torn or damaged tail: keep what came before it.
			s.log.Warn("audit spool: cutting a damaged tail", "path", s.path, "offset", off, "error", err)
			break
		}
		if err != nil {
			// The file could not be read: cutting it here would drop the
			// events after this point, so the spool does not open.
			return err
		}
		s.durable = append(s.durable, spooled{seq: seq, ev: ev})
		off += n
	}
	if err := s.f.Truncate(off); err != nil {
		return err
	}
	if _, err := s.f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	s.size = off
	// Frames are in the order they became durable, which is not always
	// the order of their events; a previous process's sequence numbers
	// give that order, and are then renumbered from 0 for this one.
	slices.SortStableFunc(s.durable, func(a, b spooled) int { return cmp.Compare(a.seq, b.seq) })
	for i := range s.durable {
		s.durable[i].seq = uint64(i)
	}
	return nil
}

// readFrame reads one frame and returns its event, sequence number and
// size, io.EOF at a clean end.
func readFrame(r *bufio.Reader) (Event, uint64, int64, error) {
	payload, n, err := frames.Read(r, 9, maxEncodedRecordSize+9)
	if err != nil {
		return Event{}, 0, 0, err
	}
	seq, class := binary.BigEndian.Uint64(payload), Class(payload[8])
	// The spool keeps the tail; index and logged_at are the log's to set.
	leaf := appendLeafHeader(make([]byte, 0, leafHeaderSize+len(payload)-9), 0, 0)
	r2, err := decodeLeaf(append(leaf, payload[9:]...))
	if err != nil || class > Critical {
		return Event{}, 0, 0, fmt.Errorf("%w: bad event: %v", frames.ErrDamaged, err)
	}
	r2.LoggedAt = time.Time{}
	return Event{Class: class, Record: r2}, seq, n, nil
}

func appendFrame(dst []byte, seq uint64, ev *Event, tail []byte) []byte {
	return frames.Append(dst, binary.BigEndian.AppendUint64(nil, seq), []byte{byte(ev.Class)}, tail)
}

// add queues events for the spool goroutine; it never blocks on the disk.
func (s *spool) add(evs ...spooled) {
	s.mu.Lock()
	s.queue = append(s.queue, evs...)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run writes and fsyncs queued events, in groups, until stopped; then it
// writes what is left.
func (s *spool) run() {
	defer close(s.done)
	frames.WriteLoop(s.wake, s.stop, s.flush)
}

// flush writes everything queued; it reports false if a write failed, in
// which case the events stay queued for the next try.
func (s *spool) flush() bool {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	s.mu.Lock()
	batch := slices.Clone(s.queue)
	s.mu.Unlock()
	if len(batch) == 0 {
		return true
	}
	var buf []byte
	for i := range batch {
		buf = appendFrame(buf, batch[i].seq, &batch[i].ev, batch[i].tail)
	}
	_, err := s.f.Write(buf)
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		// Cut what may have been written, so the file stays whole frames.
		_ = s.f.Truncate(s.size)
		_, _ = s.f.Seek(s.size, io.SeekStart)
		s.mu.Lock()
		s.failed++
		s.mu.Unlock()
		s.log.Error("audit spool: write failed; retrying", "path", s.path, "error", err)
		return false
	}
	s.size += int64(len(buf))
	s.mu.Lock()
	s.queue = s.queue[len(batch):]
	for _, e := range batch {
		e.tail = nil // the file has it now
		i, _ := slices.BinarySearchFunc(s.durable, e.seq, func(x spooled, seq uint64) int { return cmp.Compare(x.seq, seq) })
		s.durable = slices.Insert(s.durable, i, e)
	}
	s.mu.Unlock()
	s.onDurable()
	return true
}

// peek returns up to n durable events in sequence order.
func (s *spool) peek(n int) []spooled {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.durable[:min(n, len(s.durable))])
}

// minQueued returns the smallest sequence number still waiting to become
// durable, or MaxUint64: the Logger delivers nothing newer before it, so
// the log receives events in the order they were emitted.
func (s *spool) minQueued() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := uint64(math.MaxUint64)
	for _, e := range s.queue {
		m = min(m, e.seq)
	}
	return m
}

// committed drops the durable events with these sequence numbers (in
// increasing order), now in the log, and empties the file once nothing in
// it is still owed to the log.
func (s *spool) committed(seqs []uint64) {
	if len(seqs) == 0 {
		return
	}
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	s.mu.Lock()
	s.durable = slices.DeleteFunc(s.durable, func(e spooled) bool {
		_, found := slices.BinarySearch(seqs, e.seq)
		return found
	})
	empty := len(s.durable) == 0 && len(s.queue) == 0
	s.mu.Unlock()
	if !empty || s.size == 0 {
		return
	}
	err := s.f.Truncate(0)
	if err == nil {
		_, err = s.f.Seek(0, io.SeekStart)
	}
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		// The events are in the log; a spool left whole replays them once
		// more at the next start.
		s.log.Warn("audit spool: truncation failed", "path", s.path, "error", err)
		return
	}
	s.size = 0
}

// counts returns the events waiting in the spool and the write failures.
func (s *spool) counts() (pending int, failed uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) + len(s.durable), s.failed
}

// close writes what is queued and closes the file.
func (s *spool) close() error {
	close(s.stop)
	<-s.done
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	return s.f.Close()
}
