package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
)

func TestQuota(t *testing.T) {
	cfg := testConfig()
	cfg.DefaultQuotaBytes = 5 * minChunkSize
	e := newEnv(t, cfg)
	e.agents("alice", "bob")
	ctx := context.Background()
	e.put(alice, StoreRequest{Key: "a"}, payload(3*minChunkSize, 1))

	// Declared too big: refused before a byte is read.
	_, err := e.s.Store(ctx, alice, StoreRequest{Key: "b", Classification: AgentData, Size: 3 * minChunkSize}, failingReader{})
	wantErr(t, "declared over quota", err, ErrQuotaExceeded)
	var qe *QuotaExceededError
	if !errors.As(err, &qe) || qe.Used != 3*minChunkSize || qe.Limit != cfg.DefaultQuotaBytes || qe.Owner != "alice" {
		t.Fatalf("quota error %+v", qe)
	}
	// Undeclared: refused as the stream passes the quota.
	_, err = e.s.Store(ctx, alice, StoreRequest{Key: "b", Classification: AgentData}, bytes.NewReader(payload(3*minChunkSize, 2)))
	wantErr(t, "streamed over quota", err, ErrQuotaExceeded)
	e.unchanged("after refused stores", 1, 1)
	if u, _ := e.s.Usage(ctx, alice, "alice"); u.Used != 3*minChunkSize || u.Reserved != 0 {
		t.Fatalf("usage %+v", u)
	}
	// Quotas are per owner.
	e.put(Caller{Agent: "bob"}, StoreRequest{Key: "bob"}, payload(4*minChunkSize, 3))
	// Deleting frees quota.
	if err := e.s.Delete(ctx, alice, StorageRef{Bucket: "default", Key: "a"}); err != nil {
		t.Fatal(err)
	}
	e.put(alice, StoreRequest{Key: "b"}, payload(5*minChunkSize, 4))
	// Usage is rebuilt from the records on restart.
	e.restart()
	if u, _ := e.s.Usage(ctx, alice, "alice"); u.Used != 5*minChunkSize {
		t.Fatalf("usage after restart %+v", u)
	}
	_, err = e.s.Store(ctx, alice, StoreRequest{Key: "c", Classification: AgentData}, bytes.NewReader([]byte{1}))
	wantErr(t, "full after restart", err, ErrQuotaExceeded)
}

// Concurrent writers reserve as they stream, so together they can never
// pass the quota: what commits fits, and no reservation is left behind.
func TestQuotaConcurrentWriters(t *testing.T) {
	const writers, chunks = 8, 3
	cfg := testConfig()
	cfg.DefaultQuotaBytes = 10 * minChunkSize // room for 3 of the 8 objects
	cfg.MaxConcurrentStreams = writers
	e := newEnv(t, cfg)
	e.agents("alice")
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			_, errs[i] = e.s.Store(ctx, alice, StoreRequest{Classification: AgentData}, &slowReader{data: payload(chunks*minChunkSize, uint64(i))})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrQuotaExceeded):
			t.Fatalf("a writer failed with %v", err)
		}
	}
	u, _ := e.s.Usage(ctx, alice, "alice")
	if ok == 0 || ok > 3 || u.Used != int64(ok*chunks*minChunkSize) || u.Reserved != 0 || u.Used > u.Limit {
		t.Fatalf("%d stores committed, usage %+v", ok, u)
	}
	e.unchanged("after the race", ok, ok)
}

func TestTooLarge(t *testing.T) {
	cfg := testConfig()
	cfg.MaxObjectSizeBytes = 2*minChunkSize + 10
	e := newEnv(t, cfg)
	e.agents("alice")
	ctx := context.Background()
	_, err := e.s.Store(ctx, alice, StoreRequest{Key: "k", Classification: AgentData, Size: cfg.MaxObjectSizeBytes + 1}, failingReader{})
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Size != cfg.MaxObjectSizeBytes+1 || tl.Max != cfg.MaxObjectSizeBytes {
		t.Fatalf("declared: %v", err)
	}
	_, err = e.s.Store(ctx, alice, StoreRequest{Key: "k", Classification: AgentData}, bytes.NewReader(payload(4*minChunkSize, 1)))
	if !errors.As(err, &tl) || tl.Size <= tl.Max || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("streamed: %v", err)
	}
	e.unchanged("after too-large stores", 0, 0)
	if u, _ := e.s.Usage(ctx, alice, "alice"); u.Used != 0 || u.Reserved != 0 {
		t.Fatalf("usage %+v", u)
	}
	// Exactly the maximum is fine; a declared size must be the real one.
	e.put(alice, StoreRequest{Key: "max"}, payload(int(cfg.MaxObjectSizeBytes), 2))
	_, err = e.s.Store(ctx, alice, StoreRequest{Key: "short", Classification: AgentData, Size: 100}, bytes.NewReader(make([]byte, 99)))
	wantErr(t, "shorter than declared", err, ErrInvalidArgument)
	_, err = e.s.Store(ctx, alice, StoreRequest{Key: "long", Classification: AgentData, Size: 100}, bytes.NewReader(make([]byte, 101)))
	wantErr(t, "longer than declared", err, ErrInvalidArgument)
	e.unchanged("after mis-declared stores", 1, 1)
}

// failingReader fails the test's expectation loudly if anything reads it.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("the body was read") }

// slowReader hands out its data in small reads, so concurrent stores
// interleave their chunks.
type slowReader struct {
	data []byte
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 4096)], r.data)
	r.data = r.data[n:]
	return n, nil
}
