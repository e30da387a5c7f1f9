package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creto-systems/creto/client"
	"github.com/creto-systems/creto/internal/pki"
)

// The seed's chaos tests (§11.4), with faults injected into real TCP
// between the clients and a real node by an in-process toxiproxy.

// A slow authz (500 ms on every answer, seed §11.4's first test) makes a
// check time out after timeout_ms and its retries: a request the node
// allowed before is answered with that cached Allow, any other is denied
// with ErrTimeout. The timeouts are failures, so they open the circuit,
// and then every check is denied, the cached ones too: unavailable means
// deny all (seed §2.5).
func TestChaosAuthzSlow(t *testing.T) {
	tn := startNode(t, "")
	tn.seed()
	proxy := newProxy(t, tn.GRPCAddr().String())
	cfg := tn.config(tn.GRPCAddr().String())
	cfg.Authz = client.AuthzConfig{ServiceConfig: client.ServiceConfig{Transport: client.Transport{Endpoint: proxy.Listen}}}
	cfg.Authz.ConnectTimeoutMS = 5000 // the seed's 10 ms timeout, 2 retries, 5 ms backoff, 5 failures
	warm, cold := tn.clients(t, cfg).Authz, tn.clients(t, cfg).Authz

	// The node answers within 10 ms on a quiet machine; on a busy one a
	// warm-up attempt may time out, so warm up until it does not.
	eventually(t, 10*time.Second, "an allow from the node", func() bool {
		d, err := warm.Check(bg, agentCheck("reader", "q3"))
		return err == nil && d.Allowed() && d.Source != client.SourceClientCache
	})
	eventually(t, 10*time.Second, "the cold client's connection", func() bool {
		d, err := cold.Check(bg, agentCheck("reader", "warm-up"))
		return err == nil && d.Allowed()
	})
	warmBase, coldBase := warm.Stats(), cold.Stats()

	addToxic(t, proxy, "slow", "latency", "downstream", `{"latency": 500}`)

	start := time.Now()
	d, err := warm.Check(bg, agentCheck("reader", "q3"))
	if err != nil || !d.Allowed() || d.Source != client.SourceClientCache {
		t.Fatalf("cached allow on timeout: %+v %v", d, err)
	}
	if elapsed := time.Since(start); elapsed >= 500*time.Millisecond {
		t.Fatalf("the cached answer waited for the slow node: %v", elapsed)
	}
	if s := warm.Stats(); s.Attempts-warmBase.Attempts != 3 || s.Fallbacks-warmBase.Fallbacks != 1 {
		t.Fatalf("one call, three timed-out attempts, one fallback: %+v", s)
	}

	d, err = cold.Check(bg, agentCheck("reader", "q4"))
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Kind != client.ErrTimeout || ce.Attempts != 3 || !client.IsRetryable(err) {
		t.Fatalf("uncached check on a slow node: %v", err)
	}
	if d.Allowed() || d.Kind != client.Deny || d.Source != client.SourceFailSecure {
		t.Fatalf("timeout without a cached decision must deny: %+v", d)
	}
	if s := cold.Stats(); s.Attempts-coldBase.Attempts != 3 || s.Breaker != "closed" {
		t.Fatalf("three failures of five leave the circuit closed: %+v", s)
	}

	// Two more timeouts reach the threshold of five: the circuit opens
	// mid-call, and the cached request is denied too.
	d, err = warm.Check(bg, agentCheck("reader", "q3"))
	if !errors.Is(err, client.ErrCircuitOpen) || !errors.Is(err, client.ErrUnavailable) || d.Allowed() {
		t.Fatalf("the fifth failure opens the circuit: %+v %v", d, err)
	}
	if s := warm.Stats(); s.Breaker != "open" || s.Attempts-warmBase.Attempts != 5 {
		t.Fatalf("after five failed attempts: %+v", s)
	}
	before := warm.Stats().Attempts
	for range 20 {
		if d, err := warm.Check(bg, agentCheck("reader", "q3")); !errors.Is(err, client.ErrCircuitOpen) || d.Allowed() {
			t.Fatalf("open circuit: %+v %v", d, err)
		}
	}
	if s := warm.Stats(); s.Attempts != before || s.Rejected < 20 {
		t.Fatalf("an open circuit sends nothing: %+v", s)
	}
}

