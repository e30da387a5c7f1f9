//go:build wasip1

// Command standing is a Go example extension over two platform modules:
// an agent acts only while the node's identity registry (creto:nhi/v1)
// lists it as active. Requests of agents that are unregistered,
// suspended, revoked or past their expiry are denied, and each refusal is
// reported to the node's audit log (creto:audit/v1) in the agent's name,
// with the status that decided it. People and services continue untouched.
//
// The registry's verified record decides, never attributes the caller put
// in the request; when the registry cannot answer the extension fails and
// its on_error ("deny") applies: in doubt, no.
package main

import (
	"errors"
	"strconv"

	"github.com/creto-systems/creto/sdk/go/creto"
)

func main() {}

// standing names a status in reasons and audit records.
var standing = map[creto.AgentStatus]string{
	creto.AgentSuspended: "suspended",
	creto.AgentRevoked:   "revoked",
	creto.AgentExpired:   "expired",
}

func init() {
	creto.Handle(func(r creto.Request) creto.Result {
		if string(r.PrincipalType()) != "Agent" {
			return creto.Continue()
		}
		id := string(r.PrincipalID())
		status, err := creto.AgentStatusOf(id)
		var state string
		switch {
		case errors.Is(err, creto.ErrNotFound):
			state = "not registered"
		case err != nil:
			return creto.Fail("agent-standing: the identity registry cannot answer: " + err.Error())
		case status == creto.AgentActive:
			return creto.Continue()
		default:
			if state = standing[status]; state == "" {
				state = "status " + strconv.Itoa(int(status))
			}
		}
		resource := string(r.ResourceType()) + "::" + strconv.Quote(string(r.ResourceID()))
		// The refusal stands whether or not the log takes the record: an
		// audit outage or the emit rate must not let an agent through.
		if err := creto.AuditEmit(creto.AuditEvent{
			What:     "agent.refused",
			Resource: resource,
			Why:      "agent is " + state,
			Outcome:  creto.OutcomeDenied,
			Context:  map[string]string{"action": string(r.ActionID()), "standing": state},
		}); err != nil {
			creto.Log(creto.Warn, "agent-standing: audit emit: "+err.Error())
		}
		return creto.Deny("agent-standing", "agent "+id+" is "+state+" in the identity registry")
	})
}
