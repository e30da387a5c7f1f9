package feed_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/audit"
	"github.com/creto-systems/creto/services/audit/feed"
	"github.com/creto-systems/creto/services/nhi"
)

// Example wires a node's audit trail: the engine's decisions and NHI's
// identity changes flow into one Logger over the node's audit log.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "feed-example")
	defer os.RemoveAll(dir)
	store, _ := kv.Open(filepath.Join(dir, "kv"))
	defer store.Close()
	sealer, _ := nhi.CreateFileSealer(filepath.Join(dir, "node.key"))
	defer sealer.Close()

	log, _ := audit.Open(ctx, store, sealer, audit.Config{})
	defer log.Close()
	logger, _ := audit.NewLogger(log, audit.LoggerConfig{SpoolPath: filepath.Join(dir, "audit.spool")})

	ids, _ := nhi.New(ctx, store, sealer, nhi.Config{Events: feed.NHI(logger)})
	defer ids.Close()
	e := engine.New(engine.WithEntities(ids.Entities(nil)), engine.WithObserver(feed.Engine(logger)))
	defer e.Close()
	e.CreatePolicy(ctx, "mail", `permit (principal is Agent, action == Action::"send_email", resource);`)

	// The gRPC layer attaches the authenticated caller to the context.
	ids.Register(audit.WithCaller(ctx, "admin"), nhi.AgentIdentity{ID: "mailer", Type: nhi.AgentTypeService, OwnerID: "ops"})
	for _, action := range []string{"send_email", "delete_mailbox"} {
		e.Check(ctx, engine.Request{
			Principal: engine.Principal{Type: "Agent", ID: "mailer"},
			Action:    engine.EntityRef{ID: action},
			Resource:  engine.EntityRef{Type: "Mailbox", ID: "outbound"},
		})
	}
	logger.Close(ctx) // delivers what is buffered

	// Each identity reads its own records; an auditor role is an
	// audit.Config.Authorizer grant.
	for _, who := range []string{"admin", "mailer"} {
		res, _ := log.Query(ctx, who, audit.QueryRequest{Who: who})
		for _, r := range res.Records {
			fmt.Println(r.Index, r.Source, r.Who, r.What, r.Resource, r.Outcome)
		}
	}
	// Output:
	// 0 nhi admin nhi.agent_registered Agent::"mailer" success
	// 1 authz mailer send_email Mailbox::"outbound" success
	// 2 authz mailer delete_mailbox Mailbox::"outbound" denied
}
