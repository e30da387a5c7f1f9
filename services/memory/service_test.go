package memory

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var ctx = context.Background()

func TestStoreGetQuery(t *testing.T) {
	f := newFixture(t, Config{})
	meta := map[string]string{"source": "ledger"}
	wire := f.store1("agent-a", StoreRequest{Agent: "agent-a", Content: "Approve the wire transfer to the vendor Acme", Type: Reasoning, Metadata: meta})
	f.store1("agent-a", StoreRequest{Agent: "agent-a", Content: "Rotate the database password secret", Type: Context})
	f.store1("agent-a", StoreRequest{Agent: "agent-a", Content: "Vendor Acme asked for a wire transfer of 5000 EUR", Type: Observation})
	f.store1("agent-b", StoreRequest{Agent: "agent-b", Content: "wire transfer to vendor Acme", Type: Observation})

	got := f.query("agent-a", Query{Agent: "agent-a", Text: "wire transfer to vendor Acme"})
	if want := []string{"Approve the wire transfer to the vendor Acme", "Vendor Acme asked for a wire transfer of 5000 EUR"}; !slices.Equal(contents(got), want) {
		t.Fatalf("query results %q, want %q (agent-b's memory and the unrelated one excluded)", contents(got), want)
	}
	if got[0].Score < got[1].Score || got[1].Score < HashingThreshold || got[0].Score > 1.0001 {
		t.Fatalf("scores %v, %v not ordered within [threshold, 1]", got[0].Score, got[1].Score)
	}

	m, err := f.svc.Get(ctx, "agent-a", wire)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != wire || m.Agent != "agent-a" || m.Type != Reasoning || m.Metadata["source"] != "ledger" || !m.ExpiresAt.IsZero() {
		t.Fatalf("get returned %+v", m)
	}
	// Neither the caller's map nor the returned one aliases what is stored.
	meta["source"] = "changed"
	m.Metadata["source"] = "changed too"
	if again, _ := f.svc.Get(ctx, "agent-a", wire); again.Metadata["source"] != "ledger" {
		t.Fatalf("stored metadata changed through an alias: %v", again.Metadata)
	}
}

func TestQueryFiltersAndLimits(t *testing.T) {
	f := newFixture(t, Config{})
	start := f.clock.now()
	for i := range 6 {
		typ := []Type{Observation, Reasoning, Context}[i%3]
		f.store1("a", StoreRequest{Agent: "a", Content: fmt.Sprintf("deploy service number %d to production", i), Type: typ})
		f.clock.advance(time.Hour)
	}
	all := f.query("a", Query{Agent: "a", Text: "deploy production", Threshold: -1})
	if len(all) != 6 {
		t.Fatalf("threshold -1 returned %d of 6", len(all))
	}
	if got := f.query("a", Query{Agent: "a", Text: "deploy production", Limit: 2}); len(got) != 2 {
		t.Fatalf("limit 2 returned %d", len(got))
	}
	for _, r := range f.query("a", Query{Agent: "a", Text: "deploy production", Types: []Type{Reasoning, Context}}) {
		if r.Memory.Type == Observation {
			t.Fatalf("type filter admitted %v", r.Memory)
		}
	}
	since, until := start.Add(90*time.Minute), start.Add(4*time.Hour+time.Minute)
	got := f.query("a", Query{Agent: "a", Text: "deploy production", Since: since, Until: until})
	if len(got) != 3 {
		t.Fatalf("time range returned %q, want the memories of hours 2, 3 and 4", contents(got))
	}
	for _, r := range got {
		if r.Memory.CreatedAt.Before(since) || r.Memory.CreatedAt.After(until) {
			t.Fatalf("%v outside the time range", r.Memory.CreatedAt)
		}
	}
	if got := f.query("a", Query{Agent: "a", Text: "unrelated kitten photos"}); len(got) != 0 {
		t.Fatalf("unrelated query returned %q", contents(got))
	}
	if got := f.query("nobody-yet", Query{Agent: "nobody-yet", Text: "x"}); len(got) != 0 {
		t.Fatalf("query of an empty agent returned %d", len(got))
	}
	// Results are deterministic even when every score ties: newest first.
	ties := f.query("a", Query{Agent: "a", Text: "deploy production", Threshold: -1, Types: []Type{Observation}})
	if len(ties) != 2 || !ties[0].Memory.CreatedAt.After(ties[1].Memory.CreatedAt) {
		t.Fatalf("tied results not newest first: %v", contents(ties))
	}
}

