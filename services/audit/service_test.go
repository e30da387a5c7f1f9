package audit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/nhi"
)

func TestOpenCreatesThenReopens(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Config{})
	if !strings.HasPrefix(e.svc.Origin(), "creto.local/audit/") {
		t.Fatalf("origin %q", e.svc.Origin())
	}
	if _, _, err := e.svc.LatestCheckpoint(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty log has a checkpoint: %v", err)
	}
	v := e.svc.Verifier()
	e.appendN(3, 3, func(int) Record { return rec("a", "x") })
	s := e.reopen()
	if s.Size() != 3 || !s.Verifier().Equal(v) {
		t.Fatalf("after reopen: size %d, same keys %v", s.Size(), s.Verifier().Equal(v))
	}
	_, c, err := s.LatestCheckpoint(ctx)
	if err != nil || c.Size != 3 {
		t.Fatalf("latest checkpoint %+v %v: Close should sign one covering every record", c, err)
	}
	if _, err := ReadVerifier(ctx, e.store); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefuses(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Config{Origin: "log.example/one"})
	e.appendN(1, 1, func(int) Record { return rec("a", "x") })
	if err := e.svc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, e.store, testSealer(t), Config{}); !errors.Is(err, ErrSealed) {
		t.Fatalf("another node key: %v", err)
	}
	if _, err := Open(ctx, e.store, e.sealer, Config{Origin: "log.example/two"}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("another origin: %v", err)
	}
	st, _ := testStore(t)
	for name, cfg := range map[string]Config{
		"origin with space":  {Origin: "a b"},
		"origin with plus":   {Origin: "a+b"},
		"tiny records":       {MaxRecordBytes: 10},
		"huge records":       {MaxRecordBytes: 1 << 20},
		"negative batch":     {MaxBatch: -1},
		"default over max":   {QueryDefaultLimit: 50, QueryMaxLimit: 10},
		"scan under limit":   {QueryMaxScan: 5},
		"negative skew":      {MaxClockSkew: -time.Second},
		"sub-ms checkpoints": {CheckpointInterval: time.Microsecond},
		"negative cache":     {HashCacheBytes: -1},
	} {
		if _, err := Open(ctx, st, e.sealer, cfg); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ReadVerifier(ctx, st); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no log yet: %v", err)
	}
}

func TestLogAuthorizesAndFillsIn(t *testing.T) {
	ctx := context.Background()
	grants := AuthorizerFunc(func(_ context.Context, caller, who string, a Access) error {
		if caller == "metering" && a == AccessWrite {
			return nil
		}
		return ErrAccessDenied
	})
	e := newEnv(t, Config{Authorizer: grants})
	resp, err := e.svc.Log(ctx, "bot", LogRequest{Record: rec("bot", "consume_quota")})
	if err != nil || resp.Index != 0 || !resp.LoggedAt.Equal(e.clock.now()) {
		t.Fatalf("log: %+v %v", resp, err)
	}
	if _, err := e.svc.Log(ctx, "bot", LogRequest{Record: rec("other", "x")}); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("logging for another agent: %v", err)
	}
	resp, err = e.svc.Log(ctx, "metering", LogRequest{Record: rec("other", "quota_exceeded")})
	if err != nil || resp.Index != 1 {
		t.Fatalf("granted: %+v %v", resp, err)
	}
	got, err := e.svc.Query(ctx, "bot", QueryRequest{Who: "bot"})
	if err != nil || len(got.Records) != 1 {
		t.Fatalf("query: %+v %v", got, err)
	}
	r := got.Records[0]
	if !r.Timestamp.Equal(e.clock.now()) || !r.LoggedAt.Equal(e.clock.now()) || r.Index != 0 || r.What != "consume_quota" {
		t.Fatalf("stored %+v", r)
	}
	if _, err := e.svc.Log(ctx, "", LogRequest{Record: rec("", "x")}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("empty caller: %v", err)
	}
}

func TestBadInputAppendsNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Config{MaxBatch: 4, MaxRecordBytes: 1024})
	e.appendN(2, 2, func(int) Record { return rec("a", "x") })
	big := rec("a", "x")
	big.Why = strings.Repeat("w", 1000)
	future := rec("a", "x")
	future.Timestamp = e.clock.now().Add(time.Hour)
	cases := map[string]struct {
		recs []Record
		want error
	}{
		"invalid in batch": {[]Record{rec("a", "x"), rec("a", ""), rec("a", "y")}, ErrInvalidArgument},
		"too many":         {[]Record{rec("a", "1"), rec("a", "2"), rec("a", "3"), rec("a", "4"), rec("a", "5")}, ErrTooLarge},
		"none":             {nil, ErrInvalidArgument},
		"over size":        {[]Record{big}, ErrTooLarge},
		"post-dated":       {[]Record{future}, ErrInvalidArgument},
	}
	for name, c := range cases {
		_, err := e.svc.LogBatch(ctx, "a", LogBatchRequest{Records: c.recs})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
	_, err := e.svc.LogBatch(ctx, "a", LogBatchRequest{Records: cases["invalid in batch"].recs})
	if err == nil || !strings.Contains(err.Error(), "record 1") {
		t.Fatalf("the error should name the bad record: %v", err)
	}
	if e.svc.Size() != 2 {
		t.Fatalf("size %d after rejected appends", e.svc.Size())
	}
	if _, err := VerifyStore(ctx, e.store, nil); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentAppendsShareCommits(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Config{})
	const workers, each = 8, 40
	var mu sync.Mutex
	seen := map[uint64]string{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				who := fmt.Sprintf("agent-%d", w)
				resp, err := e.svc.Log(ctx, who, LogRequest{Record: rec(who, fmt.Sprint(i))})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[resp.Index] = who
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	st := e.svc.Stats()
	if len(seen) != workers*each || st.Records != workers*each || st.Size != workers*each {
		t.Fatalf("%d distinct indexes, stats %+v", len(seen), st)
	}
	for i := range uint64(workers * each) {
		if _, ok := seen[i]; !ok {
			t.Fatalf("index %d never returned", i)
		}
	}
	if st.Commits >= st.Records {
		t.Fatalf("%d commits for %d records: concurrent appends did not share a commit", st.Commits, st.Records)
	}
	// Each agent's records are in the order it logged them.
	for w := range workers {
		who := fmt.Sprintf("agent-%d", w)
		got, err := e.svc.Query(ctx, who, QueryRequest{Who: who, Limit: each})
		if err != nil || len(got.Records) != each {
			t.Fatalf("%s: %d records, %v", who, len(got.Records), err)
		}
		for i, r := range got.Records {
			if r.What != fmt.Sprint(i) {
				t.Fatalf("%s: record %d is %q", who, i, r.What)
			}
		}
	}
	if _, err := VerifyStore(ctx, e.store, e.svc.Verifier()); err != nil {
		t.Fatal(err)
	}
}

// TestSignedRecords uses NHI as the signature verifier: agents sign the
// record's payload with their hybrid key, and a bad signature is refused.
func TestSignedRecords(t *testing.T) {
	ctx := context.Background()
	st, _ := testStore(t)
	ids, err := nhi.New(ctx, st, testSealer(t), nhi.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ids.Close()
	if _, err := ids.Register(ctx, nhi.AgentIdentity{ID: "bot", Type: nhi.AgentTypeService, OwnerID: "ops"}); err != nil {
		t.Fatal(err)
	}
	svc, err := Open(ctx, st, testSealer(t), Config{Signatures: ids})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	r := rec("bot", "deploy")
	r.Timestamp = time.Now().UTC()
	payload, err := r.SigningPayload()
	if err != nil {
		t.Fatal(err)
	}
	if r.Signature, err = ids.Sign(ctx, "bot", payload); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Log(ctx, "bot", LogRequest{Record: r}); err != nil {
		t.Fatalf("signed record: %v", err)
	}
	r.Why = "changed after signing"
	if _, err := svc.Log(ctx, "bot", LogRequest{Record: r}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("altered signed record: %v", err)
	}
	if svc.Size() != 1 {
		t.Fatalf("size %d", svc.Size())
	}
}

// TestFailedCommitStopsAppends closes the store under the log: the commit
// fails, the caller hears ErrUnavailable, and the log refuses appends
// from then on instead of guessing what reached the disk.
func TestFailedCommitStopsAppends(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "kv")
	st, err := kv.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := Open(ctx, st, testSealer(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Append(ctx, []Record{rec("a", "x")}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := svc.Append(ctx, []Record{rec("a", "y")}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("commit on a closed store: %v", err)
	}
	if _, err := svc.Append(ctx, []Record{rec("a", "z")}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after a failed commit: %v", err)
	}
	if svc.Size() != 1 {
		t.Fatalf("size %d", svc.Size())
	}
	if err := svc.Close(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("close after failure: %v", err)
	}
	if _, err := svc.Append(ctx, []Record{rec("a", "z")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

// TestLoggedAtNeverGoesBackwards: the node's clock stepping back does
// not make logged_at go backwards, which verification would call
// tampering.
func TestLoggedAtNeverGoesBackwards(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Config{})
	first, err := e.svc.Log(ctx, "a", LogRequest{Record: rec("a", "x")})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.advance(-time.Hour)
	r := rec("a", "y")
	r.Timestamp = e.clock.now()
	second, err := e.svc.Log(ctx, "a", LogRequest{Record: r})
	if err != nil {
		t.Fatal(err)
	}
	if second.LoggedAt.Before(first.LoggedAt) {
		t.Fatalf("logged_at went from %v to %v", first.LoggedAt, second.LoggedAt)
	}
	e.svc.Close()
	if _, err := VerifyStore(ctx, e.store, nil); err != nil {
		t.Fatal(err)
	}
}
