package memory

import (
	"context"
	"fmt"
	"math"
)

// dot is the inner product of two equal-length vectors. Vectors are stored
// unit length, so this is their cosine similarity. The loop is unrolled
// into four independent sums so the CPU can keep several multiply-adds in
// flight; it is the whole cost of a query.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		s0 += a[i]*b[i] + a[i+4]*b[i+4]
		s1 += a[i+1]*b[i+1] + a[i+5]*b[i+5]
		s2 += a[i+2]*b[i+2] + a[i+6]*b[i+6]
		s3 += a[i+3]*b[i+3] + a[i+7]*b[i+7]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

// normalize checks v and scales it to unit length in place. allowZero
// admits the all-zero vector, which a local embedder legitimately returns
// for a text without words and which then matches nothing; a client's
// all-zero vector is a bug and is refused.
func normalize(v []float32, dims int, allowZero bool) error {
	if len(v) != dims {
		return invalid(ErrDimensionMismatch, "embedding has %d dimensions, the index %d", len(v), dims)
	}
	var sum float64
	for i, x := range v {
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return invalid(ErrInvalidVector, "component %d is %v", i, x)
		}
		sum += f * f
	}
	if sum == 0 {
		if allowZero {
			return nil
		}
		return invalid(ErrInvalidVector, "all components are zero")
	}
	if math.IsInf(sum, 0) {
		return invalid(ErrInvalidVector, "norm overflows")
	}
	inv := 1 / math.Sqrt(sum)
	for i := range v {
		v[i] = float32(float64(v[i]) * inv)
	}
	return nil
}

// embedding returns the unit vector a request stands for: its own
// embedding, copied so the caller keeps its slice, or the embedder's
// vector for text. A bad vector from the caller is the caller's invalid
// argument; a bad vector from the embedder is the embedder's failure, and
// is reported as such rather than blamed on the caller.
func embedding(ctx context.Context, e Embedder, text string, given []float32) ([]float32, error) {
	if given != nil {
		v := append([]float32(nil), given...)
		if err := normalize(v, e.Dimensions(), false); err != nil {
			return nil, err
		}
		return v, nil
	}
	v, err := e.Embed(ctx, text)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEmbeddingFailed, err)
	}
	if err := normalize(v, e.Dimensions(), true); err != nil {
		return nil, fmt.Errorf("%w: embedder %s returned a bad vector: %v", ErrEmbeddingFailed, quote(e.Model()), err)
	}
	return v, nil
}
