package node

import (
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/creto-systems/creto/abi"
	authzv1 "github.com/creto-systems/creto/api/creto/authz/v1"
	consensusv1 "github.com/creto-systems/creto/api/creto/consensus/v1"
	"github.com/creto-systems/creto/services/consensus"
)

// clusterConsensus is a [consensus] section for a node of a test cluster
// with the given heartbeat timeout, long enough that two busy cores under
// the race detector do not start elections at random.
func clusterConsensus(id string, heartbeat time.Duration, join ...string) consensus.Config {
	c := testConsensus()
	c.NodeID = id
	c.Join = join
	c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = heartbeat, heartbeat, heartbeat/2
	return c
}

// testHeartbeat is the test clusters' heartbeat timeout.
const testHeartbeat = 500 * time.Millisecond

// startTestCluster starts three nodes on one machine the way docs/server.md
// does: n1 bootstraps; n2 and n3 share its development PKI and join
// through its gRPC port, with their node certificates.
func startTestCluster(t testing.TB, heartbeat time.Duration) []*testNode {
	t.Helper()
	n1 := startNode(t, "", func(c *Config) { c.Consensus = clusterConsensus("n1", heartbeat) })
	nodes := []*testNode{n1}
	for _, id := range []string{"n2", "n3"} {
		nodes = append(nodes, startNode(t, "", joining(n1, id, heartbeat)))
	}
	eventually(t, "three voters that know each other's gRPC addresses", func() bool {
		for _, tn := range nodes {
			st, err := tn.cluster.node.GetClusterStatus(bg, "test")
			if err != nil || st.LeaderID == "" || len(st.Members) != 3 {
				return false
			}
			for i, m := range st.Members {
				if m.Suffrage != consensus.Voter || m.ClientAddress != nodes[i].GRPCAddr().String() {
					return false
				}
			}
		}
		return true
	})
	return nodes
}

// joining configures node id to join through n1, sharing its PKI.
func joining(n1 *testNode, id string, heartbeat time.Duration) func(*Config) {
	return func(c *Config) {
		c.Server.PKIDir = n1.tlsDir()
		c.Consensus = clusterConsensus(id, heartbeat, n1.GRPCAddr().String())
	}
}

// roles finds the leader and the followers.
func roles(t testing.TB, nodes []*testNode) (leader *testNode, followers []*testNode) {
	t.Helper()
	for _, tn := range nodes {
		st, err := tn.cluster.node.GetClusterStatus(bg, "test")
		if err != nil {
			t.Fatal(err)
		}
		if st.Role == consensus.RoleLeader {
			leader = tn
		} else {
			followers = append(followers, tn)
		}
	}
	if leader == nil {
		t.Fatal("no leader")
	}
	return leader, followers
}

