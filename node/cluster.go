package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	consensusv1 "github.com/creto-systems/creto/api/creto/consensus/v1"
	"github.com/creto-systems/creto/internal/caller"
	"github.com/creto-systems/creto/services/consensus"
)

// cluster is the node's membership in its consensus cluster: the raft
// member, its gRPC services, their health and metrics, joining through a
// member, and reaching the leader for the Wasm host function.
type cluster struct {
	node   *consensus.Node
	id     string
	self   string   // the node as a caller: Node::"<id>"
	join   []string // gRPC addresses of members to join through
	peer   *peerTLS // nil when serving plaintext
	health *health.Server
	log    *slog.Logger

	clientAddr string // the gRPC address this node publishes; set by start

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn // to other nodes, by gRPC address

	ctx    context.Context // ends when the node closes
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Timing of the cluster loop.
const (
	// statusInterval is how often the node checks its membership and
	// leader, for health and joining.
	statusInterval = 100 * time.Millisecond
	// soloLeaderWait bounds how long Open waits for a one-node cluster to
	// elect itself (about one election timeout).
	soloLeaderWait = 10 * time.Second
	// joinTimeout bounds one attempt to join: adding, catching up,
	// promotion.
	joinTimeout = time.Minute
	// Between failed join attempts the node waits joinBackoff, doubling up
	// to maxJoinBackoff.
	joinBackoff    = 500 * time.Millisecond
	maxJoinBackoff = 15 * time.Second
	// forwardTimeout bounds a host function's call to the leader before it
	// falls back to a local timestamp (seed §8.4).
	forwardTimeout = 500 * time.Millisecond
	// maxRedirects bounds how many NOT_LEADER redirects one call follows
	// (leadership may move while it is under way).
	maxRedirects = 3
)

// openCluster starts the node's raft member over the node's store, its
// raft traffic over mutual TLS with the node certificates (plain TCP on
// loopback when the node serves plaintext), and registers its gRPC
// services. A one-node cluster is given the moment it needs to elect
// itself, so the node serves consensus from its first call.
func (n *Node) openCluster(ctx context.Context) error {
	cfg := n.cfg.Consensus
	setDefault(&cfg.NodeID, consensus.DefaultConfig().NodeID)
	setDefault(&cfg.BindAddress, consensus.DefaultConfig().BindAddress)
	cfg.Logger = n.log
	cfg.Authorizer = newMemberAuthorizer(cfg.Admins)
	cctx, cancel := context.WithCancel(context.Background())
	c := &cluster{id: cfg.NodeID, self: caller.Identity{Kind: caller.Node, ID: cfg.NodeID}.String(), join: cfg.Join,
		health: n.health, log: n.log, conns: map[string]*grpc.ClientConn{}, ctx: cctx, cancel: cancel}
	n.closers = append(n.closers, func() error { cancel(); return nil })
	if n.cfg.Server.Plaintext {
		if err := requireLoopback("consensus.bind_address", cfg.BindAddress); err != nil {
			return err
		}
	} else {
		var err error
		if c.peer, err = n.loadPeerTLS(cfg.NodeID); err != nil {
			return err
		}
		layer, err := listenRaftTLS(cfg.BindAddress, c.peer)
		if err != nil {
			return err
		}
		cfg.StreamLayer = layer
	}
	node, err := consensus.Open(ctx, n.cfg.Server.DataDir, n.store, cfg)
	if err != nil {
		if cfg.StreamLayer != nil {
			_ = cfg.StreamLayer.Close() // Open closes it too, unless the config was refused
		}
		return err
	}
	c.node = node
	n.cluster = c
	n.closers = append(n.closers, node.Close, c.close) // the loop stops, then raft
	consensus.NewServer(node, n.log).Register(n.grpc)
	consensus.NewAdminServer(node, n.log).Register(n.grpc)
	n.metrics.reg.MustRegister(clusterMetrics{c})
	c.setHealth(false)
	if st, err := node.GetClusterStatus(ctx, c.self); err == nil && soleVoter(st) {
		wctx, cancel := context.WithTimeout(ctx, soloLeaderWait)
		_, err := node.WaitForLeader(wctx)
		cancel()
		if err != nil {
			n.log.Warn("consensus: the one-node cluster has not elected itself yet", "error", err)
		}
	}
	return nil
}

// startCluster publishes the node's gRPC address to the cluster and starts
// the loop that keeps its health current and joins it to the cluster.
func (n *Node) startCluster() {
	c := n.cluster
	c.clientAddr = n.cfg.Server.GRPCAdvertiseAddr
	if c.clientAddr == "" {
		c.clientAddr = n.grpcLis.Addr().String()
	}
	if err := c.node.SetClientAddress(c.clientAddr); err != nil {
		n.log.Warn("consensus: followers cannot send clients to this node; set server.grpc_advertise_addr", "error", err)
		c.clientAddr = ""
	}
	c.wg.Add(1)
	go c.run()
}

// close stops the loop and the connections to other nodes.
func (c *cluster) close() error {
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, conn := range c.conns {
		errs = append(errs, conn.Close())
	}
	clear(c.conns)
	return errors.Join(errs...)
}

// run keeps the consensus services' health current — SERVING while the
// node is a member and knows a leader — and joins the cluster when the
// node has join addresses and is not a member yet (or its published
// address is stale).
func (c *cluster) run() {
	defer c.wg.Done()
	tick := time.NewTicker(statusInterval)
	defer tick.Stop()
	backoff, nextJoin := joinBackoff, time.Time{}
	lastLeader := "-"
	for {
		st, err := c.node.GetClusterStatus(c.ctx, c.self)
		me, member := c.member(st)
		c.setHealth(err == nil && member && st.LeaderID != "")
		if err == nil && st.LeaderID != lastLeader {
			lastLeader = st.LeaderID
			c.log.Info("consensus: leader changed", "leader", st.LeaderID, "leader_grpc", st.LeaderClientAddress, "role", st.Role, "term", st.Term)
		}
		if err == nil && c.mustJoin(me, member) && !time.Now().Before(nextJoin) {
			if err := c.joinCluster(); err != nil {
				c.log.Warn("consensus: joining the cluster failed; retrying", "through", c.join, "in", backoff, "error", err)
				nextJoin = time.Now().Add(backoff)
				backoff = min(2*backoff, maxJoinBackoff)
			} else {
				c.log.Info("consensus: joined the cluster", "through", c.join)
				// The status may show the join a moment later; do not
				// join again meanwhile.
				backoff, nextJoin = joinBackoff, time.Now().Add(joinBackoff)
			}
		}
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// member finds this node in the configuration.
func (c *cluster) member(st consensus.ClusterStatus) (consensus.Member, bool) {
	for _, m := range st.Members {
		if m.ID == c.id {
			return m, true
		}
	}
	return consensus.Member{}, false
}

// mustJoin reports whether a node with join addresses must (again) join:
// it is not a voter yet (a join that failed halfway left a nonvoter), or
// the cluster has a stale raft or gRPC address for it (it restarted on
// other ports).
func (c *cluster) mustJoin(me consensus.Member, member bool) bool {
	if len(c.join) == 0 {
		return false
	}
	return !member || me.Suffrage != consensus.Voter || me.Address != c.node.Address() ||
		c.clientAddr != "" && me.ClientAddress != c.clientAddr
}

func soleVoter(st consensus.ClusterStatus) bool {
	return len(st.Members) == 1 && st.Members[0].ID == st.NodeID && st.Members[0].Suffrage == consensus.Voter
}

// joinCluster joins through the join addresses: as a nonvoter, then,
// caught up, as a voter. The node authenticates with its node
// certificate; the member it calls redirects it to the leader.
func (c *cluster) joinCluster() error {
	ctx, cancel := context.WithTimeout(c.ctx, joinTimeout)
	defer cancel()
	return c.node.Join(ctx, c.self, c)
}

// AddServer implements consensus.Admin over the leader's gRPC
// ConsensusAdminService; the caller is the node's certificate.
func (c *cluster) AddServer(ctx context.Context, _ string, req consensus.AddServerRequest) (consensus.AddServerResponse, error) {
	var res *consensusv1.AddServerResponse
	err := c.atLeader(ctx, c.join, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		res, err = consensusv1.NewConsensusAdminServiceClient(conn).AddServer(ctx, &consensusv1.AddServerRequest{
			Id: req.ID, RaftAddress: req.Address, Voter: req.Voter, GrpcAddress: req.ClientAddress})
		return err
	})
	if err != nil {
		return consensus.AddServerResponse{}, err
	}
	return consensus.AddServerResponse{Index: res.GetIndex()}, nil
}

// RemoveServer implements consensus.Admin over the leader's gRPC
// ConsensusAdminService.
func (c *cluster) RemoveServer(ctx context.Context, _ string, req consensus.RemoveServerRequest) error {
	return c.atLeader(ctx, c.join, func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := consensusv1.NewConsensusAdminServiceClient(conn).RemoveServer(ctx, &consensusv1.RemoveServerRequest{Id: req.ID})
		return err
	})
}

// atLeader makes call at the leader: through the first of addrs that
// answers, following NOT_LEADER redirects to the leader's gRPC address. A
// node that is down or has no leader yet (UNAVAILABLE) passes the call to
// the next address; any other answer is final.
func (c *cluster) atLeader(ctx context.Context, addrs []string, call func(context.Context, *grpc.ClientConn) error) error {
	err := errors.New("no address to call")
	for _, addr := range addrs {
		for range maxRedirects + 1 {
			var conn *grpc.ClientConn
			if conn, err = c.conn(addr); err != nil {
				break
			}
			err = call(ctx, conn)
			nl, redirected := consensus.NotLeaderFromStatus(err)
			if !redirected {
				break
			}
			if nl.LeaderClientAddress == "" || nl.LeaderClientAddress == addr {
				err = fmt.Errorf("%s knows leader %q but not its gRPC address yet: %w", addr, nl.LeaderID, err)
				break
			}
			addr = nl.LeaderClientAddress
		}
		if err == nil || ctx.Err() != nil || status.Code(err) != codes.Unavailable {
			return err
		}
	}
	return err
}

// conn returns a connection to another node's gRPC port, made with the
// node's certificate.
func (c *cluster) conn(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if conn, ok := c.conns[addr]; ok {
		return conn, nil
	}
	creds := insecure.NewCredentials()
	if c.peer != nil {
		creds = c.peer.grpcCredentials()
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("node: dial %s: %w", addr, err)
	}
	c.conns[addr] = conn
	return conn, nil
}

// setHealth reports the consensus services' serving status.
func (c *cluster) setHealth(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	for _, d := range []grpc.ServiceDesc{consensusServiceDesc(), consensusAdminServiceDesc()} {
		c.health.SetServingStatus(d.ServiceName, st)
	}
}

// hostTimestamps is the source of creto:consensus/v1's timestamps: this
// node's oracle while it leads; the leader's, over gRPC with the node's
// certificate, while it follows; and the node's local clock, flagged, when
// neither answers in time (seed §8.4: "retry once, then local
// timestamp").
type hostTimestamps struct{ n *Node }

// GetTimestamp implements hosts.TimestampSource.
func (h hostTimestamps) GetTimestamp(ctx context.Context, who string, req consensus.GetTimestampRequest) (consensus.TimestampResult, error) {
	c := h.n.cluster
	if c == nil { // an extension's start-up, before consensus is open
		return consensus.TimestampResult{}, consensus.ErrUnavailable
	}
	req.AllowLocal = true
	r, err := c.node.GetTimestamp(ctx, who, req)
	var nl *consensus.NotLeaderError
	if !errors.As(err, &nl) {
		return r, err
	}
	if r, err = c.leaderTimestamp(ctx, nl, req.Count); err == nil {
		c.node.Observe(r.Timestamp)
		return r, nil
	}
	return c.node.LocalTimestamp(ctx, who, req, err)
}

// leaderTimestamp asks the leader for timestamps, as this node.
func (c *cluster) leaderTimestamp(ctx context.Context, nl *consensus.NotLeaderError, count uint32) (consensus.TimestampResult, error) {
	if nl.LeaderClientAddress == "" {
		return consensus.TimestampResult{}, fmt.Errorf("the gRPC address of leader %q is not known yet", nl.LeaderID)
	}
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	var res *consensusv1.GetTimestampResponse
	err := c.atLeader(ctx, []string{nl.LeaderClientAddress}, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		res, err = consensusv1.NewConsensusServiceClient(conn).GetTimestamp(ctx, &consensusv1.GetTimestampRequest{Count: count})
		return err
	})
	if err != nil {
		return consensus.TimestampResult{}, fmt.Errorf("the leader did not answer: %w", err)
	}
	ts := res.GetTimestamp()
	return consensus.TimestampResult{
		Timestamp: consensus.Timestamp{Logical: ts.GetLogical(), Physical: ts.GetPhysical(), NodeID: ts.GetNodeId()},
		Count:     res.GetCount(), Consensus: res.GetConsensus(), Warning: res.GetWarning(),
	}, nil
}

