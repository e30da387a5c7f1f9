package consensus

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// clientAddr is the made-up API address of a test node.
func clientAddr(id string) string { return "127.0.0.1:5" + strings.TrimPrefix(id, "n") + "051" }

// Every member's client address reaches every node — the leader's from its
// own session, the others' through their AddServer requests — so a
// follower names the leader's API in NotLeaderError; a re-join publishes a
// changed address, and a removal forgets it.
func TestMembersPublishTheirClientAddresses(t *testing.T) {
	ctx := context.Background()
	c := &cluster{t: t, net: newNetwork(), setup: func(tn *testNode) {
		if err := tn.n.SetClientAddress(clientAddr(tn.id)); err != nil {
			t.Fatal(err)
		}
	}}
	for _, id := range []string{"n1", "n2", "n3"} {
		c.add(id, nil)
	}
	c.waitMembers(3)
	waitFor(t, "every node to know every client address", func() bool {
		for _, tn := range c.live() {
			st := tn.status()
			for _, m := range st.Members {
				if m.ClientAddress != clientAddr(m.ID) {
					return false
				}
			}
			if st.LeaderClientAddress != clientAddr(st.LeaderID) {
				return false
			}
		}
		return true
	})

	leader := c.waitLeader()
	var follower *testNode
	for _, tn := range c.live() {
		if tn != leader {
			follower = tn
		}
	}
	_, err := follower.n.GetTimestamp(ctx, "agent", GetTimestampRequest{AllowLocal: true})
	var nl *NotLeaderError
	if !errors.As(err, &nl) || nl.LeaderID != leader.id || nl.LeaderAddress != leader.n.Address() || nl.LeaderClientAddress != clientAddr(leader.id) {
		t.Fatalf("a follower's answer: %v (%+v)", err, nl)
	}

	// What a follower's caller does when it cannot reach the leader: a
	// local timestamp, above the consensus ones it saw.
	seen, err := leader.n.GetTimestamp(ctx, "agent", GetTimestampRequest{})
	if err != nil {
		t.Fatal(err)
	}
	follower.n.Observe(seen.Timestamp)
	local, err := follower.n.LocalTimestamp(ctx, "agent", GetTimestampRequest{Count: 3}, errors.New("leader unreachable"))
	if err != nil || local.Consensus || local.Count != 3 || local.NodeID != follower.id || local.Logical <= seen.Logical ||
		!strings.Contains(local.Warning, "leader unreachable") {
		t.Fatalf("local timestamps %+v after %v: %v", local, seen, err)
	}
	if _, err := follower.n.LocalTimestamp(ctx, "agent", GetTimestampRequest{Count: 1 << 30}, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("an oversized local batch: %v", err)
	}
	if _, err := follower.n.LocalTimestamp(ctx, "", GetTimestampRequest{}, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("no caller: %v", err)
	}

	// A follower whose address changed joins again: it stays a voter and
	// its new address replaces the old one everywhere.
	moved := "localhost:6051"
	if err := follower.n.SetClientAddress(moved); err != nil {
		t.Fatal(err)
	}
	if err := c.join(ctx, follower); err != nil {
		t.Fatal(err)
	}
	c.waitMembers(3)
	waitFor(t, "the moved address everywhere", func() bool {
		for _, tn := range c.live() {
			for _, m := range tn.status().Members {
				if m.ID == follower.id && m.ClientAddress != moved {
					return false
				}
			}
		}
		return true
	})

	// A removed server's address is forgotten.
	if err := leader.n.RemoveServer(ctx, admin, RemoveServerRequest{ID: follower.id}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the removed server's address to be forgotten", func() bool {
		got, err := leader.n.memberClientAddress(ctx, follower.id)
		return err == nil && got == ""
	})
}

func TestClientAddressesAreChecked(t *testing.T) {
	ctx := context.Background()
	tn := newTestNode(t, "solo", nil)
	waitServing(t, tn)
	for _, bad := range []string{"", "localhost", ":50051", "127.0.0.1:0", "0.0.0.0:50051", "[::]:50051", "a:b:c"} {
		if err := tn.n.SetClientAddress(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("SetClientAddress(%q): %v", bad, err)
		}
		if bad == "" {
			continue // AddServer's client address is optional
		}
		_, err := tn.n.AddServer(ctx, admin, AddServerRequest{ID: "n9", Address: "127.0.0.1:7409", ClientAddress: bad})
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("AddServer with client address %q: %v", bad, err)
		}
	}
	if st := tn.status(); len(st.Members) != 1 {
		t.Fatalf("a refused AddServer changed the membership: %+v", st.Members)
	}
	// Records of the wrong shape are refused before they reach the log.
	for _, p := range [][]byte{nil, {2}, encodeMemberRecord("", "h:1"), encodeMemberRecord("n", "0.0.0.0:1"), append(encodeMemberRecord("n", "h:1"), 0)} {
		if err := (membersHandler{}).Validate(p); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("record %x: %v", p, err)
		}
	}
	// The node publishes its own address while it leads.
	if err := tn.n.SetClientAddress("localhost:50051"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the leader's own address", func() bool { return tn.status().LeaderClientAddress == "localhost:50051" })
}

// waitFor polls cond for up to 20 seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
