package kv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func openTest(t testing.TB, dir string) Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func set(t testing.TB, s Store, kv ...string) {
	t.Helper()
	var b Batch
	for i := 0; i < len(kv); i += 2 {
		b.Set([]byte(kv[i]), []byte(kv[i+1]))
	}
	if err := s.Apply(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
}

func get(t testing.TB, s Store, key string) string {
	t.Helper()
	v, err := s.Get(context.Background(), []byte(key))
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return string(v)
}

func scanAll(t testing.TB, s Store, prefix string) []string {
	t.Helper()
	var out []string
	err := s.Scan(context.Background(), []byte(prefix), func(k, v []byte) error {
		out = append(out, string(k)+"="+string(v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDurableAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	set(t, s, "nhi/agent/a", "1", "nhi/agent/b", "2")
	var b Batch
	b.Delete([]byte("nhi/agent/a"))
	b.Set([]byte("nhi/agent/c"), []byte("3"))
	if err := s.Apply(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir)
	defer s.Close()
	if got, want := scanAll(t, s, "nhi/"), []string{"nhi/agent/b=2", "nhi/agent/c=3"}; !slices.Equal(got, want) {
		t.Fatalf("after reopen: %q, want %q", got, want)
	}
	if _, err := s.Get(context.Background(), []byte("nhi/agent/a")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted key: %v, want ErrNotFound", err)
	}
}

func TestSecondOpenOfSameDirFails(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	defer s.Close()
	if s2, err := Open(dir); err == nil {
		s2.Close()
		t.Fatal("a second Open of a directory in use succeeded")
	}
}

func TestGetReturnsACopy(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	key, val := []byte("k"), []byte("value")
	var b Batch
	b.Set(key, val)
	val[0] = 'X' // the batch copied it
	if err := s.Apply(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	v, _ := s.Get(context.Background(), key)
	v[0] = 'Y'
	if got := get(t, s, "k"); got != "value" {
		t.Fatalf("stored value changed through a returned or batched slice: %q", got)
	}
}

func TestInvalidBatchWritesNothing(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	set(t, s, "a", "old")
	var b Batch
	b.Set([]byte("a"), []byte("new"))
	b.Set([]byte("b"), []byte("new"))
	b.Set(nil, []byte("bad"))
	if err := s.Apply(context.Background(), &b); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("Apply with an empty key: %v, want ErrInvalidKey", err)
	}
	b.Reset()
	b.Set(make([]byte, MaxKeySize+1), nil)
	if err := s.Apply(context.Background(), &b); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("Apply with an oversize key: %v, want ErrInvalidKey", err)
	}
	if got, want := scanAll(t, s, ""), []string{"a=old"}; !slices.Equal(got, want) {
		t.Fatalf("after rejected batches: %q, want %q", got, want)
	}
	if err := s.Apply(context.Background(), &Batch{}); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	if err := s.Apply(context.Background(), nil); err != nil {
		t.Fatalf("nil batch: %v", err)
	}
}

// A reader scanning while batches commit must see every batch entirely or
// not at all: each batch writes the same generation into every key.
func TestBatchIsAtomicToReaders(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	const keys = 16
	write := func(gen int) {
		var b Batch
		for i := range keys {
			b.Set(fmt.Appendf(nil, "gen/%02d", i), fmt.Appendf(nil, "%d", gen))
		}
		if err := s.Apply(context.Background(), &b); err != nil {
			t.Error(err)
		}
	}
	write(0)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for gen := 1; gen <= 30; gen++ {
			write(gen)
		}
		close(done)
	})
	for r := 0; r < 2; r++ {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				var first []byte
				n := 0
				err := s.Scan(context.Background(), []byte("gen/"), func(_, v []byte) error {
					if first == nil {
						first = bytes.Clone(v)
					} else if !bytes.Equal(first, v) {
						return fmt.Errorf("torn batch: generations %s and %s in one scan", first, v)
					}
					n++
					return nil
				})
				if err == nil && n != keys {
					err = fmt.Errorf("scan saw %d keys, want %d", n, keys)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestScanPrefixOrder(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	want := []string{"p/", "p/\x00", "p/a", "p/a/b", "p/b", "p/\xff", "p/\xff\xff"}
	shuffled := slices.Clone(want)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, k := range shuffled {
		set(t, s, k, "")
	}
	set(t, s, "p", "", "p.", "", "p0", "", "o/zzz", "", "q/", "")

	var got []string
	for _, kv := range scanAll(t, s, "p/") {
		got = append(got, kv[:len(kv)-1])
	}
	if !slices.Equal(got, want) {
		t.Fatalf("scan p/: %q, want %q", got, want)
	}
	if got := scanAll(t, s, "p/\xff"); len(got) != 2 {
		t.Fatalf("scan of a 0xff-terminated prefix: %q", got)
	}
	if got := scanAll(t, s, "nothing/"); len(got) != 0 {
		t.Fatalf("scan of an absent prefix: %q", got)
	}
	if got := scanAll(t, s, ""); len(got) != len(want)+5 {
		t.Fatalf("full scan saw %d keys, want %d", len(got), len(want)+5)
	}
}

func TestScanStopsOnCallbackError(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	set(t, s, "a", "", "b", "", "c", "")
	stop := errors.New("stop")
	n := 0
	err := s.Scan(context.Background(), nil, func(_, _ []byte) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Fatalf("scan returned %v after %d keys, want the callback's error after 2", err, n)
	}
}

func TestPrefixEnd(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"a", "b"}, {"a/", "a0"}, {"a\xff", "b"}, {"a\xff\xff", "b"}, {"\xff", ""}, {"", ""},
	} {
		if got := string(PrefixEnd([]byte(c.in))); got != c.want {
			t.Errorf("PrefixEnd(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCancelledContext(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var b Batch
	b.Set([]byte("k"), []byte("v"))
	if err := s.Apply(ctx, &b); !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply: %v", err)
	}
	if _, err := s.Get(ctx, []byte("k")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get: %v", err)
	}
	if err := s.Scan(ctx, nil, func(_, _ []byte) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Scan: %v", err)
	}
	if _, err := s.Get(context.Background(), []byte("k")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a cancelled Apply wrote: %v", err)
	}
}

func TestClosedStore(t *testing.T) {
	s := openTest(t, t.TempDir())
	set(t, s, "k", "v")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var b Batch
	b.Set([]byte("k"), []byte("w"))
	if err := s.Apply(ctx, &b); !errors.Is(err, ErrClosed) {
		t.Errorf("Apply after Close: %v", err)
	}
	if _, err := s.Get(ctx, []byte("k")); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if err := s.Scan(ctx, nil, func(_, _ []byte) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Scan after Close: %v", err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

// Close waits for a scan in flight; a call made from inside that scan
// after Close has begun fails with ErrClosed instead of deadlocking.
func TestCloseDuringScan(t *testing.T) {
	s := openTest(t, t.TempDir())
	set(t, s, "a", "1", "b", "2")
	closed := make(chan error, 1)
	seen := 0
	err := s.Scan(context.Background(), nil, func(_, _ []byte) error {
		seen++
		if seen > 1 {
			return nil
		}
		go func() { closed <- s.Close() }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := s.Get(context.Background(), []byte("a"))
			if errors.Is(err, ErrClosed) {
				return nil
			}
			if err != nil || time.Now().After(deadline) {
				return fmt.Errorf("Get while closing: %v", err)
			}
			time.Sleep(time.Millisecond)
		}
	})
	if err != nil || seen != 2 {
		t.Fatalf("scan: %v after %d keys", err, seen)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after the scan finished")
	}
}

func TestConcurrentReadersAndWriters(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	const writers, perWriter = 4, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				var b Batch
				b.Set(fmt.Appendf(nil, "w/%d/%03d", w, i), fmt.Appendf(nil, "%d", i))
				if err := s.Apply(ctx, &b); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for r := range 4 {
		wg.Go(func() {
			for i := range 200 {
				key := fmt.Appendf(nil, "w/%d/%03d", r%writers, i%perWriter)
				if _, err := s.Get(ctx, key); err != nil && !errors.Is(err, ErrNotFound) {
					t.Error(err)
					return
				}
				if i%20 == 0 {
					if err := s.Scan(ctx, []byte("w/"), func(_, _ []byte) error { return nil }); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if got := len(scanAll(t, s, "w/")); got != writers*perWriter {
		t.Fatalf("%d keys after concurrent writes, want %d", got, writers*perWriter)
	}
}

// BenchmarkApplySynced measures one fsync'd single-key commit, the cost of
// every durable NHI write.
func BenchmarkApplySynced(b *testing.B) {
	s := openTest(b, b.TempDir())
	defer s.Close()
	ctx := context.Background()
	val := bytes.Repeat([]byte{'v'}, 256)
	var batch Batch
	i := 0
	for b.Loop() {
		batch.Reset()
		batch.Set(fmt.Appendf(nil, "bench/%08d", i), val)
		if err := s.Apply(ctx, &batch); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkGet reads one key of a warm store.
func BenchmarkGet(b *testing.B) {
	s := openTest(b, b.TempDir())
	defer s.Close()
	ctx := context.Background()
	var batch Batch
	for i := range 1000 {
		batch.Set(fmt.Appendf(nil, "bench/%08d", i), bytes.Repeat([]byte{'v'}, 256))
	}
	if err := s.Apply(ctx, &batch); err != nil {
		b.Fatal(err)
	}
	key := []byte("bench/00000500")
	for b.Loop() {
		if _, err := s.Get(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}
