package consensus

import (
	"context"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// TestSoak runs the failover workload for a while, with a random fault
// every couple of seconds: the leader or a follower killed and restarted,
// the leader partitioned away and healed, leadership moved. It is opt-in:
// CRETO_CONSENSUS_SOAK=5m go test -run Soak ./services/consensus/
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("CRETO_CONSENSUS_SOAK"))
	if err != nil {
		t.Skip("set CRETO_CONSENSUS_SOAK to a duration to run the soak test")
	}
	c := newCluster(t, 3, nil)
	h := newHistory()
	stop := runClients(t, c, h, 4, 5*time.Millisecond, true)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for end := time.Now().Add(d); time.Now().Before(end); {
		leader := c.waitLeader()
		var followers []*testNode
		for _, tn := range c.nodes {
			if tn != leader {
				followers = append(followers, tn)
			}
		}
		follower := followers[rng.IntN(len(followers))]
		switch fault := rng.IntN(4); fault {
		case 0:
			t.Logf("killing the leader %s", leader.id)
			leader.kill()
			time.Sleep(time.Second)
			leader.start()
		case 1:
			t.Logf("killing the follower %s", follower.id)
			follower.kill()
			time.Sleep(time.Second)
			follower.start()
		case 2:
			t.Logf("partitioning the leader %s", leader.id)
			var others []string
			for _, tn := range c.nodes {
				if tn != leader {
					others = append(others, tn.id)
				}
			}
			c.net.isolate(leader.id, others...)
			time.Sleep(2 * time.Second)
			c.net.heal()
		case 3:
			t.Logf("moving leadership from %s", leader.id)
			_ = leader.n.TransferLeadership(context.Background(), admin, TransferLeadershipRequest{})
		}
		time.Sleep(time.Duration(1000+rng.IntN(1000)) * time.Millisecond)
	}
	stop()
	h.check(t, c)
}
