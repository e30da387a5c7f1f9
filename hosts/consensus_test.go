package hosts_test

import (
	"context"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/hosts"
	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/consensus"
)

// consensusEngine is an engine that permits everything, with the
// consensus_ts guest registered over mod.
func consensusEngine(t *testing.T, mod hosts.Consensus) *engine.Engine {
	t.Helper()
	e := engine.New(engine.WithHostModules(mod))
	t.Cleanup(func() { e.Close() })
	if _, err := e.CreatePolicy(context.Background(), "all", `permit (principal, action, resource);`); err != nil {
		t.Fatal(err)
	}
	guest := vaultGuest(t, "consensus_ts.wasm", `{"name": "stamper", "capabilities": ["consensus"]}`)
	if _, err := e.RegisterExtension(context.Background(), guest, engine.ExtensionConfig{Grants: []string{"consensus"}}); err != nil {
		t.Fatal(err)
	}
	return e
}

// stamps is what the guest reported: the three return codes, the two
// records it decoded and the bytes of its too-small buffer.
type stamps struct {
	r1, r2, r3 int
	a, b       abi.Timestamp
	z          string
}

func takeStamps(t *testing.T, e *engine.Engine) stamps {
	t.Helper()
	d, err := e.Check(context.Background(), engine.Request{Principal: engine.Principal{Type: "Agent", ID: "a"},
		Action: engine.EntityRef{ID: "read"}, Resource: engine.EntityRef{Type: "Doc", ID: "d"}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != engine.Deny || d.PolicyID != "consensus" {
		t.Fatalf("decision %v %q %q", d.Kind, d.PolicyID, d.Reason)
	}
	f := map[string]string{}
	for field := range strings.FieldsSeq(d.Reason) {
		k, v, _ := strings.Cut(field, "=")
		f[k] = v
	}
	var s stamps
	for _, p := range []struct {
		key string
		n   *int
	}{{"r1", &s.r1}, {"r2", &s.r2}, {"r3", &s.r3}} {
		if *p.n, err = strconv.Atoi(f[p.key]); err != nil {
			t.Fatalf("reason %q: %v", d.Reason, err)
		}
	}
	for _, p := range []struct {
		key string
		ts  *abi.Timestamp
	}{{"a", &s.a}, {"b", &s.b}} {
		if f[p.key] == "" {
			continue
		}
		b, err := hex.DecodeString(f[p.key])
		if err == nil {
			*p.ts, err = abi.ParseTimestamp(b)
		}
		if err != nil {
			t.Fatalf("record %s=%s: %v", p.key, f[p.key], err)
		}
	}
	s.z = f["z"]
	return s
}

// openConsensus opens a consensus node on a fresh store; with join set it
// waits to be added to a cluster that never adds it, so it has no leader.
func openConsensus(t *testing.T, id string, join bool) *consensus.Node {
	t.Helper()
	dir := t.TempDir()
	store, err := kv.Open(filepath.Join(dir, "kv"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := consensus.Config{NodeID: id, BindAddress: "127.0.0.1:0", HeartbeatTimeout: 50 * time.Millisecond,
		ElectionTimeout: 50 * time.Millisecond, LeaderLeaseTimeout: 25 * time.Millisecond, LogSegmentBytes: 1 << 20}
	if join {
		cfg.Join = []string{"127.0.0.1:1"}
	}
	n, err := consensus.Open(context.Background(), dir, store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(); store.Close() })
	return n
}

func TestConsensusHostGivesTheClustersTimestamps(t *testing.T) {
	n := openConsensus(t, "node-1", false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := n.WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	e := consensusEngine(t, hosts.Consensus{Timestamps: n})

	before, err := n.GetTimestamp(ctx, "test", consensus.GetTimestampRequest{})
	if err != nil {
		t.Fatal(err)
	}
	s := takeStamps(t, e)
	record := abi.TimestampHeaderSize + len("node-1")
	if s.r1 != record || s.r2 != record || s.r3 != record {
		t.Fatalf("return codes %d %d %d, want the record length %d each", s.r1, s.r2, s.r3, record)
	}
	if !s.a.Consensus || !s.b.Consensus || s.a.NodeID != "node-1" || s.b.NodeID != "node-1" {
		t.Fatalf("records %+v %+v", s.a, s.b)
	}
	if s.a.Logical <= before.Logical || s.b.Logical <= s.a.Logical {
		t.Fatalf("timestamps %d, %d after %d: not increasing", s.a.Logical, s.b.Logical, before.Logical)
	}
	for _, ts := range []abi.Timestamp{s.a, s.b} {
		if ms := int64(ts.Logical >> 18); ts.Physical != ms*int64(time.Millisecond) {
			t.Fatalf("physical %d is not the millisecond %d of logical %d", ts.Physical, ms, ts.Logical)
		}
	}
	if s.z != "00000000" {
		t.Fatalf("a 1-byte buffer was written: %s", s.z)
	}
	after, err := n.GetTimestamp(ctx, "test", consensus.GetTimestampRequest{})
	if err != nil || after.Logical <= s.b.Logical {
		t.Fatalf("the cluster's next timestamp %d is not above the guest's %d: %v", after.Logical, s.b.Logical, err)
	}
}

// Without a leader the guest still gets timestamps: local ones, flagged,
// and increasing (seed §8.4).
func TestConsensusHostFallsBackToFlaggedLocalTimestamps(t *testing.T) {
	n := openConsensus(t, "lonely", true)
	e := consensusEngine(t, hosts.Consensus{Timestamps: n})
	s := takeStamps(t, e)
	if s.r1 < 0 || s.a.Consensus || s.b.Consensus || s.a.NodeID != "lonely" || s.b.Logical <= s.a.Logical {
		t.Fatalf("fallback: %+v", s)
	}
	if d := time.Since(time.Unix(0, s.a.Physical)); d < -time.Second || d > time.Minute {
		t.Fatalf("a local timestamp %v away from the wall clock", d)
	}
}

// errSource fails every call.
type errSource struct{ err error }

func (s errSource) GetTimestamp(context.Context, string, consensus.GetTimestampRequest) (consensus.TimestampResult, error) {
	return consensus.TimestampResult{}, s.err
}

func TestConsensusHostFailures(t *testing.T) {
	for _, c := range []struct {
		name string
		mod  hosts.Consensus
		code int
	}{
		{"no service", hosts.Consensus{}, abi.EUnavailable},
		{"closed", hosts.Consensus{Timestamps: errSource{consensus.ErrClosed}}, abi.EUnavailable},
		{"deadline", hosts.Consensus{Timestamps: errSource{context.DeadlineExceeded}}, abi.EDeadline},
		{"wrapped deadline", hosts.Consensus{Timestamps: errSource{errors.Join(consensus.ErrIndeterminate, context.Canceled)}}, abi.EDeadline},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := takeStamps(t, consensusEngine(t, c.mod))
			if s.r1 != c.code || s.r2 != c.code || s.r3 != c.code || s.z != "00000000" {
				t.Fatalf("got %+v, want code %d", s, c.code)
			}
		})
	}
}
