package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/creto-systems/creto/client"
)

// breakerConfig is an authz section reaching addr with a low failure
// threshold, so that a test sees at once whether something counts.
func breakerConfig(tn *testNode, addr string, threshold, resetSeconds, halfOpen int) client.Config {
	cfg := tn.config(tn.GRPCAddr().String())
	cfg.Authz.Endpoint = addr
	cfg.Authz.MaxRetries = new(int)
	cfg.Authz.FailureThreshold, cfg.Authz.ResetTimeoutSeconds, cfg.Authz.HalfOpenRequests = threshold, resetSeconds, halfOpen
	return cfg
}

// A caller giving up — canceling, or its own deadline passing — says
// nothing about the service, and never opens the circuit; the client's own
// timeout does.
func TestBreakerIgnoresCancellations(t *testing.T) {
	tn := startNode(t, "")
	tn.seed()
	proxy := newProxy(t, tn.GRPCAddr().String())
	c := tn.clients(t, breakerConfig(tn, proxy.Listen, 2, 30, 1)).Authz
	if d, err := c.Check(bg, agentCheck("reader", "q3")); err != nil || !d.Allowed() {
		t.Fatalf("warm-up: %+v %v", d, err)
	}
	addToxic(t, proxy, "slow", "latency", "downstream", `{"latency": 300}`)

	for i := range 10 {
		ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
		want := client.ErrTimeout
		if i%2 == 1 {
			ctx, cancel = context.WithCancel(bg)
			time.AfterFunc(20*time.Millisecond, cancel)
			want = client.ErrCanceled
		}
		d, err := c.Check(ctx, agentCheck("reader", fmt.Sprint("uncached-", i)))
		cancel()
		if !errors.Is(err, want) || d.Allowed() || client.IsRetryable(err) {
			t.Fatalf("call %d: %+v %v", i, d, err)
		}
	}
	if s := c.Stats(); s.Breaker != "closed" || s.Attempts != 11 {
		t.Fatalf("ten abandoned calls, threshold two: %+v", s)
	}

	// The same slowness under the client's own timeout is a failure.
	own := breakerConfig(tn, proxy.Listen, 2, 30, 1)
	own.Authz.TimeoutMS = 20
	clients := tn.clients(t, own)
	if err := clients.Connect(bg); err != nil {
		t.Fatal(err)
	}
	timing := clients.Authz
	for range 2 {
		if _, err := timing.Check(bg, agentCheck("reader", "q3")); !errors.Is(err, client.ErrTimeout) {
			t.Fatalf("own timeout: %v", err)
		}
	}
	if s := timing.Stats(); s.Breaker != "open" {
		t.Fatalf("two timeouts of the client's own, threshold two: %+v", s)
	}

	removeToxic(t, proxy, "slow")
	if d, err := c.Check(bg, agentCheck("reader", "q3")); err != nil || !d.Allowed() || d.Source == client.SourceClientCache {
		t.Fatalf("after the slowness: %+v %v", d, err)
	}
}