// TestBadInput: every kind of bad input gets its typed error, and nothing
// at all is stored — not even the good memories of the same batch.
func TestBadInput(t *testing.T) {
	f := newFixture(t, Config{MaxQueryLimit: 50})
	good := StoreRequest{Agent: "a", Content: "a good memory", Type: Observation}
	with := func(change func(*StoreRequest)) StoreRequest {
		r := good
		change(&r)
		return r
	}
	wrongDim := make([]float32, 255)
	wrongDim[0] = 1
	nan := make([]float32, 256)
	nan[3] = float32(math.NaN())
	inf := make([]float32, 256)
	inf[7] = float32(math.Inf(-1))
	for _, tc := range []struct {
		name   string
		caller string
		req    StoreRequest
		want   error
	}{
		{"wrong dimension", "a", with(func(r *StoreRequest) { r.Embedding = wrongDim }), ErrDimensionMismatch},
		{"NaN", "a", with(func(r *StoreRequest) { r.Embedding = nan }), ErrInvalidVector},
		{"Inf", "a", with(func(r *StoreRequest) { r.Embedding = inf }), ErrInvalidVector},
		{"zero vector", "a", with(func(r *StoreRequest) { r.Embedding = make([]float32, 256) }), ErrInvalidVector},
		{"empty content", "a", with(func(r *StoreRequest) { r.Content = "" }), ErrInvalidArgument},
		{"blank content", "a", with(func(r *StoreRequest) { r.Content = " \n\t" }), ErrInvalidArgument},
		{"invalid UTF-8", "a", with(func(r *StoreRequest) { r.Content = "ok \xff" }), ErrInvalidArgument},
		{"content too large", "a", with(func(r *StoreRequest) { r.Content = strings.Repeat("x", 64<<10+1) }), ErrInvalidArgument},
		{"unspecified type", "a", with(func(r *StoreRequest) { r.Type = TypeUnspecified }), ErrInvalidArgument},
		{"unknown type", "a", with(func(r *StoreRequest) { r.Type = 42 }), ErrInvalidArgument},
		{"negative TTL", "a", with(func(r *StoreRequest) { r.TTL = -time.Second }), ErrInvalidArgument},
		{"empty metadata key", "a", with(func(r *StoreRequest) { r.Metadata = map[string]string{"": "v"} }), ErrInvalidArgument},
		{"empty agent", "a", with(func(r *StoreRequest) { r.Agent = "" }), ErrInvalidArgument},
		{"agent with a newline", "a\n", with(func(r *StoreRequest) { r.Agent = "a\n" }), ErrInvalidArgument},
		{"foreign agent", "b", good, ErrAccessDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.svc.Store(ctx, tc.caller, tc.req); !errors.Is(err, tc.want) {
				t.Fatalf("store: %v, want %v", err, tc.want)
			}
			if _, err := f.svc.StoreBatch(ctx, tc.caller, []StoreRequest{good, tc.req, good}); !errors.Is(err, tc.want) {
				t.Fatalf("batch: %v, want %v", err, tc.want)
			}
			if n := f.records(); n != 0 {
				t.Fatalf("%d records stored after a refused write", n)
			}
		})
	}
	if _, err := f.svc.StoreBatch(ctx, "a", nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("empty batch: %v", err)
	}
	if f.records() != 0 || len(f.svc.byID) != 0 {
		t.Fatal("something was stored")
	}

	f.store1("a", good)
	for _, tc := range []struct {
		name string
		q    Query
		want error
	}{
		{"limit over the cap", Query{Agent: "a", Text: "x", Limit: 51}, ErrLimitExceeded},
		{"negative limit", Query{Agent: "a", Text: "x", Limit: -1}, ErrInvalidArgument},
		{"no query", Query{Agent: "a"}, ErrInvalidArgument},
		{"text and vector", Query{Agent: "a", Text: "x", Embedding: make([]float32, 256)}, ErrInvalidArgument},
		{"wrong query dimension", Query{Agent: "a", Embedding: wrongDim}, ErrDimensionMismatch},
		{"NaN query", Query{Agent: "a", Embedding: nan}, ErrInvalidVector},
		{"threshold above 1", Query{Agent: "a", Text: "x", Threshold: 1.5}, ErrInvalidArgument},
		{"NaN threshold", Query{Agent: "a", Text: "x", Threshold: float32(math.NaN())}, ErrInvalidArgument},
		{"bad type filter", Query{Agent: "a", Text: "x", Types: []Type{TypeUnspecified}}, ErrInvalidArgument},
		{"reversed time range", Query{Agent: "a", Text: "x", Since: time.Now(), Until: time.Now().Add(-time.Hour)}, ErrInvalidArgument},
	} {
		if _, err := f.svc.Query(ctx, "a", tc.q); !errors.Is(err, tc.want) || !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v, want %v (and ErrInvalidArgument)", tc.name, err, tc.want)
		}
	}
	if _, err := f.svc.Get(ctx, "a", "0123456789abcdef0123456789abcdef"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of an unknown id: %v", err)
	}
	if err := f.svc.Delete(ctx, "a", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete of an unknown id: %v", err)
	}
}

