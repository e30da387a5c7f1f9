package storage

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"
)

// No fmt verb and no slog handler prints the node secret, its derived
// keys, a reader's plaintext or a presigned URL's signature.
func TestNothingSecretPrints(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice")
	ctx := context.Background()
	md := e.put(alice, StoreRequest{Key: "k"}, []byte("PLAINTEXT-MARKER"))
	u, err := e.s.Presign(ctx, alice, PresignRequest{Op: PresignGet, Ref: md.Ref})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.s.RetrieveStream(ctx, alice, md.Ref)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Read(make([]byte, 4)); err != nil { // leaves plaintext pending in the reader
		t.Fatal(err)
	}
	pu, _ := url.Parse(u.URL)
	sig := pu.Query().Get("sig")
	rawSig, _ := base64.RawURLEncoding.DecodeString(sig)
	secrets := []string{sig, hex.EncodeToString(rawSig), "PLAINTEXT-MARKER", "MARKER",
		hex.EncodeToString(e.s.secret), hex.EncodeToString(e.s.presignKey), fmt.Sprint(e.s.secret), fmt.Sprint(e.s.presignKey)}

	var out strings.Builder
	for _, v := range []any{e.s, r, u, &u} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
	}
	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&logs, nil), slog.NewJSONHandler(&logs, nil)} {
		slog.New(h).Info("presigned", "url", u, "svc", e.s, "reader", r)
	}
	all := out.String() + logs.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(all, s) {
			t.Fatalf("printed %q:\n%s", s, all)
		}
	}
	if !strings.Contains(all, "REDACTED") || !strings.Contains(all, md.Ref.Key) {
		t.Fatalf("the redacted forms lost their useful part:\n%s", all)
	}
}

// max_concurrent_streams bounds the streams in flight: a reader holds its
// slot until closed, and a store waits for one (or for its context).
func TestStreamSlots(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConcurrentStreams = 1
	e := newEnv(t, cfg)
	e.agents("alice")
	md := e.put(alice, StoreRequest{Key: "k"}, []byte("data"))
	r, err := e.s.RetrieveStream(context.Background(), alice, md.Ref)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = e.s.Store(ctx, alice, StoreRequest{Key: "k2", Classification: AgentData}, bytes.NewReader([]byte("x")))
	wantErr(t, "store while the only slot is held", err, context.DeadlineExceeded)
	r.Close()
	r.Close() // idempotent: the slot is released once
	e.put(alice, StoreRequest{Key: "k2"}, []byte("x"))
	e.put(alice, StoreRequest{Key: "k3"}, []byte("x"))
	if err := e.s.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
}
