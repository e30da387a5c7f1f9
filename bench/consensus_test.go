package bench_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/consensus"
)

// BenchmarkTimestamp: GetTimestamp from a one-node cluster's leader,
// beside the raw cost of reading the clock and bumping an atomic counter
// (the floor for any in-memory oracle) and a raw raft.Apply round trip on
// the same log store (what a timestamp would cost if each went through
// raft).
func BenchmarkTimestamp(b *testing.B) {
	ctx := context.Background()
	b.Run("anchor=time.Now+atomic", func(b *testing.B) {
		var c atomic.Uint64
		var sink int64
		for b.Loop() {
			sink += time.Now().UnixMilli()
			c.Add(1)
		}
		_ = sink
		reportRate(b, 1, "ts/s")
	})
	node := openConsensusNode(b, "bench-1", "")
	b.Run("GetTimestamp", func(b *testing.B) {
		for b.Loop() {
			if _, err := node.GetTimestamp(ctx, "bench", consensus.GetTimestampRequest{}); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b, 1, "ts/s")
	})
	b.Run("GetTimestamp/parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := node.GetTimestamp(ctx, "bench", consensus.GetTimestampRequest{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRate(b, 1, "ts/s")
	})
	b.Run("GetTimestamp/count=100", func(b *testing.B) {
		for b.Loop() {
			if _, err := node.GetTimestamp(ctx, "bench", consensus.GetTimestampRequest{Count: 100}); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b, 100, "ts/s")
	})
	r := leaderOf(rawRaftCluster(b, 1, false))
	b.Run("anchor=raft.Apply", func(b *testing.B) {
		cmd := make([]byte, 8)
		for b.Loop() {
			if err := r.Apply(cmd, 0).Error(); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b, 1, "ts/s")
	})
}

// BenchmarkOrderEvents: batches of 1 and 100 events (100-byte payloads)
// ordered on a three-node loopback cluster, by 1 and by 32 concurrent
// clients, beside raw raft.Apply of an entry of the same size on raw
// three-node raft clusters with the same log store and transport: one
// whose state machine does nothing (raft alone), one whose state machine
// writes each batch of entries to a kv store in one commit, one key per
// entry (raft plus storing the bytes). Every run gets fresh clusters, so
// -count repeats do not measure a store grown by the runs before.
func BenchmarkOrderEvents(b *testing.B) {
	ctx := context.Background()
	payload := make([]byte, 100)
	for _, size := range []int{1, 100} {
		events := make([]consensus.Event, size)
		entry := 40 // the envelope and batch header
		for i := range events {
			events[i] = consensus.Event{ID: fmt.Sprintf("event-%04d", i), Payload: payload}
			entry += len(events[i].ID) + len(payload) + 2
		}
		cmd := make([]byte, entry)
		for _, clients := range []int{1, 32} {
			b.Run(fmt.Sprintf("batch=%d/clients=%d", size, clients), func(b *testing.B) {
				leader := openConsensusCluster(b, 3)
				concurrently(b, clients, size, func() error {
					_, err := leader.OrderEvents(ctx, "bench", consensus.OrderEventsRequest{Events: events})
					return err
				})
			})
			b.Run(fmt.Sprintf("anchor=raft.Apply/batch=%d/clients=%d", size, clients), func(b *testing.B) {
				r := leaderOf(rawRaftCluster(b, 3, false))
				concurrently(b, clients, size, func() error { return r.Apply(cmd, 0).Error() })
			})
			b.Run(fmt.Sprintf("anchor=raft.Apply+kv/batch=%d/clients=%d", size, clients), func(b *testing.B) {
				r := leaderOf(rawRaftCluster(b, 3, true))
				concurrently(b, clients, size, func() error { return r.Apply(cmd, 0).Error() })
			})
		}
	}
}

