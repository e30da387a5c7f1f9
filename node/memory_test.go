package node

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	memoryv1 "github.com/creto-systems/creto/api/creto/memory/v1"
	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
)

func agentRef(id string) *nhiv1.AgentIdentity { return &nhiv1.AgentIdentity{Id: id} }

func ptrTo[T any](v T) *T { return &v }

// memoryCount is how many memories of owner the store holds, read through
// the service as the owner with every filter open.
func (tn *testNode) memoryCount(owner string) int {
	tn.t.Helper()
	c := memoryv1.NewMemoryServiceClient(tn.operator())
	res, err := c.Query(bg, &memoryv1.QueryRequest{Agent: agentRef(owner), Query: "anything", Limit: 100, RelevanceThreshold: ptrTo[float32](0)})
	if err != nil {
		tn.t.Fatal(err)
	}
	return len(res.GetResults())
}

// Seed §11.2, memory contract: Query returns MemoryWithScore with a score
// in [0, 1].
func TestMemoryQueryContract(t *testing.T) {
	tn := startNode(t, "", nil)
	c := memoryv1.NewMemoryServiceClient(tn.agent("test-agent"))
	if _, err := c.Store(bg, &memoryv1.StoreRequest{Content: "Test memory content", Type: memoryv1.MemoryType_MEMORY_TYPE_CONTEXT}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Query(bg, &memoryv1.QueryRequest{Query: "test", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetResults()) == 0 {
		t.Fatal("no results")
	}
	for _, r := range res.GetResults() {
		if s := r.GetRelevanceScore(); s < 0 || s > 1 {
			t.Fatalf("relevance %v outside [0, 1]", s)
		}
	}
	m := res.GetResults()[0].GetMemory()
	if m.GetContent() != "Test memory content" || m.GetAgent().GetId() != "test-agent" || m.GetType() != memoryv1.MemoryType_MEMORY_TYPE_CONTEXT ||
		m.GetCreatedAt() == nil || m.GetExpiresAt() != nil || !res.GetStats().GetExact() || res.GetStats().GetScored() != 1 {
		t.Fatalf("result %v, stats %v", m, res.GetStats())
	}
	// Scores are clamped, never negative: with threshold 0 an unrelated
	// memory comes back at 0 or above.
	if _, err := c.Store(bg, &memoryv1.StoreRequest{Content: "weather in Lisbon", Type: memoryv1.MemoryType_MEMORY_TYPE_OBSERVATION}); err != nil {
		t.Fatal(err)
	}
	all, err := c.Query(bg, &memoryv1.QueryRequest{Query: "test", RelevanceThreshold: ptrTo[float32](0)})
	if err != nil || len(all.GetResults()) != 2 {
		t.Fatalf("threshold 0: %v %v", all, err)
	}
	for _, r := range all.GetResults() {
		if s := r.GetRelevanceScore(); s < 0 || s > 1 {
			t.Fatalf("relevance %v outside [0, 1]", s)
		}
	}
	got, err := c.Get(bg, &memoryv1.GetRequest{Id: m.GetId()})
	if err != nil || got.GetMemory().GetContent() != "Test memory content" {
		t.Fatalf("get: %v %v", got, err)
	}
	if _, err := c.Delete(bg, &memoryv1.DeleteRequest{Id: m.GetId()}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(bg, &memoryv1.GetRequest{Id: m.GetId()})
	wantReason(t, err, codes.NotFound, "NOT_FOUND")
}

// An agent reads another's memories only through a live NHI delegation
// from that agent granting memory:read, and writes them only through
// memory:write; revocation and expiry end the access at the next call.
func TestMemoryCrossAgentAccessFollowsNHIDelegations(t *testing.T) {
	tn := startNode(t, "", nil)
	ownerConn, approverConn := tn.agent("payments"), tn.agent("approver")
	owner, approver := memoryv1.NewMemoryServiceClient(ownerConn), memoryv1.NewMemoryServiceClient(approverConn)
	ownerNHI := nhiv1.NewNhiServiceClient(ownerConn)

	stored, err := owner.Store(bg, &memoryv1.StoreRequest{Content: "Invoice 42 matches PO-991, so I will pay Acme by wire transfer",
		Type: memoryv1.MemoryType_MEMORY_TYPE_REASONING, Metadata: map[string]string{"action_id": "pay-42", "confidence": "0.9"}})
	if err != nil {
		t.Fatal(err)
	}
	query := &memoryv1.QueryRequest{Agent: agentRef("payments"), Query: "invoice from Acme"}
	read := func() error { _, err := approver.Query(bg, query); return err }
	write := func() error {
		_, err := approver.Store(bg, &memoryv1.StoreRequest{Agent: agentRef("payments"), Content: "approved", Type: memoryv1.MemoryType_MEMORY_TYPE_CONTEXT})
		return err
	}

	wantReason(t, read(), codes.PermissionDenied, "ACCESS_DENIED")
	_, err = approver.Get(bg, &memoryv1.GetRequest{Id: stored.GetId()})
	wantCode(t, err, codes.PermissionDenied)
	_, err = approver.GetReasoning(bg, &memoryv1.GetReasoningRequest{Agent: agentRef("payments"), ActionId: "pay-42"})
	wantCode(t, err, codes.PermissionDenied)

	// The owner grants read over NHI.
	grant, err := ownerNHI.CreateDelegation(bg, &nhiv1.CreateDelegationRequest{DelegateeId: "approver", Permissions: []string{"memory:read"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := read(); err != nil {
		t.Fatalf("read with the grant: %v", err)
	}
	if got, err := approver.Get(bg, &memoryv1.GetRequest{Id: stored.GetId()}); err != nil || got.GetMemory().GetAgent().GetId() != "payments" {
		t.Fatalf("get with the grant: %v %v", got, err)
	}
	r, err := approver.GetReasoning(bg, &memoryv1.GetReasoningRequest{Agent: agentRef("payments"), ActionId: "pay-42"})
	if err != nil || !r.GetFound() || r.GetConfidence() != 0.9 || len(r.GetSteps()) != 1 || !strings.Contains(r.GetReasoning(), "PO-991") {
		t.Fatalf("reasoning with the grant: %v %v", r, err)
	}
	oc, err := approver.OversightContext(bg, &memoryv1.OversightContextRequest{Agent: agentRef("payments"),
		Action: "wire transfer of 4200 EUR to Acme", ActionId: "pay-42"})
	if err != nil || oc.GetReasoning() != r.GetReasoning() || oc.GetConfidence() != 0.9 || len(oc.GetRelevantMemories()) != 1 {
		t.Fatalf("oversight context: %v %v", oc, err)
	}
	// Read does not imply write.
	wantReason(t, write(), codes.PermissionDenied, "ACCESS_DENIED")
	_, err = approver.Delete(bg, &memoryv1.DeleteRequest{Id: stored.GetId()})
	wantCode(t, err, codes.PermissionDenied)
	if n := tn.memoryCount("payments"); n != 1 {
		t.Fatalf("refused writes changed the memories: %d", n)
	}

	// Revocation ends the access at the next call.
	if _, err := ownerNHI.RevokeDelegation(bg, &nhiv1.RevokeDelegationRequest{DelegationId: grant.GetDelegation().GetId()}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, read(), codes.PermissionDenied)

	// A write grant that expires.
	expiry := time.Now().Add(1500 * time.Millisecond)
	if _, err := ownerNHI.CreateDelegation(bg, &nhiv1.CreateDelegationRequest{DelegateeId: "approver",
		Permissions: []string{"memory:write"}, ExpiresAt: timestamppb.New(expiry)}); err != nil {
		t.Fatal(err)
	}
	if err := write(); err != nil {
		t.Fatalf("write with the grant: %v", err)
	}
	wantCode(t, read(), codes.PermissionDenied)
	time.Sleep(time.Until(expiry) + 50*time.Millisecond)
	wantCode(t, write(), codes.PermissionDenied)
	if n := tn.memoryCount("payments"); n != 2 {
		t.Fatalf("memories after the expired grant: %d, want 2", n)
	}
}

// Authority passed down a chain counts when the chain starts at the owner,
// and dies with any link above it.
func TestMemoryGrantThroughAChain(t *testing.T) {
	tn := startNode(t, "", nil)
	ownerConn := tn.agent("payments")
	supervisorConn := tn.agent("supervisor")
	approver := memoryv1.NewMemoryServiceClient(tn.agent("approver"))
	if _, err := memoryv1.NewMemoryServiceClient(ownerConn).Store(bg, &memoryv1.StoreRequest{Content: "Acme sent invoice 42", Type: memoryv1.MemoryType_MEMORY_TYPE_OBSERVATION}); err != nil {
		t.Fatal(err)
	}
	top, err := nhiv1.NewNhiServiceClient(ownerConn).CreateDelegation(bg, &nhiv1.CreateDelegationRequest{DelegateeId: "supervisor", Permissions: []string{"memory:read", "memory:write"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nhiv1.NewNhiServiceClient(supervisorConn).CreateDelegation(bg, &nhiv1.CreateDelegationRequest{DelegateeId: "approver",
		Permissions: []string{"memory:read"}, ParentId: top.GetDelegation().GetId()}); err != nil {
		t.Fatal(err)
	}
	query := &memoryv1.QueryRequest{Agent: agentRef("payments"), Query: "invoice"}
	if res, err := approver.Query(bg, query); err != nil || len(res.GetResults()) != 1 {
		t.Fatalf("read through the chain: %v %v", res, err)
	}
	// The supervisor's own memories are not the owner's: its grant holds
	// nothing of its own.
	_, err = approver.Query(bg, &memoryv1.QueryRequest{Agent: agentRef("supervisor"), Query: "invoice"})
	wantCode(t, err, codes.PermissionDenied)
	if _, err := tn.operatorNHI().RevokeAgent(bg, &nhiv1.RevokeAgentRequest{Id: "supervisor"}); err != nil {
		t.Fatal(err)
	}
	_, err = approver.Query(bg, query)
	wantCode(t, err, codes.PermissionDenied)
}

func (tn *testNode) operatorNHI() nhiv1.NhiServiceClient {
	return nhiv1.NewNhiServiceClient(tn.operator())
}

// An operator, the platform's trusted workload, acts as the agent a
// request names.
func TestMemoryOperatorActsAsTheNamedAgent(t *testing.T) {
	tn := startNode(t, "", nil)
	op := memoryv1.NewMemoryServiceClient(tn.operator())
	batch, err := op.StoreBatch(bg, &memoryv1.StoreBatchRequest{Requests: []*memoryv1.StoreRequest{
		{Agent: agentRef("runtime-7"), Content: "tool call: ls returned 3 files", Type: memoryv1.MemoryType_MEMORY_TYPE_TOOL_RESULT, Ttl: durationpb.New(time.Hour)},
		{Agent: agentRef("runtime-7"), Content: "the sandbox has 3 files", Type: memoryv1.MemoryType_MEMORY_TYPE_OBSERVATION},
	}})
	if err != nil || len(batch.GetIds()) != 2 {
		t.Fatalf("batch: %v %v", batch, err)
	}
	got, err := op.Get(bg, &memoryv1.GetRequest{Agent: agentRef("runtime-7"), Id: batch.GetIds()[0]})
	if err != nil || got.GetMemory().GetExpiresAt() == nil {
		t.Fatalf("get as the owner: %v %v", got, err)
	}
	_, err = op.Get(bg, &memoryv1.GetRequest{Agent: agentRef("someone-else"), Id: batch.GetIds()[0]})
	wantCode(t, err, codes.PermissionDenied)
	_, err = op.Get(bg, &memoryv1.GetRequest{Id: batch.GetIds()[0]})
	wantReason(t, err, codes.InvalidArgument, "NO_AGENT")
	_, err = op.Query(bg, &memoryv1.QueryRequest{Query: "files"})
	wantReason(t, err, codes.InvalidArgument, "NO_AGENT")
	_, err = op.StoreBatch(bg, &memoryv1.StoreBatchRequest{Requests: []*memoryv1.StoreRequest{
		{Agent: agentRef("a"), Content: "x", Type: memoryv1.MemoryType_MEMORY_TYPE_CONTEXT},
		{Agent: agentRef("b"), Content: "y", Type: memoryv1.MemoryType_MEMORY_TYPE_CONTEXT},
	}})
	wantCode(t, err, codes.InvalidArgument)
	if tn.memoryCount("a")+tn.memoryCount("b") != 0 {
		t.Fatal("a refused batch stored memories")
	}
	// An agent names only itself as the agent it acts as.
	agent := memoryv1.NewMemoryServiceClient(tn.agent("runtime-8"))
	_, err = agent.Get(bg, &memoryv1.GetRequest{Agent: agentRef("runtime-7"), Id: batch.GetIds()[0]})
	wantReason(t, err, codes.PermissionDenied, "NOT_SELF")
	r, err := agent.GetReasoning(bg, &memoryv1.GetReasoningRequest{ActionId: "none-recorded"})
	if err != nil || r.GetFound() || r.Confidence != nil {
		t.Fatalf("no reasoning is found = false: %v %v", r, err)
	}
}

func TestMemoryBadInputChangesNothing(t *testing.T) {
	tn := startNode(t, "", nil)
	c := memoryv1.NewMemoryServiceClient(tn.agent("bot"))
	meta := map[string]string{}
	for i := range 33 {
		meta["k"+strings.Repeat("x", i)] = "v"
	}
	ctxType := memoryv1.MemoryType_MEMORY_TYPE_CONTEXT
	for name, req := range map[string]*memoryv1.StoreRequest{
		"oversize content":    {Content: strings.Repeat("a", 64<<10+1), Type: ctxType},
		"blank content":       {Content: "   ", Type: ctxType},
		"unspecified type":    {Content: "x"},
		"unknown type":        {Content: "x", Type: 99},
		"33 metadata entries": {Content: "x", Type: ctxType, Metadata: meta},
		"oversize metadata":   {Content: "x", Type: ctxType, Metadata: map[string]string{"k": strings.Repeat("v", 1025)}},
		"negative TTL":        {Content: "x", Type: ctxType, Ttl: durationpb.New(-time.Second)},
		"wrong dimension":     {Content: "x", Type: ctxType, Embedding: []float32{1, 2, 3}},
		"malformed owner":     {Agent: agentRef("has space"), Content: "x", Type: ctxType},
		"oversize owner":      {Agent: agentRef(strings.Repeat("a", 257)), Content: "x", Type: ctxType},
	} {
		if _, err := c.Store(bg, req); !isInvalid(err) {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, err := c.StoreBatch(bg, &memoryv1.StoreBatchRequest{Requests: []*memoryv1.StoreRequest{
		{Content: "fine", Type: ctxType},
		{Content: "", Type: ctxType},
	}})
	wantCode(t, err, codes.InvalidArgument)
	_, err = c.StoreBatch(bg, &memoryv1.StoreBatchRequest{})
	wantCode(t, err, codes.InvalidArgument)
	if n := tn.memoryCount("bot"); n != 0 {
		t.Fatalf("refused stores left %d memories", n)
	}

	for name, req := range map[string]*memoryv1.QueryRequest{
		"limit over the maximum": {Query: "x", Limit: 101},
		"negative limit":         {Query: "x", Limit: -1},
		"threshold above 1":      {Query: "x", RelevanceThreshold: ptrTo[float32](1.5)},
		"negative threshold":     {Query: "x", RelevanceThreshold: ptrTo[float32](-0.1)},
		"no query":               {},
		"text and vector":        {Query: "x", QueryEmbedding: make([]float32, 256)},
		"unknown type filter":    {Query: "x", TypeFilter: []memoryv1.MemoryType{7}},
		"inverted time range":    {Query: "x", TimeRange: &memoryv1.TimeRange{Start: timestamppb.Now(), End: timestamppb.New(time.Now().Add(-time.Hour))}},
		"invalid timestamp":      {Query: "x", TimeRange: &memoryv1.TimeRange{Start: &timestamppb.Timestamp{Seconds: 1 << 62}}},
	} {
		if _, err := c.Query(bg, req); !isInvalid(err) {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, err = c.GetReasoning(bg, &memoryv1.GetReasoningRequest{})
	wantCode(t, err, codes.InvalidArgument)
	_, err = c.OversightContext(bg, &memoryv1.OversightContextRequest{Action: "x", Limit: 6})
	wantReason(t, err, codes.InvalidArgument, "LIMIT_EXCEEDED")
	_, err = c.Get(bg, &memoryv1.GetRequest{Id: "not-an-id"})
	wantCode(t, err, codes.NotFound)
}

func isInvalid(err error) bool { return status.Code(err) == codes.InvalidArgument }

func TestNHIAndMemoryReportHealthAndMetrics(t *testing.T) {
	tn := startNode(t, "", nil)
	health := healthpb.NewHealthClient(tn.anonymous())
	for _, svc := range []string{"creto.nhi.v1.NhiService", "creto.memory.v1.MemoryService"} {
		resp, err := health.Check(bg, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("%s: %v %v", svc, resp, err)
		}
	}
	bot := tn.agent("bot")
	if _, err := nhiv1.NewNhiServiceClient(bot).GetAgent(bg, &nhiv1.GetAgentRequest{Id: "bot"}); err != nil {
		t.Fatal(err)
	}
	_, err := memoryv1.NewMemoryServiceClient(bot).Get(bg, &memoryv1.GetRequest{Id: "missing"})
	wantCode(t, err, codes.NotFound)

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS(t, tn.tlsDir(), "", "")}}
	get := func(path string) string {
		t.Helper()
		resp, err := client.Get("https://" + strings.Replace(tn.HTTPAddr().String(), "127.0.0.1", "localhost", 1) + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, err)
		}
		return string(b)
	}
	metrics := get("/metrics")
	for _, want := range []string{
		`nhi_requests_total{code="OK",method="GetAgent",status="ok"} 1`,
		`memory_requests_total{code="NotFound",method="Get",status="error"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if h := get("/healthz"); !strings.Contains(h, `"creto.nhi.v1.NhiService":"SERVING"`) || !strings.Contains(h, `"creto.memory.v1.MemoryService":"SERVING"`) {
		t.Fatalf("/healthz: %s", h)
	}
}
