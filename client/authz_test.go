package client_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creto-systems/creto/abi"
	authzv1 "github.com/creto-systems/creto/api/creto/authz/v1"
	"github.com/creto-systems/creto/client"
)

func TestAuthzDecisions(t *testing.T) {
	tn := startNode(t, "")
	tokens := tn.seed("reader")
	c := tn.clients(t, tn.config(tn.GRPCAddr().String())).Authz

	d, err := c.Check(bg, agentCheck("reader", "q3"))
	if err != nil || !d.Allowed() || d.Source != client.SourceNode || d.MatchedPolicies[0] != "agents-read" {
		t.Fatalf("allowed read: %+v %v", d, err)
	}
	again, err := c.Check(bg, agentCheck("reader", "q3"))
	if err != nil || !again.Allowed() || again.Source != client.SourceNodeCache {
		t.Fatalf("the node's own cache answers the same check: %+v %v", again, err)
	}

	d, err = c.Check(bg, client.CheckRequest{Principal: client.Principal{ID: "reader"}, Action: "write", Resource: `Document::"q3"`})
	if err != nil || d.Allowed() || d.Kind != client.Deny || d.Source != client.SourceNode {
		t.Fatalf("a write no policy permits is the node's Deny, not an error: %+v %v", d, err)
	}

	ds, err := c.CheckBatch(bg, []client.CheckRequest{agentCheck("reader", "a"), {Principal: client.Principal{ID: "reader"}, Action: "delete", Resource: "x"}})
	if err != nil || len(ds) != 2 || !ds[0].Allowed() || ds[1].Allowed() {
		t.Fatalf("batch: %+v %v", ds, err)
	}

	// A malformed request is the node's INVALID_ARGUMENT: denied, typed,
	// and not a failure of the service.
	d, err = c.Check(bg, client.CheckRequest{Principal: client.Principal{ID: "reader"}, Action: "read", Resource: `Document::"unterminated`})
	if !errors.Is(err, client.ErrInvalidRequest) || d.Allowed() || d.Source != client.SourceFailSecure {
		t.Fatalf("malformed resource: %+v %v", d, err)
	}
	// A context that cannot be encoded never leaves the client.
	before := c.Stats().Attempts
	d, err = c.Check(bg, client.CheckRequest{Principal: client.Principal{ID: "reader"}, Action: "read", Resource: "x",
		Context: map[string]any{"f": func() {}}})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Kind != client.ErrInvalidRequest || ce.Attempts != 0 || d.Allowed() || c.Stats().Attempts != before {
		t.Fatalf("unencodable context: %+v %v", d, err)
	}

	// An agent checking another agent's request is refused by the node:
	// ErrDenied, security-critical, and a Deny decision.
	agent := tn.clients(t, tn.agentConfig(tn.GRPCAddr().String()), client.WithBearerToken(tokens["reader"])).Authz
	d, err = agent.Check(bg, agentCheck("someone-else", "q3"))
	if !errors.Is(err, client.ErrDenied) || !client.IsSecurityCritical(err) || client.IsRetryable(err) || d.Allowed() {
		t.Fatalf("agent checking for another: %+v %v", d, err)
	}
	if d, err := agent.Check(bg, agentCheck("reader", "q3")); err != nil || !d.Allowed() {
		t.Fatalf("agent checking for itself: %+v %v", d, err)
	}
	if s := c.Stats(); s.Breaker != "closed" {
		t.Fatalf("denials and bad requests left the circuit %s", s.Breaker)
	}
}

func TestAuthzCanceledCallDenies(t *testing.T) {
	tn := startNode(t, "")
	tn.seed()
	c := tn.clients(t, tn.config(tn.GRPCAddr().String())).Authz
	ctx, cancel := context.WithCancel(bg)
	cancel()
	d, err := c.Check(ctx, agentCheck("reader", "q3"))
	if !errors.Is(err, client.ErrCanceled) || !errors.Is(err, context.Canceled) || d.Allowed() || c.Stats().Attempts != 0 {
		t.Fatalf("canceled: %+v %v %+v", d, err, c.Stats())
	}
}

// RegisterExtension loads a Wasm extension whose decisions the client then
// sees; registering it again is ErrAlreadyExists, and a failed extension
// with on_error "deny" is an ordinary Deny naming it.
func TestAuthzRegisterExtension(t *testing.T) {
	tn := startNode(t, "")
	tn.seed()
	c := tn.clients(t, tn.config(tn.GRPCAddr().String())).Authz
	raw, err := os.ReadFile(filepath.Join("..", "engine", "testdata", "ext", "deny_delete.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	module, err := abi.WriteManifest(raw, abi.Manifest{Name: "no-deletes"})
	if err != nil {
		t.Fatal(err)
	}
	// Cedar permits deletes; the extension then has its say.
	if _, err := authzv1.NewAuthorizationServiceClient(tn.operator()).CreatePolicy(bg, &authzv1.CreatePolicyRequest{
		Text: `@id("agents-delete") permit (principal is Agent, action == Action::"delete", resource is Document);`}); err != nil {
		t.Fatal(err)
	}
	if d, err := c.Check(bg, client.CheckRequest{Principal: client.Principal{ID: "reader"}, Action: "delete", Resource: `Document::"q3"`}); err != nil || !d.Allowed() {
		t.Fatalf("before the extension: %+v %v", d, err)
	}
	x, err := c.RegisterExtension(bg, module, client.ExtensionOptions{})
	if err != nil || x.Name != "no-deletes" || len(x.SHA256) != 64 || x.RegisteredAt.IsZero() {
		t.Fatalf("register: %+v %v", x, err)
	}
	d, err := c.Check(bg, client.CheckRequest{Principal: client.Principal{ID: "reader"}, Action: "delete", Resource: `Document::"q3"`})
	if err != nil || d.Kind != client.Deny || d.Reason != "deletes are blocked" || d.Source != client.SourceNode {
		t.Fatalf("the extension's deny: %+v %v", d, err)
	}
	if _, err := c.RegisterExtension(bg, module, client.ExtensionOptions{}); !errors.Is(err, client.ErrAlreadyExists) {
		t.Fatalf("twice: %v", err)
	}

	trap, err := os.ReadFile(filepath.Join("..", "engine", "testdata", "ext", "trap.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if trap, err = abi.WriteManifest(trap, abi.Manifest{Name: "trapper"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterExtension(bg, trap, client.ExtensionOptions{OnError: "deny"}); err != nil {
		t.Fatal(err)
	}
	d, err = c.Check(bg, agentCheck("reader", "q3"))
	if err != nil || d.Kind != client.Deny || d.PolicyID != "ext:trapper" || !strings.Contains(d.Reason, "failed") {
		t.Fatalf("a failing extension with on_error deny: %+v %v", d, err)
	}
}
