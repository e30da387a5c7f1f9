package consensus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/crypto"
)

// Node is one member of the consensus cluster (seed §8): a raft group on
// hashicorp/raft with a raft-wal log, a file snapshot store and a state
// machine in the node's kv store. It serves timestamps, orders events and
// applies replicated commands. It is safe for concurrent use.
type Node struct {
	cfg   Config
	id    string
	addr  string
	log   *slog.Logger
	store kv.Store
	raft  *raft.Raft
	logs  *wal.WAL
	meta  *metadb.BoltMetaDB // the log's meta database
	fsm   *fsm
	tso   *tso
	hlc   *HLC
	now   func() time.Time // the wall clock
	hash  crypto.Provider  // request fingerprints

	orderMu sync.Mutex // OrderEvents: timestamp order = log order

	sessMu     sync.Mutex
	sessCancel context.CancelFunc
	sessDone   chan struct{}

	health   peerHealth
	observer *raft.Observer

	clientAddr atomic.Pointer[string] // SetClientAddress

	closed atomic.Bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

// nodeIDFile records which node a data directory belongs to.
const nodeIDFile = "node-id"

// Open starts a node: its raft log and snapshots in dir/cfg.DataDir (or
// cfg.DataDir if absolute), its replicated state in store, raft traffic on
// cfg.BindAddress (or cfg.StreamLayer). The store stays the caller's:
// Close does not close it.
//
// A fresh data directory with no cfg.Join bootstraps a one-node cluster; a
// fresh one with cfg.Join waits to be added (Join). A restart resumes from
// disk and never bootstraps again. If the log has lost entries the state
// machine had applied, Open fails with *CorruptLogError.
func Open(ctx context.Context, dir string, store kv.Store, cfg Config) (*Node, error) {
	return open(ctx, dir, store, cfg, time.Now)
}

// open is Open with a wall clock, which tests turn back.
func open(ctx context.Context, dir string, store kv.Store, cfg Config, now func() time.Time) (_ *Node, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg, err = cfg.resolve()
	if err != nil {
		return nil, err
	}
	if store == nil {
		return nil, invalid(nil, "nil store")
	}
	raftDir := cfg.DataDir
	if !filepath.IsAbs(raftDir) {
		raftDir = filepath.Join(dir, raftDir)
	}
	if err := os.MkdirAll(filepath.Join(raftDir, "wal"), 0o700); err != nil {
		return nil, fmt.Errorf("consensus: open: %w", err)
	}
	if err := claimNodeID(raftDir, cfg.NodeID); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:   cfg,
		id:    cfg.NodeID,
		log:   cfg.Logger.With("node", cfg.NodeID),
		store: store,
		now:   now,
		hash:  crypto.New(),
		tso:   newTSO(),
		hlc:   newHLC(cfg.NodeID, now),
		stop:  make(chan struct{}),
	}
	var closers []func() error
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				_ = closers[i]()
			}
		}
	}()

	layer := cfg.StreamLayer
	if layer == nil {
		tcp, err := listenTCP(cfg.BindAddress)
		if err != nil {
			return nil, fmt.Errorf("consensus: open: %w", err)
		}
		layer = tcp
	}
	closers = append(closers, layer.Close)
	if n.addr, err = advertiseAddress(cfg.AdvertiseAddress, layer.Addr()); err != nil {
		return nil, err
	}

	hl := newHCLog(n.log, "raft")
	// raft-wal's Close leaves its meta database open (and locked), so the
	// node owns it and closes it after the log.
	n.meta = &metadb.BoltMetaDB{}
	closers = append(closers, n.meta.Close)
	if n.logs, err = wal.Open(filepath.Join(raftDir, "wal"), wal.WithLogger(hl.Named("wal")),
		wal.WithSegmentSize(cfg.LogSegmentBytes), wal.WithMetaStore(n.meta)); err != nil {
		return nil, fmt.Errorf("consensus: open raft log: %w", err)
	}
	closers = append(closers, n.logs.Close)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, cfg.SnapshotsRetained, hl.Named("snapshot"))
	if err != nil {
		return nil, fmt.Errorf("consensus: open snapshots: %w", err)
	}

	handlers := maps.Clone(cfg.Handlers)
	if handlers == nil {
		handlers = map[string]Handler{}
	}
	handlers[tsoType] = tsoHandler{}
	handlers[eventsType] = eventsHandler{hlc: n.hlc}
	handlers[membersType] = membersHandler{}
	if n.fsm, err = newFSM(ctx, store, handlers, cfg.IdempotencyWindow, n.log); err != nil {
		return nil, err
	}
	halted := make(chan struct{}, 1)
	n.fsm.onHalt = func(error) { halted <- struct{}{} }
	restore, err := checkLog(n.logs, snaps, n.fsm.applied.Load())
	if err != nil {
		return nil, err
	}
	existing, err := raft.HasExistingState(n.logs, n.logs, snaps)
	if err != nil {
		return nil, fmt.Errorf("consensus: open: %w", err)
	}

	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  streamAdapter{StreamLayer: layer, advertise: advertisedAddr(n.addr)},
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  hl.Named("transport"),
	})
	closers = append(closers, trans.Close)
	notify := make(chan bool, 16)
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.id)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.BatchApplyCh = true
	rc.NoSnapshotRestoreOnStart = !restore
	rc.NotifyCh = notify
	rc.Logger = hl
	rc.NoLegacyTelemetry = true
	if n.raft, err = raft.NewRaft(rc, n.fsm, n.logs, n.logs, snaps, trans); err != nil {
		return nil, fmt.Errorf("consensus: start raft: %w", err)
	}
	closers = append(closers, func() error { return n.raft.Shutdown().Error() })
	if !existing && len(cfg.Join) == 0 {
		boot := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(n.id), Address: raft.ServerAddress(n.addr)}}}
		if err := n.raft.BootstrapCluster(boot).Error(); err != nil {
			return nil, fmt.Errorf("consensus: bootstrap: %w", err)
		}
		n.log.Info("consensus: bootstrapped a one-node cluster", "address", n.addr)
	}

	n.observer = n.health.observe(n.raft, n.stop, &n.wg)
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		n.watchLeadership(notify)
	}()
	go func() {
		defer n.wg.Done()
		select {
		case <-halted:
			// A halted state machine must not lead or vote on stale state.
			n.stopSession()
			_ = n.raft.Shutdown().Error()
		case <-n.stop:
		}
	}()
	return n, nil
}

