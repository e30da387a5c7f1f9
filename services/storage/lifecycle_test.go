package storage

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

const day = 24 * time.Hour

// An expired version is invisible at once, to every read path, and keeps
// its quota until the sweeper deletes it with its file.
func TestTTL(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice")
	ctx := context.Background()
	short := e.put(alice, StoreRequest{Key: "short", TTL: time.Hour}, payload(2*minChunkSize, 1))
	deflt := e.put(alice, StoreRequest{Key: "default"}, []byte("default ttl"))
	never := e.put(alice, StoreRequest{Key: "never", TTL: NoExpiry}, []byte("forever"))
	if got := short.ExpiresAt.Sub(short.CreatedAt).Round(time.Minute); got != time.Hour {
		t.Fatalf("short lives %v", got)
	}
	if got := deflt.ExpiresAt.Sub(deflt.CreatedAt).Round(time.Hour); got != 90*day {
		t.Fatalf("default lives %v", got)
	}
	if !never.ExpiresAt.IsZero() {
		t.Fatal("NoExpiry version has an expiry")
	}

	e.clock.advance(2 * time.Hour)
	for name, err := range map[string]error{
		"retrieve": func() error { _, err := e.s.Retrieve(ctx, alice, short.Ref); return err }(),
		"metadata": func() error {
			_, err := e.s.GetMetadata(ctx, alice, StorageRef{Bucket: "default", Key: "short"})
			return err
		}(),
		"delete": e.s.Delete(ctx, alice, short.Ref),
		"update": func() error {
			_, err := e.s.UpdateMetadata(ctx, alice, UpdateMetadataRequest{Ref: short.Ref, TTL: NoExpiry})
			return err
		}(),
		"presign read": func() error {
			_, err := e.s.Presign(ctx, alice, PresignRequest{Op: PresignGet, Ref: short.Ref})
			return err
		}(),
	} {
		wantErr(t, name, err, ErrNotFound)
	}
	l, err := e.s.List(ctx, alice, ListRequest{AllVersions: true})
	if err != nil || len(l.Objects) != 2 {
		t.Fatalf("list shows %d versions: %v", len(l.Objects), err)
	}
	if u, _ := e.s.Usage(ctx, alice, "alice"); u.Used != 2*minChunkSize+int64(len("default ttl")+len("forever")) {
		t.Fatalf("usage before the sweep %+v", u)
	}
	n, err := e.s.Sweep(ctx)
	if err != nil || n != 1 {
		t.Fatalf("swept %d: %v", n, err)
	}
	e.unchanged("after the sweep", 2, 0)
	if u, _ := e.s.Usage(ctx, alice, "alice"); u.Used != int64(len("default ttl")+len("forever")) {
		t.Fatalf("usage after the sweep %+v", u)
	}
	// Versions that expire while the service is down go at the next start.
	e.clock.advance(91 * day)
	e.restart()
	e.unchanged("after a restart past the default TTL", 1, 0)
	if string(e.get(alice, never.Ref)) != "forever" {
		t.Fatal("the NoExpiry version is gone")
	}
}

// The latest live version is what an unversioned reference reads: when the
// newest expires, the one before it shows again.
func TestExpiredLatestFallsBack(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice")
	e.put(alice, StoreRequest{Key: "k", TTL: NoExpiry}, []byte("v1"))
	e.put(alice, StoreRequest{Key: "k", TTL: time.Minute}, []byte("v2"))
	ref := StorageRef{Bucket: "default", Key: "k"}
	if string(e.get(alice, ref)) != "v2" {
		t.Fatal("latest is not v2")
	}
	e.clock.advance(time.Hour)
	if string(e.get(alice, ref)) != "v1" {
		t.Fatal("after v2 expired, latest is not v1")
	}
}

