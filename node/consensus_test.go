package node

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	authzv1 "github.com/creto-systems/creto/api/creto/authz/v1"
	consensusv1 "github.com/creto-systems/creto/api/creto/consensus/v1"
	"github.com/creto-systems/creto/internal/pki"
	"github.com/creto-systems/creto/services/consensus"
)

// eventually polls cond for up to 20 seconds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func healthOf(t testing.TB, conn *grpc.ClientConn, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	resp, err := healthpb.NewHealthClient(conn).Check(bg, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetStatus()
}

// A node is a one-node cluster from its first call: agents take
// timestamps, order and read events, and see the cluster's status over
// gRPC; membership is for operators and nodes.
func TestConsensusServiceOnOneNode(t *testing.T) {
	tn := startNode(t, "", func(c *Config) { c.Consensus.NodeID = "solo" })
	metering := consensusv1.NewConsensusServiceClient(tn.agent("metering"))

	// Served from the start: Open waited for the election.
	for _, svc := range []string{"creto.consensus.v1.ConsensusService", "creto.consensus.v1.ConsensusAdminService"} {
		if st := healthOf(t, tn.anonymous(), svc); st != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("%s: %v", svc, st)
		}
	}
	a, err := metering.GetTimestamp(bg, &consensusv1.GetTimestampRequest{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := metering.GetTimestamp(bg, &consensusv1.GetTimestampRequest{Count: 10})
	if err != nil {
		t.Fatal(err)
	}
	if !a.GetConsensus() || a.GetCount() != 1 || a.GetTimestamp().GetNodeId() != "solo" || a.GetWarning() != "" ||
		b.GetCount() != 10 || b.GetTimestamp().GetLogical() <= a.GetTimestamp().GetLogical() {
		t.Fatalf("timestamps %v then %v", a, b)
	}
	if d := time.Since(time.Unix(0, b.GetTimestamp().GetPhysical())); d < -5*time.Second || d > 5*time.Second {
		t.Fatalf("physical part %v from the wall clock", d)
	}

	// Ordering, with a retry that is recognised, and a key reused for other
	// events that is refused.
	batch := &consensusv1.OrderEventsRequest{Events: []*consensusv1.Event{{Id: "call-1", Payload: []byte("p1")}, {Id: "call-2"}},
		IdempotencyKey: "batch-1"}
	ordered, err := metering.OrderEvents(bg, batch)
	if err != nil {
		t.Fatal(err)
	}
	ev := ordered.GetEvents()
	if len(ev) != 2 || ev[0].GetId() != "call-1" || ev[0].GetSequence() != 1 || ev[1].GetSequence() != 2 ||
		ev[1].GetTimestamp().GetLogical() != ev[0].GetTimestamp().GetLogical()+1 || ev[0].GetTimestamp().GetLogical() <= b.GetTimestamp().GetLogical()+9 {
		t.Fatalf("ordered %v after %v", ev, b)
	}
	again, err := metering.OrderEvents(bg, batch)
	if err != nil || !again.GetDuplicate() || again.GetEvents()[1].GetSequence() != 2 {
		t.Fatalf("retry: %v %v", again, err)
	}
	_, err = metering.OrderEvents(bg, &consensusv1.OrderEventsRequest{Events: []*consensusv1.Event{{Id: "other"}}, IdempotencyKey: "batch-1"})
	wantReason(t, err, codes.FailedPrecondition, "IDEMPOTENCY_CONFLICT")

	// Another agent reads them, with who ordered them.
	read, err := consensusv1.NewConsensusServiceClient(tn.agent("auditor")).ReadEvents(bg, &consensusv1.ReadEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := read.GetEvents(); len(got) != 2 || got[0].GetCaller() != `Agent::"metering"` || string(got[0].GetPayload()) != "p1" ||
		read.GetNext() != 3 || read.GetLast() != 2 || read.GetOldest() != 1 {
		t.Fatalf("read %v", read)
	}

	// The status names this node, its gRPC address, and it leads.
	var st *consensusv1.GetClusterStatusResponse
	eventually(t, "the node's gRPC address in its status", func() bool {
		st, err = metering.GetClusterStatus(bg, &consensusv1.GetClusterStatusRequest{})
		return err == nil && st.GetLeaderGrpcAddress() == tn.GRPCAddr().String()
	})
	if st.GetNodeId() != "solo" || st.GetRole() != consensusv1.Role_ROLE_LEADER || st.GetLeaderId() != "solo" || !st.GetWritable() ||
		!st.GetServingTimestamps() || len(st.GetMembers()) != 1 || st.GetMembers()[0].GetSuffrage() != consensusv1.Suffrage_SUFFRAGE_VOTER ||
		st.GetMembers()[0].GetGrpcAddress() != tn.GRPCAddr().String() || st.GetCommitIndex() < st.GetAppliedIndex() {
		t.Fatalf("status %v", st)
	}

	// Bad input changes nothing.
	_, err = metering.OrderEvents(bg, &consensusv1.OrderEventsRequest{})
	wantReason(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
	_, err = metering.OrderEvents(bg, &consensusv1.OrderEventsRequest{Events: []*consensusv1.Event{{Id: ""}}})
	wantReason(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
	_, err = metering.GetTimestamp(bg, &consensusv1.GetTimestampRequest{Count: 1 << 30})
	wantReason(t, err, codes.InvalidArgument, "TOO_LARGE")
	_, err = metering.ReadEvents(bg, &consensusv1.ReadEventsRequest{Limit: 5000})
	wantReason(t, err, codes.InvalidArgument, "TOO_LARGE")
	if read, err := metering.ReadEvents(bg, &consensusv1.ReadEventsRequest{}); err != nil || len(read.GetEvents()) != 2 {
		t.Fatalf("after bad input: %v %v", read, err)
	}

	// Membership is administrative: agents never reach it, and nobody
	// unauthenticated reaches anything.
	_, err = consensusv1.NewConsensusAdminServiceClient(tn.agent("metering")).AddServer(bg, &consensusv1.AddServerRequest{Id: "x", RaftAddress: "127.0.0.1:1"})
	wantCode(t, err, codes.PermissionDenied)
	_, err = consensusv1.NewConsensusServiceClient(tn.anonymous()).GetTimestamp(bg, &consensusv1.GetTimestampRequest{})
	wantCode(t, err, codes.Unauthenticated)
	// An operator may; moving leadership needs another voter.
	_, err = consensusv1.NewConsensusAdminServiceClient(tn.operator()).TransferLeadership(bg, &consensusv1.TransferLeadershipRequest{Id: "solo"})
	wantReason(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")

	// Metrics: the raft state and the oracle's progress, and the calls.
	metrics := httpsGet(t, tn, "/metrics")
	for _, want := range []string{
		`consensus_raft_state{state="leader"} 1`,
		`consensus_raft_members{suffrage="voter"} 1`,
		`consensus_writable 1`,
		`consensus_requests_total{code="OK",method="GetTimestamp",status="ok"} 2`,
		`consensus_requests_total{code="FailedPrecondition",method="OrderEvents",status="error"} 1`,
		"consensus_tso_last_logical ",
		"consensus_raft_commit_index ",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, "consensus_tso_high_water_milliseconds 0\n") {
		t.Error("the leader reports no high-water mark")
	}
}

// httpsGet fetches a path of the node's HTTP port.
func httpsGet(t *testing.T, tn *testNode, path string) string {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS(t, tn.tlsDir(), "", "")}}
	resp, err := client.Get("https://" + strings.Replace(tn.HTTPAddr().String(), "127.0.0.1", "localhost", 1) + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A node certificate reaches the consensus services only, and changes
// only its own membership; consensus.admins narrows which operators
// change it.
func TestNodeCallersAndAdmins(t *testing.T) {
	tn := startNode(t, "", func(c *Config) {
		c.Consensus.NodeID = "n1"
		c.Consensus.Admins = []string{"ops"}
	})
	dev, _, err := pki.EnsureDev(tn.tlsDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := dev.EnsureNode("n9"); err != nil {
		t.Fatal(err)
	}
	n9 := tn.dial(clientTLS(t, tn.tlsDir(), filepath.Join(tn.tlsDir(), pki.NodesDir), "n9"))

	if _, err := consensusv1.NewConsensusServiceClient(n9).GetClusterStatus(bg, &consensusv1.GetClusterStatusRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err = authzv1.NewAuthorizationServiceClient(n9).Check(bg, &authzv1.CheckRequest{Principal: &authzv1.Principal{Id: "a"}, Action: "read", Resource: "d"})
	wantCode(t, err, codes.PermissionDenied)

	admin := consensusv1.NewConsensusAdminServiceClient(n9)
	_, err = admin.AddServer(bg, &consensusv1.AddServerRequest{Id: "n8", RaftAddress: "127.0.0.1:1"})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")
	// As itself, it may (a nonvoter cannot hurt the quorum).
	if _, err := admin.AddServer(bg, &consensusv1.AddServerRequest{Id: "n9", RaftAddress: "127.0.0.1:1", GrpcAddress: "127.0.0.1:2"}); err != nil {
		t.Fatal(err)
	}
	status := func() *consensusv1.GetClusterStatusResponse {
		st, err := consensusv1.NewConsensusServiceClient(tn.operator()).GetClusterStatus(bg, &consensusv1.GetClusterStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if m := status().GetMembers(); len(m) != 2 || m[1].GetId() != "n9" || m[1].GetSuffrage() != consensusv1.Suffrage_SUFFRAGE_NONVOTER || m[1].GetGrpcAddress() != "127.0.0.1:2" {
		t.Fatalf("members %v", m)
	}
	// The development operator is not among consensus.admins.
	_, err = consensusv1.NewConsensusAdminServiceClient(tn.operator()).RemoveServer(bg, &consensusv1.RemoveServerRequest{Id: "n9"})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")
	if _, err := admin.RemoveServer(bg, &consensusv1.RemoveServerRequest{Id: "n9"}); err != nil {
		t.Fatal(err)
	}
	if m := status().GetMembers(); len(m) != 1 {
		t.Fatalf("members after n9 left: %v", m)
	}
}

// A node serving plaintext (loopback experiments) runs raft on loopback
// only.
func TestPlaintextClusterIsLoopbackOnly(t *testing.T) {
	cfg := Config{Server: ServerConfig{DataDir: t.TempDir(), GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Plaintext: true},
		Consensus: testConsensus()}
	cfg.Consensus.BindAddress = "0.0.0.0:0"
	if _, err := Open(bg, cfg, nil); err == nil || !strings.Contains(err.Error(), "consensus.bind_address") {
		t.Fatalf("plaintext raft on a wildcard: %v", err)
	}
	cfg.Consensus.BindAddress = "127.0.0.1:0"
	n, err := Open(bg, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	res, err := n.cluster.node.GetTimestamp(bg, "test", consensus.GetTimestampRequest{})
	if err != nil || !res.Consensus {
		t.Fatalf("plaintext node: %+v %v", res, err)
	}
}

func TestClusterCertificatesAreConfiguredTogether(t *testing.T) {
	for _, s := range []ServerConfig{
		{ClientCA: "ca.crt"},
		{NodeCert: "n.crt", NodeKey: "n.key"},
		{ClientCA: "ca.crt", NodeCert: "n.crt"},
	} {
		if _, err := (Config{Server: s}).withDefaults(); err == nil {
			t.Errorf("%+v accepted", s)
		}
	}
	if c, err := (Config{Server: ServerConfig{ClientCA: "ca.crt", NodeCert: "n.crt", NodeKey: "n.key"}}).withDefaults(); err != nil ||
		c.Server.PKIDir != filepath.Join(DefaultDataDir, "tls") {
		t.Fatalf("%v %v", c.Server, err)
	}
}