// A batch that times out falls back request by request: the cached ones
// are answered from the cache, the others denied, and the error says so
// unless every one was cached.
func TestChaosAuthzBatchSlow(t *testing.T) {
	tn := startNode(t, "")
	tn.seed()
	proxy := newProxy(t, tn.GRPCAddr().String())
	cfg := breakerConfig(tn, proxy.Listen, 10, 30, 1)
	cfg.Authz.TimeoutMS = 100
	c := tn.clients(t, cfg).Authz
	if ds, err := c.CheckBatch(bg, []client.CheckRequest{agentCheck("reader", "q3"), agentCheck("reader", "q4")}); err != nil || !ds[0].Allowed() || !ds[1].Allowed() {
		t.Fatalf("warm-up: %+v %v", ds, err)
	}
	addToxic(t, proxy, "slow", "latency", "downstream", `{"latency": 400}`)

	ds, err := c.CheckBatch(bg, []client.CheckRequest{agentCheck("reader", "q3"), agentCheck("reader", "q9"), agentCheck("reader", "q4")})
	if !errors.Is(err, client.ErrTimeout) || len(ds) != 3 {
		t.Fatalf("partly cached batch: %+v %v", ds, err)
	}
	if !ds[0].Allowed() || ds[0].Source != client.SourceClientCache || ds[1].Allowed() || ds[1].Source != client.SourceFailSecure ||
		!ds[2].Allowed() || ds[2].Source != client.SourceClientCache {
		t.Fatalf("per request: %+v", ds)
	}
	ds, err = c.CheckBatch(bg, []client.CheckRequest{agentCheck("reader", "q4"), agentCheck("reader", "q3")})
	if err != nil || !ds[0].Allowed() || !ds[1].Allowed() {
		t.Fatalf("fully cached batch: %+v %v", ds, err)
	}
	// A check of a request a batch decided is answered from the same cache.
	if d, err := c.Check(bg, agentCheck("reader", "q4")); err != nil || d.Source != client.SourceClientCache {
		t.Fatalf("check after batch: %+v %v", d, err)
	}
}

// A memory that cannot be reached (seed §11.4's second test) or answers
// too slowly leaves an approver with an empty context — or the one fetched
// for the same action before — and never an error; a write reports it.
func TestChaosMemoryUnavailable(t *testing.T) {
	tn := startNode(t, "")
	proxy := newProxy(t, tn.GRPCAddr().String())
	cfg := tn.config(tn.GRPCAddr().String())
	cfg.Memory.Endpoint = proxy.Listen
	cfg.Memory.TimeoutMS, cfg.Memory.MaxRetries = 200, new(int)
	c := tn.clients(t, cfg).Memory

	for _, m := range []client.StoreRequest{
		{Agent: "payments", Type: client.Reasoning, Content: "Invoice 42 matches PO-991, so I will pay Acme by wire transfer",
			Metadata: map[string]string{"action_id": "pay-42", "confidence": "0.9"}},
		{Agent: "payments", Type: client.Context, Content: "Acme's bank details were verified by phone on Monday"},
	} {
		if _, err := c.Store(bg, m); err != nil {
			t.Fatal(err)
		}
	}
	asked := client.OversightRequest{Agent: "payments", Action: "wire transfer to Acme", ActionID: "pay-42"}
	full, err := c.OversightContext(bg, asked)
	if err != nil || full.Degraded != nil || len(full.Memories) == 0 || full.Reasoning == "" || full.Confidence == nil {
		t.Fatalf("the context while memory is up: %+v %v", full, err)
	}

	addToxic(t, proxy, "slow", "latency", "downstream", `{"latency": 1000}`)
	other := client.OversightRequest{Agent: "payments", Action: "rotate the database password"}
	oc, err := c.OversightContext(bg, other)
	if err != nil || !errors.Is(oc.Degraded, client.ErrTimeout) || len(oc.Memories) != 0 || oc.Reasoning != "" {
		t.Fatalf("slow memory: empty context, degraded by a timeout: %+v %v", oc, err)
	}
	removeToxic(t, proxy, "slow")

	proxy.Stop() // disconnected: every connection cut, nothing listening
	oc, err = c.OversightContext(bg, other)
	if err != nil || !errors.Is(oc.Degraded, client.ErrUnavailable) || len(oc.Memories) != 0 {
		t.Fatalf("memory unavailable: empty context: %+v %v", oc, err)
	}
	oc, err = c.OversightContext(bg, asked)
	if err != nil || oc.Degraded == nil || len(oc.Memories) != len(full.Memories) || oc.Reasoning != full.Reasoning {
		t.Fatalf("memory unavailable: the context fetched before: %+v %v", oc, err)
	}
	q, err := c.Query(bg, client.QueryRequest{Agent: "payments", Query: "bank details"})
	if err != nil || !errors.Is(q.Degraded, client.ErrUnavailable) || len(q.Memories) != 0 {
		t.Fatalf("query while unavailable: %+v %v", q, err)
	}
	if _, err := c.Store(bg, client.StoreRequest{Agent: "payments", Type: client.Observation, Content: "x"}); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("a write is not degraded: %v", err)
	}
	if s := c.Stats(); s.Fallbacks != 4 {
		t.Fatalf("four degraded answers: %+v", s)
	}
}

