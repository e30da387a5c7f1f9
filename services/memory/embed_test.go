package memory

import (
	"math"
	"testing"
)

// labelledPairs are sentence pairs an agent platform produces, labelled
// by whether a reader would call them related. Related pairs share the
// topic's words in different phrasing; unrelated pairs share only
// function words, if anything.
var labelledPairs = []struct {
	a, b    string
	related bool
}{
	{"approve wire transfer to vendor Acme", "agent wants to transfer money to vendor Acme by wire", true},
	{"rotate the database password", "the database password must be rotated every 90 days", true},
	{"customer asked for a refund on order 1234", "refund for order 1234 was requested by the customer", true},
	{"deploy the billing service to production", "billing service deployment to production failed", true},
	{"read the quarterly sales report", "summarise the quarterly sales report for the board", true},
	{"send an email to the legal team about the contract", "the legal team reviewed the contract email", true},
	{"delete stale files from the shared drive", "files on the shared drive older than a year are stale", true},
	{"user reported login failures after the update", "login failures started after the latest update", true},
	{"schedule a meeting with the hiring manager", "the hiring manager wants a meeting next week", true},
	{"the API rate limit was exceeded", "we exceeded the API rate limit again", true},
	{"pay the overdue invoice from Acme", "Acme sent a reminder that the invoice is overdue and asked when we will pay", true},
	{"grant the intern read access to the finance folder", "who can access the finance folder", true},
	{"the nightly backup job failed with a disk full error", "free disk space so the backup can run", true},
	{"approve wire transfer to vendor Acme", "rotate the database password secret", false},
	{"customer asked for a refund on order 1234", "deploy the billing service to production", false},
	{"read the quarterly sales report", "user reported login failures after the update", false},
	{"schedule a meeting with the hiring manager", "the API rate limit was exceeded", false},
	{"send an email to the legal team about the contract", "delete stale files from the shared drive", false},
	{"the weather in Paris is sunny", "compile the kernel with debug symbols", false},
	{"book a flight to Berlin for Tuesday", "the invoice total is wrong", false},
	{"translate the document into French", "restart the payment gateway", false},
	{"what is the status of ticket 88", "buy more printer paper for the office", false},
	{"the model answered in under a second", "archive last year's audit logs", false},
}

// TestHashingThresholdCalibration justifies HashingThreshold: on the
// labelled pairs it separates related from unrelated perfectly, while the
// seed's 0.7 — calibrated for neural embeddings — would call almost every
// related pair unrelated.
func TestHashingThresholdCalibration(t *testing.T) {
	h := NewHashingEmbedder(DefaultHashDimensions)
	minRelated, maxUnrelated := float32(2), float32(-2)
	relatedAbove07 := 0
	for _, p := range labelledPairs {
		s := cosine(t, h, p.a, p.b)
		t.Logf("%.3f related=%v  %q ~ %q", s, p.related, p.a, p.b)
		if p.related {
			minRelated = min(minRelated, s)
			if s >= NeuralThreshold {
				relatedAbove07++
			}
		} else {
			maxUnrelated = max(maxUnrelated, s)
		}
	}
	t.Logf("related ≥ %.3f, unrelated ≤ %.3f, threshold %.2f", minRelated, maxUnrelated, h.Threshold())
	if !(maxUnrelated < h.Threshold() && h.Threshold() <= minRelated) {
		t.Fatalf("threshold %.2f does not separate related (min %.3f) from unrelated (max %.3f)", h.Threshold(), minRelated, maxUnrelated)
	}
	if relatedAbove07 > 1 {
		t.Fatalf("%d related pairs score ≥ 0.7; the case for a lower threshold is gone — recalibrate", relatedAbove07)
	}
}

func cosine(t *testing.T, e Embedder, a, b string) float32 {
	t.Helper()
	va, _ := embedding(ctx, e, a, nil)
	vb, _ := embedding(ctx, e, b, nil)
	return dot(va, vb)
}

func TestHashingEmbedder(t *testing.T) {
	h := NewHashingEmbedder(64)
	if h.Dimensions() != 64 || h.Model() != "creto-hash-v1-64" {
		t.Fatal(h.Model())
	}
	if s := cosine(t, h, "Transfers to the Vendor!", "transfer vendor"); math.Abs(float64(s)-1) > 1e-6 {
		t.Fatalf("case, punctuation, plural and function words should not matter: %v", s)
	}
	if s := cosine(t, h, "vendor transfer", "transfer vendor"); s >= 1-1e-6 || s <= 0 {
		t.Fatalf("word order should matter only through bigrams: %v", s)
	}
	v, err := h.Embed(ctx, "the of and")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range v {
		if x != 0 {
			t.Fatal("a text of function words should embed to zero")
		}
	}
	if NewHashingEmbedder(0).Dimensions() != DefaultHashDimensions {
		t.Fatal("zero dimension should take the default")
	}
}
