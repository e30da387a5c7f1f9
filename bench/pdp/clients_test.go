package pdp

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"

	effectv1 "github.com/cerbos/cerbos/api/genpb/cerbos/effect/v1"
	enginev1 "github.com/cerbos/cerbos/api/genpb/cerbos/engine/v1"
	requestv1 "github.com/cerbos/cerbos/api/genpb/cerbos/request/v1"
	svcv1 "github.com/cerbos/cerbos/api/genpb/cerbos/svc/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	authzv1 "github.com/creto-systems/creto/api/creto/authz/v1"
)

// decider is one served PDP as the load generator and the agreement test
// call it. Requests are encoded once, up front, in the PDP's own form.
type decider interface {
	// check decides mix request i over caller c's connection and reports
	// whether it is allowed: the call the benchmark times.
	check(ctx context.Context, c, i int) (bool, error)
	// explain decides mix request i and says why a denial was one.
	explain(ctx context.Context, i int) (outcome, error)
}

// batcher is a decider with a batch form: one call deciding batch j of
// the workload, in request order.
type batcher interface {
	batch(ctx context.Context, c, j int) ([]bool, error)
}

// grpcConns is how many connections the gRPC clients spread their
// callers over, as bench/serve_test.go does.
const grpcConns = 8

func dialAll(addr string, tlsCfg *tls.Config) ([]*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	conns := make([]*grpc.ClientConn, grpcConns)
	for i := range conns {
		var err error
		if conns[i], err = grpc.NewClient(addr, grpc.WithTransportCredentials(creds)); err != nil {
			return nil, err
		}
	}
	return conns, nil
}

// cretoClient calls AuthorizationService.Check and CheckBatch as an
// operator (the client certificate), or as the loopback operator when
// the node serves plaintext.
type cretoClient struct {
	conns   []authzv1.AuthorizationServiceClient
	mix     []*authzv1.CheckRequest
	batches []*authzv1.CheckBatchRequest
}

func newCretoClient(w *workload, addr string, tlsCfg *tls.Config) (*cretoClient, error) {
	conns, err := dialAll(addr, tlsCfg)
	if err != nil {
		return nil, err
	}
	c := &cretoClient{}
	for _, cc := range conns {
		c.conns = append(c.conns, authzv1.NewAuthorizationServiceClient(cc))
	}
	for _, q := range w.mix {
		c.mix = append(c.mix, cretoRequest(w, q))
	}
	for _, b := range w.batches {
		br := &authzv1.CheckBatchRequest{}
		for _, q := range b {
			br.Requests = append(br.Requests, cretoRequest(w, q))
		}
		c.batches = append(c.batches, br)
	}
	return c, nil
}

func cretoRequest(w *workload, q request) *authzv1.CheckRequest {
	return &authzv1.CheckRequest{
		Principal:   &authzv1.Principal{Type: "Agent", Id: w.agents[q.agent].id},
		Action:      q.action,
		Resource:    fmt.Sprintf("Doc::%q", w.docs[q.doc].id),
		ContextJson: fmt.Appendf(nil, `{"risk":%d}`, q.risk),
	}
}

func (c *cretoClient) check(ctx context.Context, conn, i int) (bool, error) {
	resp, err := c.conns[conn%len(c.conns)].Check(ctx, c.mix[i])
	if err != nil {
		return false, err
	}
	return resp.GetDecision().GetAllow() != nil, nil
}

func (c *cretoClient) explain(ctx context.Context, i int) (outcome, error) {
	resp, err := c.conns[0].Check(ctx, c.mix[i])
	if err != nil {
		return 0, err
	}
	d := resp.GetDecision()
	switch deny := d.GetDeny(); {
	case d.GetAllow() != nil:
		return allowed, nil
	case deny != nil && deny.GetPolicyId() == "":
		return denied, nil
	case deny != nil && deny.GetPolicyId() == "no-risky-deletes" && deny.GetReason() == riskyDeletes:
		return forbidden, nil
	}
	return 0, fmt.Errorf("unexpected decision %v", d)
}

func (c *cretoClient) batch(ctx context.Context, conn, j int) ([]bool, error) {
	resp, err := c.conns[conn%len(c.conns)].CheckBatch(ctx, c.batches[j])
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(resp.GetResponses()))
	for i, r := range resp.GetResponses() {
		out[i] = r.GetDecision().GetAllow() != nil
	}
	return out, nil
}

// opaClient posts to OPA's Data API over HTTP/1.1 with keep-alive, one
// connection per concurrent caller (with TLS too: a transport given its
// own TLS configuration does not attempt HTTP/2). OPA serves decisions
// over REST only: it has no gRPC API and no batch query.
type opaClient struct {
	http             *http.Client
	allowURL, docURL string
	mix              [][]byte // {"input": …}
}

func newOPAClient(w *workload, addr string, tlsCfg *tls.Config) *opaClient {
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	c := &opaClient{
		http: &http.Client{Transport: &http.Transport{
			TLSClientConfig:     tlsCfg,
			MaxIdleConnsPerHost: callers,
			DisableCompression:  true,
		}},
		allowURL: scheme + "://" + addr + "/v1/data/authz/allow",
		docURL:   scheme + "://" + addr + "/v1/data/authz",
	}
	for _, q := range w.mix {
		c.mix = append(c.mix, mustJSON(map[string]any{"input": map[string]any{
			"principal": w.agents[q.agent].id,
			"action":    q.action,
			"resource":  w.docs[q.doc].id,
			"context":   map[string]any{"risk": q.risk},
		}}))
	}
	return c
}

