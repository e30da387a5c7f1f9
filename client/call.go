package client

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/sony/gobreaker/v2"
	"google.golang.org/grpc/connectivity"
)

// service is what every client is built on: one service's connection,
// its resilience policy (timeouts, retries, circuit breaker) and its
// counters. Its call function is the one place a client sends an RPC.
type service struct {
	name    string // the section and the short name: "authz"
	grpc    string // the full gRPC service name health checks ask about
	conn    *conn
	pol     policy
	breaker *gobreaker.CircuitBreaker[struct{}] // nil when disabled
	log     *slog.Logger
	// counters are shared with the service's other targets (at): a
	// consensus client that follows the leader counts every call once.
	*counters
}

// counters are a service's Stats counts.
type counters struct {
	calls, attempts, rejected, fallbacks atomic.Uint64
}

// Stats are a client's counters since it was built.
type Stats struct {
	// Calls is how many calls the caller made.
	Calls uint64
	// Attempts is how many times a call was sent or waited for a
	// connection: retries and half-open probes included, calls the circuit
	// refused excluded. What a service under recovery sees is bounded by
	// it.
	Attempts uint64
	// Rejected is how many calls the open circuit refused without sending.
	Rejected uint64
	// Fallbacks is how many answers the client gave that the service did
	// not: a fail-secure denial, a cached decision or secret, an empty
	// memory context, a local timestamp.
	Fallbacks uint64
	// Breaker is the circuit's state: "closed", "half-open", "open", or
	// "disabled".
	Breaker string
}

func newService(name, grpcName string, c *conn, p policy, log *slog.Logger) *service {
	s := &service{name: name, grpc: grpcName, conn: c, pol: p, log: log, counters: &counters{}}
	if p.breaker {
		s.breaker = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        name,
			MaxRequests: p.halfOpen,
			Timeout:     p.reset,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= p.failures },
			// A denial, a bad request, a missing object is the service
			// working; the caller's own cancellation says nothing about it.
			IsSuccessful: func(err error) bool { return !failure(err) },
			IsExcluded:   excluded,
			OnStateChange: func(_ string, from, to gobreaker.State) {
				log.Warn("creto client: circuit breaker", "service", name, "from", from.String(), "to", to.String())
			},
		})
	}
	return s
}

// at returns the service reached at another target — a consensus leader a
// follower named — over connection c: its own connection and address, the
// same policy, circuit breaker and counters otherwise.
func (s *service) at(c *conn, target string) *service {
	t := *s
	t.conn, t.pol.target = c, target
	return &t
}

// Stats returns the client's counters and its circuit's state.
func (s *service) Stats() Stats {
	st := Stats{Calls: s.calls.Load(), Attempts: s.attempts.Load(), Rejected: s.rejected.Load(),
		Fallbacks: s.fallbacks.Load(), Breaker: "disabled"}
	if s.breaker != nil {
		st.Breaker = s.breaker.State().String()
	}
	return st
}

// call sends one RPC under the service's policy: each attempt waits at
// most connect_timeout_ms for a connection and timeout_ms for the answer,
// passes the circuit breaker, and is retried with jittered exponential
// backoff only when retry is set and the failure is retryable. retry is
// for reads, and for writes the node cannot apply twice.
func call[T any](ctx context.Context, s *service, method string, retry bool, rpc func(context.Context) (T, error)) (T, error) {
	return send(ctx, s, method, retry, s.pol.timeout, rpc)
}

// stream is call for a streaming RPC: no deadline bounds an attempt as a
// whole — a gigabyte takes longer than timeout_ms — so rpc bounds each
// message itself (a watchdog), and the context it gets lives as long as
// the caller's, for a stream it hands back open.
func stream[T any](ctx context.Context, s *service, method string, retry bool, rpc func(context.Context) (T, error)) (T, error) {
	return send(ctx, s, method, retry, 0, rpc)
}

