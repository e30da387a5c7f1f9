package consensus

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"
)

// Config is the [consensus] section of the node's configuration (seed §8).
// A zero field takes its default, so Config{} is a working single-node
// laptop setup: a fresh data directory bootstraps a one-node cluster on
// 127.0.0.1:7400.
//
// The seed gives consensus no TOML section of its own; the fields follow
// hashicorp/raft's settings, TiDB PD's timestamp oracle and seed §8.4/§13's
// fallback rules. The client-side settings (endpoint, timeout, the "retry
// once, then local timestamp" rule) belong to the client package.
type Config struct {
	// NodeID names this node in the cluster, for life: it is written into
	// the data directory on first start, and a different id later is
	// refused. Default: the host name.
	NodeID string `toml:"node_id"`
	// DataDir holds the raft log and snapshots. A relative path is taken
	// inside the node's data directory (the dir argument of Open).
	DataDir string `toml:"data_dir"`
	// BindAddress is where the node listens for raft traffic (host:port;
	// port 0 picks a free port).
	BindAddress string `toml:"bind_address"`
	// AdvertiseAddress is the address other nodes dial; default: the bound
	// address. It must be reachable from every other node.
	AdvertiseAddress string `toml:"advertise_address"`
	// Join lists addresses of existing members. When it is empty, a fresh
	// data directory bootstraps a one-node cluster; when it is set, the
	// node waits to be added (Join) instead. Either way a restart reuses
	// the membership on disk and never bootstraps again.
	Join []string `toml:"join"`

	// HeartbeatTimeout is how long a follower goes without hearing from
	// the leader before it starts an election. It also bounds the leader's
	// timestamp lease (half of it).
	HeartbeatTimeout time.Duration `toml:"heartbeat_timeout"`
	// ElectionTimeout is how long a candidate waits for votes.
	ElectionTimeout time.Duration `toml:"election_timeout"`
	// LeaderLeaseTimeout is how long a leader keeps leading without
	// contact from a quorum before it steps down (at most
	// HeartbeatTimeout).
	LeaderLeaseTimeout time.Duration `toml:"leader_lease_timeout"`
	// CommitTimeout is how often an idle leader tells followers the commit
	// index, so they apply (and serve ReadEvents) without waiting for new
	// entries.
	CommitTimeout time.Duration `toml:"commit_timeout"`

	// SnapshotThreshold is how many new entries trigger a snapshot, checked
	// every SnapshotInterval.
	SnapshotThreshold uint64 `toml:"snapshot_threshold"`
	// SnapshotInterval is how often the node checks whether to snapshot.
	SnapshotInterval time.Duration `toml:"snapshot_interval"`
	// TrailingLogs is how many entries stay in the log behind a snapshot,
	// so a follower that is slightly behind catches up from the log rather
	// than a snapshot. It must cover the entries written while a follower
	// restores a snapshot, or a slow follower reinstalls snapshots forever
	// (docs/consensus.md, "Sizing snapshots").
	TrailingLogs uint64 `toml:"trailing_logs"`
	// SnapshotsRetained is how many snapshots are kept on disk.
	SnapshotsRetained int `toml:"snapshots_retained"`
	// LogSegmentBytes is the size of one raft-wal segment file
	// (preallocated).
	LogSegmentBytes int `toml:"log_segment_bytes"`

	// TSOWindow is how far ahead of the timestamps it serves the leader
	// persists its high-water mark through raft (TiDB PD's save interval).
	// A new leader starts above the mark, so a wider window costs nothing
	// but a jump in Physical at failover.
	TSOWindow time.Duration `toml:"tso_window"`
	// TSOUpdateInterval is how often the leader moves the physical part of
	// its timestamps to the wall clock and, when the window runs low,
	// persists a new high-water mark.
	TSOUpdateInterval time.Duration `toml:"tso_update_interval"`
	// MaxTimestampBatch caps the Count of one GetTimestamp.
	MaxTimestampBatch uint32 `toml:"max_timestamp_batch"`

	// MaxBatchEvents caps the events of one OrderEvents call.
	MaxBatchEvents int `toml:"max_batch_events"`
	// MaxEventBytes caps one event's payload.
	MaxEventBytes int `toml:"max_event_bytes"`
	// MaxCommandBytes caps one encoded raft entry (an event batch or a
	// command).
	MaxCommandBytes int `toml:"max_command_bytes"`
	// EventRetention is how many of the most recent ordered events every
	// node keeps for ReadEvents (whole batches: a batch straddling the
	// limit stays); older ones are deleted as new ones are ordered. The
	// leader's value travels with each batch, so all nodes keep the same
	// ones. Kept events are in every snapshot, so this bounds snapshot
	// size: 100,000 events of 100 bytes make about 15 MB.
	EventRetention uint64 `toml:"event_retention"`
	// IdempotencyWindow is how long (in the leader's log time) the result
	// of a command proposed with an idempotency key is remembered, so a
	// retry within it returns the first result instead of applying again.
	IdempotencyWindow time.Duration `toml:"idempotency_window"`

	// Admins are the callers allowed to change membership and transfer
	// leadership when Authorizer is nil.
	Admins []string `toml:"admins"`

	// Authorizer decides every call; nil means AdminList(Admins).
	Authorizer Authorizer `toml:"-"`
	// Handlers are the replicated command types, by type name (see
	// Handler). Every node of a cluster must register the same ones.
	Handlers map[string]Handler `toml:"-"`
	// StreamLayer carries raft traffic; nil means plain TCP on
	// BindAddress. Plug in mutual TLS here (docs/consensus.md).
	StreamLayer StreamLayer `toml:"-"`
	// Logger receives the node's and raft's log lines; nil means
	// slog.Default().
	Logger *slog.Logger `toml:"-"`
}