func TestAccessControl(t *testing.T) {
	owner, approver, stranger := "agent-owner", "approver", "stranger"
	grants := AuthorizerFunc(func(_ context.Context, caller, o string, access Access) error {
		if caller == approver && o == owner && access == AccessRead {
			return nil
		}
		return ErrAccessDenied
	})
	for _, tc := range []struct {
		name       string
		auth       Authorizer
		reader     string
		readAllows bool
	}{
		{"default allows only self", nil, approver, false},
		{"granted reader", grants, approver, true},
		{"ungranted reader", grants, stranger, false},
		{"failing authorizer fails closed", AuthorizerFunc(func(context.Context, string, string, Access) error {
			return errors.New("delegation store unreachable")
		}), approver, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Config{Authorizer: tc.auth})
			id := f.store1(owner, StoreRequest{Agent: owner, Content: "transfer funds", Type: Reasoning, Metadata: map[string]string{MetadataActionID: "act-1"}})
			check := func(what string, err error, allowed bool) {
				t.Helper()
				if allowed && err != nil {
					t.Errorf("%s: %v", what, err)
				}
				if !allowed && !errors.Is(err, ErrAccessDenied) {
					t.Errorf("%s: %v, want ErrAccessDenied", what, err)
				}
			}
			_, err := f.svc.Get(ctx, tc.reader, id)
			check("get", err, tc.readAllows)
			_, err = f.svc.Query(ctx, tc.reader, Query{Agent: owner, Text: "transfer funds"})
			check("query", err, tc.readAllows)
			_, err = f.svc.GetReasoning(ctx, tc.reader, owner, "act-1")
			check("get reasoning", err, tc.readAllows)
			_, err = f.svc.OversightContext(ctx, tc.reader, OversightRequest{Agent: owner, Action: "transfer funds", ActionID: "act-1"})
			check("oversight context", err, tc.readAllows)
			// A read grant never lets anyone write.
			_, err = f.svc.Store(ctx, tc.reader, StoreRequest{Agent: owner, Content: "planted", Type: Reasoning})
			check("store", err, false)
			check("delete", f.svc.Delete(ctx, tc.reader, id), false)
			if f.records() != 1 {
				t.Fatalf("%d records, want the owner's 1", f.records())
			}
		})
	}
}

