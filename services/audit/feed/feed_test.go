package feed_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/audit"
	"github.com/creto-systems/creto/services/audit/feed"
	"github.com/creto-systems/creto/services/nhi"
)

var bg = context.Background()

// node is what a node wires together: one store, the audit log, its
// Logger, and a sealer for both the log and NHI.
type node struct {
	store  kv.Store
	sealer *nhi.FileSealer
	log    *audit.Service
	logger *audit.Logger
}

func newNode(t *testing.T) *node {
	t.Helper()
	dir := t.TempDir()
	st, err := kv.Open(filepath.Join(dir, "kv"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sealer, err := nhi.CreateFileSealer(filepath.Join(dir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sealer.Close() })
	everyone := audit.AuthorizerFunc(func(context.Context, string, string, audit.Access) error { return nil })
	log, err := audit.Open(bg, st, sealer, audit.Config{Authorizer: everyone})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	logger, err := audit.NewLogger(log, audit.LoggerConfig{SpoolPath: filepath.Join(dir, "audit.spool"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logger.Close(bg) })
	return &node{store: st, sealer: sealer, log: log, logger: logger}
}

// records flushes the Logger and returns the whole log.
func (n *node) records(t *testing.T) []audit.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	if err := n.logger.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := n.log.Query(bg, "auditor", audit.QueryRequest{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Records
}

func check(t *testing.T, e *engine.Engine, r engine.Request) engine.Decision {
	t.Helper()
	d, _ := e.Check(bg, r)
	return d
}

func TestEngineDecisionsAreAudited(t *testing.T) {
	n := newNode(t)
	e := engine.New(engine.WithObserver(feed.Engine(n.logger)))
	t.Cleanup(func() { e.Close() })
	_, err := e.ApplyPolicies(bg,
		engine.Change{Op: engine.OpCreate, ID: "read", Text: `permit(principal, action == Action::"read", resource);`},
		engine.Change{Op: engine.OpCreate, ID: "no-delete", Text: `@reason("deletes need approval") forbid(principal, action == Action::"delete", resource);`},
	)
	if err != nil {
		t.Fatal(err)
	}
	read := engine.Request{
		Principal:  engine.Principal{Type: "Agent", ID: "mailer"},
		Delegation: []engine.EntityRef{{Type: "User", ID: "alice"}, {Type: "Agent", ID: "planner"}},
		Action:     engine.EntityRef{ID: "read"},
		Resource:   engine.EntityRef{Type: "Doc", ID: "q3"},
		TraceID:    "trace-7",
	}
	check(t, e, read)
	check(t, e, read) // cached
	del := read
	del.Action.ID = "delete"
	check(t, e, del)
	hostile := engine.Request{Principal: engine.Principal{Type: "Agent", ID: "evil\nagent"}, Action: engine.EntityRef{ID: "read"}, Resource: engine.EntityRef{Type: "Doc", ID: "x"}}
	check(t, e, hostile)
	invalid := read
	invalid.Context = []byte(`{"delegation": 1}`)
	check(t, e, invalid)

	rs := n.records(t)
	if len(rs) != 5 {
		t.Fatalf("%d records", len(rs))
	}
	r := rs[0]
	if r.Source != "authz" || r.Who != "mailer" || r.What != "read" || r.Resource != `Doc::"q3"` || r.Outcome != audit.Success ||
		r.TraceID != "trace-7" || strings.Join(r.DelegationChain, ",") != `User::"alice",Agent::"planner"` ||
		r.Context["decision"] != "allow" || r.Context["principal_type"] != "Agent" || r.Context["cached"] != "" {
		t.Errorf("allow: %+v", r)
	}
	if rs[1].Context["cached"] != "true" {
		t.Errorf("cached allow: %+v", rs[1])
	}
	if r := rs[2]; r.Outcome != audit.Denied || r.PolicyID != "no-delete" || r.Why != "deletes need approval" || r.What != "delete" || r.Context["decision"] != "deny" {
		t.Errorf("deny: %+v", r)
	}
	if r := rs[3]; r.Who != `"evil\nagent"` {
		t.Errorf("a hostile id must be logged quoted, not dropped: %+v", r)
	}
	if r := rs[4]; r.Outcome != audit.Failure || !strings.Contains(r.Why, "reserved") {
		t.Errorf("invalid request: %+v", r)
	}
	if st := n.logger.Stats(); st.Invalid != 0 || st.Dropped != 0 {
		t.Fatalf("logger stats %+v", st)
	}
}

func TestExtensionFailuresAreAudited(t *testing.T) {
	n := newNode(t)
	e := engine.New(engine.WithObserver(feed.Engine(n.logger)))
	t.Cleanup(func() { e.Close() })
	if _, err := e.ApplyPolicies(bg, engine.Change{Op: engine.OpCreate, ID: "all", Text: `permit(principal, action, resource);`}); err != nil {
		t.Fatal(err)
	}
	module, err := os.ReadFile(filepath.Join("..", "..", "..", "engine", "testdata", "ext", "trap.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := abi.ParseManifest([]byte(`{"name": "flaky", "on_error": "skip"}`))
	if err != nil {
		t.Fatal(err)
	}
	if module, err = abi.WriteManifest(module, m); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RegisterExtension(bg, module, engine.ExtensionConfig{}); err != nil {
		t.Fatal(err)
	}
	check(t, e, engine.Request{Principal: engine.Principal{Type: "Agent", ID: "a"}, Action: engine.EntityRef{ID: "read"}, Resource: engine.EntityRef{Type: "Doc", ID: "d"}})
	rs := n.records(t)
	if len(rs) != 2 {
		t.Fatalf("%d records", len(rs))
	}
	if r := rs[0]; r.Source != "ext:flaky" || r.What != "authz.extension_failed" || r.Outcome != audit.Failure || r.Context["class"] != "trap" || r.Context["action"] != "read" || r.Who != "a" {
		t.Errorf("extension failure: %+v", r)
	}
	if r := rs[1]; r.What != "read" || r.Outcome != audit.Success {
		t.Errorf("the decision after it: %+v", r)
	}
}

func TestNHIChangesAreAudited(t *testing.T) {
	n := newNode(t)
	ids, err := nhi.New(bg, n.store, n.sealer, nhi.Config{Events: feed.NHI(n.logger)})
	if err != nil {
		t.Fatal(err)
	}
	defer ids.Close()
	admin := audit.WithCaller(bg, "admin")
	for _, a := range []string{"planner", "mailer"} {
		if _, err := ids.Register(admin, nhi.AgentIdentity{ID: a, Type: nhi.AgentTypeService, OwnerID: "ops"}); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := ids.IssueToken(bg, "mailer", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ids.CreateDelegation(audit.WithCaller(bg, "planner"), "planner", "mailer", []string{"send_email"}, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rs := n.records(t)
	if len(rs) != 4 {
		t.Fatalf("%d records", len(rs))
	}
	if r := rs[0]; r.Source != "nhi" || r.What != "nhi.agent_registered" || r.Who != "admin" || r.Resource != `Agent::"planner"` ||
		r.Context["owner"] != "ops" || r.Context["type"] != "service" || r.Context["key_version"] != "1" || r.Outcome != audit.Success {
		t.Errorf("registered: %+v", r)
	}
	if r := rs[2]; r.What != "nhi.token_issued" || r.Who != feed.NodeIdentity || !strings.HasPrefix(r.Resource, `Token::"`) || r.Context["agent"] != "mailer" || r.Context["expires_at"] == "" {
		t.Errorf("token issued: %+v", r)
	}
	if r := rs[3]; r.What != "nhi.delegation_created" || r.Who != "planner" || r.Resource != `Delegation::"`+d.ID().String()+`"` || r.Context["delegatee"] != "mailer" || r.Context["permissions"] != "send_email" {
		t.Errorf("delegation: %+v", r)
	}
	all, _ := json.Marshal(rs)
	if strings.Contains(string(all), tok[:16]) {
		t.Fatal("the audit log holds the token")
	}
	if st := n.logger.Stats(); st.Emitted != 4 || st.Delivered != 4 {
		t.Fatalf("stats %+v", st)
	}
}
