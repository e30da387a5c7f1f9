package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/creto-systems/creto/services/crypto"
)

// Status is a service's health, or the platform's. The zero value is
// Unhealthy: a status nobody established is not healthy.
type Status uint8

// Health statuses, worst first.
const (
	Unhealthy Status = iota
	Degraded
	Healthy
)

// String returns "healthy", "degraded" or "unhealthy".
func (s Status) String() string {
	switch s {
	case Healthy:
		return "healthy"
	case Degraded:
		return "degraded"
	}
	return "unhealthy"
}

// MarshalText writes the status as its name.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a status name.
func (s *Status) UnmarshalText(b []byte) error {
	for _, v := range []Status{Unhealthy, Degraded, Healthy} {
		if string(b) == v.String() {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("unknown health status %q", bound(string(b)))
}

// Health is one service's health as its client sees it (seed
// HealthStatus).
type Health struct {
	// Status is Healthy when the node reports the service serving, its
	// answer came within timeout_ms and the circuit is closed; Degraded
	// when it serves but slowly or the circuit is not closed; Unhealthy
	// when it cannot be reached or does not serve.
	Status Status `json:"status"`
	// Reason says why it is not Healthy.
	Reason string `json:"reason,omitempty"`
	// Latency is the health check's round trip, once connected.
	Latency time.Duration `json:"-"`
	// LatencyMS is Latency in milliseconds, for JSON.
	LatencyMS float64 `json:"latency_ms"`
	// Breaker is the client's circuit state ("closed", "open", …).
	Breaker string `json:"breaker,omitempty"`
}

// withLatencyMS fills LatencyMS from Latency.
func (h Health) withLatencyMS() Health {
	h.LatencyMS = float64(h.Latency.Microseconds()) / 1000
	return h
}

// HealthChecker is anything that reports a Health: every client, and the
// storage, audit and consensus clients to come.
type HealthChecker interface {
	Health(ctx context.Context) Health
}

// Report is the platform's health (seed SovereignHealthReport).
type Report struct {
	// Status is Unhealthy if a critical service (authz, nhi, vault,
	// crypto) is; Degraded if any other service is unhealthy or any
	// service is degraded; Healthy otherwise.
	Status Status `json:"status"`
	// Reason names the services behind a Status that is not Healthy.
	Reason string `json:"reason,omitempty"`
	// Services is each service's health by name.
	Services map[string]Health `json:"services"`
	// CheckedAt is when the check started.
	CheckedAt time.Time `json:"checked_at"`
}

// critical are the services whose failure leaves the platform unable to
// act safely (seed §14.1): without them everything fails secure.
var critical = []string{"authz", "nhi", "vault", "crypto"}

// CheckHealth asks every checker at once and aggregates their answers
// (seed §14.1). Unlike the seed's sketch, a non-critical service that is
// unhealthy makes the platform Degraded rather than leaving it Healthy:
// it runs without that service's function.
func CheckHealth(ctx context.Context, checkers map[string]HealthChecker) Report {
	r := Report{Services: make(map[string]Health, len(checkers)), CheckedAt: time.Now().UTC()}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, c := range checkers {
		wg.Go(func() {
			h := c.Health(ctx).withLatencyMS()
			mu.Lock()
			r.Services[name] = h
			mu.Unlock()
		})
	}
	wg.Wait()
	var down, poor []string
	for name, h := range r.Services {
		switch {
		case h.Status == Unhealthy && slices.Contains(critical, name):
			down = append(down, name)
		case h.Status != Healthy:
			poor = append(poor, name)
		}
	}
	slices.Sort(down)
	slices.Sort(poor)
	switch {
	case len(checkers) == 0:
		r.Status, r.Reason = Unhealthy, "no service was checked"
	case len(down) > 0:
		r.Status, r.Reason = Unhealthy, "critical service unavailable: "+strings.Join(down, ", ")
	case len(poor) > 0:
		r.Status, r.Reason = Degraded, "degraded: "+strings.Join(poor, ", ")
	default:
		r.Status = Healthy
	}
	return r
}

// HealthHandler serves CheckHealth as JSON for a platform to mount: 200
// while the platform is Healthy or Degraded (it can serve), 503 when it is
// Unhealthy, so a load balancer's plain HTTP probe works too.
func HealthHandler(checkers map[string]HealthChecker) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		rep := CheckHealth(r.Context(), checkers)
		code := http.StatusOK
		if rep.Status == Unhealthy {
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(rep)
	})
}