func TestDelete(t *testing.T) {
	f := newFixture(t, Config{})
	ids := make([]string, 5)
	for i := range ids {
		ids[i] = f.store1("a", StoreRequest{Agent: "a", Content: fmt.Sprintf("note %d about billing", i), Type: Observation})
	}
	if err := f.svc.Delete(ctx, "a", ids[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Get(ctx, "a", ids[1]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if err := f.svc.Delete(ctx, "a", ids[1]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	got := f.query("a", Query{Agent: "a", Text: "billing", Threshold: -1})
	if len(got) != 4 || slices.Contains(contents(got), "note 1 about billing") {
		t.Fatalf("after delete, query returned %q", contents(got))
	}
	if f.records() != 4 {
		t.Fatalf("%d records on disk, want 4", f.records())
	}
}

func TestRestartDurability(t *testing.T) {
	f := newFixture(t, Config{})
	ids, err := f.svc.StoreBatch(ctx, "a", []StoreRequest{
		{Agent: "a", Content: "customer prefers email contact", Type: LongTerm, Metadata: map[string]string{"k": "v"}},
		{Agent: "a", Content: "customer complained about the invoice", Type: Conversation, TTL: time.Hour},
		{Agent: "a", Content: "temporary scratch note", Type: Context},
	})
	if err != nil {
		t.Fatal(err)
	}
	before := f.query("a", Query{Agent: "a", Text: "customer invoice email", Threshold: -1})
	if err := f.svc.Delete(ctx, "a", ids[2]); err != nil {
		t.Fatal(err)
	}
	want, _ := f.svc.Get(ctx, "a", ids[1])

	f.restart()

	got, err := f.svc.Get(ctx, "a", ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if got.Content != want.Content || !got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) || got.Type != want.Type {
		t.Fatalf("after restart %+v, before %+v", got, want)
	}
	if _, err := f.svc.Get(ctx, "a", ids[2]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted memory came back: %v", err)
	}
	after := f.query("a", Query{Agent: "a", Text: "customer invoice email", Threshold: -1})
	var kept []Result
	for _, r := range before {
		if r.Memory.ID != ids[2] {
			kept = append(kept, r)
		}
	}
	if len(after) != len(kept) {
		t.Fatalf("after restart %q, want %q", contents(after), contents(kept))
	}
	for i := range after {
		if after[i].Memory.ID != kept[i].Memory.ID || after[i].Score != kept[i].Score {
			t.Fatalf("result %d: %v %v, want %v %v", i, after[i].Memory.ID, after[i].Score, kept[i].Memory.ID, kept[i].Score)
		}
	}
}

func TestEmbedderBoundToStore(t *testing.T) {
	f := newFixture(t, Config{})
	f.store1("a", StoreRequest{Agent: "a", Content: "hello world", Type: Observation})
	f.close()
	f.cfg = Config{Embedder: NewHashingEmbedder(512)}
	store, err := reopen(t, f.dir, f.cfg)
	if !errors.Is(err, ErrIndexMismatch) {
		t.Fatalf("reopening with another embedder: %v, want ErrIndexMismatch", err)
	}
	store.Close()
}

func TestTTL(t *testing.T) {
	f := newFixture(t, Config{SweepInterval: -1})
	short := f.store1("a", StoreRequest{Agent: "a", Content: "login token refreshed", Type: Context, TTL: time.Minute})
	long := f.store1("a", StoreRequest{Agent: "a", Content: "login policy reviewed", Type: Context, TTL: time.Hour})
	forever := f.store1("a", StoreRequest{Agent: "a", Content: "login lore", Type: LongTerm})
	f.clock.advance(2 * time.Minute)

	if _, err := f.svc.Get(ctx, "a", short); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired memory: %v", err)
	}
	got := f.query("a", Query{Agent: "a", Text: "login", Threshold: -1})
	if len(got) != 2 || slices.Contains(contents(got), "login token refreshed") {
		t.Fatalf("query after expiry: %q", contents(got))
	}
	if f.records() != 3 {
		t.Fatal("expired record deleted before a sweep; test assumption broken")
	}
	if n, err := f.svc.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	if f.records() != 2 {
		t.Fatalf("%d records after sweep", f.records())
	}
	// Expiry while the node is down: dropped on open.
	f.clock.advance(2 * time.Hour)
	f.restart()
	if f.records() != 1 || len(f.svc.byID) != 1 {
		t.Fatalf("after restart past expiry: %d records, %d indexed", f.records(), len(f.svc.byID))
	}
	if _, err := f.svc.Get(ctx, "a", long); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired-while-down memory: %v", err)
	}
	if _, err := f.svc.Get(ctx, "a", forever); err != nil {
		t.Fatal(err)
	}
}

func TestSweeperRuns(t *testing.T) {
	f := newFixture(t, Config{SweepInterval: 5 * time.Millisecond})
	f.store1("a", StoreRequest{Agent: "a", Content: "fleeting", Type: Context, TTL: time.Second})
	f.clock.advance(time.Minute)
	deadline := time.Now().Add(5 * time.Second)
	for f.records() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("sweeper never deleted the expired memory")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestExternalEmbedder(t *testing.T) {
	const dims = 1536
	f := newFixture(t, Config{Embedder: ExternalEmbedder{Name: "text-embedding-3-small", Dims: dims}})
	axis := func(i int, scale float32) []float32 {
		v := make([]float32, dims)
		v[i] = scale
		v[(i+1)%dims] = scale / 4
		return v
	}
	if _, err := f.svc.Store(ctx, "a", StoreRequest{Agent: "a", Content: "no vector", Type: Observation}); !errors.Is(err, ErrEmbeddingFailed) {
		t.Fatalf("text-only store with an external model: %v", err)
	}
	if _, err := f.svc.Store(ctx, "a", StoreRequest{Agent: "a", Content: "short vector", Type: Observation, Embedding: make([]float32, 256)}); !errors.Is(err, ErrDimensionMismatch) {
		t.Fatalf("256-d vector into a 1536-d index: %v", err)
	}
	near := f.store1("a", StoreRequest{Agent: "a", Content: "near", Type: Observation, Embedding: axis(10, 3)})
	f.store1("a", StoreRequest{Agent: "a", Content: "far", Type: Observation, Embedding: axis(900, 1)})
	got := f.query("a", Query{Agent: "a", Embedding: axis(10, 0.5)})
	if len(got) != 1 || got[0].Memory.ID != near || math.Abs(float64(got[0].Score)-1) > 1e-5 {
		t.Fatalf("query returned %+v; want only the parallel vector at score 1", got)
	}
	if _, err := f.svc.Query(ctx, "a", Query{Agent: "a", Text: "words"}); !errors.Is(err, ErrEmbeddingFailed) {
		t.Fatalf("text query with an external model: %v", err)
	}
}

func TestGetReasoning(t *testing.T) {
	f := newFixture(t, Config{})
	act := map[string]string{MetadataActionID: "act-7"}
	f.store1("a", StoreRequest{Agent: "a", Content: "The invoice matches the purchase order.", Type: Reasoning, Metadata: act})
	f.store1("a", StoreRequest{Agent: "a", Content: "lookup_po returned PO-991", Type: ToolResult, Metadata: act})
	f.store1("a", StoreRequest{Agent: "a", Content: "So paying it is within policy.", Type: Reasoning,
		Metadata: map[string]string{MetadataActionID: "act-7", MetadataConfidence: "0.85"}})
	f.store1("a", StoreRequest{Agent: "a", Content: "Unrelated reasoning.", Type: Reasoning, Metadata: map[string]string{MetadataActionID: "act-8"}})

	r, err := f.svc.GetReasoning(ctx, "a", "a", "act-7")
	if err != nil {
		t.Fatal(err)
	}
	if r.Text != "The invoice matches the purchase order.\n\nSo paying it is within policy." {
		t.Fatalf("reasoning text %q", r.Text)
	}
	if len(r.Steps) != 2 || len(r.Related) != 1 || r.Related[0].Type != ToolResult {
		t.Fatalf("steps %d, related %v", len(r.Steps), r.Related)
	}
	if !r.HasConfidence || r.Confidence != 0.85 {
		t.Fatalf("confidence %v %v", r.Confidence, r.HasConfidence)
	}
	if _, err := f.svc.GetReasoning(ctx, "a", "a", "act-unknown"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown action: %v", err)
	}
	if _, err := f.svc.GetReasoning(ctx, "a", "a", ""); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("empty action id: %v", err)
	}
}

func TestOversightContext(t *testing.T) {
	approver := "approver"
	f := newFixture(t, Config{OversightMaxBytes: 200, Authorizer: AuthorizerFunc(func(_ context.Context, caller, _ string, a Access) error {
		if caller == approver && a == AccessRead {
			return nil
		}
		return ErrAccessDenied
	})})
	store := func(content string, typ Type, meta map[string]string) {
		f.store1("agent", StoreRequest{Agent: "agent", Content: content, Type: typ, Metadata: meta})
	}
	store("Old reasoning about a wire transfer to vendor Acme", Reasoning, nil)
	f.clock.advance(48 * time.Hour)
	store("Vendor Acme invoice 42 is due; a wire transfer pays it", Reasoning, nil)
	store("Budget context: vendor payments by wire transfer need approval", Context, nil)
	store("Observed wire transfer request from vendor Acme", Observation, nil)
	store("I will pay vendor Acme by wire transfer because invoice 42 is due.", Reasoning,
		map[string]string{MetadataActionID: "pay-42", MetadataConfidence: "0.9"})

	oc, err := f.svc.OversightContext(ctx, approver, OversightRequest{Agent: "agent", Action: "wire transfer to vendor Acme", ActionID: "pay-42"})
	if err != nil {
		t.Fatal(err)
	}
	if oc.Reasoning != "I will pay vendor Acme by wire transfer because invoice 42 is due." || !oc.HasConfidence || oc.Confidence != 0.9 {
		t.Fatalf("reasoning %q confidence %v", oc.Reasoning, oc.Confidence)
	}
	total := len(oc.Reasoning)
	for _, m := range oc.Memories {
		total += len(m.Memory.Content)
		if m.Memory.Type != Reasoning && m.Memory.Type != Context {
			t.Fatalf("oversight context carries a %v memory", m.Memory.Type)
		}
		if strings.HasPrefix(m.Memory.Content, "Old") {
			t.Fatal("memory from outside the 24h window")
		}
	}
	if total > 200 || !oc.Truncated || len(oc.Memories) == 0 {
		t.Fatalf("context of %d bytes, %d memories, truncated %v; want ≤200, some, true", total, len(oc.Memories), oc.Truncated)
	}

	// No reasoning recorded is not an error; neither is a tiny budget.
	oc, err = f.svc.OversightContext(ctx, approver, OversightRequest{Agent: "agent", Action: "wire transfer", ActionID: "nothing-recorded", Limit: 1})
	if err != nil || oc.Reasoning != "" || len(oc.Memories) != 1 {
		t.Fatalf("without reasoning: %+v, %v", oc, err)
	}
	if _, err := f.svc.OversightContext(ctx, approver, OversightRequest{Agent: "agent", Action: "x", Limit: 6}); !errors.Is(err, ErrLimitExceeded) {
		t.Fatalf("limit over the oversight cap: %v", err)
	}
	if _, err := f.svc.OversightContext(ctx, approver, OversightRequest{Agent: "agent"}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("empty request: %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	f := newFixture(t, Config{SweepInterval: time.Millisecond})
	var wg sync.WaitGroup
	for w := range 4 {
		agent := fmt.Sprintf("agent-%d", w%2)
		wg.Go(func() {
			for i := range 40 {
				id, err := f.svc.Store(ctx, agent, StoreRequest{Agent: agent, Content: fmt.Sprintf("step %d of worker %d on the deploy", i, w), Type: Observation, TTL: time.Duration(i%3) * time.Millisecond})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := f.svc.Query(ctx, agent, Query{Agent: agent, Text: "deploy worker", Threshold: -1}); err != nil {
					t.Error(err)
					return
				}
				if i%4 == 0 {
					if err := f.svc.Delete(ctx, agent, id); err != nil && !errors.Is(err, ErrNotFound) {
						t.Error(err)
						return
					}
				}
				f.clock.advance(time.Millisecond)
			}
		})
	}
	wg.Wait()
	// Index and store agree after the dust settles.
	if _, err := f.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.records(); n != len(f.svc.byID) {
		t.Fatalf("%d records on disk, %d indexed", n, len(f.svc.byID))
	}
}

func TestClosed(t *testing.T) {
	f := newFixture(t, Config{})
	id := f.store1("a", StoreRequest{Agent: "a", Content: "x y", Type: Observation})
	f.svc.Close()
	if _, err := f.svc.Store(ctx, "a", StoreRequest{Agent: "a", Content: "x", Type: Observation}); !errors.Is(err, ErrClosed) {
		t.Fatalf("store after close: %v", err)
	}
	if _, err := f.svc.Get(ctx, "a", id); !errors.Is(err, ErrClosed) {
		t.Fatalf("get after close: %v", err)
	}
	if _, err := f.svc.Query(ctx, "a", Query{Agent: "a", Text: "x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("query after close: %v", err)
	}
	if err := f.svc.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
}

func TestConfigRejected(t *testing.T) {
	for _, cfg := range []Config{
		{DefaultLimit: 200},
		{MaxQueryLimit: -1},
		{OversightLimit: 1000},
		{Embedder: ExternalEmbedder{Name: "m", Dims: 0}},
		{Embedder: ExternalEmbedder{Dims: 8}},
		{MaxTTL: -1},
	} {
		if _, err := cfg.resolve(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}
