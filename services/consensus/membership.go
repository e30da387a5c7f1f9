package consensus

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Role is a node's raft state.
type Role string

// Roles.
const (
	RoleLeader    Role = "leader"
	RoleFollower  Role = "follower"
	RoleCandidate Role = "candidate"
	RoleShutdown  Role = "shutdown"
)

// Suffrage is whether a member votes.
type Suffrage string

// Suffrages. A staging member is being promoted to voter.
const (
	Voter    Suffrage = "voter"
	Nonvoter Suffrage = "nonvoter"
	Staging  Suffrage = "staging"
)

// Health is what this node knows of a member's reachability.
type Health string

// Health values. A follower knows only itself and the leader, so it
// reports the others as unknown; the leader knows everyone from its
// heartbeats.
const (
	Healthy   Health = "healthy"
	Unhealthy Health = "unhealthy"
	Unknown   Health = "unknown"
)

// Member is one server in the cluster's configuration.
type Member struct {
	ID string
	// Address is the member's raft address; ClientAddress where clients
	// reach its API, once published (SetClientAddress).
	Address       string
	ClientAddress string
	Suffrage      Suffrage
	Health        Health
	Leader        bool
}

// ClusterStatus is the seed's GetClusterStatus answer, as this node sees
// it.
type ClusterStatus struct {
	// NodeID, Address and Role describe this node.
	NodeID  string
	Address string
	Role    Role
	// LeaderID, LeaderAddress (raft) and LeaderClientAddress (its API)
	// name the leader this node knows of, if any.
	LeaderID            string
	LeaderAddress       string
	LeaderClientAddress string
	// Term is the current raft term; CommitIndex and LastLogIndex are this
	// node's log positions. AppliedIndex is the last entry whose effect is
	// durable in the store (what ReadEvents and Get see); raft's own
	// no-op and barrier entries are not counted, so it may stay a little
	// below CommitIndex.
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
	LastLogIndex uint64
	// Members is the latest configuration, sorted by id. A node that is not
	// among them has not joined yet.
	Members []Member
	// Writable reports whether this node accepts writes now: it leads and a
	// quorum confirmed that within the lease.
	Writable bool
	// ServingTimestamps reports whether this node serves consensus
	// timestamps now (Writable, and the high-water mark is loaded).
	ServingTimestamps bool
	// LastTimestamp is the Logical value of the last timestamp this
	// node's oracle issued (0 if it never led since it started);
	// HighWaterMark the committed mark, in Unix milliseconds, under which
	// it serves (0 while it does not).
	LastTimestamp uint64
	HighWaterMark uint64
}

// GetClusterStatus reports the cluster as this node sees it. It answers
// on every node, leader or not, even without a quorum.
func (n *Node) GetClusterStatus(ctx context.Context, caller string) (ClusterStatus, error) {
	if err := n.authorize(ctx, caller, OpStatus, ""); err != nil {
		return ClusterStatus{}, err
	}
	if n.closed.Load() {
		return ClusterStatus{}, ErrClosed
	}
	return n.status()
}

// WaitForLeader waits until this node knows a leader and, if it is the
// leader itself, until it serves writes and timestamps; it returns the
// status then. A fresh single-node cluster gets there one election
// timeout after Open (HeartbeatTimeout to twice that).
func (n *Node) WaitForLeader(ctx context.Context) (ClusterStatus, error) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := n.usable(); err != nil {
			return ClusterStatus{}, err
		}
		st, err := n.status()
		if err != nil {
			return st, err
		}
		if st.LeaderID != "" && (st.LeaderID != n.id || st.ServingTimestamps) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("consensus: waiting for a leader: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

func (n *Node) status() (ClusterStatus, error) {
	leaderAddr, leaderID := n.raft.LeaderWithID()
	st := ClusterStatus{
		NodeID:        n.id,
		Address:       n.addr,
		Role:          roleOf(n.raft.State()),
		LeaderID:      string(leaderID),
		LeaderAddress: string(leaderAddr),
		Term:          n.raft.CurrentTerm(),
		CommitIndex:   n.raft.CommitIndex(),
		AppliedIndex:  n.fsm.applied.Load(),
		LastLogIndex:  n.raft.LastIndex(),
		LastTimestamp: n.tso.last.Load(),
		HighWaterMark: n.tso.limit.Load(),
	}
	st.Writable = n.writable() == nil
	st.ServingTimestamps = st.Writable && st.HighWaterMark != 0
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return ClusterStatus{}, n.raftError(err)
	}
	for _, s := range cf.Configuration().Servers {
		m := Member{ID: string(s.ID), Address: string(s.Address), Suffrage: suffrageOf(s.Suffrage), Leader: s.ID == leaderID}
		m.Health = n.memberHealth(s.ID, st.Role, leaderID)
		var err error
		if m.ClientAddress, err = n.memberClientAddress(context.Background(), m.ID); err != nil {
			return ClusterStatus{}, err
		}
		if m.Leader {
			st.LeaderClientAddress = m.ClientAddress
		}
		st.Members = append(st.Members, m)
	}
	slices.SortFunc(st.Members, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return st, nil
}

func (n *Node) memberHealth(id raft.ServerID, role Role, leader raft.ServerID) Health {
	switch {
	case string(id) == n.id:
		return Healthy
	case role == RoleLeader:
		if n.health.failing(string(id)) {
			return Unhealthy
		}
		return Healthy
	case id == leader:
		if time.Since(n.raft.LastContact()) < n.cfg.HeartbeatTimeout {
			return Healthy
		}
		return Unhealthy
	}
	return Unknown
}

func roleOf(s raft.RaftState) Role {
	switch s {
	case raft.Leader:
		return RoleLeader
	case raft.Candidate:
		return RoleCandidate
	case raft.Follower:
		return RoleFollower
	}
	return RoleShutdown
}

func suffrageOf(s raft.ServerSuffrage) Suffrage {
	switch s {
	case raft.Voter:
		return Voter
	case raft.Nonvoter:
		return Nonvoter
	}
	return Staging
}

// peerHealth tracks, on the leader, which followers miss heartbeats.
type peerHealth struct {
	mu   sync.Mutex
	down map[string]struct{}
}

func (h *peerHealth) failing(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.down[id]
	return ok
}

func (h *peerHealth) set(id string, down bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down == nil {
		h.down = map[string]struct{}{}
	}
	if down {
		h.down[id] = struct{}{}
	} else {
		delete(h.down, id)
	}
}

func (h *peerHealth) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.down)
}