// A delegation past its TTL is refused with ErrDelegationExpired (seed
// §11.4's third test), as the node's reason says.
func TestChaosVaultDelegationExpired(t *testing.T) {
	tn := startNode(t, "")
	c := tn.clients(t, tn.config(tn.GRPCAddr().String())).Vault
	ref := client.SecretRef{Path: "agents/planner/api-keys", Name: "OPENAI_API_KEY"}
	if _, err := c.CreateSecret(bg, client.CreateSecretRequest{Requester: "planner", Ref: ref, Value: client.NewSecretValue([]byte("sk-live-123")),
		Metadata: client.SecretMetadata{Type: client.APIKey}}); err != nil {
		t.Fatal(err)
	}
	dl, err := c.CreateDelegation(bg, client.CreateDelegationRequest{Delegator: "planner", Delegatee: "runtime",
		Secrets: []client.SecretRef{ref}, TTL: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // the node's clock decides expiry
	_, err = c.GetDelegatedSecrets(bg, client.GetDelegatedSecretsRequest{Requester: "runtime", SandboxID: "sandbox-1",
		Refs: []client.SecretRef{ref}, DelegationID: dl.ID})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Kind != client.ErrDelegationExpired || ce.Reason != "DELEGATION_EXPIRED" || client.IsRetryable(err) {
		t.Fatalf("expired delegation: %v", err)
	}
	if s := c.Stats(); s.Breaker != "closed" {
		t.Fatalf("an expired delegation is the vault working: %+v", s)
	}
}

// A vault that cannot be reached answers reads with the secrets read
// before, until they expire, and never a delegated fetch (seed §13.3).
func TestChaosVaultUnavailable(t *testing.T) {
	tn := startNode(t, "")
	proxy := newProxy(t, tn.GRPCAddr().String())
	cfg := tn.config(tn.GRPCAddr().String())
	cfg.Vault.Endpoint = proxy.Listen
	c := tn.clients(t, cfg).Vault
	lasting := client.SecretRef{Path: "agents/planner/api-keys", Name: "OPENAI_API_KEY"}
	brief := client.SecretRef{Path: "agents/planner/api-keys", Name: "SESSION"}
	for ref, ttl := range map[client.SecretRef]time.Duration{lasting: 0, brief: 300 * time.Millisecond} {
		if _, err := c.CreateSecret(bg, client.CreateSecretRequest{Requester: "planner", Ref: ref, Value: client.NewSecretValue([]byte(ref.Name + "-value")),
			Metadata: client.SecretMetadata{Type: client.APIKey}, TTL: ttl}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ref := range []client.SecretRef{lasting, brief} {
		s, err := c.GetSecret(bg, "planner", ref, "")
		if err != nil || s.FromCache || string(s.Value.Expose()) != ref.Name+"-value" {
			t.Fatalf("read %v: %+v %v", ref, s, err)
		}
		s.Destroy() // the caller's copy: the cache keeps its own
	}

	proxy.Stop()
	s, err := c.GetSecret(bg, "planner", lasting, "")
	if err != nil || !s.FromCache || string(s.Value.Expose()) != "OPENAI_API_KEY-value" {
		t.Fatalf("cached secret while the vault is down: %+v %v", s, err)
	}
	if ss, err := c.GetSecrets(bg, "planner", []client.SecretRef{lasting}); err != nil || len(ss) != 1 || !ss[0].FromCache {
		t.Fatalf("GetSecrets from the cache: %+v %v", ss, err)
	}
	never := client.SecretRef{Path: "agents/planner/api-keys", Name: "NEVER_READ"}
	if _, err := c.GetSecrets(bg, "planner", []client.SecretRef{lasting, never}); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("GetSecrets is all or nothing, from the cache too: %v", err)
	}
	if _, err := c.GetSecret(bg, "someone-else", lasting, ""); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("another requester's read is not in the cache: %v", err)
	}
	eventually(t, 5*time.Second, "the short-lived secret expires", func() bool {
		_, err := c.GetSecret(bg, "planner", brief, "")
		return errors.Is(err, client.ErrUnavailable)
	})
	_, err = c.GetDelegatedSecrets(bg, client.GetDelegatedSecretsRequest{Requester: "planner", SandboxID: "s", Refs: []client.SecretRef{lasting}})
	if !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("a delegated fetch is never served from the cache: %v", err)
	}
}

// A node killed and restarted under load: the client's circuit opens and
// refuses calls locally, so the restarted node sees nothing while it is
// open, then only the half-open probes, and the load resumes once they
// succeed — no storm of retries. The same load through a client without a
// circuit, in the same run, shows the storm it spares.
func TestChaosRestartUnderLoad(t *testing.T) {
	dir := t.TempDir()
	a := startNode(t, dir)
	a.seed()
	proxy := newProxy(t, a.GRPCAddr().String())
	cfg := breakerConfig(a, proxy.Listen, 5, 1, 3)
	cfg.Authz.MaxRetries = ptr(2)
	c := a.clients(t, cfg).Authz
	// The anchor: the same load through a client without a circuit, by a
	// proxy of its own that stays down until the measure ends, so that
	// only the clients under test can reach the restarted node.
	anchorProxy := newProxy(t, a.GRPCAddr().String())
	cfg.Authz.Endpoint, cfg.Authz.CircuitBreakerEnabled = anchorProxy.Listen, new(bool)
	open := a.clients(t, cfg).Authz

	const workers = 4
	var allowed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	load := func(c *client.AuthzClient, allowed *atomic.Int64) {
		for w := range workers {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					d, err := c.Check(bg, agentCheck("reader", fmt.Sprint("doc-", w, "-", i%50)))
					if err == nil && d.Allowed() && allowed != nil {
						allowed.Add(1)
					}
					time.Sleep(time.Millisecond)
				}
			})
		}
	}
	load(c, &allowed)
	load(open, nil)
	defer func() { close(stop); wg.Wait() }()
	eventually(t, 10*time.Second, "load flowing", func() bool { return allowed.Load() > 50 })

	// Kill: connections cut, nothing listening, the node gone.
	killed := time.Now()
	atKill, anchorAtKill := c.Stats(), open.Stats()
	proxy.Stop()
	anchorProxy.Stop()
	a.stop()
	eventually(t, 5*time.Second, "the circuit opens", func() bool { return c.Stats().Breaker == "open" })

	// Restart on the same data directory, reachable at the same address,
	// while the circuit is still open.
	b := startNode(t, dir)
	proxy.Upstream = b.GRPCAddr().String()
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	sawWhileOpen := false
	for c.Stats().Breaker == "open" {
		seen := b.requests("authz", "Check")
		if c.Stats().Breaker != "open" {
			break
		}
		if seen != 0 {
			t.Fatalf("the restarted node saw %v checks while every circuit was open", seen)
		}
		sawWhileOpen = true
		time.Sleep(20 * time.Millisecond)
	}
	eventually(t, 10*time.Second, "the circuit closes", func() bool { return c.Stats().Breaker == "closed" })
	outage, closed, anchorClosed := time.Since(killed), c.Stats(), open.Stats()
	anchorProxy.Upstream = b.GRPCAddr().String()
	if err := anchorProxy.Start(); err != nil {
		t.Fatal(err)
	}
	before := allowed.Load()
	eventually(t, 10*time.Second, "the load resumes", func() bool { return allowed.Load() > before+50 })
	if !sawWhileOpen {
		t.Log("the node restarted after the circuit had half-opened: the open-circuit count did not run")
	}

	// What left the client from the kill until the circuit closed: the
	// attempts in flight at the kill, the failures that opened the circuit
	// (and the attempts in flight then), at most half_open_requests per
	// reset_timeout window, and the calls made between the close and the
	// poll that saw it (5 ms at one per millisecond per worker).
	windows := int64(outage/time.Second) + 1
	bound := 5 + 2*workers + 3*windows + 5*workers
	sent := int64(closed.Attempts - atKill.Attempts)
	refused := closed.Rejected - atKill.Rejected
	anchor := int64(anchorClosed.Attempts - anchorAtKill.Attempts)
	t.Logf("outage %v: %d attempts sent, %d calls refused by the circuit, bound %d; without a circuit: %d attempts for %d calls",
		outage.Round(time.Millisecond), sent, refused, bound, anchor, anchorClosed.Calls-anchorAtKill.Calls)
	if sent > bound {
		t.Fatalf("%d attempts during the outage, bound %d", sent, bound)
	}
	if anchor <= bound {
		t.Fatalf("the same load without a circuit sent only %d attempts: the outage was too short to tell", anchor)
	}
	if refused < 100 {
		t.Fatalf("the open circuit refused only %d calls", refused)
	}
}

