package node

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// metrics are the node's Prometheus metrics, named as the seed's alert
// rules expect (§14.2): authz_check_duration_seconds and
// <service>_requests_total{status="ok"|"error"} for each service.
type metrics struct {
	reg           *prometheus.Registry
	checkDuration prometheus.Histogram
	requests      map[string]*prometheus.CounterVec // by short service name
	duration      *prometheus.HistogramVec
	// presigned counts the HTTP listener's presigned storage requests, by
	// method and HTTP status: a burst of 403s is someone trying URLs.
	presigned *prometheus.CounterVec
}

// shortName maps a gRPC service to the metric prefix the seed uses:
// creto.storage.v1.StorageService → storage.
func shortName(service string) string {
	parts := strings.Split(service, ".")
	if len(parts) >= 3 && parts[0] == "creto" {
		return parts[1]
	}
	return ""
}

func newMetrics(services []string) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		checkDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "authz_check_duration_seconds",
			Help: "Time to answer an authorization check, from the request's arrival to the response.",
			// From 25 µs: a cached check is a fraction of that, and the SLO
			// is 10 ms.
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 14),
		}),
		requests: map[string]*prometheus.CounterVec{},
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "creto_request_duration_seconds",
			Help:    "Time to answer a gRPC call, by service and method.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 4, 10),
		}, []string{"service", "method"}),
		presigned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "storage_presigned_requests_total",
			Help: "Requests to presigned storage URLs on the HTTP listener, by HTTP method and status code.",
		}, []string{"method", "code"}),
	}
	m.reg.MustRegister(m.checkDuration, m.duration, m.presigned,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, svc := range services {
		name := shortName(svc)
		if name == "" || m.requests[name] != nil {
			continue
		}
		c := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: name + "_requests_total",
			Help: "Calls to the " + name + " service, by method, outcome (ok or error) and gRPC code.",
		}, []string{"method", "status", "code"})
		m.reg.MustRegister(c)
		m.requests[name] = c
	}
	return m
}

func (m *metrics) observe(fullMethod string, start time.Time, err error) {
	elapsed := time.Since(start).Seconds()
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	m.duration.WithLabelValues(service, method).Observe(elapsed)
	if service == "creto.authz.v1.AuthorizationService" && method == "Check" {
		m.checkDuration.Observe(elapsed)
	}
	if c := m.requests[shortName(service)]; c != nil {
		outcome := "ok"
		if err != nil {
			outcome = "error"
		}
		c.WithLabelValues(method, outcome, status.Code(err).String()).Inc()
	}
}

func (m *metrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	m.observe(info.FullMethod, start, err)
	return resp, err
}

func (m *metrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	m.observe(info.FullMethod, start, err)
	return err
}