// health asks the node's grpc.health.v1 service about s. It waits for a
// connection as calls do, then at most five times timeout_ms (at least a
// second) for the answer, and goes around the circuit breaker: health is
// how a platform sees the service recover while the circuit is open.
func (s *service) health(ctx context.Context) Health {
	h := Health{Breaker: s.Stats().Breaker}
	if err := s.ready(ctx, "Health"); err != nil {
		h.Reason = reason(err)
		return h
	}
	hctx, cancel := context.WithTimeout(ctx, max(5*s.pol.timeout, time.Second))
	defer cancel()
	start := time.Now()
	resp, err := healthpb.NewHealthClient(s.conn).Check(hctx, &healthpb.HealthCheckRequest{Service: s.grpc})
	h.Latency = time.Since(start)
	switch {
	case err != nil:
		h.Reason = reason(decode(ctx, s.name, "Health", err))
	case resp.GetStatus() != healthpb.HealthCheckResponse_SERVING:
		h.Reason = "the node reports " + resp.GetStatus().String()
	case h.Breaker == "open" || h.Breaker == "half-open":
		h.Status, h.Reason = Degraded, "circuit breaker "+h.Breaker+": calls are refused or probed"
	case h.Latency > s.pol.timeout:
		h.Status, h.Reason = Degraded, fmt.Sprintf("answered in %v, over timeout_ms (%v)", h.Latency.Round(time.Microsecond), s.pol.timeout)
	default:
		h.Status = Healthy
	}
	return h.withLatencyMS()
}

// reason is an error's sentinel and message, without the client prefix.
func reason(err error) string {
	var e *Error
	if !errors.As(err, &e) {
		return err.Error()
	}
	if e.Message == "" {
		return e.Kind.Error()
	}
	return e.Kind.Error() + ": " + e.Message
}

// CryptoHealth checks the crypto library of this process, the seed's
// fourth critical service (§7 makes it a local library, not a network
// service): a known-answer SHA-256 and a sign-and-verify round trip with
// the default hybrid signature.
type CryptoHealth struct{}

// sha256ABC is SHA-256("abc") (FIPS 180-2, appendix B.1).
var sha256ABC, _ = hex.DecodeString("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")

// Health runs the self-test.
func (CryptoHealth) Health(context.Context) Health {
	start := time.Now()
	h := Health{}
	if err := cryptoSelfTest(crypto.New()); err != nil {
		h.Reason = err.Error()
	} else {
		h.Status = Healthy
	}
	h.Latency = time.Since(start)
	return h.withLatencyMS()
}

func cryptoSelfTest(p crypto.Provider) error {
	sum, err := p.Hash(crypto.SHA256, []byte("abc"))
	if err != nil {
		return fmt.Errorf("crypto self-test: %v", err)
	}
	if !bytes.Equal(sum, sha256ABC) {
		return fmt.Errorf("crypto self-test: SHA-256 known answer mismatch")
	}
	key, err := p.GenerateKey(crypto.DefaultSignature)
	if err != nil {
		return fmt.Errorf("crypto self-test: %v", err)
	}
	defer key.Destroy()
	msg, ctx := []byte("creto client self-test"), []byte("creto-client-health")
	sig, err := p.Sign(key, msg, ctx)
	if err != nil {
		return fmt.Errorf("crypto self-test: %v", err)
	}
	if err := p.Verify(key.Public(), msg, ctx, sig); err != nil {
		return fmt.Errorf("crypto self-test: a fresh signature does not verify: %v", err)
	}
	sig[len(sig)-1] ^= 1
	if p.Verify(key.Public(), msg, ctx, sig) == nil {
		return fmt.Errorf("crypto self-test: a tampered signature verifies")
	}
	return nil
}