// Consensus answers late or not at all (seed §8.4): a timestamp is
// retried once, then answered from the client's own clock, flagged, above
// the consensus timestamps seen; an ordering whose answer was lost is
// retried with its idempotency key and ordered once.
func TestChaosConsensus(t *testing.T) {
	tn := startNode(t, "")
	proxy := newProxy(t, tn.GRPCAddr().String())
	cfg := tn.config(tn.GRPCAddr().String())
	cfg.Consensus = client.ConsensusConfig{ServiceConfig: client.ServiceConfig{Transport: client.Transport{Endpoint: proxy.Listen},
		TimeoutMS: 300, ConnectTimeoutMS: 5000, RetryBackoffMS: 10, FailureThreshold: 100}} // the seed's one retry
	c := tn.clients(t, cfg).Consensus
	retrying := cfg
	retrying.Consensus.MaxRetries = ptr(3)
	orderer := tn.clients(t, retrying).Consensus

	seen, err := c.GetTimestamp(bg, 1)
	if err != nil || !seen.Consensus {
		t.Fatalf("warm-up: %+v %v", seen, err)
	}
	if _, err := orderer.GetTimestamp(bg, 1); err != nil {
		t.Fatal(err)
	}

	// Answers 2 s late: the first attempt of an ordering times out after
	// the node ordered it, and a retry carries the same key.
	addToxic(t, proxy, "slow", "latency", "downstream", `{"latency": 2000}`)
	base := orderer.Stats().Attempts
	done := make(chan error, 1)
	var res client.OrderEventsResult
	go func() {
		var err error
		res, err = orderer.OrderEvents(bg, client.OrderEventsRequest{Events: []client.Event{{ID: "exactly-once"}}})
		done <- err
	}()
	eventually(t, 10*time.Second, "a retry of the ordering", func() bool { return orderer.Stats().Attempts >= base+2 })
	start := time.Now()
	r, err := c.GetTimestamp(bg, 2)
	elapsed := time.Since(start)
	if err != nil || r.Consensus || r.Warning == "" || !strings.Contains(r.Warning, "timeout") ||
		r.First.Logical <= seen.First.Logical || elapsed > 1500*time.Millisecond {
		t.Fatalf("slow consensus: %+v %v in %v", r, err, elapsed)
	}
	t.Logf("consensus 2 s late, timeout_ms 300: a local timestamp after %v (two attempts)", elapsed.Round(time.Millisecond))
	removeToxic(t, proxy, "slow")
	if err := <-done; err != nil || !res.Duplicate {
		t.Fatalf("the retried ordering: %+v %v", res, err)
	}
	page, err := orderer.ReadEvents(bg, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var copies int
	for _, e := range page.Events {
		if e.ID == "exactly-once" {
			copies++
			if e.Sequence != res.Events[0].Sequence {
				t.Fatalf("ordered at %d, answered %d", e.Sequence, res.Events[0].Sequence)
			}
		}
	}
	if copies != 1 {
		t.Fatalf("the event was ordered %d times", copies)
	}

	// Unreachable: one retry, then the local clock; ordering fails.
	proxy.Stop()
	before := c.Stats()
	start = time.Now()
	local, err := c.GetTimestamp(bg, 1)
	t.Logf("consensus unreachable: a local timestamp after %v", time.Since(start).Round(time.Microsecond))
	if err != nil || local.Consensus || !strings.Contains(local.Warning, "unavailable") || local.First.Logical <= r.At(1).Logical {
		t.Fatalf("consensus unreachable: %+v %v", local, err)
	}
	if s := c.Stats(); s.Attempts-before.Attempts != 2 || s.Fallbacks-before.Fallbacks != 1 {
		t.Fatalf("retry once, then fall back: %+v", s)
	}
	if _, err := c.OrderEvents(bg, client.OrderEventsRequest{Events: []client.Event{{ID: "lost"}}}); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("ordering while unreachable: %v", err)
	}
	// Without the fallback, the error itself.
	strict := cfg
	strict.Consensus.LocalFallback = new(bool)
	if _, err := tn.clients(t, strict).Consensus.GetTimestamp(bg, 1); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("local_fallback = false: %v", err)
	}

	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "consensus timestamps again", func() bool {
		r, err := c.GetTimestamp(bg, 1)
		return err == nil && r.Consensus
	})
}

