package feed

import (
	"strings"

	"github.com/creto-systems/creto/internal/caller"
	"github.com/creto-systems/creto/services/audit"
)

// CallDenied returns the record of a call the node's meta-policies
// refused: source "node", Who the caller as audit.CallerID names it (an
// agent by its id, so it finds its own refusals), What "node.call_denied",
// Resource the method, Method::"/creto.vault.v1.VaultAdminService/Seal",
// Outcome denied, Why the reason; Context["caller_kind"] is Operator or
// Agent.
func CallDenied(who caller.Identity, method, reason string) audit.Record {
	service, _, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	return audit.Record{
		Source: "node", Who: id(audit.CallerID(who), audit.MaxIDLen), What: "node.call_denied",
		Resource: id(`Method::"`+method+`"`, audit.MaxResourceLen), Why: text(reason), Outcome: audit.Denied,
		Context: map[string]string{"caller_kind": who.Kind.String(), "service": clip(service, audit.MaxContextValueLen)},
	}
}
