package client_test

import (
	"errors"
	"testing"
	"time"

	"github.com/creto-systems/creto/client"
	"github.com/creto-systems/creto/node"
)

// Timestamps, ordering, reading back and the cluster's status on a
// one-node cluster.
func TestConsensus(t *testing.T) {
	tn := startNode(t, "")
	c := tn.clients(t, tn.config(tn.GRPCAddr().String())).Consensus

	r, err := c.GetTimestamp(bg, 5)
	if err != nil || !r.Consensus || r.Count != 5 || r.Warning != "" || r.First.NodeID == "" {
		t.Fatalf("timestamps: %+v %v", r, err)
	}
	if at := r.At(4); at.Logical != r.First.Logical+4 || at.Time().Sub(r.First.Time()) < 0 {
		t.Fatalf("At(4) %+v", at)
	}
	next, err := c.GetTimestamp(bg, 0)
	if err != nil || next.Count != 1 || next.First.Logical <= r.At(4).Logical {
		t.Fatalf("the next timestamp %+v is not after %+v: %v", next, r, err)
	}

	res, err := c.OrderEvents(bg, client.OrderEventsRequest{Events: []client.Event{{ID: "e1", Payload: []byte("one")}, {ID: "e2"}}})
	if err != nil || len(res.Events) != 2 || res.Duplicate || res.Events[1].Sequence != res.Events[0].Sequence+1 ||
		res.Events[0].Timestamp.Logical <= next.First.Logical {
		t.Fatalf("order: %+v %v", res, err)
	}
	page, err := c.ReadEvents(bg, res.Events[0].Sequence, 10)
	if err != nil || len(page.Events) != 2 || page.Events[0].ID != "e1" || string(page.Events[0].Payload) != "one" ||
		page.Events[0].Caller != `Operator::"admin"` || page.Last != res.Events[1].Sequence {
		t.Fatalf("read: %+v %v", page, err)
	}
	// The same key orders once.
	again, err := c.OrderEvents(bg, client.OrderEventsRequest{Events: []client.Event{{ID: "e3"}}, IdempotencyKey: "batch-7"})
	if err != nil || again.Duplicate {
		t.Fatalf("keyed batch: %+v %v", again, err)
	}
	dup, err := c.OrderEvents(bg, client.OrderEventsRequest{Events: []client.Event{{ID: "e3"}}, IdempotencyKey: "batch-7"})
	if err != nil || !dup.Duplicate || dup.Events[0].Sequence != again.Events[0].Sequence {
		t.Fatalf("repeated key: %+v %v", dup, err)
	}
	if _, err := c.OrderEvents(bg, client.OrderEventsRequest{Events: []client.Event{{ID: "e4"}}, IdempotencyKey: "batch-7"}); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("a key reused for another batch: %v", err)
	}

	st, err := c.GetClusterStatus(bg)
	if err != nil || st.Role != client.RoleLeader || !st.Writable || !st.ServingTimestamps || len(st.Members) != 1 ||
		!st.Members[0].Leader || st.Members[0].Suffrage != "voter" || st.LeaderID != st.NodeID {
		t.Fatalf("status: %+v %v", st, err)
	}

	for name, call := range map[string]func() error{
		"too many timestamps": func() error { _, err := c.GetTimestamp(bg, 1<<18+1); return err },
		"no events":           func() error { _, err := c.OrderEvents(bg, client.OrderEventsRequest{}); return err },
		"an empty id": func() error {
			_, err := c.OrderEvents(bg, client.OrderEventsRequest{Events: []client.Event{{}}})
			return err
		},
		"read limit":         func() error { _, err := c.ReadEvents(bg, 0, 1001); return err },
		"node's batch limit": func() error { _, err := c.GetTimestamp(bg, 20_000); return err },
	} {
		if err := call(); !errors.Is(err, client.ErrInvalidRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if h := c.Health(bg); h.Status != client.Healthy {
		t.Fatalf("health %+v", h)
	}
}

// clusterNode starts a member of a test cluster, with the PKI in pki
// (empty: its own) and joining through join, and a heartbeat long enough
// that two busy cores under the race detector do not start elections at
// random.
func clusterNode(t *testing.T, id string, pki string, join ...string) *testNode {
	return startNodeWith(t, "", func(c *node.Config) {
		c.Consensus = testConsensus(id, join...)
		c.Consensus.HeartbeatTimeout, c.Consensus.ElectionTimeout, c.Consensus.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
		c.Server.PKIDir = pki
	})
}

// A client pointed at a follower of a three-node cluster is sent to the
// leader and follows it; when the leader dies it finds the next one
// through the follower; without a quorum it answers timestamps from its
// own clock, flagged, above every consensus timestamp it saw, refuses to
// order, and the platform is degraded, not unhealthy (seed §8.4, §14.1).
func TestConsensusCluster(t *testing.T) {
	n1 := clusterNode(t, "n1", "")
	nodes := []*testNode{n1, clusterNode(t, "n2", n1.tlsFile(""), n1.GRPCAddr().String()), clusterNode(t, "n3", n1.tlsFile(""), n1.GRPCAddr().String())}
	// One client per node, for its status; every node has n1's PKI.
	asked := map[*testNode]*client.ConsensusClient{}
	status := func(tn *testNode) (client.ClusterStatus, error) {
		if asked[tn] == nil {
			cfg := n1.config(tn.GRPCAddr().String())
			cfg.Consensus.MaxRetries, cfg.Consensus.CircuitBreakerEnabled = new(int), new(bool)
			asked[tn] = n1.clients(t, cfg).Consensus
		}
		return asked[tn].GetClusterStatus(bg)
	}
	eventually(t, 30*time.Second, "three voters that know each other's gRPC addresses", func() bool {
		for _, tn := range nodes {
			st, err := status(tn)
			if err != nil || st.LeaderID == "" || len(st.Members) != 3 {
				return false
			}
			for _, m := range st.Members {
				if m.Suffrage != "voter" || m.GRPCAddress == "" {
					return false
				}
			}
		}
		return true
	})
	leaderOf := func(live []*testNode) (*testNode, []*testNode) {
		var leader *testNode
		var followers []*testNode
		for _, tn := range live {
			if st, err := status(tn); err == nil && st.Role == client.RoleLeader {
				leader = tn
			} else {
				followers = append(followers, tn)
			}
		}
		return leader, followers
	}
	leader, followers := leaderOf(nodes)
	if leader == nil {
		t.Fatal("no leader")
	}
	// The client knows only a follower.
	cfg := n1.config(followers[0].GRPCAddr().String())
	cfg.Consensus.ResetTimeoutSeconds = 1
	all := n1.clients(t, cfg)
	c := all.Consensus
	leaderID := func(tn *testNode) string { st, _ := status(tn); return st.NodeID }

	r, err := c.GetTimestamp(bg, 1)
	if err != nil || !r.Consensus || r.First.NodeID != leaderID(leader) {
		t.Fatalf("a timestamp through a follower: %+v %v (leader %s)", r, err, leaderID(leader))
	}
	res, err := c.OrderEvents(bg, client.OrderEventsRequest{Events: []client.Event{{ID: "before"}}})
	if err != nil || res.Duplicate {
		t.Fatalf("order through a follower: %+v %v", res, err)
	}
	// The follower answered the first call with a redirect; since then
	// the client calls the leader.
	if _, err := c.GetTimestamp(bg, 1); err != nil {
		t.Fatal(err)
	}
	for _, n := range []struct {
		tn     *testNode
		method string
		calls  float64
	}{{followers[0], "GetTimestamp", 1}, {followers[0], "OrderEvents", 0}, {leader, "GetTimestamp", 2}, {leader, "OrderEvents", 1}} {
		if got := n.tn.requests("consensus", n.method); got != n.calls {
			t.Errorf("%s calls to %s: %v, want %v", n.method, leaderID(n.tn), got, n.calls)
		}
	}

	// The leader dies: the client finds the next one through the follower.
	oldLeader := leaderID(leader)
	leader.stop()
	stopped, before := time.Now(), c.Stats()
	var last client.TimestampRange
	asks := 0
	eventually(t, 30*time.Second, "consensus timestamps from a new leader", func() bool {
		asks++
		last, err = c.GetTimestamp(bg, 1)
		if err != nil {
			t.Fatalf("a timestamp during the failover: %v", err) // consensus or local, never an error
		}
		return last.Consensus && last.First.NodeID != oldLeader
	})
	after := c.Stats()
	t.Logf("the leader died: consensus timestamps again from %s after %v; %d asked meanwhile, %d answered locally",
		last.First.NodeID, time.Since(stopped).Round(time.Millisecond), asks, after.Fallbacks-before.Fallbacks)
	if last.First.Logical <= r.First.Logical {
		t.Fatalf("the new leader's timestamp %d is not after the old one's %d", last.First.Logical, r.First.Logical)
	}

	// One more goes: no quorum.
	_, followers = leaderOf(followers)
	survivor := followers[0]
	for _, tn := range nodes {
		if tn != survivor && tn.Node != nil {
			tn.stop()
		}
	}
	var local client.TimestampRange
	eventually(t, 30*time.Second, "local timestamps without a quorum", func() bool {
		local, err = c.GetTimestamp(bg, 3)
		return err == nil && !local.Consensus
	})
	if local.Warning == "" || local.Count != 3 || local.First.Logical <= last.First.Logical || local.First.NodeID == "" {
		t.Fatalf("local timestamps %+v after %+v", local, last)
	}
	more, err := c.GetTimestamp(bg, 1)
	if err != nil || more.Consensus || more.First.Logical <= local.At(2).Logical {
		t.Fatalf("the next local timestamp %+v is not after %+v: %v", more, local, err)
	}
	if _, err := c.OrderEvents(bg, client.OrderEventsRequest{Events: []client.Event{{ID: "after"}}}); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("ordering without a quorum: %v", err)
	}
	if s := c.Stats(); s.Fallbacks == 0 {
		t.Fatalf("stats: %+v", s)
	}
	// Consensus is not critical: once the node stops serving it, the
	// platform is degraded, not unhealthy.
	eventually(t, 10*time.Second, "consensus unhealthy, the platform degraded", func() bool {
		rep := client.CheckHealth(bg, map[string]client.HealthChecker{"consensus": c, "crypto": client.CryptoHealth{}})
		return rep.Status == client.Degraded && rep.Services["consensus"].Status == client.Unhealthy
	})
	t.Logf("timestamps: %d (leader %s), %d (after it died), %d local without a quorum", r.First.Logical, oldLeader, last.First.Logical, local.First.Logical)
}