// send is call and stream: timeout bounds each attempt, 0 not at all.
func send[T any](ctx context.Context, s *service, method string, retry bool, timeout time.Duration, rpc func(context.Context) (T, error)) (T, error) {
	s.calls.Add(1)
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, decode(ctx, s.name, method, err)
	}
	tries := uint(1)
	if retry {
		tries += uint(s.pol.retries)
	}
	attempts := 0
	op := func() (T, error) {
		var out T
		run := func() (struct{}, error) {
			attempts++
			s.attempts.Add(1)
			var err error
			out, err = attempt(ctx, s, method, timeout, rpc)
			return struct{}{}, err
		}
		var err error
		if s.breaker == nil {
			_, err = run()
		} else if _, err = s.breaker.Execute(run); errors.Is(err, gobreaker.ErrOpenState) {
			s.rejected.Add(1)
			return out, backoff.Permanent(localError(s.name, method, ErrCircuitOpen,
				"%d consecutive failures; calls are refused for %v, then probed", s.pol.failures, s.pol.reset))
		} else if errors.Is(err, gobreaker.ErrTooManyRequests) {
			s.rejected.Add(1)
			return out, backoff.Permanent(localError(s.name, method, ErrCircuitOpen,
				"half-open: its %d probes are in flight", s.pol.halfOpen))
		}
		if err != nil && !retryable(err) {
			return out, backoff.Permanent(err)
		}
		return out, err
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = s.pol.backoff
	v, err := backoff.Retry(ctx, op, backoff.WithBackOff(bo), backoff.WithMaxTries(tries), backoff.WithMaxElapsedTime(0))
	if err != nil {
		e := decode(ctx, s.name, method, err)
		e.Attempts = attempts
		return v, e
	}
	return v, nil
}

// retryable is what call retries: the seed's retryable errors, except an
// open circuit (retrying it only spins) and the caller's own deadline.
func retryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable() && !errors.Is(e.Kind, ErrCircuitOpen)
}

// attempt is one try: a connection, then the RPC under timeout (none when
// 0).
func attempt[T any](ctx context.Context, s *service, method string, timeout time.Duration, rpc func(context.Context) (T, error)) (T, error) {
	var zero T
	if err := s.ready(ctx, method); err != nil {
		return zero, err
	}
	actx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	v, err := rpc(actx)
	if err != nil {
		return zero, decode(ctx, s.name, method, err)
	}
	return v, nil
}

// ready waits up to connect_timeout_ms for the connection. A connection
// in transient failure is asked to redial now rather than after gRPC's
// backoff (up to two minutes), and a refused dial fails the attempt at
// once: the breaker already limits how often that happens to its failure
// threshold and its half-open probes.
func (s *service) ready(ctx context.Context, method string) error {
	if s.conn.GetState() == connectivity.Ready {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, s.pol.connect)
	defer cancel()
	redialed := false
	for {
		st := s.conn.GetState()
		var failed <-chan struct{}
		switch st {
		case connectivity.Ready:
			return nil
		case connectivity.Idle:
			s.conn.Connect()
		case connectivity.TransientFailure:
			if redialed {
				return localError(s.name, method, ErrUnavailable, "cannot connect to %s", s.pol.target)
			}
			failed = s.conn.dials.next()
			s.conn.ResetConnectBackoff()
			redialed = true
		case connectivity.Shutdown:
			return localError(s.name, method, ErrUnavailable, "the client is closed")
		}
		if !s.waitChange(wctx, st, failed) && wctx.Err() != nil {
			if err := ctx.Err(); err != nil {
				return decode(ctx, s.name, method, err)
			}
			return localError(s.name, method, ErrUnavailable, "no connection to %s within connect_timeout_ms (%v)", s.pol.target, s.pol.connect)
		}
	}
}

// waitChange waits until the connection leaves state st, ctx ends, or —
// when failed is not nil — a dial fails.
func (s *service) waitChange(ctx context.Context, st connectivity.State, failed <-chan struct{}) bool {
	if failed != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-failed:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return s.conn.WaitForStateChange(ctx, st)
}

// waitReady waits until the connection is up, however long ctx allows.
func (s *service) waitReady(ctx context.Context) error {
	for {
		st := s.conn.GetState()
		switch st {
		case connectivity.Ready:
			return nil
		case connectivity.Idle:
			s.conn.Connect()
		case connectivity.Shutdown:
			return localError(s.name, "Connect", ErrUnavailable, "the client is closed")
		}
		if !s.conn.WaitForStateChange(ctx, st) {
			return localError(s.name, "Connect", ErrUnavailable, "no connection to %s: %v", s.pol.target, ctx.Err())
		}
	}
}