// concurrently runs op b.N times from clients goroutines and reports
// events/s and batches/s. A call refused with ErrUnavailable (the leader's
// lease lapsed on this overloaded machine) is retried, as a client would,
// and counted in refused/op.
func concurrently(b *testing.B, clients, size int, op func() error) {
	var refused atomic.Int64
	call := func() error {
		for {
			err := op()
			if !errors.Is(err, consensus.ErrUnavailable) {
				return err
			}
			refused.Add(1)
			time.Sleep(time.Millisecond)
		}
	}
	work := make(chan struct{}, clients)
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for range work {
				if err := call(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for b.Loop() {
		select {
		case work <- struct{}{}:
		case err := <-errs:
			b.Fatal(err)
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	reportRate(b, size, "events/s")
	reportRate(b, 1, "batches/s")
	b.ReportMetric(float64(refused.Load())/float64(b.N), "refused/op")
}

func reportRate(b *testing.B, per int, unit string) {
	b.ReportMetric(float64(b.N*per)/b.Elapsed().Seconds(), unit)
}

// openConsensusCluster starts size nodes that join the first, and returns
// the leader.
func openConsensusCluster(b *testing.B, size int) *consensus.Node {
	leader := openConsensusNode(b, "bench-1", "")
	for i := 2; i <= size; i++ {
		n := openConsensusNode(b, fmt.Sprintf("bench-%d", i), leader.Address())
		if err := n.Join(context.Background(), "admin", leader); err != nil {
			b.Fatal(err)
		}
	}
	return leader
}

// openConsensusNode starts a node on a scratch directory with the
// default configuration (join names a member to join through).
func openConsensusNode(b *testing.B, id, join string) *consensus.Node {
	dir := b.TempDir()
	store, err := kv.Open(filepath.Join(dir, "kv"))
	if err != nil {
		b.Fatal(err)
	}
	cfg := consensus.Config{
		NodeID:      id,
		BindAddress: "127.0.0.1:0",
		Admins:      []string{"admin"},
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if join != "" {
		cfg.Join = []string{join}
	}
	node, err := consensus.Open(context.Background(), dir, store, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		node.Close()
		store.Close()
	})
	if join == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := node.WaitForLeader(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return node
}

// rawRaftCluster starts n raft nodes with raft-wal logs and TCP
// transports on loopback, and waits for a leader. Their state machine does
// nothing, or with store writes each batch of entries to a kv store.
func rawRaftCluster(b *testing.B, n int, store bool) []*raft.Raft {
	type member struct {
		trans *raft.NetworkTransport
		dir   string
	}
	var members []member
	var servers []raft.Server
	for i := range n {
		trans, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, 10*time.Second, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		members = append(members, member{trans: trans, dir: b.TempDir()})
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(fmt.Sprint("raw-", i)), Address: trans.LocalAddr()})
	}
	var rafts []*raft.Raft
	for i, m := range members {
		meta := &metadb.BoltMetaDB{}
		logs, err := raftwal.Open(m.dir, raftwal.WithMetaStore(meta))
		if err != nil {
			b.Fatal(err)
		}
		snaps, err := raft.NewFileSnapshotStoreWithLogger(m.dir, 1, hclog.NewNullLogger())
		if err != nil {
			b.Fatal(err)
		}
		cfg := raft.DefaultConfig()
		cfg.LocalID = servers[i].ID
		cfg.Logger = hclog.NewNullLogger()
		cfg.BatchApplyCh = true
		cfg.NoLegacyTelemetry = true
		var fsm raft.FSM = nopFSM{}
		if store {
			s, err := kv.Open(filepath.Join(m.dir, "kv"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			fsm = kvFSM{s}
		}
		r, err := raft.NewRaft(cfg, fsm, logs, logs, snaps, m.trans)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			r.Shutdown().Error()
			logs.Close()
			meta.Close()
		})
		rafts = append(rafts, r)
	}
	return rafts
}

// leaderOf waits for one of the nodes to lead.
func leaderOf(rafts []*raft.Raft) *raft.Raft {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, r := range rafts {
			if r.State() == raft.Leader {
				return r
			}
		}
	}
	panic("no raw raft leader")
}

type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) any                 { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnapshot{}, nil }
func (nopFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type nopSnapshot struct{}

func (nopSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (nopSnapshot) Release()                             {}

// kvFSM stores each batch of entries in one kv commit, one key per entry.
type kvFSM struct{ store kv.Store }

func (f kvFSM) ApplyBatch(logs []*raft.Log) []any {
	var batch kv.Batch
	for _, l := range logs {
		batch.Set(binary.BigEndian.AppendUint64([]byte("raw/"), l.Index), l.Data)
	}
	if err := f.store.Apply(context.Background(), &batch); err != nil {
		panic(err)
	}
	return make([]any, len(logs))
}

func (f kvFSM) Apply(l *raft.Log) any             { return f.ApplyBatch([]*raft.Log{l})[0] }
func (kvFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnapshot{}, nil }
func (kvFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }
