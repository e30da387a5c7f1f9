package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/creto-systems/creto/client"
)

// checker is a fixed health, for the aggregation rules alone.
type checker client.Health

func (c checker) Health(context.Context) client.Health { return client.Health(c) }

var (
	healthy   = checker{Status: client.Healthy}
	degraded  = checker{Status: client.Degraded, Reason: "slow"}
	unhealthy = checker{Status: client.Unhealthy, Reason: "down"}
)

// Seed §14.1: a critical service (authz, nhi, vault, crypto) unhealthy
// makes the platform unhealthy; any other trouble makes it degraded.
func TestCheckHealthAggregation(t *testing.T) {
	all := func(override map[string]client.HealthChecker) map[string]client.HealthChecker {
		m := map[string]client.HealthChecker{"authz": healthy, "nhi": healthy, "memory": healthy, "vault": healthy, "crypto": healthy}
		for k, v := range override {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name     string
		checkers map[string]client.HealthChecker
		want     client.Status
		reason   string
	}{
		{"all healthy", all(nil), client.Healthy, ""},
		{"memory down", all(map[string]client.HealthChecker{"memory": unhealthy}), client.Degraded, "degraded: memory"},
		{"memory slow", all(map[string]client.HealthChecker{"memory": degraded}), client.Degraded, "degraded: memory"},
		{"authz slow", all(map[string]client.HealthChecker{"authz": degraded}), client.Degraded, "degraded: authz"},
		{"vault down", all(map[string]client.HealthChecker{"vault": unhealthy, "memory": degraded}), client.Unhealthy, "critical service unavailable: vault"},
		{"nhi and crypto down", all(map[string]client.HealthChecker{"nhi": unhealthy, "crypto": unhealthy}), client.Unhealthy, "critical service unavailable: crypto, nhi"},
		{"a platform's own service", all(map[string]client.HealthChecker{"storage": unhealthy}), client.Degraded, "degraded: storage"},
		{"nothing checked", nil, client.Unhealthy, "no service was checked"},
	} {
		r := client.CheckHealth(bg, tc.checkers)
		if r.Status != tc.want || r.Reason != tc.reason || len(r.Services) != len(tc.checkers) || r.CheckedAt.IsZero() {
			t.Errorf("%s: %+v", tc.name, r)
		}
	}
}

func TestHealthHandler(t *testing.T) {
	for _, tc := range []struct {
		checkers map[string]client.HealthChecker
		code     int
	}{
		{map[string]client.HealthChecker{"authz": healthy}, http.StatusOK},
		{map[string]client.HealthChecker{"authz": healthy, "memory": unhealthy}, http.StatusOK},
		{map[string]client.HealthChecker{"authz": unhealthy}, http.StatusServiceUnavailable},
	} {
		rec := httptest.NewRecorder()
		client.HealthHandler(tc.checkers).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
		var r client.Report
		if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || rec.Code != tc.code || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("%d %s %v", rec.Code, rec.Body, err)
		}
		if want := client.CheckHealth(bg, tc.checkers); r.Status != want.Status || len(r.Services) != len(want.Services) {
			t.Fatalf("body %+v", r)
		}
	}
	rec := httptest.NewRecorder()
	client.HealthHandler(nil).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/health", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", rec.Code)
	}
}

func TestStatusText(t *testing.T) {
	for _, s := range []client.Status{client.Unhealthy, client.Degraded, client.Healthy} {
		b, _ := s.MarshalText()
		var back client.Status
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Fatalf("%v: %v %v", s, back, err)
		}
	}
	var s client.Status
	if err := s.UnmarshalText([]byte("fine")); err == nil {
		t.Fatal("unknown status accepted")
	}
	if s != client.Unhealthy || s.String() != "unhealthy" {
		t.Fatal("the zero status is unhealthy")
	}
}

// Every client's health against a real node, through its faults: a slow
// answer is degraded, an unreachable service unhealthy, an open circuit
// degraded; crypto's self-test passes.
func TestClientsHealth(t *testing.T) {
	tn := startNode(t, "")
	tn.seed()
	authzProxy, memoryProxy := newProxy(t, tn.GRPCAddr().String()), newProxy(t, tn.GRPCAddr().String())
	cfg := tn.config(tn.GRPCAddr().String())
	cfg.Authz.Endpoint, cfg.Memory.Endpoint = authzProxy.Listen, memoryProxy.Listen
	// Storage, audit and consensus behind one proxy: seed §14.1's other
	// non-critical services.
	cfg.Storage.Endpoint, cfg.Audit.Endpoint, cfg.Consensus.Endpoint = memoryProxy.Listen, memoryProxy.Listen, memoryProxy.Listen
	cfg.Authz.TimeoutMS, cfg.Authz.FailureThreshold = 300, 1
	cfg.Authz.MaxRetries = new(int)
	c := tn.clients(t, cfg)
	if err := c.Connect(bg); err != nil {
		t.Fatal(err)
	}
	r := c.Health(bg)
	if r.Status != client.Healthy || len(r.Services) != 8 {
		t.Fatalf("all up: %+v", r)
	}
	for name, h := range r.Services {
		if h.Status != client.Healthy || (name != "crypto" && h.Breaker != "closed") {
			t.Fatalf("%s: %+v", name, h)
		}
	}

	memoryProxy.Stop()
	r = c.Health(bg)
	if r.Status != client.Degraded || r.Reason != "degraded: audit, consensus, memory, storage" {
		t.Fatalf("non-critical services down: %+v", r)
	}
	for _, name := range []string{"audit", "consensus", "memory", "storage"} {
		if h := r.Services[name]; h.Status != client.Unhealthy || !strings.Contains(h.Reason, "service unavailable") {
			t.Fatalf("%s down: %+v", name, h)
		}
	}

	addToxic(t, authzProxy, "slow", "latency", "downstream", `{"latency": 400}`)
	h := c.Authz.Health(bg)
	if h.Status != client.Degraded || !strings.Contains(h.Reason, "over timeout_ms (300ms)") || h.Latency < 400*time.Millisecond {
		t.Fatalf("slow authz: %+v", h)
	}
	// One timed-out check opens the circuit (threshold one); health still
	// reaches the node, and says calls are refused.
	if _, err := c.Authz.Check(bg, agentCheck("reader", "q3")); !errors.Is(err, client.ErrTimeout) {
		t.Fatalf("slow check: %v", err)
	}
	removeToxic(t, authzProxy, "slow")
	h = c.Authz.Health(bg)
	if h.Status != client.Degraded || h.Breaker != "open" || !strings.Contains(h.Reason, "circuit breaker open") {
		t.Fatalf("open circuit: %+v", h)
	}
	if h := (client.CryptoHealth{}).Health(bg); h.Status != client.Healthy || h.Latency <= 0 {
		t.Fatalf("crypto: %+v", h)
	}
}