// claimNodeID ties the data directory to one node id for life: raft's
// membership names the node by it, so starting the same log under another
// id would confuse the cluster.
func claimNodeID(dir, id string) error {
	path := filepath.Join(dir, nodeIDFile)
	got, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
			return fmt.Errorf("consensus: open: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("consensus: open: %w", err)
	}
	if was := strings.TrimSpace(string(got)); was != id {
		return invalid(nil, "the data directory belongs to node %s, not %s", quote(was), quote(id))
	}
	return nil
}

// advertiseAddress is the configured address, or the bound one if it can
// be dialled.
func advertiseAddress(configured string, bound net.Addr) (string, error) {
	if configured != "" {
		return configured, nil
	}
	host, _, err := net.SplitHostPort(bound.String())
	if err != nil {
		return "", invalid(nil, "bound address %s: %v", quote(bound.String()), err)
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		return "", invalid(nil, "bound to %s: set advertise_address to an address other nodes can dial", quote(bound.String()))
	}
	return bound.String(), nil
}

// checkLog compares the log with the state machine before raft starts. It
// returns whether raft must restore the newest snapshot (the store is
// behind it, for example because the store was rebuilt), and fails if the
// log ends before what the state machine applied.
func checkLog(logs raft.LogStore, snaps raft.SnapshotStore, applied uint64) (restore bool, err error) {
	last, err := logs.LastIndex()
	if err != nil {
		return false, fmt.Errorf("consensus: open raft log: %w", err)
	}
	list, err := snaps.List()
	if err != nil {
		return false, fmt.Errorf("consensus: open snapshots: %w", err)
	}
	var snapIndex, snapApplied uint64
	if len(list) > 0 {
		meta, rc, err := snaps.Open(list[0].ID)
		if err != nil {
			return false, fmt.Errorf("%w: snapshot %s: %w", ErrCorrupt, list[0].ID, err)
		}
		_, snapApplied, err = readSnapshot(rc, true)
		_ = rc.Close()
		if err != nil {
			return false, err
		}
		snapIndex = meta.Index
	}
	if applied > max(last, snapIndex, snapApplied) {
		return false, &CorruptLogError{LastLogIndex: last, SnapshotIndex: snapIndex, AppliedIndex: applied}
	}
	return applied < snapApplied, nil
}

// Close stops the node: it stops serving, leaves raft without handing
// over leadership (the others elect a new leader), and closes the log. It
// does not close the store. Later calls fail with ErrClosed.
func (n *Node) Close() error {
	if !n.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	close(n.stop)
	// Raft first: that unblocks an oracle waiting on it.
	err := n.raft.Shutdown().Error() // also closes the transport
	n.stopSession()
	n.raft.DeregisterObserver(n.observer)
	n.wg.Wait()
	return errors.Join(err, n.logs.Close(), n.meta.Close())
}

