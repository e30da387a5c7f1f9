package storage

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/crypto"
)

// secretLabel is what the Sealer binds the node secret to.
var secretLabel = []byte("creto-storage/node-secret/v1")

// HKDF labels of the keys derived from the node secret.
const (
	presignKeyInfo  = "creto-storage/presign/v1"
	contentHashInfo = "creto-storage/content-hash/v1\x00"
)

const (
	secretSize = 32
	// lockStripes spreads commits over this many mutexes by (bucket, key),
	// so commits to different objects run (and fsync) in parallel while a
	// check-then-write on one object is atomic.
	lockStripes = 64
	// shards is how many directories object files are spread over.
	shards = 256
)

// Service is the node's encrypted object storage (seed §3). It is safe for
// concurrent use.
type Service struct {
	cfg   settings
	store kv.Store
	ids   Identity
	p     crypto.Provider
	dir   string // object files, in shard directories
	now   func() time.Time

	secret     []byte // the node secret, wiped by Close
	presignKey []byte

	// life guards against Close as in services/nhi: every public method
	// holds a read lock while it runs, Close takes the write lock. closing
	// is closed first, so long streams stop at their next chunk.
	life      sync.RWMutex
	closed    bool
	closing   chan struct{}
	closeOnce sync.Once

	streams chan struct{} // one token per stream in progress
	bufs    sync.Pool     // *[]byte of ChunkSizeBytes + crypto.StreamOverhead
	seed    maphash.Seed
	locks   [lockStripes]sync.Mutex
	quota   *quotas

	vidMu   sync.Mutex
	lastVID int64 // unix nanoseconds of the last version id handed out

	stopSweep, sweepDone chan struct{}
}

// Open starts the service: object files under dir (created if needed),
// metadata in the node's store, data keys wrapped to owners' keys through
// ids, and the node secret sealed by sealer. On first start it creates and
// seals the node secret. It rebuilds each owner's usage from the records,
// deletes object files no record refers to (left by a crash between a
// file's fsync and its record's commit, or after a delete's commit), and
// deletes versions that expired while it was down. The store stays the
// caller's: Close does not close it.
func Open(ctx context.Context, dir string, store kv.Store, ids Identity, sealer Sealer, cfg Config) (*Service, error) {
	return open(ctx, dir, store, ids, sealer, cfg, time.Now)
}

// open is Open with a clock, which tests move to expire objects.
func open(ctx context.Context, dir string, store kv.Store, ids Identity, sealer Sealer, cfg Config, now func() time.Time) (*Service, error) {
	st, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if dir == "" || store == nil || ids == nil || sealer == nil {
		return nil, fmt.Errorf("storage: open: a directory, a store, an identity service and a sealer are all required: %w", ErrInvalidArgument)
	}
	s := &Service{
		cfg:     st,
		store:   store,
		ids:     ids,
		p:       crypto.New(),
		dir:     filepath.Join(dir, "objects"),
		now:     now,
		closing: make(chan struct{}),
		streams: make(chan struct{}, st.MaxConcurrentStreams),
		seed:    maphash.MakeSeed(),
		quota:   newQuotas(st.DefaultQuotaBytes),
	}
	size := st.ChunkSizeBytes + crypto.StreamOverhead
	s.bufs.New = func() any { b := make([]byte, size); return &b }
	if err := s.makeDirs(); err != nil {
		return nil, fmt.Errorf("storage: open: %w", err)
	}
	if err := s.openSecret(ctx, sealer); err != nil {
		return nil, fmt.Errorf("storage: open: %w", err)
	}
	if err := s.recover(ctx); err != nil {
		clear(s.secret)
		return nil, fmt.Errorf("storage: open: %w", err)
	}
	if _, err := s.sweep(ctx); err != nil {
		clear(s.secret)
		return nil, fmt.Errorf("storage: open: %w", err)
	}
	if st.SweepInterval > 0 {
		s.stopSweep, s.sweepDone = make(chan struct{}), make(chan struct{})
		go s.sweepLoop()
	}
	return s, nil
}