// Compliance retention holds on every path that could delete, shorten or
// change a retained version, for everyone, the owner and delegates with
// every permission included, until it ends.
func TestComplianceRetention(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice", "bob")
	ctx := context.Background()
	admin := e.delegate("alice", "bob", PermRead, PermWrite, PermDelete)
	invoice := e.put(alice, StoreRequest{Bucket: "ledger", Key: "inv-1", Classification: Compliance,
		Metadata: map[string]string{"n": "1"}}, payload(2*minChunkSize, 1))
	if want := invoice.CreatedAt.Add(2555 * day); !invoice.RetainUntil.Equal(want) || !invoice.ExpiresAt.IsZero() {
		t.Fatalf("retain until %v (want %v), expires %v", invoice.RetainUntil, want, invoice.ExpiresAt)
	}
	// A new version on the same key is allowed and does not displace the
	// retained one.
	e.put(alice, StoreRequest{Bucket: "ledger", Key: "inv-1", Classification: AgentData}, []byte("draft"))
	obj := StorageRef{Bucket: "ledger", Key: "inv-1"}

	agentData, other := AgentData, "text/plain"
	for _, who := range []Caller{alice, admin} {
		refused := map[string]error{
			"delete the version": e.s.Delete(ctx, who, invoice.Ref),
			"delete the object":  e.s.Delete(ctx, who, obj),
			"change metadata": func() error {
				_, err := e.s.UpdateMetadata(ctx, who, UpdateMetadataRequest{Ref: invoice.Ref, Metadata: map[string]string{}})
				return err
			}(),
			"change content type": func() error {
				_, err := e.s.UpdateMetadata(ctx, who, UpdateMetadataRequest{Ref: invoice.Ref, ContentType: &other})
				return err
			}(),
			"reclassify": func() error {
				_, err := e.s.UpdateMetadata(ctx, who, UpdateMetadataRequest{Ref: invoice.Ref, Classification: agentData})
				return err
			}(),
			"expire before retention ends": func() error {
				_, err := e.s.UpdateMetadata(ctx, who, UpdateMetadataRequest{Ref: invoice.Ref, TTL: 30 * day})
				return err
			}(),
		}
		for name, err := range refused {
			wantErr(t, who.Agent+": "+name, err, ErrRetained)
			var re *RetainedError
			if !errors.As(err, &re) || !re.Until.Equal(invoice.RetainUntil) {
				t.Fatalf("%s: not a *RetainedError with the end date: %v", name, err)
			}
		}
	}
	e.unchanged("after refused changes", 2, 1)
	md, _ := e.s.GetMetadata(ctx, alice, invoice.Ref)
	if md.Classification != Compliance || md.CustomMetadata["n"] != "1" || !md.ExpiresAt.IsZero() {
		t.Fatalf("a refused change changed the version: %+v", md)
	}

	// A new compliance version whose TTL ends before its retention is
	// refused before anything is stored.
	_, err := e.s.Store(ctx, alice, StoreRequest{Key: "x", Classification: Compliance, TTL: day}, bytes.NewReader([]byte("x")))
	wantErr(t, "compliance with a short TTL", err, ErrRetained)
	e.unchanged("after a refused store", 2, 1)

	// Extending life is allowed: an expiry after the retention ends.
	if _, err := e.s.UpdateMetadata(ctx, alice, UpdateMetadataRequest{Ref: invoice.Ref, TTL: 3000 * day}); err != nil {
		t.Fatalf("extending: %v", err)
	}

	// A version whose record says expired-but-retained (which no API path
	// writes) is still not swept: retention wins.
	rec := e.record(invoice.Ref)
	rec.ExpiresAt = e.clock.now().Add(-time.Hour).UnixMilli()
	e.putRecord(rec)
	if n, err := e.s.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep removed %d retained versions: %v", n, err)
	}
	rec.ExpiresAt = 0
	e.putRecord(rec)

	// Retention survives a restart and ends when it says.
	e.restart()
	wantErr(t, "after restart", e.s.Delete(ctx, alice, invoice.Ref), ErrRetained)
	e.clock.advance(2556 * day)
	if err := e.s.Delete(ctx, admin, obj); err != nil {
		t.Fatalf("after retention ended: %v", err)
	}
	e.unchanged("after retention ended", 0, 0)
}

// Becoming Compliance starts retention, and a version with an expiry that
// would cut it short cannot become Compliance without a longer one.
func TestBecomingCompliance(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice")
	ctx := context.Background()
	md := e.put(alice, StoreRequest{Key: "k", TTL: NoExpiry}, []byte("data"))
	up, err := e.s.UpdateMetadata(ctx, alice, UpdateMetadataRequest{Ref: md.Ref, Classification: Compliance})
	if err != nil || up.RetainUntil.IsZero() {
		t.Fatalf("becoming compliance: %v %+v", err, up)
	}
	wantErr(t, "delete", e.s.Delete(ctx, alice, md.Ref), ErrRetained)

	short := e.put(alice, StoreRequest{Key: "short", TTL: day}, []byte("data"))
	_, err = e.s.UpdateMetadata(ctx, alice, UpdateMetadataRequest{Ref: short.Ref, Classification: Compliance})
	wantErr(t, "compliance with a short expiry", err, ErrRetained)
	if got, _ := e.s.GetMetadata(ctx, alice, short.Ref); got.Classification != AgentData || !got.RetainUntil.IsZero() {
		t.Fatalf("refused update changed the version: %+v", got)
	}
	if _, err := e.s.UpdateMetadata(ctx, alice, UpdateMetadataRequest{Ref: short.Ref, Classification: Compliance, TTL: NoExpiry}); err != nil {
		t.Fatalf("compliance with the expiry removed: %v", err)
	}
}

func TestUpdateMetadata(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice")
	ctx := context.Background()
	md := e.put(alice, StoreRequest{Key: "k", ContentType: "text/plain", Metadata: map[string]string{"a": "1"}}, []byte("data"))
	ct := "application/json"
	up, err := e.s.UpdateMetadata(ctx, alice, UpdateMetadataRequest{Ref: StorageRef{Bucket: "default", Key: "k"},
		Metadata: map[string]string{"b": "2"}, ContentType: &ct, Classification: Artifact, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if up.CustomMetadata["b"] != "2" || up.CustomMetadata["a"] != "" || up.ContentType != ct || up.Classification != Artifact ||
		up.Ref.VersionID != md.Ref.VersionID || !up.ExpiresAt.Equal(e.clock.now().Add(time.Hour).Truncate(time.Millisecond)) {
		t.Fatalf("updated %+v", up)
	}
	// The indexes follow: the listing filters on the new class, the
	// sweeper on the new expiry.
	l, _ := e.s.List(ctx, alice, ListRequest{Classification: Artifact})
	if len(l.Objects) != 1 {
		t.Fatal("the listing does not see the new class")
	}
	e.clock.advance(2 * time.Hour)
	if n, _ := e.s.Sweep(ctx); n != 1 {
		t.Fatalf("swept %d", n)
	}
	e.unchanged("after the sweep", 0, 0)
}