// ID returns the node's id.
func (n *Node) ID() string { return n.id }

// Address returns the address other nodes reach this one at.
func (n *Node) Address() string { return n.addr }

// watchLeadership runs the timestamp oracle while this node leads.
func (n *Node) watchLeadership(notify <-chan bool) {
	for {
		select {
		case leader := <-notify:
			if leader {
				n.startSession()
			} else {
				n.stopSession()
			}
		case <-n.stop:
			return
		}
	}
}

// startSession starts (or restarts) the leader's oracle.
func (n *Node) startSession() {
	n.sessMu.Lock()
	defer n.sessMu.Unlock()
	n.stopSessionLocked()
	if n.closed.Load() {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	n.sessCancel, n.sessDone = cancel, done
	go func() {
		defer close(done)
		n.lead(ctx)
	}()
}

// stopSession stops serving timestamps and waits until the oracle is
// down.
func (n *Node) stopSession() {
	n.sessMu.Lock()
	defer n.sessMu.Unlock()
	n.stopSessionLocked()
}

func (n *Node) stopSessionLocked() {
	n.tso.stop()
	if n.sessCancel != nil {
		n.sessCancel()
		<-n.sessDone
		n.sessCancel, n.sessDone = nil, nil
	}
}

// usable fails if the node can serve nothing at all.
func (n *Node) usable() error {
	switch {
	case n.closed.Load():
		return ErrClosed
	case n.fsm.haltErr() != nil:
		return fmt.Errorf("%w: %w", ErrUnavailable, n.fsm.haltErr())
	case n.raft.State() == raft.Shutdown:
		return fmt.Errorf("%w: raft stopped (the node was removed from the cluster)", ErrClosed)
	}
	return nil
}

// writable fails unless this node may propose now: it leads, and a quorum
// confirmed that recently (seed §13: without a quorum, writes pause —
// they fail at once rather than hang).
func (n *Node) writable() error {
	if err := n.usable(); err != nil {
		return err
	}
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	if !n.tso.leaseValid() {
		return noQuorum("leadership is not confirmed by a quorum")
	}
	return nil
}

// notLeader is the error for a call that needs the leader.
func (n *Node) notLeader() error {
	addr, id := n.raft.LeaderWithID()
	if addr == "" {
		return noQuorum("no leader is known (an election is under way or a quorum is unreachable)")
	}
	if string(id) == n.id {
		return unavailable("this node is stepping up or down as leader")
	}
	client, _ := n.memberClientAddress(context.Background(), string(id))
	return &NotLeaderError{LeaderID: string(id), LeaderAddress: string(addr), LeaderClientAddress: client}
}

// apply proposes an encoded envelope and waits for the state machine.
func (n *Node) apply(ctx context.Context, data []byte) (applyResult, error) {
	return n.await(ctx, n.raft.Apply(data, enqueueTimeout(ctx)))
}

// await waits for a proposal and returns the state machine's result; a
// handler's rejection is in the result's err.
func (n *Node) await(ctx context.Context, f raft.ApplyFuture) (applyResult, error) {
	if err := wait(ctx, f); err != nil {
		return applyResult{}, n.raftError(err)
	}
	res, ok := f.Response().(applyResult)
	if !ok {
		return applyResult{}, fmt.Errorf("%w: no result from the state machine", ErrIndeterminate)
	}
	return res, nil
}

// enqueueTimeout bounds how long raft may take to accept an entry.
func enqueueTimeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return 0
}

// wait waits for a raft future, or for ctx: a proposal the caller stopped
// waiting for may still commit, so that is ErrIndeterminate.
func wait(ctx context.Context, f raft.Future) error {
	if ctx.Done() == nil {
		return f.Error()
	}
	ch := make(chan error, 1)
	go func() { ch <- f.Error() }()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrIndeterminate, ctx.Err())
	}
}

// raftError maps raft's errors onto the package's.
func (n *Node) raftError(err error) error {
	switch {
	case errors.Is(err, ErrIndeterminate):
		return err
	case errors.Is(err, raft.ErrNotLeader):
		return n.notLeader()
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: leadership was lost before the entry committed", ErrIndeterminate)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w: raft stopped", ErrClosed, ErrIndeterminate)
	case errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return unavailable("a leadership transfer is in progress")
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return unavailable("raft did not accept the entry in time")
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// fingerprint identifies a request for idempotency: nil without a key.
func (n *Node) fingerprint(key string, request []byte) []byte {
	if key == "" {
		return nil
	}
	d, err := n.hash.Hash(crypto.SHA256, request)
	if err != nil {
		panic(err) // SHA-256 is always supported
	}
	return d
}
