package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// auditor may read everyone's records.
var auditor = AuthorizerFunc(func(_ context.Context, caller, _ string, a Access) error {
	if caller == "auditor" && a == AccessRead {
		return nil
	}
	return ErrAccessDenied
})

// queryAll pages through a query and returns every record.
func queryAll(t *testing.T, s *Service, caller string, q QueryRequest) []Record {
	t.Helper()
	var out []Record
	for pages := 0; ; pages++ {
		resp, err := s.Query(context.Background(), caller, q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.Records...)
		if resp.NextCursor == "" {
			return out
		}
		if pages > 100000 {
			t.Fatal("query never ends")
		}
		q.Cursor = resp.NextCursor
	}
}

func indexes(rs []Record) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.Index
	}
	return out
}

// queryLog is 60 records: who cycles over 3 agents, what over 4 actions,
// resource over 5 documents, outcome over the 4 outcomes; record i
// happened at base + i minutes.
func queryLog(t *testing.T, cfg Config) (*logEnv, []Record, time.Time) {
	cfg.Authorizer = auditor
	e := newEnv(t, cfg)
	base := e.clock.now().Add(-2 * time.Hour)
	var all []Record
	e.appendN(60, 7, func(i int) Record {
		r := Record{
			Timestamp: base.Add(time.Duration(i) * time.Minute),
			Source:    []string{"authz", "nhi"}[i%2],
			Who:       fmt.Sprintf("agent-%d", i%3),
			What:      fmt.Sprintf("action-%d", i%4),
			Resource:  fmt.Sprintf(`Doc::"%d"`, i%5),
			Outcome:   Outcome(i % 4),
		}
		all = append(all, r)
		return r
	})
	return e, all, base
}

func TestQueryFilters(t *testing.T) {
	e, all, base := queryLog(t, Config{})
	want := func(keep func(i int, r Record) bool) []uint64 {
		var out []uint64
		for i, r := range all {
			if keep(i, r) {
				out = append(out, uint64(i))
			}
		}
		return out
	}
	cases := map[string]struct {
		caller string
		q      QueryRequest
		keep   func(i int, r Record) bool
	}{
		"who":              {"agent-1", QueryRequest{Who: "agent-1"}, func(_ int, r Record) bool { return r.Who == "agent-1" }},
		"what":             {"auditor", QueryRequest{What: "action-2"}, func(_ int, r Record) bool { return r.What == "action-2" }},
		"resource":         {"auditor", QueryRequest{Resource: `Doc::"3"`}, func(_ int, r Record) bool { return r.Resource == `Doc::"3"` }},
		"source":           {"auditor", QueryRequest{Source: "nhi"}, func(_ int, r Record) bool { return r.Source == "nhi" }},
		"outcomes":         {"auditor", QueryRequest{Outcomes: []Outcome{Denied, Timeout}}, func(_ int, r Record) bool { return r.Outcome >= Denied }},
		"time range":       {"auditor", QueryRequest{Since: base.Add(10 * time.Minute), Until: base.Add(20 * time.Minute)}, func(i int, _ Record) bool { return i >= 10 && i < 20 }},
		"since only":       {"auditor", QueryRequest{Since: base.Add(55 * time.Minute)}, func(i int, _ Record) bool { return i >= 55 }},
		"who and resource": {"agent-0", QueryRequest{Who: "agent-0", Resource: `Doc::"0"`}, func(_ int, r Record) bool { return r.Who == "agent-0" && r.Resource == `Doc::"0"` }},
		"everything":       {"auditor", QueryRequest{}, func(int, Record) bool { return true }},
		"nothing":          {"auditor", QueryRequest{Who: "nobody"}, func(int, Record) bool { return false }},
	}
	for name, c := range cases {
		for _, limit := range []int{0, 1, 4} {
			q := c.q
			q.Limit = limit
			got := indexes(queryAll(t, e.svc, c.caller, q))
			if w := want(c.keep); !slices.Equal(got, w) && !(len(got) == 0 && len(w) == 0) {
				t.Errorf("%s, limit %d: got %v, want %v", name, limit, got, w)
			}
		}
	}
	// Records come back whole.
	resp, err := e.svc.Query(context.Background(), "auditor", QueryRequest{Limit: 1, Cursor: "17"})
	if err != nil || len(resp.Records) != 1 {
		t.Fatal(err)
	}
	r, w := resp.Records[0], all[17]
	if r.Index != 17 || r.Who != w.Who || r.What != w.What || r.Resource != w.Resource || !r.Timestamp.Equal(w.Timestamp) || r.Outcome != w.Outcome || resp.NextCursor != "18" {
		t.Fatalf("record 17: %+v, next %q", r, resp.NextCursor)
	}
}