// The audit log goes away — disconnected, then the node killed and
// restarted on its data directory — and comes back, and every event
// emitted meanwhile arrives once, in order (seed §11.4: "audit down,
// nothing lost once it returns"); Emit never waits for it. Then answers
// are lost after the node logged the batches: the logger finds them in
// the log rather than sending them twice.
func TestChaosAuditDown(t *testing.T) {
	dir := t.TempDir()
	a := startNode(t, dir)
	proxy := newProxy(t, a.GRPCAddr().String())
	cfg := a.config(a.GRPCAddr().String())
	cfg.Audit = client.AuditConfig{ServiceConfig: client.ServiceConfig{Transport: client.Transport{Endpoint: proxy.Listen},
		TimeoutMS: 300, ConnectTimeoutMS: 5000, ResetTimeoutSeconds: 1}, SpoolPath: filepath.Join(t.TempDir(), "audit.spool"), BatchSize: 50}
	c := a.clients(t, cfg).Audit

	var want []string
	var slowest time.Duration
	emit := func(n int) {
		for range n {
			what := fmt.Sprint("e", len(want))
			start := time.Now()
			if err := c.Emit(bg, event(what, len(want)%10 == 0)); err != nil {
				t.Fatal(err)
			}
			slowest = max(slowest, time.Since(start))
			want = append(want, what)
		}
	}
	emit(100)
	if err := c.Flush(bg); err != nil {
		t.Fatal(err)
	}

	proxy.Stop() // disconnected
	downAt := time.Now()
	emit(500)
	eventually(t, 10*time.Second, "the logger sees the log down", func() bool { return c.LoggerStats().Unavailable })
	a.stop() // and the node killed
	emit(200)
	if s := c.LoggerStats(); s.Waiting != 700 || s.SpoolWaiting != 70 || s.Delivered != 100 {
		t.Fatalf("while down: %+v", s)
	}

	b := startNode(t, dir)
	proxy.Upstream = b.GRPCAddr().String()
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	replay := time.Since(back)
	reader := b.clients(t, b.config(b.GRPCAddr().String())).Audit
	if got := platformEvents(t, reader); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after the outage the log holds %d events, want %d in order", len(got), len(want))
	}
	s := c.LoggerStats()
	t.Logf("outage %v: 700 events emitted (70 critical), slowest Emit %v; the log back, all delivered in %v; %+v",
		back.Sub(downAt).Round(time.Millisecond), slowest, replay.Round(time.Millisecond), s)
	if s.Dropped != 0 || s.Delivered != 800 || s.Waiting != 0 || slowest > 50*time.Millisecond {
		t.Fatalf("stats %+v, slowest Emit %v", s, slowest)
	}

	// Answers 700 ms late, over the 300 ms timeout: the node logs each
	// batch, the client cannot tell. Once answers flow again, it finds
	// them in the log.
	addToxic(t, proxy, "slow", "latency", "downstream", `{"latency": 700}`)
	emit(60)
	eventually(t, 10*time.Second, "a batch with a lost answer", func() bool { return c.LoggerStats().Unavailable })
	emit(40)
	time.Sleep(time.Second)
	removeToxic(t, proxy, "slow")
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := platformEvents(t, reader); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after lost answers the log holds %d events, want %d in order", len(got), len(want))
	}
	s = c.LoggerStats()
	t.Logf("lost answers: %+v", s)
	if s.Relogged == 0 || s.Delivered+s.Relogged != 900 {
		t.Fatalf("the batches whose answers were lost were not found in the log: %+v", s)
	}
}

