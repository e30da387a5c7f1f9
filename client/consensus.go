package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	consensusv1 "github.com/creto-systems/creto/api/creto/consensus/v1"
)

// ConsensusClient takes timestamps and orders events with a Creto
// cluster's ConsensusService (seed §8). Timestamps and ordering need the
// leader: a follower names it (NOT_LEADER, with its gRPC address), and the
// client repeats the call there and keeps calling it until it fails, when
// it asks the configured node again. Consensus degrades partially (seed
// §8.4, §13.3): when it is unavailable or too slow after one retry,
// GetTimestamp answers with a timestamp of this process's own hybrid
// logical clock, flagged Consensus false with a Warning. OrderEvents never
// degrades — an order only the cluster can give is an error without it —
// but it is retried safely: every call carries an idempotency key, reused
// across its retries, so the cluster orders a batch once.
type ConsensusClient struct {
	svc    *service // the configured node
	dial   func(target string) (*conn, error)
	local  bool // local_fallback
	clock  *hlc
	nodeID string // of local timestamps
	ownedConn

	mu     sync.Mutex
	leader *service // where timestamps and ordering go: svc until a follower names the leader
}

// Timestamp is a point in the cluster's total order (seed Timestamp).
type Timestamp struct {
	// Logical orders timestamps: the physical milliseconds in the high 46
	// bits, a counter in the low 18.
	Logical uint64
	// Physical is the same millisecond in Unix nanoseconds; not unique.
	Physical int64
	// NodeID is the node that issued it; for a local timestamp, this
	// process ("local:<host>:<pid>").
	NodeID string
}

// Time returns Physical as a time.Time.
func (t Timestamp) Time() time.Time { return time.Unix(0, t.Physical) }

// TimestampRange is Count consecutive timestamps: First, then the same
// with Logical + 1 … Logical + Count - 1 (At).
type TimestampRange struct {
	First Timestamp
	Count uint32
	// Consensus is true for the cluster's timestamps, ordered with every
	// other caller's; false for local ones, ordered only with this
	// process's (seed §8.4's warning flag).
	Consensus bool
	// Warning says why local timestamps were returned.
	Warning string
}

// At returns the i-th timestamp of the range (i < Count).
func (r TimestampRange) At(i uint32) Timestamp {
	return timestampAt(r.First.Logical+uint64(i), r.First.NodeID)
}

// Event is one event to order (seed OrderEvents).
type Event struct {
	// ID is the caller's id for the event, 1 to 256 printable bytes.
	ID string
	// Payload is opaque to the cluster and readable by every caller that
	// may read events: never put secrets in it.
	Payload []byte
}

// OrderEventsRequest is a batch ordered as one raft entry.
type OrderEventsRequest struct {
	Events []Event
	// IdempotencyKey makes a repeat of the same batch return the first
	// ordering. Empty: the client makes one for the call and reuses it
	// across the call's retries; set it to survive a restart of the
	// caller.
	IdempotencyKey string
}

// EventOrder is an event's place in the total order.
type EventOrder struct {
	ID string
	// Sequence is the event's number in the cluster's history (1, 2, 3 …).
	Sequence  uint64
	Timestamp Timestamp
}

// OrderEventsResult orders each event of the request, in its order.
type OrderEventsResult struct {
	Events []EventOrder
	// Duplicate reports that the cluster had ordered this batch before,
	// under the same idempotency key (a retry of a call whose answer was
	// lost, for one).
	Duplicate bool
}

// Role is a node's raft state.
type Role string

// Roles.
const (
	RoleLeader    Role = "leader"
	RoleFollower  Role = "follower"
	RoleCandidate Role = "candidate"
	RoleShutdown  Role = "shutdown"
)

// Member is one server of the cluster's configuration.
type Member struct {
	ID string
	// RaftAddress is where the members reach it; GRPCAddress where clients
	// do (empty until it is known).
	RaftAddress, GRPCAddress string
	// Suffrage is "voter", "nonvoter" or "staging".
	Suffrage string
	// Health is "healthy", "unhealthy" or "unknown" (a follower knows
	// only itself and the leader).
	Health string
	Leader bool
}

// ClusterStatus is the cluster as the node called sees it (seed
// ClusterStatus).
type ClusterStatus struct {
	NodeID string
	Role   Role
	// LeaderID and LeaderAddress (gRPC) name the leader; empty without
	// one.
	LeaderID, LeaderAddress                       string
	Term, CommitIndex, AppliedIndex, LastLogIndex uint64
	Members                                       []Member
	// Writable: the node leads and a quorum confirmed it recently.
	Writable bool
	// ServingTimestamps: the node serves consensus timestamps now.
	ServingTimestamps bool
}

