package feed

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/creto-systems/creto/entity"
	"github.com/creto-systems/creto/services/audit"
	"github.com/creto-systems/creto/services/nhi"
)

// NodeIdentity is the Who of an identity change made with no
// authenticated caller in its context (audit.WithCaller): by the node's
// operator, through the embedding program or the CLI.
const NodeIdentity = "node"

// NHI returns the nhi.EventHandler that audits every identity change
// through l as a critical event: never dropped, spooled to disk when it
// cannot be buffered (set it as nhi.Config.Events).
//
// A change becomes a record from source "nhi": What is the event kind
// ("nhi.agent_registered", …), Who the caller attached to the context
// with audit.WithCaller (NodeIdentity if none), Resource the agent
// (Agent::"id"), delegation (Delegation::"id") or token (Token::"id")
// changed, Outcome success, Timestamp the change's time; Context holds
// the event's other facts (owner, type, status, key_version, agent,
// delegatee, permissions, expires_at, revoked). Tokens appear only by id.
func NHI(l *audit.Logger) nhi.EventHandler {
	return nhi.EventHandlerFunc(func(ctx context.Context, e nhi.Event) {
		_ = l.Emit(ctx, audit.Event{Class: audit.Critical, Record: nhiRecord(ctx, &e)})
	})
}

func nhiRecord(ctx context.Context, e *nhi.Event) audit.Record {
	who, ok := audit.CallerFrom(ctx)
	if !ok {
		who = NodeIdentity
	}
	r := audit.Record{
		Timestamp: e.At,
		Source:    "nhi",
		Who:       id(who, audit.MaxIDLen),
		What:      string(e.Kind),
		Outcome:   audit.Success,
		Context:   map[string]string{},
	}
	put := func(k, v string) {
		if v != "" {
			r.Context[k] = clip(v, audit.MaxContextValueLen)
		}
	}
	switch {
	case e.DelegationID != "":
		r.Resource = ref(entity.Ref{Type: "Delegation", ID: e.DelegationID})
		put("agent", e.AgentID)
	case e.TokenID != "":
		r.Resource = ref(entity.Ref{Type: "Token", ID: e.TokenID})
		put("agent", e.AgentID)
	case e.AgentID != "":
		r.Resource = ref(entity.Ref{Type: "Agent", ID: e.AgentID})
	default:
		r.Resource = "Node"
	}
	put("owner", e.OwnerID)
	put("type", string(e.Type))
	put("status", string(e.Status))
	put("delegatee", e.DelegateeID)
	put("permissions", strings.Join(e.Permissions, ","))
	if e.KeyVersion != 0 {
		put("key_version", strconv.FormatUint(uint64(e.KeyVersion), 10))
	}
	if !e.ExpiresAt.IsZero() {
		put("expires_at", e.ExpiresAt.UTC().Format(time.RFC3339Nano))
	}
	if e.Revoked != 0 {
		put("revoked", strconv.Itoa(e.Revoked))
	}
	return r
}
