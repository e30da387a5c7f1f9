package consensus_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/consensus"
)

// secretUses is a replicated command type: it counts the uses of a
// limited-use secret, so "at most 2 uses" holds across the whole cluster.
// The vault would register one like it.
type secretUses struct{ max uint64 }

var errUsedUp = errors.New("secret used up")

// Validate runs on the leader before the command is proposed.
func (secretUses) Validate(secretID []byte) error {
	if len(secretID) == 0 || len(secretID) > 256 {
		return fmt.Errorf("%w: secret id of %d bytes", consensus.ErrInvalidArgument, len(secretID))
	}
	return nil
}

// Apply runs on every node in log order; it depends only on the payload
// and the replicated state.
func (h secretUses) Apply(tx *consensus.Tx, secretID []byte) ([]byte, error) {
	var used uint64
	v, err := tx.Get(secretID)
	switch {
	case errors.Is(err, consensus.ErrNotFound):
	case err != nil:
		return nil, err
	case len(v) == 8:
		used = binary.BigEndian.Uint64(v)
	}
	if used >= h.max {
		return nil, errUsedUp
	}
	out := binary.BigEndian.AppendUint64(nil, used+1)
	return out, tx.Set(secretID, out)
}

// A one-node cluster (the default): timestamps, an ordered batch of
// events, and a replicated command type.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "consensus-example")
	defer os.RemoveAll(dir)
	store, err := kv.Open(filepath.Join(dir, "kv"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	node, err := consensus.Open(ctx, dir, store, consensus.Config{
		NodeID:      "node-1",
		BindAddress: "127.0.0.1:0",
		Handlers:    map[string]consensus.Handler{"vault.uses": secretUses{max: 2}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	if _, err := node.WaitForLeader(ctx); err != nil {
		log.Fatal(err)
	}

	a, _ := node.GetTimestamp(ctx, "agent-1", consensus.GetTimestampRequest{})
	b, _ := node.GetTimestamp(ctx, "agent-1", consensus.GetTimestampRequest{Count: 10})
	fmt.Println("later:", a.Compare(b.Timestamp) < 0, "batch of", b.Count, "consensus:", b.Consensus)

	ordered, _ := node.OrderEvents(ctx, "metering", consensus.OrderEventsRequest{
		Events:         []consensus.Event{{ID: "call-1"}, {ID: "call-2"}},
		IdempotencyKey: "batch-1",
	})
	for _, e := range ordered.Events {
		fmt.Println(e.ID, "is event", e.Sequence)
	}

	for range 3 {
		res, err := node.Propose(ctx, "agent-1", consensus.Command{Type: "vault.uses", Payload: []byte("db-password")})
		if err != nil {
			fmt.Println("refused:", errors.Is(err, errUsedUp))
			continue
		}
		fmt.Println("use", binary.BigEndian.Uint64(res.Result))
	}
	// Output:
	// later: true batch of 10 consensus: true
	// call-1 is event 1
	// call-2 is event 2
	// use 1
	// use 2
	// refused: true
}