// observe follows raft's heartbeat observations until stop closes.
func (h *peerHealth) observe(r *raft.Raft, stop <-chan struct{}, wg *sync.WaitGroup) *raft.Observer {
	ch := make(chan raft.Observation, 64)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation, raft.LeaderObservation:
			return true
		}
		return false
	})
	r.RegisterObserver(obs)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case o := <-ch:
				switch d := o.Data.(type) {
				case raft.FailedHeartbeatObservation:
					h.set(string(d.PeerID), true)
				case raft.ResumedHeartbeatObservation:
					h.set(string(d.PeerID), false)
				case raft.LeaderObservation:
					h.reset()
				}
			case <-stop:
				return
			}
		}
	}()
	return obs
}

// AddServerRequest asks the leader to add a server.
type AddServerRequest struct {
	// ID and Address name the server; Address is the raft address it
	// advertises.
	ID, Address string
	// ClientAddress, if set, is where clients reach the server's API; the
	// leader records it for redirects (SetClientAddress).
	ClientAddress string
	// Voter adds the server as a voter. Join first adds a server as a
	// nonvoter, lets it catch up, then asks again with Voter to promote
	// it, so the cluster's quorum never waits on a server still copying
	// the log (raft#404).
	Voter bool
}

// AddServerResponse reports the configuration change.
type AddServerResponse struct {
	// Index is the log index of the new configuration: a server that has
	// applied up to it has caught up with everything before its addition.
	Index uint64
}

// RemoveServerRequest asks the leader to remove a server.
type RemoveServerRequest struct {
	ID string
}

// TransferLeadershipRequest asks the leader to hand leadership over.
type TransferLeadershipRequest struct {
	// ID names the voter to hand over to; empty lets raft pick the most
	// up-to-date one.
	ID string
}

// Admin is the leader-side membership surface a joining or leaving node
// talks to: a *Node in process, or a gRPC client of the leader's
// ConsensusService (which follows ErrNotLeader to the leader).
type Admin interface {
	AddServer(ctx context.Context, caller string, req AddServerRequest) (AddServerResponse, error)
	RemoveServer(ctx context.Context, caller string, req RemoveServerRequest) error
}

// AddServer adds a server to the cluster, or promotes a nonvoter with
// Voter set. Only the leader can.
func (n *Node) AddServer(ctx context.Context, caller string, req AddServerRequest) (AddServerResponse, error) {
	if err := n.authorize(ctx, caller, OpMembership, req.ID); err != nil {
		return AddServerResponse{}, err
	}
	if err := checkID("server id", req.ID); err != nil {
		return AddServerResponse{}, err
	}
	if host, port, err := net.SplitHostPort(req.Address); err != nil || host == "" || port == "0" {
		return AddServerResponse{}, invalid(nil, "server address %s must be a dialable host:port", quote(req.Address))
	}
	if req.ClientAddress != "" {
		if err := checkClientAddress(req.ClientAddress); err != nil {
			return AddServerResponse{}, err
		}
	}
	if err := n.writable(); err != nil {
		return AddServerResponse{}, err
	}
	id, addr := raft.ServerID(req.ID), raft.ServerAddress(req.Address)
	var f raft.IndexFuture
	if req.Voter {
		f = n.raft.AddVoter(id, addr, 0, enqueueTimeout(ctx))
	} else {
		f = n.raft.AddNonvoter(id, addr, 0, enqueueTimeout(ctx))
	}
	if err := wait(ctx, f); err != nil {
		return AddServerResponse{}, n.raftError(err)
	}
	n.log.Info("consensus: server added", "server", req.ID, "address", req.Address, "voter", req.Voter, "by", caller)
	if req.ClientAddress != "" {
		if err := n.recordClientAddress(ctx, caller, req.ID, req.ClientAddress); err != nil {
			return AddServerResponse{}, fmt.Errorf("consensus: server %s added, but its client address was not recorded: %w", quote(req.ID), err)
		}
	}
	return AddServerResponse{Index: f.Index()}, nil
}

