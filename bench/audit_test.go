package bench_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/audit"
	"github.com/creto-systems/creto/services/audit/feed"
	"github.com/creto-systems/creto/services/nhi"
)

// auditRecord is a realistic authorization record: about 170 bytes
// encoded.
func auditRecord(i int) audit.Record {
	return audit.Record{
		Source:          "authz",
		Who:             fmt.Sprintf("agent-%d", i%500),
		DelegationChain: []string{`User::"alice"`},
		What:            "send_email",
		Resource:        fmt.Sprintf(`Mailbox::"team-%d"`, i%50),
		Outcome:         audit.Success,
		TraceID:         fmt.Sprintf("%016x", i),
		Context:         map[string]string{"decision": "allow", "principal_type": "Agent"},
	}
}

// openAuditLog opens a log in a fresh store under dir.
func openAuditLog(tb testing.TB, dir string, cfg audit.Config) (*audit.Service, kv.Store) {
	tb.Helper()
	st, err := kv.Open(filepath.Join(dir, "kv"))
	if err != nil {
		tb.Fatal(err)
	}
	sealer, err := openOrCreateSealer(filepath.Join(dir, "node.key"))
	if err != nil {
		tb.Fatal(err)
	}
	defer sealer.Close()
	svc, err := audit.Open(context.Background(), st, sealer, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return svc, st
}

func openOrCreateSealer(path string) (*nhi.FileSealer, error) {
	if s, err := nhi.OpenFileSealer(path); err == nil {
		return s, nil
	}
	return nhi.CreateFileSealer(path)
}

// BenchmarkAuditAppend is durable, batched appending: every record
// fsync'd (with its tree hashes and index entries) before Append returns.
// Beside it, in the same run: the same number of records written as raw
// fsync'd pebble batches of the same shape (leaf, two tree hashes, three
// index keys per record), and raw tlog appends in memory.
func BenchmarkAuditAppend(b *testing.B) {
	const batch = 1000
	recs := make([]audit.Record, 64*batch)
	for i := range recs {
		recs[i] = auditRecord(i)
	}
	perSecond := func(b *testing.B, records int) {
		b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(records), "ns/record")
	}
	for _, writers := range []int{1, 4} {
		b.Run(fmt.Sprintf("service/batch=%d/writers=%d", batch, writers), func(b *testing.B) {
			svc, st := openAuditLog(b, b.TempDir(), audit.Config{})
			defer st.Close()
			defer svc.Close()
			ctx := context.Background()
			var next sync.Mutex
			n := 0
			b.ResetTimer()
			var wg sync.WaitGroup
			for range writers {
				wg.Go(func() {
					for {
						next.Lock()
						if n >= b.N {
							next.Unlock()
							return
						}
						i := n
						n++
						next.Unlock()
						off := (i % 64) * batch
						if _, err := svc.Append(ctx, recs[off:off+batch]); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			perSecond(b, b.N*batch)
			b.ReportMetric(float64(svc.Stats().Records)/float64(svc.Stats().Commits), "records/commit")
		})
	}
	b.Run("service/batch=1/writers=64", func(b *testing.B) {
		svc, st := openAuditLog(b, b.TempDir(), audit.Config{})
		defer st.Close()
		defer svc.Close()
		ctx := context.Background()
		b.SetParallelism(32) // 64 goroutines on 2 cores
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := svc.Append(ctx, recs[i%len(recs):i%len(recs)+1]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
		b.StopTimer()
		perSecond(b, b.N)
		b.ReportMetric(float64(svc.Stats().Records)/float64(svc.Stats().Commits), "records/commit")
	})
	b.Run(fmt.Sprintf("anchor/pebble/batch=%d", batch), func(b *testing.B) {
		st, err := kv.Open(filepath.Join(b.TempDir(), "kv"))
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		shapes := recordShapes(recs)
		ctx := context.Background()
		idx := uint64(0)
		b.ResetTimer()
		for range b.N {
			var kb kv.Batch
			lists := map[string][]uint64{}
			for range batch {
				shapes[idx%uint64(len(shapes))].add(&kb, lists, idx)
				idx++
			}
			addLists(&kb, lists)
			if err := st.Apply(ctx, &kb); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		perSecond(b, b.N*batch)
	})
	b.Run("anchor/tlog-in-memory", func(b *testing.B) {
		leaves := make([][]byte, len(recs))
		for i := range recs {
			r := recs[i]
			r.Timestamp, r.LoggedAt = time.Unix(1, 0), time.Unix(1, 0)
			leaves[i], _ = audit.EncodeLeaf(&r)
		}
		var stored []tlog.Hash
		reader := tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(ix))
			for i, x := range ix {
				out[i] = stored[x]
			}
			return out, nil
		})
		b.ResetTimer()
		for i := range b.N {
			hs, err := tlog.StoredHashes(int64(i), leaves[i%len(leaves)], reader)
			if err != nil {
				b.Fatal(err)
			}
			stored = append(stored, hs...)
		}
		b.StopTimer()
		perSecond(b, b.N)
	})
}

// recordShape is what the log writes per record, as raw key/value pairs:
// the leaf under its index and two 32-byte tree hashes; and per batch,
// one index list per distinct who, what and resource.
type recordShape struct {
	leaf, h1, h2   []byte
	who, what, res string
}

func recordShapes(recs []audit.Record) []recordShape {
	out := make([]recordShape, len(recs))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range recs {
		r := recs[i]
		r.Timestamp, r.LoggedAt = time.Now(), time.Now()
		leaf, _ := audit.EncodeLeaf(&r)
		h1, h2 := make([]byte, 32), make([]byte, 32)
		for j := range 32 {
			h1[j], h2[j] = byte(rng.Uint32()), byte(rng.Uint32())
		}
		out[i] = recordShape{leaf, h1, h2, r.Who, r.What, r.Resource}
	}
	return out
}

func (s *recordShape) add(b *kv.Batch, lists map[string][]uint64, idx uint64) {
	b.Set(binary.BigEndian.AppendUint64([]byte("audit/rec/"), idx), s.leaf)
	b.Set(binary.BigEndian.AppendUint64([]byte("audit/h/\x00"), idx), s.h1)
	b.Set(binary.BigEndian.AppendUint64([]byte("audit/h/\x01"), idx), s.h2)
	for _, k := range []string{"w" + s.who, "a" + s.what, "r" + s.res} {
		lists[k] = append(lists[k], idx)
	}
}

// addLists writes a batch's index lists: the first index in the key, the
// gaps in the value.
func addLists(b *kv.Batch, lists map[string][]uint64) {
	for k, idxs := range lists {
		var v []byte
		for i := 1; i < len(idxs); i++ {
			v = binary.AppendUvarint(v, idxs[i]-idxs[i-1])
		}
		b.Set(binary.BigEndian.AppendUint64([]byte("audit/ix/"+k), idxs[0]), v)
	}
}

// proofLog is a log of proofLogSize records, built once per process (the
// build takes most of a minute) in a directory TestMain removes.
const proofLogSize = 1 << 20

var proofLog struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if proofLog.dir != "" && os.Getenv(keepProofLog) == "" {
		os.RemoveAll(proofLog.dir)
	}
	os.Exit(code)
}

// keepProofLog names a directory to build the million-record log in and
// keep, so later runs skip the build.
const keepProofLog = "CRETO_AUDIT_BENCH_DIR"

func buildProofLog(b *testing.B) string {
	proofLog.once.Do(func() {
		dir := os.Getenv(keepProofLog)
		if dir == "" {
			var err error
			if dir, err = os.MkdirTemp("", "creto-audit-bench"); err != nil {
				proofLog.err = err
				return
			}
		}
		proofLog.dir = dir
		svc, st := openAuditLog(b, dir, audit.Config{MaxBatch: 4096})
		defer st.Close()
		defer svc.Close()
		if svc.Size() == proofLogSize {
			return
		}
		recs := make([]audit.Record, 4096)
		for i := range recs {
			recs[i] = auditRecord(i)
		}
		start := time.Now()
		for n := 0; n < proofLogSize; n += len(recs) {
			if _, err := svc.Append(context.Background(), recs); err != nil {
				proofLog.err = err
				return
			}
		}
		b.Logf("built a %d-record log in %v", proofLogSize, time.Since(start))
	})
	if proofLog.err != nil {
		b.Fatal(proofLog.err)
	}
	return proofLog.dir
}

// BenchmarkAuditInclusionProof is an inclusion proof in a log of a
// million records, made and checked. "service" is GetProof (the hashes
// from memory) and tlog.CheckRecord of the client's leaf hash against the
// checkpoint's root — the same check as the anchor, raw
// tlog.ProveRecord + CheckRecord over every hash in a slice. Beside
// them: the proof asked WithLeaf (a record read from the store, its
// access checked) and checked with Checkpoint.VerifyInclusion (the leaf
// decoded); the same with the checkpoint's two signatures checked too;
// and the hashes-only proof with the hash cache shrunk to nothing, so
// every hash comes from the store.
func BenchmarkAuditInclusionProof(b *testing.B) {
	dir := buildProofLog(b)
	ctx := context.Background()
	leafHashes := func(b *testing.B, st kv.Store) []tlog.Hash {
		hs := make([]tlog.Hash, 0, proofLogSize)
		err := st.Scan(ctx, []byte("audit/rec/"), func(_, leaf []byte) error {
			hs = append(hs, tlog.RecordHash(leaf))
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		return hs
	}
	for _, c := range []struct {
		name           string
		cache          int
		withLeaf, sigs bool
	}{
		{"service", 0, false, false},
		{"service,with-leaf", 0, true, false},
		{"service,with-leaf+signatures", 0, true, true},
		{"service,hashes-from-store", 64, false, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			svc, st := openAuditLog(b, dir, audit.Config{HashCacheBytes: c.cache})
			defer st.Close()
			defer svc.Close()
			note, cp, err := svc.LatestCheckpoint(ctx)
			if err != nil || cp.Size != proofLogSize {
				b.Fatalf("checkpoint %+v %v", cp, err)
			}
			var hashes []tlog.Hash
			if !c.withLeaf {
				hashes = leafHashes(b, st)
			}
			v := svc.Verifier()
			// Warm the hash cache as a serving node's is (the anchor holds
			// every hash in a slice from the start): one proof per
			// thousand records, untimed.
			for i := uint64(0); i < proofLogSize; i += 1000 {
				if _, err := svc.GetProof(ctx, fmt.Sprintf("agent-%d", i%4096%500), audit.GetProofRequest{Kind: audit.Inclusion, Index: i}); err != nil {
					b.Fatal(err)
				}
			}
			rng := rand.New(rand.NewPCG(3, 4))
			b.ResetTimer()
			for b.Loop() {
				i := rng.Uint64N(proofLogSize)
				p, err := svc.GetProof(ctx, fmt.Sprintf("agent-%d", i%4096%500), audit.GetProofRequest{Kind: audit.Inclusion, Index: i, WithLeaf: c.withLeaf})
				if err != nil {
					b.Fatal(err)
				}
				switch {
				case !c.withLeaf:
					err = tlog.CheckRecord(p.Hashes, cp.Size, cp.Root, int64(i), hashes[i])
				case c.sigs:
					_, err = audit.VerifyProof(v, audit.VerifyRequest{Proof: p, Checkpoint: note})
				default:
					err = cp.VerifyInclusion(p, nil)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("anchor/tlog", func(b *testing.B) {
		svc, st := openAuditLog(b, dir, audit.Config{})
		_, cp, err := svc.LatestCheckpoint(ctx)
		svc.Close()
		if err != nil {
			b.Fatal(err)
		}
		// Every stored hash in memory, in tlog's own index order, from the
		// same leaves.
		hashes := leafHashes(b, st)
		st.Close()
		stored := make([]tlog.Hash, 0, tlog.StoredHashCount(proofLogSize))
		reader := tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(ix))
			for i, x := range ix {
				out[i] = stored[x]
			}
			return out, nil
		})
		for i, h := range hashes {
			hs, err := tlog.StoredHashesForRecordHash(int64(i), h, reader)
			if err != nil {
				b.Fatal(err)
			}
			stored = append(stored, hs...)
		}
		rng := rand.New(rand.NewPCG(3, 4))
		b.ResetTimer()
		for b.Loop() {
			i := int64(rng.Uint64N(proofLogSize))
			p, err := tlog.ProveRecord(proofLogSize, i, reader)
			if err != nil {
				b.Fatal(err)
			}
			if err := tlog.CheckRecord(p, proofLogSize, cp.Root, i, hashes[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCheckAudited is the cached check (the 155 ns headline) with no
// observer, with an observer that does nothing (the hook's own cost), with
// the node's default (audit-denied: feed.NotAllowed, every decision but a
// plain allow) and with the audit adapter emitting every decision into a
// Logger over a real log (audit-logger, the node's decisions = "all"). Emit never waits, so the last pays for building the record
// and queueing it; the log behind cannot keep up with millions of checks
// per second, and the oldest events are dropped and counted (reported).
// The uncached check at 1,000 policies is measured the same way.
func BenchmarkCheckAudited(b *testing.B) {
	ctx := context.Background()
	w := newWorkload(1000)
	for _, cached := range []bool{true, false} {
		for _, mode := range []string{"no-observer", "nop-observer", "audit-denied", "audit-logger"} {
			name := fmt.Sprintf("cached=%v/%s", cached, mode)
			b.Run(name, func(b *testing.B) {
				var opts []engine.Option
				if !cached {
					opts = append(opts, engine.WithCache(engine.CacheConfig{}))
				}
				var logger *audit.Logger
				switch mode {
				case "nop-observer":
					opts = append(opts, engine.WithObserver(nopObserver{}))
				case "audit-logger", "audit-denied":
					dir := b.TempDir()
					svc, st := openAuditLog(b, dir, audit.Config{})
					defer st.Close()
					defer svc.Close()
					var err error
					logger, err = audit.NewLogger(svc, audit.LoggerConfig{SpoolPath: filepath.Join(dir, "spool"), Logger: slog.New(slog.DiscardHandler)})
					if err != nil {
						b.Fatal(err)
					}
					obs := feed.Engine(logger)
					if mode == "audit-denied" {
						obs = feed.NotAllowed(obs)
					}
					opts = append(opts, engine.WithObserver(obs))
				}
				e := w.engine(b, opts...)
				defer e.Close()
				req := w.requests[0]
				if cached {
					for _, r := range w.requests {
						if d, _ := e.Check(ctx, r); d.Kind == engine.Allow {
							req = r
							break
						}
					}
					if d, _ := e.Check(ctx, req); !d.Cached {
						b.Fatal("no cacheable allow in the workload")
					}
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					r := req
					if !cached {
						r = w.requests[i%len(w.requests)]
						i++
					}
					if _, err := e.Check(ctx, r); err != nil {
						b.Fatal(err)
					}
				}
				if logger != nil {
					b.StopTimer()
					st := logger.Stats()
					b.ReportMetric(float64(st.Emitted)/float64(b.N), "emitted/check")
					if st.Emitted > 0 {
						b.ReportMetric(float64(st.Delivered)/float64(st.Emitted), "delivered/emitted")
					}
					logger.Close(ctx)
				}
			})
		}
	}
}

type nopObserver struct{}

func (nopObserver) Decided(context.Context, engine.Request, engine.Decision, error) {}
func (nopObserver) ExtensionFailed(context.Context, engine.Request, engine.ExtensionError) {
}