func TestQueryAccessAndBadInput(t *testing.T) {
	ctx := context.Background()
	e, _, _ := queryLog(t, Config{})
	for name, c := range map[string]struct {
		caller string
		q      QueryRequest
		want   error
	}{
		"someone else's":    {"agent-0", QueryRequest{Who: "agent-1"}, ErrAccessDenied},
		"everyone's":        {"agent-0", QueryRequest{}, ErrAccessDenied},
		"negative limit":    {"agent-0", QueryRequest{Who: "agent-0", Limit: -1}, ErrInvalidArgument},
		"limit over max":    {"agent-0", QueryRequest{Who: "agent-0", Limit: 1001}, ErrTooLarge},
		"bad cursor":        {"agent-0", QueryRequest{Who: "agent-0", Cursor: "x"}, ErrInvalidArgument},
		"padded cursor":     {"agent-0", QueryRequest{Who: "agent-0", Cursor: "07"}, ErrInvalidArgument},
		"empty time range":  {"agent-0", QueryRequest{Who: "agent-0", Since: time.Unix(10, 0), Until: time.Unix(10, 0)}, ErrInvalidArgument},
		"bad outcome":       {"agent-0", QueryRequest{Who: "agent-0", Outcomes: []Outcome{7}}, ErrInvalidArgument},
		"control in filter": {"auditor", QueryRequest{What: "a\x00b"}, ErrInvalidArgument},
	} {
		if _, err := e.svc.Query(ctx, c.caller, c.q); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
	resp, err := e.svc.Query(ctx, "agent-0", QueryRequest{Who: "agent-0", Cursor: "1000"})
	if err != nil || len(resp.Records) != 0 || resp.NextCursor != "" {
		t.Fatalf("cursor past the end: %+v %v", resp, err)
	}
}

// TestQueryScanBudget: a query whose filter rarely matches stops after
// QueryMaxScan records with a cursor, and paging on finds everything.
func TestQueryScanBudget(t *testing.T) {
	e, _, _ := queryLog(t, Config{QueryMaxScan: 10, QueryMaxLimit: 10, QueryDefaultLimit: 5})
	resp, err := e.svc.Query(context.Background(), "auditor", QueryRequest{Outcomes: []Outcome{Timeout}, Source: "authz"})
	if err != nil {
		t.Fatal(err)
	}
	// Records 0..9 were examined; none is both a timeout and from authz
	// (timeouts are odd indexes, authz even ones).
	if len(resp.Records) != 0 || resp.NextCursor != "10" {
		t.Fatalf("first page %v, next %q", indexes(resp.Records), resp.NextCursor)
	}
	got := queryAll(t, e.svc, "auditor", QueryRequest{What: "action-3"})
	if len(got) != 15 {
		t.Fatalf("%d records", len(got))
	}
}

// TestQueryAcrossPages fills more than one 65,536-record page, so the
// page walk, the index entries under two page prefixes, the time-range
// page skipping and the restart of a half-full page are exercised.
func TestQueryAcrossPages(t *testing.T) {
	if testing.Short() {
		t.Skip("appends 70,000 records")
	}
	ctx := context.Background()
	e := newEnv(t, Config{Authorizer: auditor, MaxBatch: 5000, QueryMaxScan: 100000, QueryMaxLimit: 1000})
	base := e.clock.now().Add(-24 * time.Hour)
	const n = 1<<pageBits + 4000
	mk := func(i int) Record {
		r := Record{Timestamp: base.Add(time.Duration(i) * time.Second), Who: fmt.Sprintf("a%d", i%2), What: "x"}
		if i%1000 == 7 {
			r.Resource = "rare"
		}
		return r
	}
	e.appendN(n-2000, 5000, mk)
	e.reopen() // the second page is half full
	e.appendN(2000, 5000, func(i int) Record { return mk(n - 2000 + i) })
	rare := queryAll(t, e.svc, "auditor", QueryRequest{Resource: "rare", Limit: 7})
	if wantRare := (n-8)/1000 + 1; len(rare) != wantRare || rare[0].Index != 7 || rare[len(rare)-1].Index != uint64(wantRare-1)*1000+7 {
		t.Fatalf("rare: %d records", len(rare))
	}
	late := queryAll(t, e.svc, "auditor", QueryRequest{Since: base.Add((1<<pageBits + 10) * time.Second), Limit: 1000})
	if len(late) != n-(1<<pageBits+10) || late[0].Index != 1<<pageBits+10 {
		t.Fatalf("late: %d records from %d", len(late), late[0].Index)
	}
	// The whole first page lies outside this range: it is skipped, not
	// read record by record, so with a scan budget far below its 32,768
	// "a1" records the first call already examines the second page.
	e.cfg.QueryMaxScan = 1000
	e.reopen()
	q := QueryRequest{Since: base.Add((n - 5) * time.Second), Who: "a1"}
	resp, err := e.svc.Query(ctx, "auditor", q)
	if err != nil || resp.NextCursor != fmt.Sprint(1<<pageBits+2*1000) {
		t.Fatalf("first call: %v, next %q, %v", indexes(resp.Records), resp.NextCursor, err)
	}
	if got := indexes(queryAll(t, e.svc, "auditor", q)); !slices.Equal(got, []uint64{n - 5, n - 3, n - 1}) {
		t.Fatalf("late a1 records: %v", got)
	}
	if _, err := VerifyStore(ctx, e.store, nil); err != nil {
		t.Fatal(err)
	}
}

// TestQueryIndexListsAndCorruption: one commit of many records writes one
// index list per value, queries expand them, and a damaged list is
// reported rather than misread.
func TestQueryIndexListsAndCorruption(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Config{Authorizer: auditor})
	e.appendN(30, 30, func(i int) Record { return rec(fmt.Sprintf("a%d", i%2), "x") })
	var lists int
	if err := e.store.Scan(ctx, indexPrefix(indexWho, "a1"), func(_, v []byte) error { lists++; return nil }); err != nil {
		t.Fatal(err)
	}
	if lists != 1 {
		t.Fatalf("one commit wrote %d index lists for one value", lists)
	}
	got := indexes(queryAll(t, e.svc, "a1", QueryRequest{Who: "a1", Limit: 4}))
	if len(got) != 15 || got[0] != 1 || got[14] != 29 {
		t.Fatalf("a1: %v", got)
	}
	// A gap of zero would repeat a record: refused.
	set(t, e.store, binary.BigEndian.AppendUint64(indexPrefix(indexWho, "a1"), 1), []byte{0})
	if _, err := e.svc.Query(ctx, "a1", QueryRequest{Who: "a1"}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("damaged index list: %v", err)
	}
}