// RemoveServer removes a server from the cluster. Only the leader can; a
// leader removing itself steps down once the change commits.
func (n *Node) RemoveServer(ctx context.Context, caller string, req RemoveServerRequest) error {
	if err := n.authorize(ctx, caller, OpMembership, req.ID); err != nil {
		return err
	}
	if err := checkID("server id", req.ID); err != nil {
		return err
	}
	if err := n.writable(); err != nil {
		return err
	}
	if req.ID == n.id {
		// Stop serving before the change commits: a successor may be
		// elected as soon as it does.
		n.stopSession()
	}
	if err := wait(ctx, n.raft.RemoveServer(raft.ServerID(req.ID), 0, enqueueTimeout(ctx))); err != nil {
		return n.raftError(err)
	}
	n.log.Info("consensus: server removed", "server", req.ID, "by", caller)
	if req.ID != n.id {
		// Forgetting the client address is housekeeping: the record of a
		// server that is not a member is never read.
		if err := n.recordClientAddress(ctx, caller, req.ID, ""); err != nil {
			n.log.Warn("consensus: forgetting a removed server's client address", "server", req.ID, "error", err)
		}
	}
	return nil
}

// TransferLeadership hands leadership to another voter. The old leader
// stops serving timestamps before the transfer starts, so the two never
// serve at once. Only the leader can.
func (n *Node) TransferLeadership(ctx context.Context, caller string, req TransferLeadershipRequest) error {
	if err := n.authorize(ctx, caller, OpMembership, req.ID); err != nil {
		return err
	}
	var target *raft.Server
	if req.ID != "" {
		if err := checkID("server id", req.ID); err != nil {
			return err
		}
		cf := n.raft.GetConfiguration()
		if err := cf.Error(); err != nil {
			return n.raftError(err)
		}
		for _, s := range cf.Configuration().Servers {
			if string(s.ID) == req.ID && s.Suffrage == raft.Voter {
				target = &s
			}
		}
		if target == nil || req.ID == n.id {
			return invalid(nil, "%s is not another voter of the cluster", quote(req.ID))
		}
	}
	if err := n.writable(); err != nil {
		return err
	}
	n.stopSession()
	var f raft.Future
	if target != nil {
		f = n.raft.LeadershipTransferToServer(target.ID, target.Address)
	} else {
		f = n.raft.LeadershipTransfer()
	}
	err := wait(ctx, f)
	if err != nil && n.raft.State() == raft.Leader {
		n.startSession() // still leading: serve again
	}
	if err != nil {
		return fmt.Errorf("consensus: leadership transfer: %w", n.raftError(err))
	}
	n.log.Info("consensus: leadership transferred", "to", req.ID, "by", caller)
	return nil
}

// Join adds this node to a cluster through its leader: first as a
// nonvoter, then, once it has applied everything up to its addition, as a
// voter. The node must have been opened with Config.Join (so it did not
// bootstrap a cluster of its own). caller is the identity the leader
// authorizes (typically this node's, from its mTLS certificate).
func (n *Node) Join(ctx context.Context, caller string, leader Admin) error {
	if err := n.usable(); err != nil {
		return err
	}
	req := AddServerRequest{ID: n.id, Address: n.addr, ClientAddress: n.clientAddress()}
	res, err := leader.AddServer(ctx, caller, req)
	if err != nil {
		return fmt.Errorf("consensus: join as nonvoter: %w", err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for n.fsm.applied.Load() < res.Index {
		select {
		case <-ctx.Done():
			return fmt.Errorf("consensus: join: catching up to index %d (at %d): %w", res.Index, n.fsm.applied.Load(), ctx.Err())
		case <-n.stop:
			return ErrClosed
		case <-tick.C:
		}
	}
	req.Voter = true
	if _, err := leader.AddServer(ctx, caller, req); err != nil {
		return fmt.Errorf("consensus: join: promotion to voter: %w", err)
	}
	return nil
}

// Leave removes this node from the cluster through its leader (which may
// be this node) and closes it.
func (n *Node) Leave(ctx context.Context, caller string, leader Admin) error {
	if err := n.usable(); err != nil {
		return err
	}
	if err := leader.RemoveServer(ctx, caller, RemoveServerRequest{ID: n.id}); err != nil {
		return fmt.Errorf("consensus: leave: %w", err)
	}
	return n.Close()
}
