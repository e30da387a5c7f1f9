package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/creto-systems/creto/abi"
	authzv1 "github.com/creto-systems/creto/api/creto/authz/v1"
	"github.com/creto-systems/creto/internal/pki"
	"github.com/creto-systems/creto/services/authz"
	"github.com/creto-systems/creto/services/nhi"
)

var bg = context.Background()

func nhiAgent(id string) nhi.AgentIdentity {
	return nhi.AgentIdentity{ID: id, Type: nhi.AgentTypeService, OwnerID: "alice"}
}

func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("got %v, want code %v", err, code)
	}
}

const readPolicy = `@id("agents-read") permit (principal is Agent, action == Action::"read", resource is Document);`

func check(t *testing.T, c authzv1.AuthorizationServiceClient, principal, action, resource string) *authzv1.CheckResponse {
	t.Helper()
	resp, err := c.Check(bg, &authzv1.CheckRequest{Principal: &authzv1.Principal{Id: principal}, Action: action, Resource: resource})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestOperatorManagesPoliciesAndTheyOutliveARestart(t *testing.T) {
	dir := t.TempDir()
	tn := startNode(t, dir, nil)
	c := authzv1.NewAuthorizationServiceClient(tn.operator())

	if d := check(t, c, "reader", "read", `Document::"q3"`).GetDecision(); d.GetDeny() == nil {
		t.Fatalf("no policy yet, got %v", d)
	}
	created, err := c.CreatePolicy(bg, &authzv1.CreatePolicyRequest{Text: readPolicy})
	if err != nil {
		t.Fatal(err)
	}
	if created.GetPolicy().GetId() != "agents-read" || created.GetPolicy().GetEffect() != "permit" {
		t.Fatalf("created %v", created.GetPolicy())
	}
	if d := check(t, c, "reader", "read", `Document::"q3"`).GetDecision(); d.GetAllow() == nil {
		t.Fatalf("after create: %v", d)
	}
	// A stale etag changes nothing.
	_, err = c.UpdatePolicy(bg, &authzv1.UpdatePolicyRequest{Id: "agents-read", Text: readPolicy, IfVersion: created.GetPolicy().GetVersion() + 1})
	wantCode(t, err, codes.FailedPrecondition)
	// A malformed policy is rejected whole.
	_, err = c.CreatePolicy(bg, &authzv1.CreatePolicyRequest{Id: "broken", Text: "permit (principal,"})
	wantCode(t, err, codes.InvalidArgument)
	_, err = c.GetPolicy(bg, &authzv1.GetPolicyRequest{Id: "broken"})
	wantCode(t, err, codes.NotFound)

	tn.stop()
	tn = startNode(t, dir, nil)
	c = authzv1.NewAuthorizationServiceClient(tn.operator())
	list, err := c.ListPolicies(bg, &authzv1.ListPoliciesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetPolicies()) != 1 || list.GetPolicies()[0].GetText() != readPolicy {
		t.Fatalf("after restart: %v", list.GetPolicies())
	}
	if d := check(t, c, "reader", "read", `Document::"q3"`).GetDecision(); d.GetAllow() == nil {
		t.Fatalf("after restart: %v", d)
	}
	if _, err := c.DeletePolicy(bg, &authzv1.DeletePolicyRequest{Id: "agents-read"}); err != nil {
		t.Fatal(err)
	}
	if d := check(t, c, "reader", "read", `Document::"q3"`).GetDecision(); d.GetDeny() == nil {
		t.Fatalf("after delete: %v", d)
	}
}

func TestListPoliciesPages(t *testing.T) {
	tn := startNode(t, "", nil)
	c := authzv1.NewAuthorizationServiceClient(tn.operator())
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		if _, err := c.CreatePolicy(bg, &authzv1.CreatePolicyRequest{Id: id, Text: `permit (principal, action, resource);`}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	token := ""
	for range 10 {
		page, err := c.ListPolicies(bg, &authzv1.ListPoliciesRequest{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.GetPolicies() {
			got = append(got, p.GetId())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	if strings.Join(got, ",") != "a,b,c,d,e" {
		t.Fatalf("pages gave %v", got)
	}
	_, err := c.ListPolicies(bg, &authzv1.ListPoliciesRequest{PageSize: 5000})
	wantCode(t, err, codes.InvalidArgument)
}

func TestCallersMustAuthenticate(t *testing.T) {
	tn := startNode(t, "", nil)
	_, err := authzv1.NewAuthorizationServiceClient(tn.anonymous()).Check(bg, &authzv1.CheckRequest{Principal: &authzv1.Principal{Id: "x"}, Action: "read", Resource: "r"})
	wantCode(t, err, codes.Unauthenticated)

	// A forged token is not an identity.
	forged := tn.dial(clientTLS(t, tn.tlsDir(), "", ""), grpcBearer("not-a-token"))
	_, err = authzv1.NewAuthorizationServiceClient(forged).Check(bg, &authzv1.CheckRequest{Principal: &authzv1.Principal{Id: "x"}, Action: "read", Resource: "r"})
	wantCode(t, err, codes.Unauthenticated)

	// A certificate from another CA does not get past the handshake.
	other := t.TempDir()
	if _, _, err := pki.EnsureDev(other, []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	stranger := tn.dial(clientTLS(t, tn.tlsDir(), other, pki.DefaultOperator))
	_, err = authzv1.NewAuthorizationServiceClient(stranger).Check(bg, &authzv1.CheckRequest{Principal: &authzv1.Principal{Id: "x"}, Action: "read", Resource: "r"})
	wantCode(t, err, codes.Unavailable)
}

func TestAgentsUseTheDataPlaneOnlyAndDenialsAreAudited(t *testing.T) {
	var mu sync.Mutex
	var denials []Denial
	tn := startNode(t, "", nil)
	tn.access.denied = func(_ context.Context, d Denial) { mu.Lock(); denials = append(denials, d); mu.Unlock() }
	if _, err := tn.authz.CreatePolicy(bg, "", readPolicy); err != nil {
		t.Fatal(err)
	}
	c := authzv1.NewAuthorizationServiceClient(tn.agent("reader"))

	if d := check(t, c, "reader", "read", `Document::"q3"`).GetDecision(); d.GetAllow() == nil {
		t.Fatalf("an agent checking itself: %v", d)
	}
	// An agent checks only for itself, and cannot assert a delegation chain.
	_, err := c.Check(bg, &authzv1.CheckRequest{Principal: &authzv1.Principal{Id: "someone-else"}, Action: "read", Resource: `Document::"q3"`})
	wantCode(t, err, codes.PermissionDenied)
	_, err = c.Check(bg, &authzv1.CheckRequest{Principal: &authzv1.Principal{Id: "reader"}, Action: "read", Resource: `Document::"q3"`,
		DelegationChain: []*authzv1.EntityRef{{Type: "User", Id: "ceo"}}})
	wantCode(t, err, codes.PermissionDenied)

	// Administration is refused, changes nothing, and is audited.
	_, err = c.CreatePolicy(bg, &authzv1.CreatePolicyRequest{Id: "mine", Text: `permit (principal, action, resource);`})
	wantCode(t, err, codes.PermissionDenied)
	_, err = c.RegisterExtension(bg, &authzv1.RegisterExtensionRequest{Module: []byte("\x00asm")})
	wantCode(t, err, codes.PermissionDenied)
	if n := len(tn.authz.Engine().ListPolicies()); n != 1 {
		t.Fatalf("%d policies after refused writes", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(denials) != 2 || denials[0].Caller.ID != "reader" || !strings.HasSuffix(denials[0].Method, "/CreatePolicy") || !strings.HasSuffix(denials[1].Method, "/RegisterExtension") {
		t.Fatalf("denials: %+v", denials)
	}
}

func TestAgentChecksThroughAVerifiedDelegation(t *testing.T) {
	tn := startNode(t, "", nil)
	if _, err := tn.authz.CreatePolicy(bg, "", `@id("for-alice") permit (principal is Agent, action == Action::"send", resource)
		when { context has delegation && context.delegation.origin.owner == User::"alice" };`); err != nil {
		t.Fatal(err)
	}
	conn := tn.agent("mailer")
	tn.agentToken("planner")
	d, err := tn.nhi.CreateDelegation(bg, "planner", "mailer", []string{"send"}, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := authzv1.NewAuthorizationServiceClient(conn)
	req := &authzv1.CheckRequest{Principal: &authzv1.Principal{Id: "mailer"}, Action: "send", Resource: `Mailbox::"out"`}
	if resp, err := c.Check(bg, req); err != nil || resp.GetDecision().GetDeny() == nil {
		t.Fatalf("without the delegation: %v %v", resp, err)
	}
	req.DelegationId = d.ID().String()
	if resp, err := c.Check(bg, req); err != nil || resp.GetDecision().GetAllow() == nil {
		t.Fatalf("with the delegation: %v %v", resp, err)
	}
	// Someone else's delegation is not the caller's.
	planner := authzv1.NewAuthorizationServiceClient(tn.agent("planner"))
	_, err = planner.Check(bg, &authzv1.CheckRequest{Principal: &authzv1.Principal{Id: "planner"}, Action: "send", Resource: `Mailbox::"out"`, DelegationId: d.ID().String()})
	wantCode(t, err, codes.PermissionDenied)
	if err := tn.nhi.RevokeDelegation(bg, d.ID()); err != nil {
		t.Fatal(err)
	}
	_, err = c.Check(bg, req)
	wantCode(t, err, codes.PermissionDenied)
}

func TestExtensionRegisteredOverTheNetworkChangesDecisionsAndOutlivesARestart(t *testing.T) {
	dir := t.TempDir()
	tn := startNode(t, dir, nil)
	c := authzv1.NewAuthorizationServiceClient(tn.operator())
	if _, err := c.CreatePolicy(bg, &authzv1.CreatePolicyRequest{Id: "all", Text: `permit (principal, action, resource);`}); err != nil {
		t.Fatal(err)
	}
	if d := check(t, c, "bot", "delete", `Doc::"d"`).GetDecision(); d.GetAllow() == nil {
		t.Fatalf("before: %v", d)
	}
	module := testGuest(t, "deny_delete", `{"name": "no-deletes"}`)
	reg, err := c.RegisterExtension(bg, &authzv1.RegisterExtensionRequest{Module: module})
	if err != nil {
		t.Fatal(err)
	}
	if reg.GetExtension().GetName() != "no-deletes" || len(reg.GetExtension().GetSha256()) != 64 {
		t.Fatalf("registered %v", reg.GetExtension())
	}
	if d := check(t, c, "bot", "delete", `Doc::"d"`).GetDecision(); d.GetDeny() == nil {
		t.Fatalf("with the extension: %v", d)
	}
	if d := check(t, c, "bot", "read", `Doc::"d"`).GetDecision(); d.GetAllow() == nil {
		t.Fatalf("with the extension, another action: %v", d)
	}
	_, err = c.RegisterExtension(bg, &authzv1.RegisterExtensionRequest{Module: module})
	wantCode(t, err, codes.AlreadyExists)
	_, err = c.RegisterExtension(bg, &authzv1.RegisterExtensionRequest{Module: []byte("not wasm")})
	wantCode(t, err, codes.InvalidArgument)

	tn.stop()
	tn = startNode(t, dir, nil)
	c = authzv1.NewAuthorizationServiceClient(tn.operator())
	if d := check(t, c, "bot", "delete", `Doc::"d"`).GetDecision(); d.GetDeny() == nil {
		t.Fatalf("after restart: %v", d)
	}
	list, err := c.ListExtensions(bg, &authzv1.ListExtensionsRequest{})
	if err != nil || len(list.GetExtensions()) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	if _, err := c.UnregisterExtension(bg, &authzv1.UnregisterExtensionRequest{Name: "no-deletes"}); err != nil {
		t.Fatal(err)
	}
	if d := check(t, c, "bot", "delete", `Doc::"d"`).GetDecision(); d.GetAllow() == nil {
		t.Fatalf("after unregistering: %v", d)
	}
	_, err = c.UnregisterExtension(bg, &authzv1.UnregisterExtensionRequest{Name: "no-deletes"})
	wantCode(t, err, codes.NotFound)
}

func TestOversizedRequestIsRefused(t *testing.T) {
	tn := startNode(t, "", func(c *Config) { c.Server.MaxRecvMsgBytes = 64 << 10 })
	c := authzv1.NewAuthorizationServiceClient(tn.operator())
	_, err := c.CreatePolicy(bg, &authzv1.CreatePolicyRequest{Id: "big", Text: strings.Repeat(" ", 100<<10)})
	wantCode(t, err, codes.ResourceExhausted)
}

func TestPlaintextIsLoopbackOnly(t *testing.T) {
	_, err := Open(bg, Config{Server: ServerConfig{DataDir: t.TempDir(), GRPCAddr: "0.0.0.0:0", Plaintext: true}}, nil)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("plaintext on 0.0.0.0: %v", err)
	}
}

func TestMissingNodeKeyWithSealedStoreFailsToStart(t *testing.T) {
	dir := t.TempDir()
	tn := startNode(t, dir, nil)
	tn.agentToken("someone")
	tn.stop()
	if err := os.Remove(filepath.Join(dir, "keys", "node.key")); err != nil {
		t.Fatal(err)
	}
	_, err := Open(bg, Config{Server: ServerConfig{DataDir: dir, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}}, nil)
	if !errors.Is(err, nhi.ErrSealed) {
		t.Fatalf("open without the node key: %v", err)
	}
}

func testGuest(t *testing.T, name, manifest string) []byte {
	t.Helper()
	return guestModule(t, filepath.Join("..", "engine", "testdata", "ext", name+".wasm"), manifest)
}

// guestModule reads a committed test guest and writes manifest into it.
func guestModule(t testing.TB, path, manifest string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := abi.ParseManifest([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	if b, err = abi.WriteManifest(b, m); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestShutdownDrainsCallsInFlight: a graceful stop lets calls already
// running finish, refuses new ones, and reports NOT_SERVING meanwhile.
func TestShutdownDrainsCallsInFlight(t *testing.T) {
	tn := startNode(t, "", nil)
	c := authzv1.NewAuthorizationServiceClient(tn.operator())
	if _, err := tn.authz.CreatePolicy(bg, "", readPolicy); err != nil {
		t.Fatal(err)
	}
	// A batch large enough to still be running when the stop begins.
	batch := &authzv1.CheckBatchRequest{}
	for i := range 1000 {
		batch.Requests = append(batch.Requests, &authzv1.CheckRequest{Principal: &authzv1.Principal{Id: "reader"}, Action: "read",
			Resource: `Document::"` + time.Duration(i).String() + `"`})
	}
	results := make(chan error, 8)
	for range cap(results) {
		go func() {
			resp, err := c.CheckBatch(bg, batch)
			if err == nil && len(resp.GetResponses()) != 1000 {
				err = status.Error(codes.DataLoss, "short batch")
			}
			results <- err
		}()
	}
	time.Sleep(20 * time.Millisecond)
	tn.stop()
	for range cap(results) {
		// Every call either completed in full or was refused before it
		// started; none was cut off half-way.
		if err := <-results; err != nil && status.Code(err) != codes.Unavailable {
			t.Fatalf("call during shutdown: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(bg, time.Second)
	defer cancel()
	if _, err := c.Check(ctx, &authzv1.CheckRequest{Principal: &authzv1.Principal{Id: "r"}, Action: "read", Resource: "x"}); status.Code(err) != codes.Unavailable {
		t.Fatalf("call after shutdown: %v", err)
	}
}

func TestExtensionsCanBeDisabled(t *testing.T) {
	dir := t.TempDir()
	off := func(c *Config) { c.Authz.ExtensionsEnabled = new(bool) }
	tn := startNode(t, dir, off)
	c := authzv1.NewAuthorizationServiceClient(tn.operator())
	_, err := c.RegisterExtension(bg, &authzv1.RegisterExtensionRequest{Module: testGuest(t, "deny_delete", `{"name": "x"}`)})
	wantCode(t, err, codes.FailedPrecondition)
	tn.stop()

	// A node that holds extensions does not start with them switched off.
	tn = startNode(t, dir, nil)
	if _, err := authzv1.NewAuthorizationServiceClient(tn.operator()).RegisterExtension(bg,
		&authzv1.RegisterExtensionRequest{Module: testGuest(t, "deny_delete", `{"name": "x"}`)}); err != nil {
		t.Fatal(err)
	}
	tn.stop()
	cfg := Config{Server: ServerConfig{DataDir: dir, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}}
	off(&cfg)
	if _, err := Open(bg, cfg, nil); !errors.Is(err, authz.ErrExtensionsDisabled) {
		t.Fatalf("open with stored extensions and extensions off: %v", err)
	}
}
