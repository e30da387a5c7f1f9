// Package raftlog measures hashicorp/raft's two durable log stores side
// by side: raft-wal and raft-boltdb/v2. It is a module of its own because
// raft-boltdb/v2 v2.3.1 does not build with raft v1.8.0 (it imports
// go-metrics/compat, which the go-metrics that raft v1.8.0 needs removed):
// here both stores run under raft v1.7.3, the newest release both build
// with. See RATIONALE.md, "Consensus".
package raftlog

import (
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"
)

// store is a log store under test: it is both raft's LogStore and its
// StableStore, as in services/consensus.
type store interface {
	raft.LogStore
	raft.StableStore
	io.Closer
}

var stores = []struct {
	name string
	open func(dir string) (store, error)
}{
	{"raft-wal", func(dir string) (store, error) { return raftwal.Open(dir) }},
	{"raft-boltdb", func(dir string) (store, error) {
		return raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	}},
}

// BenchmarkApply: a one-node raft group on the in-memory transport with a
// state machine that does nothing, so the log store's appends (one fsync
// per batch) are what is measured: one client at a time, then 64.
func BenchmarkApply(b *testing.B) {
	for _, s := range stores {
		for _, clients := range []int{1, 64} {
			b.Run(fmt.Sprintf("store=%s/clients=%d", s.name, clients), func(b *testing.B) {
				r := singleNode(b, s.open)
				cmd := make([]byte, 128)
				if clients == 1 {
					for b.Loop() {
						if err := r.Apply(cmd, 0).Error(); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					b.SetParallelism(clients)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := r.Apply(cmd, 0).Error(); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "applies/s")
			})
		}
	}
}

func singleNode(b *testing.B, open func(string) (store, error)) *raft.Raft {
	dir := b.TempDir()
	logs, err := open(dir)
	if err != nil {
		b.Fatal(err)
	}
	snaps := raft.NewInmemSnapshotStore()
	addr, trans := raft.NewInmemTransport("")
	cfg := raft.DefaultConfig()
	cfg.LocalID = "bench"
	cfg.Logger = hclog.NewNullLogger()
	cfg.BatchApplyCh = true
	cfg.HeartbeatTimeout = 100 * time.Millisecond
	cfg.ElectionTimeout = 100 * time.Millisecond
	cfg.LeaderLeaseTimeout = 100 * time.Millisecond
	r, err := raft.NewRaft(cfg, nopFSM{}, logs, logs, snaps, trans)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		r.Shutdown().Error()
		logs.Close()
	})
	if err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: cfg.LocalID, Address: addr}}}).Error(); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); r.State() != raft.Leader; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("no leader")
		}
	}
	return r
}

type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) any                 { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnapshot{}, nil }
func (nopFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type nopSnapshot struct{}

func (nopSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (nopSnapshot) Release()                             {}