// post sends body to url and decodes the result into v; an undefined
// result (no "result" key) is an error, not a denial.
func (c *opaClient) post(ctx context.Context, url string, body []byte, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	var out struct{ Result json.RawMessage }
	if err := json.Unmarshal(b, &out); err != nil {
		return err
	}
	if out.Result == nil {
		return fmt.Errorf("undefined result: %s", b)
	}
	return json.Unmarshal(out.Result, v)
}

func (c *opaClient) check(ctx context.Context, _, i int) (bool, error) {
	var allow bool
	err := c.post(ctx, c.allowURL, c.mix[i], &allow)
	return allow, err
}

func (c *opaClient) explain(ctx context.Context, i int) (outcome, error) {
	var doc struct {
		Allow  bool
		Reason string
	}
	if err := c.post(ctx, c.docURL, c.mix[i], &doc); err != nil {
		return 0, err
	}
	switch {
	case doc.Allow:
		return allowed, nil
	case doc.Reason == riskyDeletes:
		return forbidden, nil
	case doc.Reason == "":
		return denied, nil
	}
	return 0, fmt.Errorf("unexpected reason %q", doc.Reason)
}

// cerbosClient calls CerbosService.CheckResources. Cerbos has no entity
// store: each request carries the principal's and the resource's
// attributes (Cerbos's model), prepared once from the workload here.
type cerbosClient struct {
	conns   []svcv1.CerbosServiceClient
	mix     []*requestv1.CheckResourcesRequest
	batches []*requestv1.CheckResourcesRequest
}

func newCerbosClient(w *workload, addr string, tlsCfg *tls.Config) (*cerbosClient, error) {
	conns, err := dialAll(addr, tlsCfg)
	if err != nil {
		return nil, err
	}
	c := &cerbosClient{}
	for _, cc := range conns {
		c.conns = append(c.conns, svcv1.NewCerbosServiceClient(cc))
	}
	for _, q := range w.mix {
		c.mix = append(c.mix, cerbosRequest(w, []request{q}))
	}
	for _, b := range w.batches {
		c.batches = append(c.batches, cerbosRequest(w, b))
	}
	return c, nil
}

// cerbosRequest is one principal's CheckResources over the resources of
// qs, one action each; qs share their agent and risk. The risk, context
// in Creto and OPA, is a principal attribute: Cerbos has no request
// context.
func cerbosRequest(w *workload, qs []request) *requestv1.CheckResourcesRequest {
	a := w.agents[qs[0].agent]
	roles := []string{"agent"}
	if a.role == "lead" {
		roles = append(roles, "lead")
	}
	r := &requestv1.CheckResourcesRequest{Principal: &enginev1.Principal{
		Id:    a.id,
		Roles: roles,
		Attr: map[string]*structpb.Value{
			"team":      structpb.NewStringValue(a.team),
			"clearance": structpb.NewNumberValue(float64(a.clearance)),
			"risk":      structpb.NewNumberValue(float64(qs[0].risk)),
		},
	}}
	for _, q := range qs {
		r.Resources = append(r.Resources, &requestv1.CheckResourcesRequest_ResourceEntry{
			Actions: []string{q.action},
			Resource: &enginev1.Resource{Kind: "document", Id: w.docs[q.doc].id, Attr: map[string]*structpb.Value{
				"team":           structpb.NewStringValue(w.docTeam(q.doc)),
				"classification": structpb.NewNumberValue(float64(w.docs[q.doc].classification)),
			}},
		})
	}
	return r
}

// results decides r and returns, for each resource in order, whether its
// action is allowed and the outputs of the rules that matched it.
func (c *cerbosClient) results(ctx context.Context, conn int, r *requestv1.CheckResourcesRequest) ([]bool, [][]*enginev1.OutputEntry, error) {
	resp, err := c.conns[conn%len(c.conns)].CheckResources(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	if len(resp.GetResults()) != len(r.GetResources()) {
		return nil, nil, fmt.Errorf("%d results for %d resources", len(resp.GetResults()), len(r.GetResources()))
	}
	allows := make([]bool, len(r.GetResources()))
	outputs := make([][]*enginev1.OutputEntry, len(r.GetResources()))
	for i, res := range resp.GetResults() {
		in := r.GetResources()[i]
		if res.GetResource().GetId() != in.GetResource().GetId() {
			return nil, nil, fmt.Errorf("result %d is for %q, not %q", i, res.GetResource().GetId(), in.GetResource().GetId())
		}
		effect, ok := res.GetActions()[in.GetActions()[0]]
		if !ok {
			return nil, nil, fmt.Errorf("result %d has no effect for %q", i, in.GetActions()[0])
		}
		allows[i] = effect == effectv1.Effect_EFFECT_ALLOW
		outputs[i] = res.GetOutputs()
	}
	return allows, outputs, nil
}

func (c *cerbosClient) check(ctx context.Context, conn, i int) (bool, error) {
	allows, _, err := c.results(ctx, conn, c.mix[i])
	if err != nil {
		return false, err
	}
	return allows[0], nil
}

func (c *cerbosClient) explain(ctx context.Context, i int) (outcome, error) {
	allows, outputs, err := c.results(ctx, 0, c.mix[i])
	if err != nil {
		return 0, err
	}
	if allows[0] {
		return allowed, nil
	}
	if slices.ContainsFunc(outputs[0], func(o *enginev1.OutputEntry) bool { return o.GetVal().GetStringValue() == riskyDeletes }) {
		return forbidden, nil
	}
	return denied, nil
}

func (c *cerbosClient) batch(ctx context.Context, conn, j int) ([]bool, error) {
	allows, _, err := c.results(ctx, conn, c.batches[j])
	return allows, err
}