// While the log is down and buffer_size ordinary events wait, the oldest
// ordinary one is dropped and counted for each new one (seed §13.1);
// critical events are never dropped.
func TestChaosAuditBufferFull(t *testing.T) {
	tn := startNode(t, "")
	proxy := newProxy(t, tn.GRPCAddr().String())
	cfg := tn.config(tn.GRPCAddr().String())
	cfg.Audit = client.AuditConfig{ServiceConfig: client.ServiceConfig{Transport: client.Transport{Endpoint: proxy.Listen},
		ConnectTimeoutMS: 5000, ResetTimeoutSeconds: 1}, SpoolPath: filepath.Join(t.TempDir(), "audit.spool"), BufferSize: 10}
	c := tn.clients(t, cfg).Audit
	proxy.Stop()
	var want []string
	for i := range 30 {
		critical := i%3 == 0
		what := fmt.Sprint("e", i)
		if err := c.Emit(bg, event(what, critical)); err != nil {
			t.Fatal(err)
		}
		// The 10 critical events and the 10 newest ordinary ones stay.
		if critical || i >= 15 {
			want = append(want, what)
		}
	}
	// (A batch the writer has taken is out of the buffer until its send
	// fails; then it is the oldest again.)
	eventually(t, 5*time.Second, "the 10 oldest ordinary events dropped", func() bool {
		s := c.LoggerStats()
		return s.Dropped == 10 && s.Waiting == 20 && s.SpoolWaiting == 10
	})
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := platformEvents(t, c); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("logged %v, want %v", got, want)
	}
}