// OrderedEvent is an event as every node stores it.
type OrderedEvent struct {
	Sequence  uint64
	Timestamp Timestamp
	ID        string
	Payload   []byte
	// Caller is who ordered it: Agent::"<id>", Operator::"<name>" …
	Caller string
}

// EventPage is ordered events from a sequence number on.
type EventPage struct {
	Events []OrderedEvent
	// Next is the sequence number to read from next; Oldest the oldest the
	// node keeps; Last the newest it has applied.
	Next, Oldest, Last uint64
}

// maxRedirects bounds the NOT_LEADER redirects one call follows:
// leadership may move while it is under way.
const maxRedirects = 3

// maxLocalCount bounds a GetTimestamp's count: one millisecond of the
// clock's counter.
const maxLocalCount = 1 << logicalBits

// NewConsensusClient builds a client of the [consensus] section alone.
func NewConsensusClient(cfg ConsensusConfig, opts ...Option) (*ConsensusClient, error) {
	return standalone(cfg, opts, newConsensus)
}

func newConsensus(d *dialer, top Transport, cfg ConsensusConfig) (*ConsensusClient, error) {
	def := DefaultConfig().Consensus
	p, err := cfg.ServiceConfig.resolve("consensus", top, def.ServiceConfig)
	if err != nil {
		return nil, err
	}
	setDefault(&cfg.LocalFallback, def.LocalFallback)
	cn, err := d.dial("consensus", p)
	if err != nil {
		return nil, err
	}
	svc := newService("consensus", consensusv1.ConsensusService_ServiceDesc.ServiceName, cn, p, d.opts.log)
	host, _ := os.Hostname()
	c := &ConsensusClient{svc: svc, leader: svc, local: *cfg.LocalFallback, clock: processClock,
		nodeID: fmt.Sprintf("local:%s:%d", host, os.Getpid())}
	// A leader is reached with the configured node's TLS settings: its
	// certificate must pass the same checks.
	c.dial = func(target string) (*conn, error) {
		lp := p
		lp.target, lp.trans.Endpoint = target, target
		return d.dial("consensus", lp)
	}
	return c, nil
}

// GetTimestamp returns count consecutive timestamps (0 means 1) from the
// cluster's oracle, strictly increasing across every caller (seed
// get_timestamp). When consensus is unavailable or times out after its
// retry (max_retries, 1 by default), it returns local timestamps with
// Consensus false and a Warning, and a nil error (seed §8.4) — unless
// local_fallback is off. A refusal (denied, too many) is an error either
// way.
//
// Local timestamps are strictly increasing within this process, and above
// every consensus timestamp it has seen; a consensus timestamp after them
// may sort below them, which the flag lets a caller tell.
func (c *ConsensusClient) GetTimestamp(ctx context.Context, count uint32) (TimestampRange, error) {
	count = max(count, 1)
	if count > maxLocalCount {
		return TimestampRange{}, localError("consensus", "GetTimestamp", ErrInvalidRequest, "%d timestamps in one call: at most %d", count, maxLocalCount)
	}
	resp, err := leaderCall(ctx, c, "GetTimestamp", func(ctx context.Context, rpc consensusv1.ConsensusServiceClient) (*consensusv1.GetTimestampResponse, error) {
		return rpc.GetTimestamp(ctx, &consensusv1.GetTimestampRequest{Count: count})
	})
	if err == nil {
		r := TimestampRange{First: timestampFrom(resp.GetTimestamp()), Count: resp.GetCount(), Consensus: resp.GetConsensus(), Warning: resp.GetWarning()}
		if r.Consensus && r.Count > 0 {
			c.clock.observe(r.First.Logical + uint64(r.Count) - 1)
		}
		return r, nil
	}
	if !c.local || !failure(err) {
		return TimestampRange{}, err
	}
	c.svc.fallbacks.Add(1)
	c.svc.log.Debug("creto client: consensus failed; answering with local timestamps", "err", reason(err))
	return TimestampRange{First: timestampAt(c.clock.next(count), c.nodeID), Count: count,
		Warning: "consensus unavailable (" + reason(err) + "): local timestamps, ordered only with this process's"}, nil
}

