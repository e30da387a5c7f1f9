package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	authzv1 "github.com/creto-systems/creto/api/creto/authz/v1"
	consensusv1 "github.com/creto-systems/creto/api/creto/consensus/v1"
	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/consensus"
)

// BenchmarkConsensusServed measures what serving consensus costs: a
// timestamp and the ordering of one event on a one-node cluster, in
// process (the anchor) and over gRPC with mTLS on loopback as an agent,
// in one run.
//
// go test -run '^$' -bench 'ConsensusServed|RaftTransport|RaftConnRoundTrip|ConsensusHost' -benchmem ./node/
func BenchmarkConsensusServed(b *testing.B) {
	tn := startNode(b, "", nil)
	node := tn.cluster.node
	c := consensusv1.NewConsensusServiceClient(tn.agent("bench"))
	events := []consensus.Event{{ID: "e", Payload: make([]byte, 100)}}
	wire := &consensusv1.OrderEventsRequest{Events: []*consensusv1.Event{{Id: "e", Payload: make([]byte, 100)}}}
	b.Run("GetTimestamp/in-process", func(b *testing.B) {
		for b.Loop() {
			if _, err := node.GetTimestamp(bg, `Agent::"bench"`, consensus.GetTimestampRequest{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GetTimestamp/grpc-agent", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.GetTimestamp(bg, &consensusv1.GetTimestampRequest{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("OrderEvents/in-process", func(b *testing.B) {
		for b.Loop() {
			if _, err := node.OrderEvents(bg, `Agent::"bench"`, consensus.OrderEventsRequest{Events: events}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("OrderEvents/grpc-agent", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.OrderEvents(bg, wire); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRaftTransport orders one 100-byte event at a time on a
// three-node loopback cluster whose raft traffic runs over the node's
// mutual TLS, beside the same cluster over plain TCP (the anchor), by 1
// and by 32 concurrent clients. Every run gets fresh clusters.
func BenchmarkRaftTransport(b *testing.B) {
	events := []consensus.Event{{ID: "e", Payload: make([]byte, 100)}}
	for _, clients := range []int{1, 32} {
		for _, transport := range []string{"anchor=tcp", "mtls"} {
			b.Run(fmt.Sprintf("%s/clients=%d", transport, clients), func(b *testing.B) {
				leader := raftCluster(b, transport == "mtls")
				work := make(chan struct{})
				failed := make(chan error, clients)
				var wg sync.WaitGroup
				defer wg.Wait()
				defer close(work)
				for range clients {
					wg.Go(func() {
						for range work {
							if err := orderOne(leader, events); err != nil {
								failed <- err
								return
							}
						}
					})
				}
				for b.Loop() {
					select {
					case work <- struct{}{}:
					case err := <-failed:
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// orderOne orders events, retrying while the leader's lease has lapsed on
// an overloaded machine (as a client would); any other failure, such as
// leadership moving, ends the run.
func orderOne(leader *consensus.Node, events []consensus.Event) error {
	for {
		_, err := leader.OrderEvents(bg, "bench", consensus.OrderEventsRequest{Events: events})
		if err == nil || !errors.Is(err, consensus.ErrUnavailable) {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

// raftCluster starts three consensus members on loopback, over the node's
// mutual TLS or plain TCP, and returns the leader.
func raftCluster(b *testing.B, mtls bool) *consensus.Node {
	b.Helper()
	pkiDir := b.TempDir()
	var nodes []*consensus.Node
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("n%d", i)
		dir := b.TempDir()
		store, err := kv.Open(filepath.Join(dir, "kv"))
		if err != nil {
			b.Fatal(err)
		}
		cfg := clusterConsensus(id, time.Second)
		cfg.Admins = []string{"bench"}
		cfg.Logger = slog.New(slog.DiscardHandler)
		if i > 1 {
			cfg.Join = []string{nodes[0].Address()}
		}
		if mtls {
			layer, err := listenRaftTLS("127.0.0.1:0", peerFor(b, pkiDir, id))
			if err != nil {
				b.Fatal(err)
			}
			cfg.StreamLayer = layer
		}
		n, err := consensus.Open(bg, dir, store, cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { n.Close(); store.Close() })
		ctx, cancel := context.WithTimeout(bg, 20*time.Second)
		if i == 1 {
			_, err = n.WaitForLeader(ctx)
		} else {
			err = n.Join(ctx, "bench", nodes[0])
		}
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	return nodes[0]
}

// BenchmarkConsensusHost checks a request whose Wasm extension takes three
// timestamps from creto:consensus/v1, on the leader of a three-node cluster
// (the anchor: the host function answers from the node's oracle) and on a
// follower (each timestamp forwarded to the leader over gRPC).
func BenchmarkConsensusHost(b *testing.B) {
	// Long timeouts: a busy benchmark must not move leadership, or the
	// follower's figure would be a leader's.
	nodes := startTestCluster(b, 2*time.Second)
	leader, followers := roles(b, nodes)
	module := guestModule(b, filepath.Join("..", "hosts", "testdata", "consensus_ts.wasm"), `{"name": "stamper", "capabilities": ["consensus"]}`)
	req := &authzv1.CheckRequest{Principal: &authzv1.Principal{Id: "a"}, Action: "read", Resource: "d"}
	for _, c := range []struct {
		name string
		tn   *testNode
	}{{"anchor=leader", leader}, {"follower", followers[0]}} {
		admin := authzv1.NewAuthorizationServiceClient(c.tn.operator())
		if _, err := admin.RegisterExtension(bg, &authzv1.RegisterExtensionRequest{Module: module, Grants: []string{"consensus"}}); err != nil {
			b.Fatal(err)
		}
		if _, err := admin.CreatePolicy(bg, &authzv1.CreatePolicyRequest{Id: "all", Text: `permit (principal, action, resource);`}); err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := admin.Check(bg, req); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if now, _ := roles(b, nodes); now != leader {
				b.Fatalf("leadership moved to %s during the run", now.cluster.id)
			}
		})
	}
}

// BenchmarkRaftConnRoundTrip isolates the transport: a 256-byte message
// and its echo on one established connection, over the node's mutual TLS
// and over plain TCP (the anchor) — what a raft AppendEntries round trip
// pays on the wire, without the disk.
func BenchmarkRaftConnRoundTrip(b *testing.B) {
	pkiDir := b.TempDir()
	for _, transport := range []string{"anchor=tcp", "mtls"} {
		b.Run(transport, func(b *testing.B) {
			var server net.Listener
			dial := func(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }
			if transport == "mtls" {
				l, err := listenRaftTLS("127.0.0.1:0", peerFor(b, pkiDir, "n1"))
				if err != nil {
					b.Fatal(err)
				}
				client, err := listenRaftTLS("127.0.0.1:0", peerFor(b, pkiDir, "n2"))
				if err != nil {
					b.Fatal(err)
				}
				defer client.Close()
				server, dial = l, func(addr string) (net.Conn, error) { return client.Dial(addr, 5*time.Second) }
			} else {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				server = l
			}
			defer server.Close()
			go func() {
				c, err := server.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
			c, err := dial(server.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			msg, echo := make([]byte, 256), make([]byte, 256)
			for b.Loop() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, echo); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
