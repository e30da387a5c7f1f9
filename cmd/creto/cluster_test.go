package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	consensusv1 "github.com/creto-systems/creto/api/creto/consensus/v1"
	"github.com/creto-systems/creto/services/consensus"
)

// clusterEnv shortens the raft timeouts of the test cluster, so that a
// failover takes about a second rather than several; the command lines
// are the README's.
var clusterEnv = []string{
	"CRETO_CONSENSUS_HEARTBEAT_TIMEOUT=500ms",
	"CRETO_CONSENSUS_ELECTION_TIMEOUT=500ms",
	"CRETO_CONSENSUS_LEADER_LEASE_TIMEOUT=250ms",
	"CRETO_CONSENSUS_LOG_SEGMENT_BYTES=1048576",
}

// startClusterNode runs the README's `creto serve` for node id of a
// cluster on one machine: data in base/<id>, the first node's PKI, joining
// through the first node's gRPC port (none for the first node).
func startClusterNode(t *testing.T, base, id string, first *server) *server {
	t.Helper()
	s := &server{grpc: freeAddr(t), http: freeAddr(t), data: filepath.Join(base, id), env: clusterEnv}
	s.args = []string{"serve", "--data-dir", s.data, "--node-id", id, "--raft-addr", freeAddr(t),
		"--grpc-addr", s.grpc, "--http-addr", s.http}
	if first != nil {
		s.args = append(s.args, "--pki-dir", first.tls(""), "--join", first.grpc)
	}
	s.start(t)
	return s
}

// clusterClient calls whichever node leads, as a client of the cluster
// does: it follows NOT_LEADER redirects and tries the next node when one
// is down or has no leader.
type clusterClient struct {
	addrs []string
	conns map[string]consensusv1.ConsensusServiceClient
	creds credentials.TransportCredentials
	at    string // the node that answered last
}