// crashChildEnv carries a client configuration to the test binary run as
// a child process that emits audit events and is killed.
const crashChildEnv = "CRETO_TEST_AUDIT_CRASH_CHILD"

// crashChild is the child: it emits 20 critical and 5 ordinary events to
// a log it cannot reach, waits until its spool file stops growing, and
// kills itself — no Close, no flush.
func crashChild(config string) {
	cfg, err := client.ParseConfig([]byte(config))
	if err != nil {
		panic(err)
	}
	c, err := client.NewAuditClient(cfg.Audit, client.WithLogger(testLogger()))
	if err != nil {
		panic(err)
	}
	for i := range 25 {
		if err := c.Emit(bg, event(fmt.Sprint("e", i), i < 20)); err != nil {
			panic(err)
		}
	}
	var last int64 = -1
	for stable := 0; stable < 5; time.Sleep(10 * time.Millisecond) {
		fi, err := os.Stat(cfg.Audit.SpoolPath)
		if err != nil {
			panic(err)
		}
		if fi.Size() > 0 && fi.Size() == last {
			stable++
		} else {
			stable, last = 0, fi.Size()
		}
	}
	self, _ := os.FindProcess(os.Getpid())
	self.Kill()
	select {}
}

// A process killed while the log was down leaves its critical events in
// its spool, and the next process with the same spool delivers them, in
// order; its ordinary events, held in memory only, are gone.
func TestChaosAuditSpoolSurvivesCrash(t *testing.T) {
	tn := startNode(t, "")
	dead := newProxy(t, tn.GRPCAddr().String())
	dead.Stop() // nothing listens there
	spool := filepath.Join(t.TempDir(), "audit.spool")
	config := fmt.Sprintf("[audit]\nendpoint = %q\ntls_ca = %q\ntls_cert = %q\ntls_key = %q\ntls_server_name = \"localhost\"\nspool_path = %q\n",
		dead.Listen, tn.tlsFile(pki.CACert), tn.tlsFile(pki.DefaultOperator+".crt"), tn.tlsFile(pki.DefaultOperator+".key"), spool)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+config)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Success() {
		t.Fatalf("the child was not killed: %v\n%s", err, out)
	}

	cfg := tn.config(tn.GRPCAddr().String())
	cfg.Audit.SpoolPath = spool
	c := tn.clients(t, cfg).Audit
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 20 {
		want = append(want, fmt.Sprint("e", i))
	}
	if got := platformEvents(t, c); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after the crash the log holds %v", got)
	}
	if s := c.LoggerStats(); s.Delivered != 20 || s.Relogged != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// Storage degrades partially (seed §13.3): when it is slow or gone the