// OrderEvents gives a batch of events consecutive sequence numbers and
// increasing timestamps, the same on every node (seed order_events). It
// is retried on unavailability, timeouts and indeterminate outcomes with
// the same idempotency key, so the batch is ordered once whatever
// happened to the answers; Duplicate tells a caller that it had been.
// There is no local fallback: an order only the cluster can give is an
// error when it cannot.
func (c *ConsensusClient) OrderEvents(ctx context.Context, req OrderEventsRequest) (OrderEventsResult, error) {
	in := &consensusv1.OrderEventsRequest{IdempotencyKey: req.IdempotencyKey}
	if in.IdempotencyKey == "" {
		in.IdempotencyKey = newID()
	}
	for _, e := range req.Events {
		in.Events = append(in.Events, &consensusv1.Event{Id: e.ID, Payload: e.Payload})
	}
	resp, err := leaderCall(ctx, c, "OrderEvents", func(ctx context.Context, rpc consensusv1.ConsensusServiceClient) (*consensusv1.OrderEventsResponse, error) {
		return rpc.OrderEvents(ctx, in)
	})
	if err != nil {
		return OrderEventsResult{}, err
	}
	out := OrderEventsResult{Events: make([]EventOrder, len(resp.GetEvents())), Duplicate: resp.GetDuplicate()}
	for i, e := range resp.GetEvents() {
		out.Events[i] = EventOrder{ID: e.GetId(), Sequence: e.GetSequence(), Timestamp: timestampFrom(e.GetTimestamp())}
		c.clock.observe(e.GetTimestamp().GetLogical())
	}
	return out, nil
}

// GetClusterStatus reports the cluster as the configured node sees it
// (seed get_cluster_status).
func (c *ConsensusClient) GetClusterStatus(ctx context.Context) (ClusterStatus, error) {
	resp, err := call(ctx, c.svc, "GetClusterStatus", true, func(ctx context.Context) (*consensusv1.GetClusterStatusResponse, error) {
		return consensusv1.NewConsensusServiceClient(c.svc.conn).GetClusterStatus(ctx, &consensusv1.GetClusterStatusRequest{})
	})
	if err != nil {
		return ClusterStatus{}, err
	}
	out := ClusterStatus{NodeID: resp.GetNodeId(), Role: roleFrom[resp.GetRole()], LeaderID: resp.GetLeaderId(), LeaderAddress: resp.GetLeaderGrpcAddress(),
		Term: resp.GetTerm(), CommitIndex: resp.GetCommitIndex(), AppliedIndex: resp.GetAppliedIndex(), LastLogIndex: resp.GetLastLogIndex(),
		Writable: resp.GetWritable(), ServingTimestamps: resp.GetServingTimestamps()}
	for _, m := range resp.GetMembers() {
		out.Members = append(out.Members, Member{ID: m.GetId(), RaftAddress: m.GetRaftAddress(), GRPCAddress: m.GetGrpcAddress(),
			Suffrage: suffrageFrom[m.GetSuffrage()], Health: memberHealthFrom[m.GetHealth()], Leader: m.GetLeader()})
	}
	return out, nil
}

// ReadEvents returns up to limit ordered events from sequence number from
// on (0: the oldest kept; limit 0 means 100, at most 1000), from the
// configured node's applied state: a follower may trail the leader by a
// commit.
func (c *ConsensusClient) ReadEvents(ctx context.Context, from uint64, limit int) (EventPage, error) {
	if limit < 0 || limit > 1000 {
		return EventPage{}, localError("consensus", "ReadEvents", ErrInvalidRequest, "limit %d: want 0 to 1000", limit)
	}
	resp, err := call(ctx, c.svc, "ReadEvents", true, func(ctx context.Context) (*consensusv1.ReadEventsResponse, error) {
		return consensusv1.NewConsensusServiceClient(c.svc.conn).ReadEvents(ctx, &consensusv1.ReadEventsRequest{From: from, Limit: uint32(limit)})
	})
	if err != nil {
		return EventPage{}, err
	}
	out := EventPage{Events: make([]OrderedEvent, len(resp.GetEvents())), Next: resp.GetNext(), Oldest: resp.GetOldest(), Last: resp.GetLast()}
	for i, e := range resp.GetEvents() {
		out.Events[i] = OrderedEvent{Sequence: e.GetSequence(), Timestamp: timestampFrom(e.GetTimestamp()), ID: e.GetId(),
			Payload: e.GetPayload(), Caller: e.GetCaller()}
	}
	return out, nil
}

