package node_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"

	consensusv1 "github.com/creto-systems/creto/api/creto/consensus/v1"
	"github.com/creto-systems/creto/internal/pki"
	"github.com/creto-systems/creto/node"
	"github.com/creto-systems/creto/services/consensus"
)

// A client takes timestamps and orders events over gRPC. The node is a
// one-node cluster, leader from its first call; in a cluster, a follower
// would answer NOT_LEADER naming the leader's gRPC address
// (consensus.NotLeaderFromStatus), and the client would repeat the call
// there.
func Example_consensus() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "creto-node")
	defer os.RemoveAll(dir)
	n, err := node.Open(ctx, node.Config{Server: node.ServerConfig{DataDir: dir, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"},
		Consensus: consensus.Config{NodeID: "node-1", BindAddress: "127.0.0.1:0"}},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		log.Fatal(err)
	}
	if err := n.Start(); err != nil {
		log.Fatal(err)
	}
	defer n.Shutdown(ctx)
	conn := dial(n, dir, pki.DefaultOperator, "")
	defer conn.Close()
	c := consensusv1.NewConsensusServiceClient(conn)

	ts, err := c.GetTimestamp(ctx, &consensusv1.GetTimestampRequest{Count: 10})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ts.GetCount(), "timestamps from", ts.GetTimestamp().GetNodeId(), "consensus:", ts.GetConsensus())

	batch := &consensusv1.OrderEventsRequest{Events: []*consensusv1.Event{{Id: "call-1"}, {Id: "call-2"}}, IdempotencyKey: "batch-1"}
	ordered, err := c.OrderEvents(ctx, batch)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range ordered.GetEvents() {
		fmt.Println(e.GetId(), "is event", e.GetSequence(), "after the timestamps:", e.GetTimestamp().GetLogical() > ts.GetTimestamp().GetLogical()+9)
	}
	again, err := c.OrderEvents(ctx, batch) // a retry, say after ABORTED
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("retry: duplicate", again.GetDuplicate(), "sequence", again.GetEvents()[0].GetSequence())

	st, err := c.GetClusterStatus(ctx, &consensusv1.GetClusterStatusRequest{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.GetNodeId(), st.GetRole(), len(st.GetMembers()), "member")
	// Output:
	// 10 timestamps from node-1 consensus: true
	// call-1 is event 1 after the timestamps: true
	// call-2 is event 2 after the timestamps: true
	// retry: duplicate true sequence 1
	// node-1 ROLE_LEADER 1 member
}
