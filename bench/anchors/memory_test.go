package anchors

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	chromem "github.com/philippgille/chromem-go"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/memory"
)

// memoriesPerAgent is the size seed §4 is judged at: one agent's memories,
// all of which an exact query scans.
const memoriesPerAgent = 10_000

// memoryCorpus is one agent's memories: text, and a vector per memory.
type memoryCorpus struct {
	texts   []string
	vectors [][]float32
	queries []string
	qvecs   [][]float32
}

// sentenceCorpus generates agent-log sentences from a vocabulary with a
// skewed (Zipf) word distribution, as natural text has, and embeds them
// with the local hashing embedder.
func sentenceCorpus(b *testing.B, e memory.Embedder) memoryCorpus {
	r := rand.New(rand.NewPCG(7, 7))
	zipf := rand.NewZipf(r, 1.1, 1, 4999)
	sentence := func() string {
		words := make([]string, 8+r.IntN(12))
		for i := range words {
			words[i] = fmt.Sprintf("w%d", zipf.Uint64())
		}
		return strings.Join(words, " ")
	}
	var c memoryCorpus
	for range memoriesPerAgent {
		c.texts = append(c.texts, sentence())
	}
	for range 256 {
		c.queries = append(c.queries, sentence())
	}
	for _, t := range c.texts {
		v, err := e.Embed(context.Background(), t)
		if err != nil {
			b.Fatal(err)
		}
		c.vectors = append(c.vectors, unit(v))
	}
	return c
}

// vectorCorpus generates client embeddings: unit vectors scattered around
// 100 topic centroids, the clustered shape neural embeddings have.
func vectorCorpus(dims int) memoryCorpus {
	return clusteredCorpus(memoriesPerAgent, dims, 100, 0.03)
}

// clusteredCorpus generates n unit vectors around topics centroids, each
// component perturbed by spread (noise of norm spread*sqrt(dims) against
// unit centroids), and 256 queries drawn the same way.
func clusteredCorpus(n, dims, topics int, spread float64) memoryCorpus {
	r := rand.New(rand.NewPCG(1536, 1))
	gauss := func(center []float32, spread float64) []float32 {
		v := make([]float32, dims)
		for i := range v {
			v[i] = float32(r.NormFloat64() * spread)
			if center != nil {
				v[i] += center[i]
			}
		}
		return unit(v)
	}
	centroids := make([][]float32, topics)
	for i := range centroids {
		centroids[i] = gauss(nil, 1)
	}
	var c memoryCorpus
	for i := range n {
		c.texts = append(c.texts, fmt.Sprintf("memory %d", i))
		c.vectors = append(c.vectors, gauss(centroids[r.IntN(len(centroids))], spread))
	}
	for range 256 {
		c.qvecs = append(c.qvecs, gauss(centroids[r.IntN(len(centroids))], spread))
	}
	return c
}

func unit(v []float32) []float32 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 {
		return v
	}
	inv := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= inv
	}
	return v
}

// loadMemory stores the corpus for one agent through the service.
func loadMemory(b *testing.B, cfg memory.Config, c memoryCorpus, withVectors bool) *memory.Service {
	ctx := context.Background()
	store, err := kv.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	svc, err := memory.Open(ctx, store, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { svc.Close() })
	for start := 0; start < len(c.texts); start += 1000 {
		batch := make([]memory.StoreRequest, 0, 1000)
		for i := start; i < min(start+1000, len(c.texts)); i++ {
			req := memory.StoreRequest{Agent: "agent", Content: c.texts[i], Type: memory.Observation}
			if withVectors {
				req.Embedding = c.vectors[i]
			}
			batch = append(batch, req)
		}
		if _, err := svc.StoreBatch(ctx, "agent", batch); err != nil {
			b.Fatal(err)
		}
	}
	return svc
}

// loadChromem puts the same corpus, with the same vectors, in a chromem-go
// collection.
func loadChromem(b *testing.B, c memoryCorpus, e memory.Embedder) *chromem.Collection {
	embed := func(ctx context.Context, text string) ([]float32, error) {
		v, err := e.Embed(ctx, text)
		return unit(v), err
	}
	col, err := chromem.NewDB().CreateCollection("agent", nil, embed)
	if err != nil {
		b.Fatal(err)
	}
	docs := make([]chromem.Document, len(c.texts))
	for i := range docs {
		docs[i] = chromem.Document{ID: fmt.Sprint(i), Content: c.texts[i], Embedding: c.vectors[i]}
	}
	if err := col.AddDocuments(context.Background(), docs, 2); err != nil {
		b.Fatal(err)
	}
	return col
}

// reportP50 runs query once per iteration, cycling through the corpus's
// queries, and reports the median latency: the seed's target is a
// latency, and a mean hides a skewed tail.
func reportP50(b *testing.B, n int, query func(i int) error) {
	var took []time.Duration
	i := 0
	for b.Loop() {
		start := time.Now()
		if err := query(i % n); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		i++
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Nanoseconds())/1e3, "p50-µs")
}

