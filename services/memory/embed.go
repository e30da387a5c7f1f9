package memory

import (
	"context"
	"fmt"
	"strings"
	"unicode"
)

// Embedder turns text into the vectors an index compares. An index is
// bound to one Embedder's Model and Dimensions for its lifetime
// (ErrIndexMismatch otherwise), because cosine similarity between vectors
// of two models is meaningless.
type Embedder interface {
	// Model names the embedding model, including anything that changes
	// its vectors (version, dimension).
	Model() string
	// Dimensions is the length of every vector of this model.
	Dimensions() int
	// Threshold is the default minimum cosine similarity for a memory to
	// count as relevant. It is a property of the model: neural embeddings
	// put unrelated texts around 0.1–0.3 and related ones above 0.7,
	// while hashed word features put unrelated texts at 0 and related ones
	// much lower than neural models do.
	Threshold() float32
	// Embed returns text's vector, of length Dimensions. The service
	// normalises it, so it need not be unit length; it must be finite and
	// not all zeros. Errors should wrap ErrEmbeddingFailed.
	Embed(ctx context.Context, text string) ([]float32, error)
}

// DefaultHashDimensions is the HashingEmbedder dimension Config{} uses.
// With a few dozen distinct features per memory, 256 buckets keep
// collisions rare (two unrelated features share a bucket with probability
// 1/256) at a quarter of the scan cost of 1024.
const DefaultHashDimensions = 256

// HashingThreshold is HashingEmbedder's default relevance threshold,
// calibrated by TestHashingThresholdCalibration on labelled pairs: related
// sentences that share a topic's words score 0.2–0.6, unrelated ones
// 0–0.1 (a collision or a shared generic word). The seed's 0.7 would drop
// nearly every related pair.
const HashingThreshold = 0.15

// NeuralThreshold is ExternalEmbedder's default relevance threshold, the
// seed's value for text-embedding-3-small.
const NeuralThreshold = 0.7

// HashingEmbedder is a local embedder that needs no model and no network:
// the hashing trick over word unigrams and bigrams. Text is lower-cased
// and split into runs of letters and digits; common English function words
// are dropped and a plural "s" is stripped; every remaining word and every
// pair of adjacent words is hashed (FNV-1a, 64 bits) to one of Dimensions
// buckets, with a sign taken from another bit of the hash so that
// collisions cancel on average instead of adding up.
//
// Its limits: it measures shared words, not meaning. Synonyms and
// paraphrases ("car" and "vehicle") score 0; other languages work only
// word for word; negation is invisible ("approve" and "do not approve"
// share a word); typos miss. Use it when no model is available, and pass
// neural embeddings (ExternalEmbedder) when one is.
type HashingEmbedder struct {
	dims int
}

// NewHashingEmbedder returns a HashingEmbedder of the given dimension.
// Dimensions under 1 take DefaultHashDimensions.
func NewHashingEmbedder(dims int) *HashingEmbedder {
	if dims < 1 {
		dims = DefaultHashDimensions
	}
	return &HashingEmbedder{dims: dims}
}

// Model names the tokenisation version and dimension, so a store built by
// an older or differently sized HashingEmbedder is refused rather than
// compared.
func (h *HashingEmbedder) Model() string { return fmt.Sprintf("creto-hash-v1-%d", h.dims) }

// Dimensions returns the vector length.
func (h *HashingEmbedder) Dimensions() int { return h.dims }

// Threshold returns HashingThreshold.
func (h *HashingEmbedder) Threshold() float32 { return HashingThreshold }

// Embed hashes text's features into a vector. A text with no words left
// after dropping function words yields the zero vector, which matches
// nothing; it is not an error, because the memory is still worth keeping
// for Get and GetReasoning.
func (h *HashingEmbedder) Embed(_ context.Context, text string) ([]float32, error) {
	v := make([]float32, h.dims)
	prev := ""
	for word := range words(text) {
		h.add(v, fnv64a(fnvOffset, word))
		if prev != "" {
			// The separator keeps ("ab","c") and ("a","bc") apart.
			h.add(v, fnv64a(fnv64a(fnv64a(fnvOffset, prev), "\x00"), word))
		}
		prev = word
	}
	return v, nil
}

func (h *HashingEmbedder) add(v []float32, hash uint64) {
	i := (hash >> 1) % uint64(h.dims)
	if hash&1 == 0 {
		v[i]++
	} else {
		v[i]--
	}
}

// words yields text's content words, lower-cased, function words dropped
// and a plural "s" stripped, so "Transfers to the vendor" and "transfer
// vendor" share both their words and their bigram.
func words(text string) func(yield func(string) bool) {
	return func(yield func(string) bool) {
		for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r)
		}) {
			if stopWords[w] {
				continue
			}
			if len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") {
				w = w[:len(w)-1]
			}
			if !yield(w) {
				return
			}
		}
	}
}

// stopWords are dropped because every English sentence has them: left in,
// they would give unrelated sentences a similarity well above zero.
var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for w := range strings.FieldsSeq(`a an the and or but if then else of to in on at by for with from into onto
		about as is are was were be been being am do does did done has have had having it its this that these
		those there here i me my we our you your he him his she her they them their what which who whom whose
		when where why how all any both each few more most other some such no nor not only own same so than too
		very can will just should would could may might must shall s t up down out over under again further once`) {
		m[w] = true
	}
	return m
}()

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// fnv64a continues an FNV-1a hash over s. It is written out rather than
// taken from hash/fnv so hashing a word allocates nothing.
func fnv64a(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// ExternalEmbedder declares an index of vectors computed outside the
// service, by a model the node does not run: every Store must carry its
// embedding and every Query its query vector. Embed always fails with
// ErrEmbeddingFailed, so a text-only request is refused rather than
// embedded by a different model.
type ExternalEmbedder struct {
	// Name is the model, e.g. "text-embedding-3-small".
	Name string
	// Dims is its vector length, e.g. 1536.
	Dims int
	// MinScore overrides NeuralThreshold when non-zero.
	MinScore float32
}

// Model returns Name.
func (e ExternalEmbedder) Model() string { return e.Name }

// Dimensions returns Dims.
func (e ExternalEmbedder) Dimensions() int { return e.Dims }

// Threshold returns MinScore, or NeuralThreshold when it is zero.
func (e ExternalEmbedder) Threshold() float32 {
	if e.MinScore != 0 {
		return e.MinScore
	}
	return NeuralThreshold
}

// Embed refuses: the model runs elsewhere.
func (e ExternalEmbedder) Embed(context.Context, string) ([]float32, error) {
	return nil, fmt.Errorf("%w: model %s runs outside the node; supply the embedding", ErrEmbeddingFailed, quote(e.Name))
}