// Denials, refusals and bad requests are the services working: none of
// them opens a circuit, whichever service gives them.
func TestBreakerIgnoresDenials(t *testing.T) {
	tn := startNode(t, "")
	tokens := tn.seed("reader")
	cfg := breakerConfig(tn, tn.GRPCAddr().String(), 2, 30, 1)
	for _, s := range []*client.ServiceConfig{&cfg.NHI.ServiceConfig, &cfg.Memory.ServiceConfig, &cfg.Vault.ServiceConfig} {
		s.FailureThreshold = 2
	}
	c := tn.clients(t, cfg)
	acfg := tn.agentConfig(tn.GRPCAddr().String())
	acfg.Authz = cfg.Authz
	agent := tn.clients(t, acfg, client.WithBearerToken(tokens["reader"])).Authz

	for range 5 {
		if d, err := c.Authz.Check(bg, client.CheckRequest{Principal: client.Principal{ID: "reader"}, Action: "write", Resource: "x"}); err != nil || d.Allowed() {
			t.Fatalf("policy deny: %+v %v", d, err)
		}
		if _, err := c.Authz.Check(bg, client.CheckRequest{Principal: client.Principal{ID: "reader"}, Action: "read", Resource: `Bad::"`}); !errors.Is(err, client.ErrInvalidRequest) {
			t.Fatalf("invalid: %v", err)
		}
		if _, err := agent.Check(bg, agentCheck("another-agent", "q3")); !errors.Is(err, client.ErrDenied) {
			t.Fatalf("permission denied: %v", err)
		}
		if _, err := c.Authz.RegisterExtension(bg, []byte("not wasm"), client.ExtensionOptions{}); !errors.Is(err, client.ErrExtension) {
			t.Fatalf("invalid extension: %v", err)
		}
		if _, err := c.NHI.ResolveToken(bg, tokens["reader"]+"x"); !errors.Is(err, client.ErrUnauthenticated) && !errors.Is(err, client.ErrInvalidRequest) {
			t.Fatalf("forged token: %v", err)
		}
		if _, err := c.NHI.GetAgent(bg, "nobody"); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("unknown agent: %v", err)
		}
		if _, found, err := c.Memory.Get(bg, "reader", "00000000000000000000000000000000"); err != nil || found {
			t.Fatalf("missing memory: %v %v", found, err)
		}
		if _, err := c.Vault.GetSecret(bg, "reader", client.SecretRef{Path: "agents/reader", Name: "NONE"}, ""); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("missing secret: %v", err)
		}
	}
	for name, s := range map[string]client.Stats{"authz": c.Authz.Stats(), "agent authz": agent.Stats(), "nhi": c.NHI.Stats(),
		"memory": c.Memory.Stats(), "vault": c.Vault.Stats()} {
		if s.Breaker != "closed" {
			t.Errorf("%s: %+v", name, s)
		}
	}
}

// A half-open circuit lets exactly half_open_requests probes through to
// the service — counted by the service itself — refuses the rest without
// sending them, and closes once the probes succeed.
func TestBreakerHalfOpenAdmitsConfigured(t *testing.T) {
	tn := startNode(t, "")
	tn.seed()
	proxy := newProxy(t, tn.GRPCAddr().String())
	c := tn.clients(t, breakerConfig(tn, proxy.Listen, 2, 1, 3)).Authz
	if d, err := c.Check(bg, agentCheck("reader", "q3")); err != nil || !d.Allowed() {
		t.Fatalf("warm-up: %+v %v", d, err)
	}

	proxy.Stop()
	for range 2 {
		if d, err := c.Check(bg, agentCheck("reader", "q3")); !errors.Is(err, client.ErrUnavailable) || d.Allowed() {
			t.Fatalf("unreachable: %+v %v", d, err)
		}
	}
	open := c.Stats()
	if d, err := c.Check(bg, agentCheck("reader", "q3")); !errors.Is(err, client.ErrCircuitOpen) || d.Allowed() || open.Breaker != "open" {
		t.Fatalf("open: %+v %v %+v", d, err, open)
	}
	if s := c.Stats(); s.Attempts != open.Attempts {
		t.Fatalf("an open circuit sent a call: %+v", s)
	}

	// The service comes back slow, so the probes are all in flight at once.
	addToxic(t, proxy, "slow", "latency", "downstream", `{"latency": 400}`)
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	served := tn.requests("authz", "Check")
	eventually(t, 5*time.Second, "half-open", func() bool { return c.Stats().Breaker == "half-open" })

	const callers = 10
	var wg sync.WaitGroup
	results := make([]error, callers)
	for i := range callers {
		wg.Go(func() {
			d, err := c.Check(bg, agentCheck("reader", "q3"))
			if err == nil && !d.Allowed() {
				err = errors.New("denied")
			}
			results[i] = err
		})
	}
	wg.Wait()
	admitted, refused := 0, 0
	for _, err := range results {
		switch {
		case err == nil:
			admitted++
		case errors.Is(err, client.ErrCircuitOpen):
			refused++
		default:
			t.Errorf("probe: %v", err)
		}
	}
	if admitted != 3 || refused != callers-3 {
		t.Fatalf("half-open admitted %d and refused %d, want 3 and %d", admitted, refused, callers-3)
	}
	if got := tn.requests("authz", "Check") - served; got != 3 {
		t.Fatalf("the service saw %v checks while half-open, want 3", got)
	}
	if s := c.Stats(); s.Breaker != "closed" || s.Attempts-open.Attempts != 3 {
		t.Fatalf("three successful probes close the circuit: %+v", s)
	}
}