// BenchmarkMemoryQuery: top-10 cosine query over one agent's 10,000
// memories, by the memory service and by chromem-go (exhaustive search,
// like the service) on the same vectors. At 256 dimensions the query is a
// text embedded by the local hashing embedder in both; at 1536 it is a
// client-supplied vector.
func BenchmarkMemoryQuery(b *testing.B) {
	ctx := context.Background()
	b.Run("dims=256/local-embedder", func(b *testing.B) {
		e := memory.NewHashingEmbedder(memory.DefaultHashDimensions)
		c := sentenceCorpus(b, e)
		b.Run("creto", func(b *testing.B) {
			svc := loadMemory(b, memory.Config{Embedder: e}, c, false)
			reportP50(b, len(c.queries), func(i int) error {
				_, err := svc.Query(ctx, "agent", memory.Query{Agent: "agent", Text: c.queries[i], Limit: 10, Threshold: -1})
				return err
			})
		})
		b.Run("chromem-go", func(b *testing.B) {
			col := loadChromem(b, c, e)
			reportP50(b, len(c.queries), func(i int) error {
				_, err := col.Query(ctx, c.queries[i], 10, nil, nil)
				return err
			})
		})
	})
	b.Run("dims=1536/client-embeddings", func(b *testing.B) {
		e := memory.ExternalEmbedder{Name: "text-embedding-3-small", Dims: 1536}
		c := vectorCorpus(1536)
		b.Run("creto", func(b *testing.B) {
			svc := loadMemory(b, memory.Config{Embedder: e}, c, true)
			reportP50(b, len(c.qvecs), func(i int) error {
				_, err := svc.Query(ctx, "agent", memory.Query{Agent: "agent", Embedding: c.qvecs[i], Limit: 10, Threshold: -1})
				return err
			})
		})
		b.Run("chromem-go", func(b *testing.B) {
			col := loadChromem(b, c, e)
			reportP50(b, len(c.qvecs), func(i int) error {
				_, err := col.QueryEmbedding(ctx, c.qvecs[i], 10, nil, nil)
				return err
			})
		})
	})
}

// BenchmarkMemoryQueryANN: top-10 query over one agent's 50,000
// memories of 256 dimensions, 20 to a topic, searched exactly (the index
// disabled) and through the approximate index the agent gets past
// Config.ApproximateAbove. The ivf run also reports its recall@10
// against the exact run on the same queries, and the share of memories a
// query scored.
func BenchmarkMemoryQueryANN(b *testing.B) {
	const n, dims = 50_000, 256
	ctx := context.Background()
	e := memory.ExternalEmbedder{Name: "synthetic", Dims: dims}
	c := clusteredCorpus(n, dims, n/20, 0.04)
	exact := loadMemory(b, memory.Config{Embedder: e, ApproximateAbove: -1}, c, true)
	// One build over all n memories, the state after a restart or after
	// the agent doubles: with the default threshold the index would be
	// built at 20,001 memories, during the load, and calibrated for them.
	approx := loadMemory(b, memory.Config{Embedder: e, ApproximateAbove: n - 1}, c, true)
	query := func(svc *memory.Service, i int) (*memory.QueryResult, error) {
		return svc.Query(ctx, "agent", memory.Query{Agent: "agent", Embedding: c.qvecs[i], Limit: 10, Threshold: -1})
	}
	// The index is built in the background after the load.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		res, err := query(approx, 0)
		if err != nil {
			b.Fatal(err)
		}
		if !res.Stats.Exact {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("no approximate index after a minute")
		}
	}
	b.Run("exact", func(b *testing.B) {
		reportP50(b, len(c.qvecs), func(i int) error {
			_, err := query(exact, i)
			return err
		})
	})
	b.Run("ivf", func(b *testing.B) {
		found, scored := 0, 0
		for i := range c.qvecs {
			want, err := query(exact, i)
			if err != nil {
				b.Fatal(err)
			}
			got, err := query(approx, i)
			if err != nil {
				b.Fatal(err)
			}
			scored += got.Stats.Scored
			for _, w := range want.Results {
				if slices.ContainsFunc(got.Results, func(g memory.Result) bool { return g.Memory.Content == w.Memory.Content }) {
					found++
				}
			}
		}
		reportP50(b, len(c.qvecs), func(i int) error {
			_, err := query(approx, i)
			return err
		})
		b.ReportMetric(float64(found)/float64(10*len(c.qvecs)), "recall@10")
		b.ReportMetric(100*float64(scored)/float64(n*len(c.qvecs)), "scored-%")
	})
}

// BenchmarkMemoryStore: storing one memory with the local embedder,
// including the fsync'd commit.
func BenchmarkMemoryStore(b *testing.B) {
	ctx := context.Background()
	store, err := kv.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	svc, err := memory.Open(ctx, store, memory.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	req := memory.StoreRequest{Agent: "agent", Content: "I will pay vendor Acme by wire transfer because invoice 42 is due", Type: memory.Reasoning}
	for b.Loop() {
		if _, err := svc.Store(ctx, "agent", req); err != nil {
			b.Fatal(err)
		}
	}
}