// client returns errors and serves nothing from a cache; reads are
// retried, stores are not; a stream that stalls fails at its next message
// with ErrTimeout, never io.EOF; a delete whose answer was lost is
// retried, and the retry that finds nothing reports success.
func TestChaosStorage(t *testing.T) {
	tn := startNode(t, "")
	tn.seed("bot")
	proxy := newProxy(t, tn.GRPCAddr().String())
	cfg := tn.config(tn.GRPCAddr().String())
	cfg.Storage = client.StorageConfig{ServiceConfig: client.ServiceConfig{Transport: client.Transport{Endpoint: proxy.Listen},
		TimeoutMS: 300, ConnectTimeoutMS: 5000, MaxRetries: ptr(2), RetryBackoffMS: 10, FailureThreshold: 100}}
	c := tn.clients(t, cfg).Storage
	obj := func(key string) client.StoreObjectRequest {
		return client.StoreObjectRequest{Requester: "bot", Ref: client.StorageRef{Bucket: "b", Key: key}, Classification: client.Artifact}
	}
	small, err := c.Store(bg, obj("small"), []byte("build log"))
	if err != nil {
		t.Fatal(err)
	}
	big, err := c.StoreStream(bg, obj("big"), chacha(3, 8<<20))
	if err != nil {
		t.Fatal(err)
	}
	read := client.ObjectRequest{Requester: "bot", Ref: small.Ref}
	if o, err := c.Retrieve(bg, read); err != nil || string(o.Data) != "build log" {
		t.Fatalf("warm-up: %v", err)
	}

	// Answers a second late.
	addToxic(t, proxy, "slow", "latency", "downstream", `{"latency": 1000}`)
	retrieves, stores := tn.requests("storage", "Retrieve"), tn.requests("storage", "Store")
	var ce *client.Error
	o, err := c.Retrieve(bg, read)
	if !errors.As(err, &ce) || ce.Kind != client.ErrTimeout || ce.Attempts != 3 || o.Data != nil {
		t.Fatalf("slow retrieve: %v %+v", err, o)
	}
	if _, err := c.Store(bg, obj("during"), []byte("x")); !errors.As(err, &ce) || ce.Kind != client.ErrTimeout || ce.Attempts != 1 {
		t.Fatalf("slow store: %v", err)
	}
	eventually(t, 5*time.Second, "the node answering the calls", func() bool {
		return tn.requests("storage", "Retrieve") == retrieves+3 && tn.requests("storage", "Store") == stores+1
	})
	removeToxic(t, proxy, "slow")

	// A stream that stalls mid-way.
	r, err := c.RetrieveStream(bg, client.ObjectRequest{Requester: "bot", Ref: big.Ref})
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 1<<20)
	if _, err := io.ReadFull(r, first); err != nil {
		t.Fatal(err)
	}
	addToxic(t, proxy, "stall", "timeout", "downstream", `{"timeout": 0}`)
	start := time.Now()
	n, err := io.Copy(io.Discard, r)
	if !errors.Is(err, client.ErrTimeout) || n+1<<20 >= 8<<20 || time.Since(start) > 5*time.Second {
		t.Fatalf("a stalled stream: %d more bytes, then %v after %v", n, err, time.Since(start))
	}
	r.Close()
	removeToxic(t, proxy, "stall")

	// A delete whose answer is lost: retried, and the retry finds nothing.
	addToxic(t, proxy, "slow", "latency", "downstream", `{"latency": 1000}`)
	base := c.Stats().Attempts
	done := make(chan error, 1)
	go func() {
		done <- c.Delete(bg, client.ObjectRequest{Requester: "bot", Ref: client.StorageRef{Bucket: "b", Key: "small"}})
	}()
	eventually(t, 10*time.Second, "the delete retried", func() bool { return c.Stats().Attempts >= base+2 })
	removeToxic(t, proxy, "slow")
	if err := <-done; err != nil {
		t.Fatalf("a retried delete: %v", err)
	}

	// Gone: errors at once, nothing cached.
	proxy.Stop()
	if o, err := c.Retrieve(bg, client.ObjectRequest{Requester: "bot", Ref: big.Ref}); !errors.Is(err, client.ErrUnavailable) || o.Data != nil {
		t.Fatalf("retrieve while storage is gone: %v", err)
	}
	if _, err := c.Store(bg, obj("gone"), []byte("x")); !errors.As(err, &ce) || !errors.Is(err, client.ErrUnavailable) || ce.Attempts != 1 {
		t.Fatalf("store while storage is gone: %v", err)
	}
	if s := c.Stats(); s.Fallbacks != 0 {
		t.Fatalf("storage never falls back: %+v", s)
	}
}