// Health reports the consensus service's health on the configured node:
// unhealthy while it has no quorum (the node stops serving it).
func (c *ConsensusClient) Health(ctx context.Context) Health { return c.svc.health(ctx) }

// Stats returns the client's counters, redirected calls included.
func (c *ConsensusClient) Stats() Stats { return c.svc.Stats() }

// Close releases the client's connections.
func (c *ConsensusClient) Close() error { return c.closeConn() }

// leaderCall sends a call that needs the leader: to the leader last
// named, following a follower's NOT_LEADER redirect, and back to the
// configured node when the leader followed fails (it may have lost
// leadership, or died). Each hop is a call with its retries.
func leaderCall[T any](ctx context.Context, c *ConsensusClient, method string, rpc func(context.Context, consensusv1.ConsensusServiceClient) (T, error)) (T, error) {
	var zero T
	for hop := 0; ; hop++ {
		s := c.target()
		v, err := call(ctx, s, method, true, func(ctx context.Context) (T, error) {
			return rpc(ctx, consensusv1.NewConsensusServiceClient(s.conn))
		})
		if err == nil {
			return v, nil
		}
		var e *Error
		notLeader := errors.As(err, &e) && e.Kind == ErrNotLeader
		switch {
		case notLeader && hop == maxRedirects:
			return zero, localError("consensus", method, ErrUnavailable, "leadership moved %d times during the call", maxRedirects)
		case notLeader && e.Metadata["leader_address"] == "":
			// A leader elected a moment ago has not published its
			// address yet.
			return zero, localError("consensus", method, ErrUnavailable, "the node knows the leader %s but not its address yet", quote(e.Metadata["leader_id"]))
		case notLeader:
			if ferr := c.follow(method, e.Metadata["leader_address"]); ferr != nil {
				return zero, ferr
			}
		case failure(err) && s != c.svc && hop < maxRedirects:
			c.setTarget(c.svc)
		default:
			return zero, err
		}
	}
}

func (c *ConsensusClient) target() *service {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader
}

func (c *ConsensusClient) setTarget(s *service) {
	c.mu.Lock()
	c.leader = s
	c.mu.Unlock()
}

// follow makes the leader at addr the target of later calls.
func (c *ConsensusClient) follow(method, addr string) error {
	target, err := parseEndpoint(addr)
	if err != nil {
		return localError("consensus", method, ErrInternal, "the node named the leader at %s: %v", quote(addr), err)
	}
	if target == c.svc.pol.target {
		c.setTarget(c.svc)
		return nil
	}
	if cur := c.target(); cur.pol.target == target {
		return nil
	}
	cn, err := c.dial(target)
	if err != nil {
		return localError("consensus", method, ErrUnavailable, "dialling the leader at %s: %v", quote(addr), err)
	}
	c.svc.log.Debug("creto client: following the consensus leader", "address", target)
	c.setTarget(c.svc.at(cn, target))
	return nil
}

// newID is a fresh random id of 32 hex digits, for idempotency keys and
// audit events: unique, not secret, so math/rand/v2's generator (seeded
// from the system's entropy) is enough.
func newID() string { return fmt.Sprintf("%016x%016x", rand.Uint64(), rand.Uint64()) }

func timestampFrom(t *consensusv1.Timestamp) Timestamp {
	return Timestamp{Logical: t.GetLogical(), Physical: t.GetPhysical(), NodeID: t.GetNodeId()}
}

var (
	roleFrom = map[consensusv1.Role]Role{consensusv1.Role_ROLE_LEADER: RoleLeader, consensusv1.Role_ROLE_FOLLOWER: RoleFollower,
		consensusv1.Role_ROLE_CANDIDATE: RoleCandidate, consensusv1.Role_ROLE_SHUTDOWN: RoleShutdown}
	suffrageFrom = map[consensusv1.Suffrage]string{consensusv1.Suffrage_SUFFRAGE_VOTER: "voter",
		consensusv1.Suffrage_SUFFRAGE_NONVOTER: "nonvoter", consensusv1.Suffrage_SUFFRAGE_STAGING: "staging"}
	memberHealthFrom = map[consensusv1.Health]string{consensusv1.Health_HEALTH_HEALTHY: "healthy",
		consensusv1.Health_HEALTH_UNHEALTHY: "unhealthy", consensusv1.Health_HEALTH_UNKNOWN: "unknown"}
)
