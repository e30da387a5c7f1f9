package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/creto-systems/creto/entity"
)

// EntityRef names a Cedar entity: its type, possibly namespaced
// ("Acme::Agent"), and its id.
type EntityRef = entity.Ref

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

// validate checks the request's shape and size, cheaply enough to run
// before the decision cache.
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
	return nil
}

// validateJSON checks the request's JSON fields completely, so whether a
// request is valid never depends on which policies it meets. A flat object
// (strings, integers, booleans) is checked by a scan and decoded later only
// if a condition reads it; anything else is decoded now, by cedar-go, and
// kept. It runs only on a cache miss: a hit means these exact bytes were
// accepted before.
func (r *Request) validateJSON(l Limits) (decoded, error) {
	var d decoded
	var err error
	if d.context, err = checkObject(r.Context, l.MaxJSONDepth); err != nil {
		return d, invalidRequest("context: %v", err)
	}
	if d.attributes, err = checkObject(r.Principal.Attributes, l.MaxJSONDepth); err != nil {
		return d, invalidRequest("principal attributes: %v", err)
	}
	if bytes.Contains(r.Context, []byte(`"`+delegationKey+`"`)) {
		// Rare enough to afford a decode to see whether the key is at the
		// top level.
		if d.context == nil {
			ctx, err := decodeObject(r.Context)
			if err != nil {
				return d, invalidRequest("context: %v", err)
			}
			d.context = &ctx
		}
		if _, ok := d.context.Get(delegationKey); ok {
			return d, invalidRequest("context.%s is reserved for the delegation chain", delegationKey)
		}
	}
	return d, nil
}

// decoded holds the JSON fields validation had to decode, so evaluation
// does not decode them again; nil means "not decoded yet".
type decoded struct {
	context, attributes *cedar.Record
}

// checkObject validates b as a Cedar record: empty, a flat object, or an
// object cedar-go decodes (then returned) within maxDepth levels.
func checkObject(b []byte, maxDepth int) (*cedar.Record, error) {
	if len(b) == 0 || isFlatObject(b) {
		return nil, nil
	}
	if err := checkJSONDepth(b, maxDepth); err != nil {
		return nil, err
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	rec, err := decodeObject(b)
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// record returns the decoded form of b, decoding it now if validation did
// not have to.
func record(b []byte, dec *cedar.Record) (cedar.Record, error) {
	if dec != nil {
		return *dec, nil
	}
	return decodeObject(b)
}

// uids returns the request's principal, action and resource as Cedar
// entity uids.
func (r *Request) uids() [dims]cedar.EntityUID {
	return [dims]cedar.EntityUID{
		dimPrincipal: cedar.NewEntityUID(cedar.EntityType(r.Principal.Type), cedar.String(r.Principal.ID)),
		dimAction:    r.actionRef().UID(),
		dimResource:  r.Resource.UID(),
	}
}

// forCedar builds what cedar.Authorize needs: the request with its decoded
// context (and the delegation chain in it), and a view that shows the
// principal's request attributes. It is only called when a policy with
// conditions applies: scope-only policies never read either.
func (r *Request) forCedar(uids *[dims]cedar.EntityUID, view EntityView, dec *decoded) (cedar.Request, EntityView, error) {
	ctx, err := record(r.Context, dec.context)
	if err != nil {
		return cedar.Request{}, nil, invalidRequest("context: %v", err)
	}
	if _, ok := ctx.Get(delegationKey); ok {
		return cedar.Request{}, nil, invalidRequest("context.%s is reserved for the delegation chain", delegationKey)
	}
	if len(r.Delegation) > 0 {
		ctx = withDelegation(ctx, r.Delegation)
	}
	if len(r.Principal.Attributes) > 0 {
		attrs, err := record(r.Principal.Attributes, dec.attributes)
		if err != nil {
			return cedar.Request{}, nil, invalidRequest("principal attributes: %v", err)
		}
		view = withPrincipalAttributes(view, uids[dimPrincipal], attrs)
	}
	return cedar.Request{
		Principal: uids[dimPrincipal],
		Action:    uids[dimAction],
		Resource:  uids[dimResource],
		Context:   ctx,
	}, view, nil
}

// withDelegation adds context.delegation: {chain, depth, origin, delegator}.
// Cedar has no ordered list, so order is exposed through origin (the first
// link) and delegator (the last) besides the chain as a set.
func withDelegation(ctx cedar.Record, chain []EntityRef) cedar.Record {
	uids := make([]types.Value, len(chain))
	for i, d := range chain {
		uids[i] = d.UID()
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
