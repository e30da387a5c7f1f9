package pdp

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// callers is the load of the figure: 64 concurrent callers.
const callers = 64

// BenchmarkServedCheck measures one decision per call, from 64
// concurrent callers cycling the workload's mix, against every served
// PDP in the same run. Each call's decision is checked against the
// reference, so a PDP that answered wrongly fails instead of measuring.
func BenchmarkServedCheck(b *testing.B) {
	w, all := servers(b)
	for _, s := range all {
		b.Run(s.name, func(b *testing.B) {
			drive(b, s.proc.pid(), callers, len(w.mix), 1, func(c, i int) error {
				i %= len(w.mix)
				allow, err := s.d.check(context.Background(), c, i)
				if err != nil {
					return err
				}
				if want := w.decide(w.mix[i]) == allowed; allow != want {
					return fmt.Errorf("request %d: allowed %v, want %v", i, allow, want)
				}
				return nil
			})
		})
	}
}

// batchCallers is the concurrency of the batch figure: fewer callers, as
// each carries batchSize decisions.
const batchCallers = 8

// BenchmarkServedCheckBatch measures batches of 100 decisions per call
// from 8 concurrent callers: Creto's CheckBatch and Cerbos's
// CheckResources over 100 resources (one principal). OPA's server has no
// batch API.
func BenchmarkServedCheckBatch(b *testing.B) {
	w, all := servers(b)
	want := make([][]bool, len(w.batches))
	for j, qs := range w.batches {
		for _, q := range qs {
			want[j] = append(want[j], w.decide(q) == allowed)
		}
	}
	for _, s := range all {
		bd, ok := s.d.(batcher)
		if !ok {
			continue
		}
		b.Run(s.name, func(b *testing.B) {
			drive(b, s.proc.pid(), batchCallers, len(w.batches), batchSize, func(c, j int) error {
				j %= len(w.batches)
				got, err := bd.batch(context.Background(), c, j)
				if err != nil {
					return err
				}
				if !slices.Equal(got, want[j]) {
					return fmt.Errorf("batch %d: decisions differ from the reference", j)
				}
				return nil
			})
		})
	}
}

// drive makes b.N calls from n concurrent callers, after an untimed
// warm-up of warm calls (connections opened, handshakes done, caches
// filled as a running server's would be). It reports decisions per
// second (perCall decisions per call), the calls' p50 and p99 latency,
// the CPU time the server and this client spent per decision, and the
// one-minute load average at the end, since client and server share the
// machine's cores with whatever else runs.
func drive(b *testing.B, pid, n, warm, perCall int, call func(c, i int) error) {
	var next atomic.Int64
	lat := make([][]time.Duration, n)
	var failed atomic.Bool
	loop := func(limit int64, record bool) {
		var wg sync.WaitGroup
		for c := range n {
			wg.Go(func() {
				for !failed.Load() {
					i := next.Add(1) - 1
					if i >= limit {
						return
					}
					start := time.Now()
					if err := call(c, int(i)); err != nil {
						failed.Store(true)
						b.Error(err)
						return
					}
					if record {
						lat[c] = append(lat[c], time.Since(start))
					}
				}
			})
		}
		wg.Wait()
	}
	loop(int64(warm), false)
	if failed.Load() {
		return
	}
	next.Store(0)
	srv0, cli0 := cpuTime(pid), selfCPUTime()
	b.ResetTimer()
	loop(int64(b.N), true)
	b.StopTimer()
	srv1, cli := cpuTime(pid), selfCPUTime()-cli0
	all := slices.Concat(lat...)
	if failed.Load() || len(all) == 0 {
		return
	}
	slices.Sort(all)
	decisions := float64(b.N * perCall)
	b.ReportMetric(decisions/b.Elapsed().Seconds(), "decisions/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	if srv0 >= 0 && srv1 >= 0 {
		b.ReportMetric(float64((srv1-srv0).Nanoseconds())/1e3/decisions, "server-cpu-µs/decision")
	}
	b.ReportMetric(float64(cli.Nanoseconds())/1e3/decisions, "client-cpu-µs/decision")
	if l, err := loadAverage(); err == nil {
		b.ReportMetric(l, "load1")
	}
}

// cpuTime is the user and system CPU time process pid has used, from
// /proc (Linux; -1 elsewhere). The kernel counts it in USER_HZ ticks,
// 100 per second on every Linux architecture Go supports.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name, field 2, is in parentheses and may hold spaces;
	// utime and stime are fields 14 and 15, the 12th and 13th after it.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(utime+stime) * (time.Second / 100)
}

// selfCPUTime is the CPU time this process (the load generator) has used.
func selfCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loadAverage() (float64, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("empty /proc/loadavg")
	}
	return strconv.ParseFloat(f[0], 64)
}
