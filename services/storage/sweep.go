package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/creto-systems/creto/internal/kv"
)

// sweepBatch caps the versions one sweep commit deletes.
const sweepBatch = 1000

// Sweep deletes expired versions from the store and their files, and
// returns how many it deleted. The sweeper calls it every SweepInterval;
// expired versions are invisible before that, so sweeping only reclaims
// space and quota. A version still under compliance retention is never
// swept, whatever its expiry says.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	if err := s.enter(); err != nil {
		return 0, fmt.Errorf("storage: sweep: %w", err)
	}
	defer s.life.RUnlock()
	n, err := s.sweep(ctx)
	if err != nil {
		return n, fmt.Errorf("storage: sweep: %w", err)
	}
	return n, nil
}

func (s *Service) sweep(ctx context.Context) (int, error) {
	total := 0
	for {
		n, more, err := s.sweepOnce(ctx)
		total += n
		// n == 0 with more due means a full batch of versions that could
		// not be swept; the next tick tries again.
		if err != nil || !more || n == 0 {
			return total, err
		}
	}
}

// sweepOnce deletes up to sweepBatch expired versions in one commit, and
// reports whether more may be due.
func (s *Service) sweepOnce(ctx context.Context) (int, bool, error) {
	nowMS := s.now().UnixMilli()
	var due [][]byte // object keys, in expiry order
	err := s.store.Scan(ctx, []byte(prefixExpiry), func(k, _ []byte) error {
		rest := k[len(prefixExpiry):]
		if len(rest) < 9 || rest[8] != 0 {
			return corrupt("expiry index key %s", quote(string(k)))
		}
		if int64(binary.BigEndian.Uint64(rest)) > nowMS || len(due) == sweepBatch {
			return errStop
		}
		due = append(due, append([]byte(prefixObj), rest[9:]...))
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return 0, false, err
	}
	if len(due) == 0 {
		return 0, false, nil
	}
	// Sweeping is rare and batched, so it takes every object lock, in
	// order, rather than one per version: deletes, updates and commits
	// wait for one fsync.
	for i := range s.locks {
		s.locks[i].Lock()
	}
	defer func() {
		for i := range s.locks {
			s.locks[i].Unlock()
		}
	}()
	var doomed []*record
	for _, key := range due {
		v, err := s.store.Get(ctx, key)
		if errors.Is(err, kv.ErrNotFound) {
			continue // deleted since the scan
		}
		if err != nil {
			return 0, false, err
		}
		r, err := decodeRecord(key, v)
		if err != nil {
			return 0, false, err
		}
		if !r.expiredAt(nowMS) {
			continue // its expiry moved since the scan
		}
		if r.retainedAt(nowMS) {
			// Store and UpdateMetadata refuse such an expiry; if one got
			// into the store anyway, retention wins.
			slog.Error("storage: an expired version is under retention; not sweeping it", "ref", r.ref().String())
			continue
		}
		doomed = append(doomed, r)
	}
	if len(doomed) == 0 {
		return 0, len(due) == sweepBatch, nil
	}
	if err := s.remove(ctx, doomed); err != nil {
		return 0, false, err
	}
	return len(doomed), len(due) == sweepBatch, nil
}

func (s *Service) sweepLoop() {
	defer close(s.sweepDone)
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopSweep:
			return
		case <-t.C:
			if n, err := s.Sweep(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
				slog.Warn("storage: sweeping expired versions failed; will retry", "err", err)
			} else if n > 0 {
				slog.Debug("storage: swept expired versions", "count", n)
			}
		}
	}
}

// keyParts splits "<bucket>\0<key>\0<vid>".
func keyParts(b []byte) (bucket, key, vid string, ok bool) {
	i := bytes.IndexByte(b, 0)
	j := bytes.LastIndexByte(b, 0)
	if i < 0 || j <= i {
		return "", "", "", false
	}
	return string(b[:i]), string(b[i+1 : j]), string(b[j+1:]), true
}