func newClusterClient(t *testing.T, tlsDir string, addrs []string) *clusterClient {
	t.Helper()
	ca, err := os.ReadFile(filepath.Join(tlsDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(filepath.Join(tlsDir, "admin.crt"), filepath.Join(tlsDir, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	return &clusterClient{addrs: addrs, conns: map[string]consensusv1.ConsensusServiceClient{}, at: addrs[0],
		creds: credentials.NewTLS(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})}
}

func (c *clusterClient) client(t *testing.T, addr string) consensusv1.ConsensusServiceClient {
	if cl, ok := c.conns[addr]; ok {
		return cl
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(c.creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c.conns[addr] = consensusv1.NewConsensusServiceClient(conn)
	return c.conns[addr]
}

// call makes one call at the leader within 20 seconds; redirects counts
// the NOT_LEADER answers it followed.
func (c *clusterClient) call(t *testing.T, fn func(context.Context, consensusv1.ConsensusServiceClient) error) (redirects int, err error) {
	deadline := time.Now().Add(20 * time.Second)
	next := 0
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = fn(ctx, c.client(t, c.at))
		cancel()
		if err == nil {
			return redirects, nil
		}
		nl, notLeader := consensus.NotLeaderFromStatus(err)
		switch {
		case notLeader && nl.LeaderClientAddress != "":
			c.at = nl.LeaderClientAddress
			redirects++
		case notLeader, status.Code(err) == codes.Unavailable, status.Code(err) == codes.Aborted, status.Code(err) == codes.DeadlineExceeded:
			// Down, no quorum yet, a leader not yet known by address, or
			// an outcome to learn by retrying with the same idempotency
			// key: try the next node.
			c.at = c.addrs[next%len(c.addrs)]
			next++
			time.Sleep(50 * time.Millisecond)
		default:
			return redirects, err
		}
	}
	return redirects, err
}

// The README's three-node cluster, as real processes: it elects a leader,
// takes writes sent to a follower through a redirect, survives the
// leader's SIGKILL with every acknowledged event intact and timestamps
// still increasing, and takes the killed node back.
func TestThreeNodeClusterOfServeProcesses(t *testing.T) {
	base := t.TempDir()
	n1 := startClusterNode(t, base, "n1", nil)
	n2 := startClusterNode(t, base, "n2", n1)
	n3 := startClusterNode(t, base, "n3", n1)
	nodes := map[string]*server{"n1": n1, "n2": n2, "n3": n3}

	// The README's grpcurl, at node 2, until all three are voters.
	var st struct {
		LeaderID string `json:"leaderId"`
		Members  []struct {
			ID          string `json:"id"`
			GRPCAddress string `json:"grpcAddress"`
			Suffrage    string `json:"suffrage"`
		} `json:"members"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command(tool(t, "grpcurl"), "-cacert", n1.tls("ca.crt"), "-cert", n1.tls("admin.crt"), "-key", n1.tls("admin.key"),
			n2.grpc, "creto.consensus.v1.ConsensusService/GetClusterStatus").CombinedOutput()
		voters := 0
		if err == nil && json.Unmarshal(out, &st) == nil {
			for _, m := range st.Members {
				if m.Suffrage == "SUFFRAGE_VOTER" && m.GRPCAddress == nodes[m.ID].grpc {
					voters++
				}
			}
		}
		if voters == 3 && st.LeaderID != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no three-voter cluster: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	leader := nodes[st.LeaderID]
	var follower *server
	for _, s := range nodes {
		if s != leader {
			follower = s
		}
	}
	// Health, with the real probe: the consensus service serves on every
	// node once the node has seen itself a member with a leader, which a
	// node checks every 100 ms.
	for _, s := range nodes {
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, err := exec.Command(tool(t, "grpc-health-probe"), "-addr", s.grpc, "-tls", "-tls-ca-cert", n1.tls("ca.crt"),
				"-service", "creto.consensus.v1.ConsensusService").CombinedOutput()
			if err == nil && strings.Contains(string(out), "SERVING") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("health of %s: %v %s", s.grpc, err, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// A client that starts at a follower is redirected to the leader.
	var addrs []string
	for _, id := range []string{"n1", "n2", "n3"} {
		addrs = append(addrs, nodes[id].grpc)
	}
	c := newClusterClient(t, n1.tls(""), addrs)
	for _, a := range addrs {
		c.client(t, a) // connections made here, not in the client goroutine
	}
	c.at = follower.grpc
	var first *consensusv1.OrderEventsResponse
	redirects, err := c.call(t, func(ctx context.Context, cl consensusv1.ConsensusServiceClient) (err error) {
		first, err = cl.OrderEvents(ctx, &consensusv1.OrderEventsRequest{Events: []*consensusv1.Event{{Id: "e0"}}, IdempotencyKey: "e0"})
		return err
	})
	if err != nil || redirects != 1 || c.at != leader.grpc || first.GetEvents()[0].GetSequence() != 1 {
		t.Fatalf("ordering through a follower: %v, %d redirects, answered by %s (leader %s)", err, redirects, c.at, leader.grpc)
	}

	// A client keeps ordering events and taking timestamps while the
	// leader is killed.
	var mu sync.Mutex
	acked := map[string]uint64{"e0": 1} // event id → sequence acknowledged
	var stamps []uint64                 // acknowledged timestamps, in the order acknowledged
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 1; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			id := fmt.Sprintf("e%d", i)
			var res *consensusv1.OrderEventsResponse
			if _, err := c.call(t, func(ctx context.Context, cl consensusv1.ConsensusServiceClient) (err error) {
				res, err = cl.OrderEvents(ctx, &consensusv1.OrderEventsRequest{Events: []*consensusv1.Event{{Id: id}}, IdempotencyKey: id})
				return err
			}); err != nil {
				done <- fmt.Errorf("ordering %s: %w", id, err)
				return
			}
			var ts *consensusv1.GetTimestampResponse
			if _, err := c.call(t, func(ctx context.Context, cl consensusv1.ConsensusServiceClient) (err error) {
				ts, err = cl.GetTimestamp(ctx, &consensusv1.GetTimestampRequest{})
				return err
			}); err != nil {
				done <- fmt.Errorf("timestamp: %w", err)
				return
			}
			mu.Lock()
			acked[id] = res.GetEvents()[0].GetSequence()
			stamps = append(stamps, res.GetEvents()[0].GetTimestamp().GetLogical(), ts.GetTimestamp().GetLogical())
			mu.Unlock()
		}
	}()
	progress := func(n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		mu.Lock()
		target := len(acked) + n
		mu.Unlock()
		for {
			mu.Lock()
			got := len(acked)
			mu.Unlock()
			if got >= target {
				return
			}
			select {
			case err := <-done:
				t.Fatal(err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no progress: %d events acknowledged", got)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	progress(10)
	if err := leader.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-leader.exited
	progress(10) // only a new leader can have acknowledged these
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	t.Logf("killed leader %s; %d events and %d timestamps acknowledged, the last ones by %s", st.LeaderID, len(acked), len(stamps), c.at)
	for i := 1; i < len(stamps); i++ {
		if stamps[i] <= stamps[i-1] {
			t.Fatalf("timestamp %d (%d) is not above the one acknowledged before it (%d)", i, stamps[i], stamps[i-1])
		}
	}
	// Every acknowledged event is stored where it was acknowledged, on the
	// survivors and — once it is back — on the killed node.
	checkEvents := func(s *server) {
		t.Helper()
		cl := newClusterClient(t, n1.tls(""), []string{s.grpc})
		var got map[string]uint64
		deadline := time.Now().Add(20 * time.Second)
		for {
			got = map[string]uint64{}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			for from := uint64(0); ; {
				r, err := cl.client(t, s.grpc).ReadEvents(ctx, &consensusv1.ReadEventsRequest{From: from, Limit: 1000})
				if err != nil || len(r.GetEvents()) == 0 {
					break
				}
				for _, e := range r.GetEvents() {
					if _, dup := got[e.GetId()]; dup {
						t.Fatalf("%s stores %s twice", s.grpc, e.GetId())
					}
					got[e.GetId()] = e.GetSequence()
				}
				from = r.GetNext()
			}
			cancel()
			missing := 0
			for id, seq := range acked {
				if got[id] != seq {
					missing++
				}
			}
			if missing == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d acknowledged events missing or moved", s.grpc, missing)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, s := range nodes {
		if s != leader {
			checkEvents(s)
		}
	}

	// The killed node starts again with the same command line, catches up
	// and follows the new leader.
	leader.start(t)
	checkEvents(leader)
	cl := newClusterClient(t, n1.tls(""), []string{leader.grpc})
	until := time.Now().Add(20 * time.Second)
	for {
		s, err := cl.client(t, leader.grpc).GetClusterStatus(context.Background(), &consensusv1.GetClusterStatusRequest{})
		if err == nil && s.GetRole() == consensusv1.Role_ROLE_FOLLOWER && s.GetLeaderId() != "" && len(s.GetMembers()) == 3 {
			break
		}
		if time.Now().After(until) {
			t.Fatalf("the restarted node does not follow: %v %v", s, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The cluster flags and variables set the [consensus] and [server] keys.
func TestClusterFlags(t *testing.T) {
	code, stdout, stderr := creto(t, nil, "config", "print", "--node-id", "n2", "--raft-addr", "127.0.0.1:7402",
		"--join", "127.0.0.1:50051", "--join", "127.0.0.1:50053", "--pki-dir", "/srv/n1/tls")
	if code != 0 {
		t.Fatalf("config print: %s", stderr)
	}
	for _, want := range []string{`node_id = "n2"`, `bind_address = "127.0.0.1:7402"`, `join = ["127.0.0.1:50051", "127.0.0.1:50053"]`,
		`pki_dir = "/srv/n1/tls"`, `heartbeat_timeout = "1s"`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("missing %s in\n%s", want, stdout)
		}
	}
	t.Setenv("CRETO_CONSENSUS_JOIN", "a:1, b:2")
	t.Setenv("CRETO_CONSENSUS_SNAPSHOT_THRESHOLD", "100")
	code, stdout, stderr = creto(t, nil, "config", "print")
	if code != 0 || !strings.Contains(stdout, `join = ["a:1", "b:2"]`) || !strings.Contains(stdout, "snapshot_threshold = 100") {
		t.Fatalf("environment: %d %s %s", code, stdout, stderr)
	}
	t.Setenv("CRETO_CONSENSUS_MAX_TIMESTAMP_BATCH", "5000000000")
	if code, _, stderr = creto(t, nil, "config", "print"); code != exitBadInput || !strings.Contains(stderr, "CRETO_CONSENSUS_MAX_TIMESTAMP_BATCH") {
		t.Fatalf("an out-of-range value: %d %s", code, stderr)
	}
}