// DefaultConfig returns the defaults every zero field of a Config takes
// (NodeID is the host name).
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		NodeID:             host,
		DataDir:            "consensus",
		BindAddress:        "127.0.0.1:7400",
		HeartbeatTimeout:   time.Second,
		ElectionTimeout:    time.Second,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		SnapshotThreshold:  8192,
		SnapshotInterval:   2 * time.Minute,
		TrailingLogs:       10240,
		SnapshotsRetained:  2,
		LogSegmentBytes:    64 << 20,
		TSOWindow:          3 * time.Second,
		TSOUpdateInterval:  50 * time.Millisecond,
		MaxTimestampBatch:  10_000,
		MaxBatchEvents:     1000,
		MaxEventBytes:      64 << 10,
		MaxCommandBytes:    4 << 20,
		EventRetention:     100_000,
		IdempotencyWindow:  10 * time.Minute,
	}
}

// Limits of the formats, which a configuration cannot raise.
const (
	maxIDBytes        = 256     // node ids, callers, event ids
	maxTypeBytes      = 64      // command type names
	maxIdemKeyBytes   = 128     // idempotency keys
	maxCommandBytes   = 1 << 26 // raft-wal's largest entry (64 MiB)
	maxTimestampBatch = 1 << logicalBits
)

// resolve fills zero fields with defaults and rejects values that cannot
// work, so a typo in a config file fails at start rather than at first use.
func (c Config) resolve() (Config, error) {
	d := DefaultConfig()
	str := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	dur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	str(&c.NodeID, d.NodeID)
	str(&c.DataDir, d.DataDir)
	str(&c.BindAddress, d.BindAddress)
	dur(&c.HeartbeatTimeout, d.HeartbeatTimeout)
	dur(&c.ElectionTimeout, d.ElectionTimeout)
	dur(&c.CommitTimeout, d.CommitTimeout)
	dur(&c.SnapshotInterval, d.SnapshotInterval)
	dur(&c.TSOWindow, d.TSOWindow)
	dur(&c.TSOUpdateInterval, d.TSOUpdateInterval)
	dur(&c.IdempotencyWindow, d.IdempotencyWindow)
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = c.HeartbeatTimeout / 2
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = d.SnapshotThreshold
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = d.TrailingLogs
	}
	if c.EventRetention == 0 {
		c.EventRetention = d.EventRetention
	}
	if c.MaxTimestampBatch == 0 {
		c.MaxTimestampBatch = d.MaxTimestampBatch
	}
	for _, f := range []struct{ v, def *int }{
		{&c.SnapshotsRetained, &d.SnapshotsRetained},
		{&c.LogSegmentBytes, &d.LogSegmentBytes},
		{&c.MaxBatchEvents, &d.MaxBatchEvents},
		{&c.MaxEventBytes, &d.MaxEventBytes},
		{&c.MaxCommandBytes, &d.MaxCommandBytes},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	if c.Authorizer == nil {
		c.Authorizer = AdminList(c.Admins...)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if err := c.validate(); err != nil {
		return c, fmt.Errorf("consensus: config: %w", err)
	}
	return c, nil
}

func (c Config) validate() error {
	if err := checkID("node_id", c.NodeID); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.BindAddress); err != nil {
		return invalid(nil, "bind_address %s: %v", quote(c.BindAddress), err)
	}
	if c.AdvertiseAddress != "" {
		host, port, err := net.SplitHostPort(c.AdvertiseAddress)
		if err != nil || host == "" || port == "0" {
			return invalid(nil, "advertise_address %s must be a dialable host:port", quote(c.AdvertiseAddress))
		}
	}
	switch {
	case c.HeartbeatTimeout < 10*time.Millisecond:
		return invalid(nil, "heartbeat_timeout %v is under 10ms", c.HeartbeatTimeout)
	case c.ElectionTimeout < c.HeartbeatTimeout:
		return invalid(nil, "election_timeout %v is under heartbeat_timeout %v", c.ElectionTimeout, c.HeartbeatTimeout)
	case c.LeaderLeaseTimeout < 5*time.Millisecond || c.LeaderLeaseTimeout > c.HeartbeatTimeout:
		return invalid(nil, "leader_lease_timeout %v must be within 5ms..heartbeat_timeout", c.LeaderLeaseTimeout)
	case c.CommitTimeout < time.Millisecond:
		return invalid(nil, "commit_timeout %v is under 1ms", c.CommitTimeout)
	case c.SnapshotInterval < 5*time.Millisecond:
		return invalid(nil, "snapshot_interval %v is under 5ms", c.SnapshotInterval)
	case c.SnapshotsRetained < 1:
		return invalid(nil, "snapshots_retained %d is under 1", c.SnapshotsRetained)
	case c.LogSegmentBytes < 1<<20:
		return invalid(nil, "log_segment_bytes %d is under 1 MiB", c.LogSegmentBytes)
	case c.TSOUpdateInterval < time.Millisecond || c.TSOWindow < 2*c.TSOUpdateInterval:
		return invalid(nil, "tso_window %v must be at least twice tso_update_interval %v (at least 1ms)", c.TSOWindow, c.TSOUpdateInterval)
	case c.MaxTimestampBatch > maxTimestampBatch:
		return invalid(nil, "max_timestamp_batch %d is over %d", c.MaxTimestampBatch, maxTimestampBatch)
	case c.MaxCommandBytes < 1<<10 || c.MaxCommandBytes > maxCommandBytes:
		return invalid(nil, "max_command_bytes %d outside 1 KiB..64 MiB", c.MaxCommandBytes)
	case c.MaxBatchEvents < 1 || c.MaxEventBytes < 0 || c.MaxEventBytes > c.MaxCommandBytes:
		return invalid(nil, "max_batch_events must be positive and max_event_bytes within max_command_bytes")
	case c.IdempotencyWindow < time.Second:
		return invalid(nil, "idempotency_window %v is under a second", c.IdempotencyWindow)
	}
	for name, h := range c.Handlers {
		if err := checkTypeName(name); err != nil {
			return err
		}
		if isReserved(name) {
			return invalid(nil, "command type %s is reserved", quote(name))
		}
		if h == nil {
			return invalid(nil, "command type %s has a nil handler", quote(name))
		}
	}
	return nil
}