// memberAuthorizer is the node's consensus.Authorizer. The meta-policies
// have already decided who reaches which method; it decides membership
// changes by who the caller is. An operator — one of admins, when admins
// is set — changes any membership; a node only its own (it joins and
// leaves as itself, with its node certificate); an agent none. Every other
// operation is open to whoever the meta-policies let through.
type memberAuthorizer map[string]bool

func newMemberAuthorizer(admins []string) memberAuthorizer {
	m := memberAuthorizer{}
	for _, a := range admins {
		m[a] = true
	}
	return m
}

// Authorize implements consensus.Authorizer.
func (admins memberAuthorizer) Authorize(ctx context.Context, _ string, op consensus.Operation, subject string) error {
	if op != consensus.OpMembership {
		return nil
	}
	who, ok := caller.From(ctx)
	switch {
	case !ok:
		return errors.New("membership changes need an authenticated caller")
	case who.Kind == caller.Operator && (len(admins) == 0 || admins[who.ID]):
		return nil
	case who.Kind == caller.Operator:
		return errors.New("the operator is not among consensus.admins")
	case who.Kind == caller.Node && who.ID == subject:
		return nil
	case who.Kind == caller.Node:
		return errors.New("a node changes only its own membership")
	}
	return fmt.Errorf("%s callers never change membership", who.Kind)
}
