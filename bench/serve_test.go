package bench_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	authzv1 "github.com/creto-systems/creto/api/creto/authz/v1"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/node"
)

// servedWorkload starts a node serving w over loopback gRPC with mTLS and
// returns connections for conns clients, plus the workload's requests in
// wire form. NHI's agents get a type of their own so the workload's
// Agent entities come from its entity file.
func servedWorkload(b *testing.B, w workload, cache bool, conns int) ([]authzv1.AuthorizationServiceClient, []*authzv1.CheckRequest) {
	b.Helper()
	dir := b.TempDir()
	policies := filepath.Join(dir, "policies")
	must(b, os.MkdirAll(policies, 0o700))
	must(b, os.WriteFile(filepath.Join(policies, "bench.cedar"), []byte(w.policies), 0o600))
	must(b, os.WriteFile(filepath.Join(dir, "entities.json"), w.entities, 0o600))
	cfg := node.Config{
		Server: node.ServerConfig{DataDir: filepath.Join(dir, "data"), GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"},
		Authz:  node.AuthzConfig{ImportPolicies: policies, Entities: filepath.Join(dir, "entities.json"), CacheEnabled: &cache},
	}
	cfg.NHI.EntityType = "RegisteredAgent"
	cfg.Consensus.BindAddress = "127.0.0.1:0" // benchmarks run nodes side by side
	n, err := node.Open(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	must(b, err)
	must(b, n.Start())
	b.Cleanup(func() { n.Shutdown(context.Background()) })

	tlsDir := filepath.Join(cfg.Server.DataDir, "tls")
	ca, err := os.ReadFile(filepath.Join(tlsDir, "ca.crt"))
	must(b, err)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(filepath.Join(tlsDir, "admin.crt"), filepath.Join(tlsDir, "admin.key"))
	must(b, err)
	creds := credentials.NewTLS(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "localhost"})
	clients := make([]authzv1.AuthorizationServiceClient, conns)
	for i := range clients {
		cc, err := grpc.NewClient(n.GRPCAddr().String(), grpc.WithTransportCredentials(creds))
		must(b, err)
		b.Cleanup(func() { cc.Close() })
		clients[i] = authzv1.NewAuthorizationServiceClient(cc)
		_, err = clients[i].ListExtensions(context.Background(), &authzv1.ListExtensionsRequest{})
		must(b, err)
	}
	reqs := make([]*authzv1.CheckRequest, len(w.requests))
	for i, r := range w.requests {
		reqs[i] = &authzv1.CheckRequest{
			Principal:   &authzv1.Principal{Type: r.Principal.Type, Id: r.Principal.ID},
			Action:      r.Action.ID,
			Resource:    fmt.Sprintf("%s::%q", r.Resource.Type, r.Resource.ID),
			ContextJson: r.Context,
		}
	}
	return clients, reqs
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

// concurrentClients is the load of the figure: 64 callers at once.
const concurrentClients = 64

// BenchmarkServeCheck measures unary Check over loopback gRPC with mTLS,
// 64 concurrent callers on 8 connections, at 1,000 policies, uncached
// and with the decision cache; beside it, in the same run, the engine
// called in-process with the same concurrency (what the network adds).
func BenchmarkServeCheck(b *testing.B) {
	w := newWorkload(1000)
	for _, cache := range []bool{false, true} {
		b.Run(fmt.Sprintf("cache=%v/grpc", cache), func(b *testing.B) {
			clients, reqs := servedWorkload(b, w, cache, 8)
			runConcurrent(b, func(i int) error {
				_, err := clients[i%len(clients)].Check(context.Background(), reqs[i%len(reqs)])
				return err
			})
		})
		b.Run(fmt.Sprintf("cache=%v/in-process", cache), func(b *testing.B) {
			var opts []engine.Option
			if !cache {
				opts = append(opts, engine.WithCache(engine.CacheConfig{}))
			}
			e := w.engine(b, opts...)
			runConcurrent(b, func(i int) error {
				_, err := e.Check(context.Background(), w.requests[i%len(w.requests)])
				return err
			})
		})
	}
}

// runConcurrent spreads b.N calls over concurrentClients goroutines and
// reports throughput and the latency percentiles.
func runConcurrent(b *testing.B, call func(i int) error) {
	var next atomic.Int64
	lat := make([][]time.Duration, concurrentClients)
	var wg sync.WaitGroup
	b.ResetTimer()
	for g := range concurrentClients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				start := time.Now()
				if err := call(i); err != nil {
					b.Error(err)
					return
				}
				lat[g] = append(lat[g], time.Since(start))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkServeCheckBatch measures CheckBatch over gRPC: batches of 100
// and 1,000 uncached requests at 1,000 policies, from 8 concurrent
// callers.
func BenchmarkServeCheckBatch(b *testing.B) {
	w := newWorkload(1000)
	for _, size := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			clients, reqs := servedWorkload(b, w, false, 8)
			batch := &authzv1.CheckBatchRequest{Requests: reqs[:size]}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for g := range 8 {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if _, err := clients[g].CheckBatch(context.Background(), batch); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "decisions/s")
		})
	}
}
