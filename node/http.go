package node

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func (n *Node) metricsHandler() http.Handler {
	return promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{Registry: n.metrics.reg})
}

// presignedHandler serves presigned storage URLs, counted by method and
// status.
func (n *Node) presignedHandler() http.Handler {
	return promhttp.InstrumentHandlerCounter(n.metrics.presigned, n.storage.Handler())
}

// healthz reports every service's serving status as JSON; the status code
// is 200 only when all of them serve, so a plain HTTP probe works too.
func (n *Node) healthz(w http.ResponseWriter, r *http.Request) {
	out := map[string]string{}
	code := http.StatusOK
	for _, d := range n.services() {
		resp, err := n.health.Check(r.Context(), &healthpb.HealthCheckRequest{Service: d.ServiceName})
		st := "UNKNOWN"
		if err == nil {
			st = resp.GetStatus().String()
		}
		if st != healthpb.HealthCheckResponse_SERVING.String() {
			code = http.StatusServiceUnavailable
		}
		out[d.ServiceName] = st
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"services": out})
}
