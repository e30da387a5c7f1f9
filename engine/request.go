package engine

import (
	"encoding/json"
	"fmt"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
)

// EntityRef names a Cedar entity: its type, possibly namespaced
// ("Acme::Agent"), and its id.
type EntityRef struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

func (r EntityRef) uid() cedar.EntityUID {
	return cedar.NewEntityUID(cedar.EntityType(r.Type), cedar.String(r.ID))
}

// Principal is the agent making a request.
type Principal struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	// Attributes, a JSON object, are laid over the attributes the entity
	// provider holds for this principal (the request's value wins), so a
	// caller can pass facts about the agent it has already verified.
	Attributes json.RawMessage `json:"attributes,omitempty"`
}

// Request asks whether Principal may perform Action on Resource.
type Request struct {
	Principal Principal `json:"principal"`
	// Delegation is the chain of identities the principal acts for, the
	// origin (usually a human) first and the immediate delegator last.
	// Policies see it as context.delegation (see docs/policies.md).
	Delegation []EntityRef `json:"delegation,omitempty"`
	// Action's Type defaults to "Action" when empty.
	Action   EntityRef `json:"action"`
	Resource EntityRef `json:"resource"`
	// Context is a JSON object (Cedar's entity-escape forms __entity and
	// __extn are understood). Empty means {}.
	Context json.RawMessage `json:"context,omitempty"`
	// TraceID correlates the check with the caller's trace; it does not
	// influence the decision.
	TraceID string `json:"trace_id,omitempty"`
}

// delegationKey is the context attribute the engine fills with the
// delegation chain; a request may not set it itself.
const delegationKey = "delegation"

// Limits bound what a request may carry, so a hostile caller cannot make the
// engine parse or hash unbounded input.
type Limits struct {
	// MaxRequestBytes caps the summed size of every field of a request.
	MaxRequestBytes int
	// MaxJSONDepth caps nesting in Context and Principal.Attributes.
	MaxJSONDepth int
	// MaxDelegationDepth caps the length of the delegation chain.
	MaxDelegationDepth int
}

// DefaultLimits are generous for real agents and small enough that no single
// request can hurt the engine.
var DefaultLimits = Limits{
	MaxRequestBytes:    1 << 20,
	MaxJSONDepth:       32,
	MaxDelegationDepth: 10,
}

func (r *Request) actionRef() EntityRef {
	if r.Action.Type == "" {
		return EntityRef{Type: "Action", ID: r.Action.ID}
	}
	return r.Action
}

// validate checks everything that can be checked without parsing JSON.
func (r *Request) validate(l Limits) error {
	switch {
	// Cedar allows empty ids, so only the types are required.
	case r.Principal.Type == "":
		return invalidRequest("principal needs a type")
	case r.Resource.Type == "":
		return invalidRequest("resource needs a type")
	case len(r.Delegation) > l.MaxDelegationDepth:
		return invalidRequest("delegation chain has %d links, the limit is %d", len(r.Delegation), l.MaxDelegationDepth)
	}
	size := len(r.Principal.Type) + len(r.Principal.ID) + len(r.Principal.Attributes) +
		len(r.Action.Type) + len(r.Action.ID) + len(r.Resource.Type) + len(r.Resource.ID) +
		len(r.Context) + len(r.TraceID)
	for _, d := range r.Delegation {
		if d.Type == "" {
			return invalidRequest("every delegation link needs a type")
		}
		size += len(d.Type) + len(d.ID)
	}
	if size > l.MaxRequestBytes {
		return invalidRequest("request is %d bytes, the limit is %d", size, l.MaxRequestBytes)
	}
	if err := checkJSONDepth(r.Context, l.MaxJSONDepth); err != nil {
		return invalidRequest("context: %v", err)
	}
	if err := checkJSONDepth(r.Principal.Attributes, l.MaxJSONDepth); err != nil {
		return invalidRequest("principal attributes: %v", err)
	}
	return nil
}

// cedarRequest converts r (already validated) into Cedar's request.
func (r *Request) cedarRequest() (cedar.Request, error) {
	ctx, err := parseObject(r.Context)
	if err != nil {
		return cedar.Request{}, invalidRequest("context: %v", err)
	}
	if len(r.Delegation) > 0 {
		if _, ok := ctx.Get(delegationKey); ok {
			return cedar.Request{}, invalidRequest("context.%s is reserved for the delegation chain", delegationKey)
		}
		ctx = withDelegation(ctx, r.Delegation)
	} else if len(r.Context) > 0 {
		if _, ok := ctx.Get(delegationKey); ok {
			return cedar.Request{}, invalidRequest("context.%s is reserved for the delegation chain", delegationKey)
		}
	}
	return cedar.Request{
		Principal: cedar.NewEntityUID(cedar.EntityType(r.Principal.Type), cedar.String(r.Principal.ID)),
		Action:    r.actionRef().uid(),
		Resource:  r.Resource.uid(),
		Context:   ctx,
	}, nil
}

// withDelegation adds context.delegation: {chain, depth, origin, delegator}.
// Cedar has no ordered list, so order is exposed through origin (the first
// link) and delegator (the last) besides the chain as a set.
func withDelegation(ctx cedar.Record, chain []EntityRef) cedar.Record {
	uids := make([]types.Value, len(chain))
	for i, d := range chain {
		uids[i] = d.uid()
	}
	m := make(types.RecordMap, ctx.Len()+1)
	for k, v := range ctx.All() {
		m[k] = v
	}
	m[delegationKey] = types.NewRecord(types.RecordMap{
		"chain":     types.NewSet(uids...),
		"depth":     types.Long(len(chain)),
		"origin":    uids[0],
		"delegator": uids[len(uids)-1],
	})
	return types.NewRecord(m)
}

// parseObject decodes a JSON object into a Cedar record; empty input is {}.
func parseObject(b json.RawMessage) (cedar.Record, error) {
	if len(b) == 0 {
		return cedar.Record{}, nil
	}
	var rec cedar.Record
	if err := rec.UnmarshalJSON(b); err != nil {
		return cedar.Record{}, err
	}
	return rec, nil
}

// checkJSONDepth rejects JSON nested deeper than max before any decoder
// recurses into it. It does not validate the JSON; the decoder does.
func checkJSONDepth(b []byte, max int) error {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString:
			if c == '\\' {
				escaped = true
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > max {
				return fmt.Errorf("nested deeper than %d levels", max)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}