// In a cluster a follower sends clients to the leader's gRPC address, and
// a Wasm extension on a follower gets the leader's timestamps through the
// follower; without a quorum it gets flagged local ones.
func TestClusterRedirectsAndForwards(t *testing.T) {
	nodes := startTestCluster(t, testHeartbeat)
	leader, followers := roles(t, nodes)
	follower := followers[0]

	// Redirect: the follower names the leader; the call succeeds there.
	_, err := consensusv1.NewConsensusServiceClient(follower.agent("metering")).OrderEvents(bg,
		&consensusv1.OrderEventsRequest{Events: []*consensusv1.Event{{Id: "e1"}}})
	wantReason(t, err, codes.FailedPrecondition, consensus.ReasonNotLeader)
	nl, ok := consensus.NotLeaderFromStatus(err)
	if !ok || nl.LeaderClientAddress != leader.GRPCAddr().String() || nl.LeaderID != leader.cluster.id || nl.LeaderAddress == "" {
		t.Fatalf("redirect %+v", nl)
	}
	ordered, err := consensusv1.NewConsensusServiceClient(leader.agent("metering")).OrderEvents(bg,
		&consensusv1.OrderEventsRequest{Events: []*consensusv1.Event{{Id: "e1"}}})
	if err != nil {
		t.Fatal(err)
	}
	// Every node stores the event.
	for _, tn := range nodes {
		eventually(t, "the event on "+tn.cluster.id, func() bool {
			r, err := consensusv1.NewConsensusServiceClient(tn.operator()).ReadEvents(bg, &consensusv1.ReadEventsRequest{})
			return err == nil && len(r.GetEvents()) == 1 && r.GetEvents()[0].GetSequence() == ordered.GetEvents()[0].GetSequence()
		})
	}

	// A guest on the follower takes the leader's timestamps.
	module := guestModule(t, filepath.Join("..", "hosts", "testdata", "consensus_ts.wasm"), `{"name": "stamper", "capabilities": ["consensus"]}`)
	admin := authzv1.NewAuthorizationServiceClient(follower.operator())
	if _, err := admin.RegisterExtension(bg, &authzv1.RegisterExtensionRequest{Module: module, Grants: []string{"consensus"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreatePolicy(bg, &authzv1.CreatePolicyRequest{Id: "all", Text: `permit (principal, action, resource);`}); err != nil {
		t.Fatal(err)
	}
	stamp := func() abi.Timestamp {
		t.Helper()
		resp, err := admin.Check(bg, &authzv1.CheckRequest{Principal: &authzv1.Principal{Id: "a"}, Action: "read", Resource: "d"})
		if err != nil {
			t.Fatal(err)
		}
		why := resp.GetDecision().GetDeny().GetReason()
		_, rest, _ := strings.Cut(why, " a=")
		rec, _, _ := strings.Cut(rest, " ")
		b, err := hex.DecodeString(rec)
		if err != nil {
			t.Fatalf("reason %q: %v", why, err)
		}
		ts, err := abi.ParseTimestamp(b)
		if err != nil {
			t.Fatalf("reason %q: %v", why, err)
		}
		return ts
	}
	forwarded := stamp()
	if !forwarded.Consensus || forwarded.NodeID != leader.cluster.id || forwarded.Logical <= ordered.GetEvents()[0].GetTimestamp().GetLogical() {
		t.Fatalf("a follower's guest got %+v (the leader is %s)", forwarded, leader.cluster.id)
	}

	// The others go: no quorum, no leader. The follower's consensus
	// services stop serving, and the guest gets local timestamps, flagged,
	// above the consensus one it saw.
	leader.stop()
	followers[1].stop()
	eventually(t, "the follower to report NOT_SERVING", func() bool {
		return healthOf(t, follower.anonymous(), "creto.consensus.v1.ConsensusService") == healthpb.HealthCheckResponse_NOT_SERVING
	})
	local := stamp()
	if local.Consensus || local.NodeID != follower.cluster.id || local.Logical <= forwarded.Logical {
		t.Fatalf("without a quorum the guest got %+v after %+v", local, forwarded)
	}
	// Clients asking the follower get UNAVAILABLE, or local timestamps if
	// they accept them.
	c := consensusv1.NewConsensusServiceClient(follower.operator())
	_, err = c.OrderEvents(bg, &consensusv1.OrderEventsRequest{Events: []*consensusv1.Event{{Id: "e2"}}})
	wantReason(t, err, codes.Unavailable, "NO_QUORUM")
	ts, err := c.GetTimestamp(bg, &consensusv1.GetTimestampRequest{AllowLocal: true})
	if err != nil || ts.GetConsensus() || ts.GetWarning() == "" || ts.GetTimestamp().GetLogical() <= local.Logical {
		t.Fatalf("local timestamp over gRPC: %v %v", ts, err)
	}
}

// A member that restarts on other ports (raft and gRPC) joins again, so
// the cluster dials its new raft address — its vote counts — and sends
// clients to its new gRPC address.
func TestClusterMemberRestartsOnNewPorts(t *testing.T) {
	nodes := startTestCluster(t, testHeartbeat)
	leader, followers := roles(t, nodes)
	moved, other := followers[0], followers[1]
	if moved == nodes[0] { // n1 has no join addresses
		moved, other = other, moved
	}
	id, oldRaft := moved.cluster.id, moved.cluster.node.Address()
	moved.stop()
	moved = startNode(t, moved.dir, joining(nodes[0], id, testHeartbeat))
	if moved.cluster.node.Address() == oldRaft {
		t.Fatal("the restarted node kept its raft port")
	}
	eventually(t, "the new addresses on the leader", func() bool {
		st, err := leader.cluster.node.GetClusterStatus(bg, "test")
		if err != nil {
			return false
		}
		for _, m := range st.Members {
			if m.ID == id {
				return m.Suffrage == consensus.Voter && m.Address == moved.cluster.node.Address() && m.ClientAddress == moved.GRPCAddr().String()
			}
		}
		return false
	})
	// Without the third node, the leader needs the moved one's vote.
	other.stop()
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		// A write in flight as the other node went may need a retry.
		if _, err = leader.cluster.node.OrderEvents(bg, "test", consensus.OrderEventsRequest{Events: []consensus.Event{{ID: "e"}},
			IdempotencyKey: "e"}); err == nil {
			return
		}
	}
	t.Fatalf("ordering with the moved node as the only other voter: %v", err)
}