// makeDirs creates the shard directories once, durably, so a store never
// has to create (and fsync the parent of) a directory.
func (s *Service) makeDirs() error {
	if _, err := os.Stat(filepath.Join(s.dir, fmt.Sprintf("%02x", shards-1))); err == nil {
		return nil
	}
	for i := range shards {
		if err := os.MkdirAll(filepath.Join(s.dir, fmt.Sprintf("%02x", i)), 0o700); err != nil {
			return err
		}
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	return syncDir(filepath.Dir(s.dir))
}

// openSecret unseals the node secret, or on a fresh store creates one.
func (s *Service) openSecret(ctx context.Context, sealer Sealer) error {
	schema, err := s.store.Get(ctx, []byte(keySchema))
	switch {
	case errors.Is(err, kv.ErrNotFound):
		return s.createSecret(ctx, sealer)
	case err != nil:
		return err
	case string(schema) != schemaVersion:
		return corrupt("store schema %s, this build reads %s", quote(string(schema)), schemaVersion)
	}
	sealed, err := s.store.Get(ctx, []byte(keySecret))
	if err != nil {
		// A store with objects but no secret cannot be given a new one:
		// every content hash would stop matching.
		return corrupt("node secret: %v", err)
	}
	secret, err := sealer.Unseal(ctx, sealed, secretLabel)
	if err != nil {
		return fmt.Errorf("node secret does not unseal: %w", err)
	}
	if len(secret) != secretSize {
		clear(secret)
		return corrupt("node secret is %d bytes", len(secret))
	}
	return s.useSecret(secret)
}

func (s *Service) createSecret(ctx context.Context, sealer Sealer) error {
	secret, err := s.p.RandomBytes(secretSize)
	if err != nil {
		return err
	}
	sealed, err := sealer.Seal(ctx, secret, secretLabel)
	if err != nil {
		clear(secret)
		return fmt.Errorf("seal node secret: %w", err)
	}
	var b kv.Batch
	b.Set([]byte(keySchema), []byte(schemaVersion))
	b.Set([]byte(keySecret), sealed)
	if err := s.store.Apply(ctx, &b); err != nil {
		clear(secret)
		return err
	}
	return s.useSecret(secret)
}

func (s *Service) useSecret(secret []byte) error {
	k, err := s.p.HKDF(crypto.HKDFSHA256, secret, nil, []byte(presignKeyInfo), 32)
	if err != nil {
		clear(secret)
		return err
	}
	s.secret, s.presignKey = secret, k
	return nil
}

// contentHasher returns the keyed BLAKE3 hash of owner's contents. The key
// is derived per owner from the node secret, so the same file stored by
// two owners has unrelated hashes and no one without the secret can
// compute either.
func (s *Service) contentHasher(owner string) (hash.Hash, error) {
	key, err := s.p.HKDF(crypto.HKDFSHA256, s.secret, nil, []byte(contentHashInfo+owner), crypto.KeyedHashKeySize)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	return crypto.NewKeyedHash(crypto.BLAKE3, key)
}

// recover rebuilds usage and the version clock from the records, and
// deletes object files that no record refers to.
func (s *Service) recover(ctx context.Context) error {
	files := map[string]bool{} // version ids with a file
	err := s.store.Scan(ctx, []byte(prefixObj), func(key, val []byte) error {
		r, err := decodeRecord(key, val)
		if err != nil {
			return err
		}
		add(s.quota.used, r.Owner, r.Size)
		if t := versionTime(r.VersionID); t > s.lastVID {
			s.lastVID = t
		}
		if !r.Inline {
			files[r.VersionID] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	orphans, missing := 0, len(files)
	for i := range shards {
		shard := filepath.Join(s.dir, fmt.Sprintf("%02x", i))
		entries, err := os.ReadDir(shard)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if files[e.Name()] {
				missing--
				continue
			}
			if err := os.Remove(filepath.Join(shard, e.Name())); err != nil {
				return err
			}
			orphans++
		}
	}
	if orphans > 0 {
		slog.Info("storage: deleted object files without a committed record", "count", orphans)
	}
	if missing > 0 {
		slog.Error("storage: versions whose object file is missing; reading them fails with ErrCorrupt", "count", missing)
	}
	return nil
}

// Close stops the sweeper, stops streams in progress at their next chunk
// (they fail with ErrClosed, storing nothing) and wipes the node secret.
// Readers already returned by RetrieveStream keep reading. The store stays
// open for its owner to close.
func (s *Service) Close() error {
	first := false
	s.closeOnce.Do(func() { first = true; close(s.closing) })
	if !first {
		return fmt.Errorf("storage: close: %w", ErrClosed)
	}
	if s.stopSweep != nil {
		close(s.stopSweep)
		<-s.sweepDone
	}
	s.life.Lock()
	defer s.life.Unlock()
	s.closed = true
	clear(s.secret)
	clear(s.presignKey)
	return nil
}

// enter admits a public method unless the service is closed; the caller
// must defer s.life.RUnlock() when it returns nil.
func (s *Service) enter() error {
	s.life.RLock()
	if s.closed {
		s.life.RUnlock()
		return ErrClosed
	}
	return nil
}

// Health reports whether the service can serve: open, its store readable
// and its object directory present.
func (s *Service) Health(ctx context.Context) error {
	if err := s.enter(); err != nil {
		return fmt.Errorf("storage: health: %w", err)
	}
	defer s.life.RUnlock()
	if _, err := s.store.Get(ctx, []byte(keySchema)); err != nil {
		return fmt.Errorf("storage: health: %w", err)
	}
	if _, err := os.Stat(s.dir); err != nil {
		return fmt.Errorf("storage: health: %w", err)
	}
	return nil
}

// Usage is an owner's quota position.
type Usage struct {
	// Used is the plaintext bytes of the owner's stored versions (expired
	// ones count until swept); Reserved the bytes of its stores in flight.
	Used, Reserved, Limit int64
}

// Usage returns owner's quota position; the caller must be the owner or
// hold a storage:read delegation from it.
func (s *Service) Usage(ctx context.Context, caller Caller, owner string) (Usage, error) {
	if err := s.enter(); err != nil {
		return Usage{}, fmt.Errorf("storage: usage: %w", err)
	}
	defer s.life.RUnlock()
	if err := validateAgent("owner", owner); err != nil {
		return Usage{}, fmt.Errorf("storage: usage: %w", err)
	}
	if err := s.authorize(ctx, caller, owner, StorageRef{}, PermRead); err != nil {
		return Usage{}, fmt.Errorf("storage: usage of %s: %w", quote(owner), err)
	}
	used, reserved := s.quota.usage(owner)
	return Usage{Used: used, Reserved: reserved, Limit: s.quota.limit}, nil
}

// lock returns the mutex that serialises writes to (bucket, key).
func (s *Service) lock(bucket, key string) *sync.Mutex {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(bucket)
	h.WriteByte(0)
	h.WriteString(key)
	return &s.locks[h.Sum64()%lockStripes]
}

// newVersionID returns a version id: 8 bytes of creation time in
// nanoseconds, strictly increasing per node even if the clock steps back,
// and 8 random bytes, in hex. The random half only keeps ids of different
// nodes apart; access never depends on knowing an id, so the runtime's
// fast generator serves.
func (s *Service) newVersionID() string {
	s.vidMu.Lock()
	t := max(s.now().UnixNano(), s.lastVID+1)
	s.lastVID = t
	s.vidMu.Unlock()
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t))
	binary.BigEndian.PutUint64(b[8:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// versionTime returns the creation time encoded in a valid version id.
func versionTime(vid string) int64 {
	b, _ := hex.DecodeString(vid[:16])
	return int64(binary.BigEndian.Uint64(b))
}

// acquireStream waits for a stream slot.
func (s *Service) acquireStream(ctx context.Context) error {
	select {
	case s.streams <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return ErrClosed
	}
}

func (s *Service) releaseStream() { <-s.streams }

func (s *Service) getBuf() *[]byte  { return s.bufs.Get().(*[]byte) }
func (s *Service) putBuf(b *[]byte) { s.bufs.Put(b) }

// filePath is where a version's envelope file lives: a shard directory
// picked by the id's random half, so files spread evenly.
func (s *Service) filePath(vid string) string {
	return filepath.Join(s.dir, vid[len(vid)-2:], vid)
}

// syncDir makes a directory's entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
