package storage

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestListPagination(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice", "bob")
	ctx := context.Background()
	var want []string
	for i := range 25 {
		key := fmt.Sprintf("k%02d", i)
		class := AgentData
		if i%5 == 0 {
			class = Artifact
		}
		e.put(alice, StoreRequest{Bucket: "b", Key: key, Classification: class}, []byte(key))
		want = append(want, key)
	}
	e.put(alice, StoreRequest{Bucket: "b", Key: "k03"}, []byte("k03 v2")) // a second version
	e.put(alice, StoreRequest{Bucket: "other", Key: "k00"}, []byte("x"))
	e.put(Caller{Agent: "bob"}, StoreRequest{Bucket: "b", Key: "bob"}, []byte("x"))

	pages := func(req ListRequest) ([][]ObjectMetadata, error) {
		var out [][]ObjectMetadata
		for {
			resp, err := e.s.List(ctx, alice, req)
			if err != nil {
				return nil, err
			}
			out = append(out, resp.Objects)
			if resp.NextCursor == "" {
				return out, nil
			}
			req.Cursor = resp.NextCursor
		}
	}
	keys := func(ps [][]ObjectMetadata) []string {
		var k []string
		for _, p := range ps {
			for _, m := range p {
				k = append(k, m.Ref.Key)
			}
		}
		return k
	}

	ps, err := pages(ListRequest{Bucket: "b", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 || len(ps[0]) != 10 || len(ps[2]) != 5 || !slices.Equal(keys(ps), want) {
		t.Fatalf("pages of %v: %v", len(ps), keys(ps))
	}
	for _, p := range ps {
		for _, m := range p {
			if m.Ref.Key == "k03" && m.SizeBytes != int64(len("k03 v2")) {
				t.Fatal("the listing shows an older version of k03")
			}
		}
	}

	// Exactly a page's worth: no empty page after it.
	if ps, _ := pages(ListRequest{Bucket: "b", Limit: 25}); len(ps) != 1 {
		t.Fatalf("%d pages for 25 keys at 25 per page", len(ps))
	}
	// Class filter, across pages.
	ps, _ = pages(ListRequest{Classification: Artifact, Limit: 2})
	if got := keys(ps); !slices.Equal(got, []string{"k00", "k05", "k10", "k15", "k20"}) {
		t.Fatalf("artifacts: %v", got)
	}
	// All versions, and a prefix.
	ps, _ = pages(ListRequest{Bucket: "b", Prefix: "k0", AllVersions: true, Limit: 4})
	if got := keys(ps); len(got) != 11 || got[3] != "k03" || got[4] != "k03" {
		t.Fatalf("versions under k0: %v", got)
	}
	// Every bucket of the owner, nothing of bob's.
	ps, _ = pages(ListRequest{})
	if got := keys(ps); len(got) != 26 {
		t.Fatalf("alice's objects: %d", len(got))
	}
	// Expired versions are not listed.
	e.put(alice, StoreRequest{Bucket: "b", Key: "k99", TTL: time.Minute}, []byte("short"))
	e.clock.advance(time.Hour)
	if ps, _ := pages(ListRequest{Bucket: "b", Prefix: "k99"}); len(keys(ps)) != 0 {
		t.Fatal("an expired version is listed")
	}
}

func TestListBadInput(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice")
	ctx := context.Background()
	for name, req := range map[string]ListRequest{
		"negative limit":        {Limit: -1},
		"unknown class":         {Classification: 9},
		"prefix without bucket": {Prefix: "k"},
		"bad bucket":            {Bucket: "UPPER"},
		"bad owner":             {Owner: "has space"},
		"garbage cursor":        {Cursor: "!!!"},
		"forged cursor":         {Cursor: encodeCursor("b\x00k\x00not-a-version")},
		"unversioned cursor":    {Cursor: "MQ"}, // "1" without the separator
	} {
		_, err := e.s.List(ctx, alice, req)
		wantErr(t, name, err, ErrInvalidArgument)
	}
	if resp, err := e.s.List(ctx, alice, ListRequest{Limit: 5000}); err != nil || resp.NextCursor != "" {
		t.Fatalf("an over-large limit is capped, not refused: %v", err)
	}
}
