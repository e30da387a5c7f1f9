package client

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"google.golang.org/protobuf/proto"

	auditv1 "github.com/creto-systems/creto/api/creto/audit/v1"
	"github.com/creto-systems/creto/internal/frames"
)

// The spool is the audit logger's durable file for critical events: every
// one is appended and fsync'd by the spool's own goroutine (no emitter
// waits for a disk), and read back at start. Delivery is in order, so the
// events the log has are always the oldest; a settle frame records how
// far that goes, and once nothing in the file is still owed to the log
// the file is emptied.
//
// Its frames (internal/frames) carry a u8 type, a u64 sequence number,
// and for an event the protobuf encoding of its record. Reading stops at
// the first torn or damaged frame.

const (
	frameEvent  = 1 // an event: its record follows
	frameSettle = 2 // every event before this sequence number is settled
	// maxSpoolFrame bounds a frame: the log's records are at most 64 KiB
	// encoded, and a record here is near that size.
	maxSpoolFrame = 1 << 20
)

type spool struct {
	path string
	log  *slog.Logger

	fileMu sync.Mutex // serialises writes and truncation of f
	f      *os.File

	mu       sync.Mutex
	queue    []byte // frames waiting to be written
	next     uint64 // one past the last event added
	settled  uint64 // every event below it is in the log or given up
	failures uint64

	wake, stop, done chan struct{}
}

// openSpool opens the spool at path (creating it, mode 0600), reads back
// the events a previous process left unsettled, and rewrites the file
// with just them, numbered from 0 in their order: what the logger
// delivers first.
func openSpool(path string, log *slog.Logger) (*spool, []*pending, error) {
	left, err := readSpool(path, log)
	if err != nil {
		return nil, nil, err
	}
	// The compacted file goes beside the old one and replaces it in one
	// rename, so a crash leaves one or the other whole.
	tmp := path + ".tmp"
	var buf []byte
	for i, p := range left {
		p.seq = uint64(i)
		body, err := proto.Marshal(p.rec)
		if err != nil {
			return nil, nil, err
		}
		buf = appendSpoolFrame(buf, frameEvent, p.seq, body)
	}
	if err := writeSynced(tmp, buf); err != nil {
		return nil, nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, nil, err
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, err
	}
	s := &spool{path: path, log: log, f: f, next: uint64(len(left)),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s, left, nil
}

// readSpool returns the unsettled events of the file at path, in order.
func readSpool(path string, log *slog.Logger) ([]*pending, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var events []*pending
	var settled uint64
	for off := int64(0); ; {
		typ, seq, body, n, err := readSpoolFrame(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, frames.ErrDamaged) {
			log.Warn("creto client: audit spool: ignoring a damaged tail", "path", path, "offset", off, "err", err)
			break
		}
		if err != nil {
			// Not damage but a failed read: the spool is rewritten from
			// what was read, so going on would drop the rest.
			return nil, err
		}
		off += n
		switch typ {
		case frameSettle:
			settled = max(settled, seq)
		case frameEvent:
			rec := &auditv1.AuditRecord{}
			if err := proto.Unmarshal(body, rec); err != nil {
				log.Warn("creto client: audit spool: ignoring a damaged tail", "path", path, "offset", off, "err", err)
				return keep(events, settled), nil
			}
			events = append(events, newPending(seq, rec, true))
		}
	}
	return keep(events, settled), nil
}

// keep returns the events at or after settled.
func keep(events []*pending, settled uint64) []*pending {
	var out []*pending
	for _, p := range events {
		if p.seq >= settled {
			out = append(out, p)
		}
	}
	return out
}

// readSpoolFrame reads one frame: its type, sequence number, body and
// size; io.EOF at a clean end.
func readSpoolFrame(r *bufio.Reader) (typ byte, seq uint64, body []byte, n int64, err error) {
	payload, n, err := frames.Read(r, 9, maxSpoolFrame)
	if err != nil {
		return 0, 0, nil, 0, err
	}
	typ = payload[0]
	if typ != frameEvent && typ != frameSettle {
		return 0, 0, nil, 0, fmt.Errorf("%w: frame type %d", frames.ErrDamaged, typ)
	}
	return typ, binary.BigEndian.Uint64(payload[1:9]), payload[9:], n, nil
}

func appendSpoolFrame(dst []byte, typ byte, seq uint64, body []byte) []byte {
	return frames.Append(dst, []byte{typ}, binary.BigEndian.AppendUint64(nil, seq), body)
}

// add queues an event for the file; it never waits for the disk.
func (s *spool) add(p *pending) error {
	body, err := proto.Marshal(p.rec)
	if err != nil {
		return err
	}
	if len(body)+9 > maxSpoolFrame {
		return fmt.Errorf("a record of %d bytes", len(body))
	}
	s.mu.Lock()
	s.queue = appendSpoolFrame(s.queue, frameEvent, p.seq, body)
	s.next = p.seq + 1
	s.mu.Unlock()
	s.poke()
	return nil
}

// settle records that every event before seq is in the log or given up.
func (s *spool) settle(seq uint64) {
	s.mu.Lock()
	if seq > s.settled {
		s.settled = seq
		s.queue = appendSpoolFrame(s.queue, frameSettle, seq, nil)
	}
	s.mu.Unlock()
	s.poke()
}

func (s *spool) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run writes what is queued until stopped, then what is left.
func (s *spool) run() {
	defer close(s.done)
	frames.WriteLoop(s.wake, s.stop, s.flush)
}

// flush writes and fsyncs the queued frames, then empties the file if
// nothing in it is owed to the log; it reports false if a write failed,
// leaving the frames queued for the next try.
func (s *spool) flush() bool {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	s.mu.Lock()
	buf := s.queue
	empty := s.settled >= s.next
	s.mu.Unlock()
	if len(buf) > 0 {
		fi, err := s.f.Stat()
		if err == nil {
			if _, err = s.f.Write(buf); err == nil {
				err = s.f.Sync()
			}
			if err != nil {
				// Cut what may have been written, so the file stays whole
				// frames.
				_ = s.f.Truncate(fi.Size())
			}
		}
		if err != nil {
			s.mu.Lock()
			s.failures++
			s.mu.Unlock()
			s.log.Error("creto client: audit spool: write failed; retrying", "path", s.path, "err", err)
			return false
		}
		s.mu.Lock()
		if s.queue = s.queue[len(buf):]; len(s.queue) == 0 {
			s.queue = nil // let the written frames' memory go
		}
		empty = s.settled >= s.next && s.queue == nil
		s.mu.Unlock()
	}
	if empty {
		if fi, serr := s.f.Stat(); serr == nil && fi.Size() > 0 {
			err := s.f.Truncate(0)
			if err == nil {
				err = s.f.Sync()
			}
			if err != nil {
				// The events are in the log; a file left whole replays
				// them at the next start, which finds them logged.
				s.log.Warn("creto client: audit spool: emptying failed", "path", s.path, "err", err)
			}
		}
	}
	return true
}

// failed returns how many writes failed.
func (s *spool) failed() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failures
}

// close writes what is queued and closes the file.
func (s *spool) close() error {
	close(s.stop)
	<-s.done
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	s.mu.Lock()
	left := len(s.queue)
	s.mu.Unlock()
	err := s.f.Close()
	if left > 0 {
		err = errors.Join(err, fmt.Errorf("%d bytes of the spool could not be written", left))
	}
	return err
}

// writeSynced writes a file and fsyncs it.
func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// syncDir fsyncs a directory, so a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
