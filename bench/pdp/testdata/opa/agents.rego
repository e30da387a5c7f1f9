# Agents may read and write the documents in their team's folders when
# the document's classification is at most their clearance and the
# request's risk is below 5; a team's lead may also delete them. A risky
# delete is forbidden whatever allows it. Everything else is denied.
#
# The same policy is creto/agents.cedar and cerbos/*.yaml. Agents,
# folders and documents are in data.json, as Creto's are in its entity
# file: a request names them by id.
package authz

default allow := false

allow if {
	permit
	not forbidden
}

reason := "risky deletes are blocked" if forbidden

agent := data.agents[input.principal]

doc := data.docs[input.resource]

in_team if data.folders[doc.folder].team == agent.team

cleared if {
	doc.classification <= agent.clearance
	input.context.risk < 5
}

permit if {
	input.action in {"read", "write"}
	in_team
	cleared
}

permit if {
	input.action == "delete"
	agent.role == "lead"
	in_team
	cleared
}

forbidden if {
	input.action == "delete"
	input.context.risk >= 3
}
