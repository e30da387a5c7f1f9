package engine

import (
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"time"

	cedar "github.com/cedar-policy/cedar-go"
	cedarast "github.com/cedar-policy/cedar-go/ast"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// Policy is a stored policy as the store reports it.
type Policy struct {
	ID string
	// Text is the Cedar source the policy was written with.
	Text string
	// Version is the policy's etag: it changes on every write of the policy
	// and is what UpdatePolicy and DeletePolicy compare for optimistic
	// concurrency.
	Version uint64
	// Effect is "permit" or "forbid".
	Effect string
	// Annotations are the policy's Cedar annotations.
	Annotations map[string]string
}

// Annotation keys the engine gives meaning to (docs/policies.md).
const (
	annotationID        = "id"
	annotationReason    = "reason"
	annotationOversight = "oversight"
	annotationApprovers = "approvers"
	annotationTimeout   = "timeout"
)

// DefaultOversightTimeout applies when an @oversight policy has no @timeout.
const DefaultOversightTimeout = 15 * time.Minute

// compiled is a parsed, validated policy with everything the check path
// needs precomputed. It is immutable once built and shared between
// snapshots, so a write never re-parses untouched policies.
type compiled struct {
	Policy
	policy *cedar.Policy
	// conditions is the policy with its scope widened to "any": once the
	// index has matched the scope exactly, Cedar need only evaluate the
	// when/unless clauses (scopes cannot raise errors, so the outcome and
	// the errors are the same). Nil for scope-only policies.
	conditions *cedar.Policy
	permit     bool
	scopeOnly  bool // no when/unless: the scope alone decides whether it matches
	principal  scope
	action     scope
	resource   scope
	reason     string     // @reason, for forbids
	oversight  *Oversight // from @oversight/@approvers/@timeout, nil if none
}

// parsePolicy parses text, which must hold exactly one policy, and compiles
// it under id (or its @id annotation when id is empty).
func parsePolicy(id, file, text string) (*compiled, error) {
	list, err := cedar.NewPolicyListFromBytes(file, []byte(text))
	if err != nil {
		return nil, syntaxError(id, file, err)
	}
	if len(list) != 1 {
		return nil, &PolicyError{Kind: ErrInvalidPolicy, PolicyID: id, File: file,
			Message: fmt.Sprintf("the text holds %d policies; a policy change takes exactly one", len(list))}
	}
	return compilePolicy(id, text, list[0])
}

// ParseFile splits a file of Cedar policies into sources, naming each by its
// @id annotation or else "<file>#<n>" (n counts from 0 in file order).
func ParseFile(file string, text []byte) ([]PolicySource, error) {
	list, err := cedar.NewPolicyListFromBytes(file, text)
	if err != nil {
		return nil, syntaxError("", file, err)
	}
	out := make([]PolicySource, 0, len(list))
	for i, p := range list {
		id := string(p.Annotations()[annotationID])
		if id == "" {
			id = file + "#" + strconv.Itoa(i)
		}
		out = append(out, PolicySource{ID: id, Text: string(p.MarshalCedar()), File: file, policy: p})
	}
	return out, nil
}

// PolicySource is one policy to load: its id and Cedar text.
type PolicySource struct {
	ID   string
	Text string
	// File names where the text came from, for error messages.
	File   string
	policy *cedar.Policy // already parsed, when it came from ParseFile
}

func (s PolicySource) compile() (*compiled, error) {
	if s.policy != nil {
		return compilePolicy(s.ID, s.Text, s.policy)
	}
	return parsePolicy(s.ID, s.File, s.Text)
}

func compilePolicy(id, text string, p *cedar.Policy) (*compiled, error) {
	a := p.Annotations()
	annotations := make(map[string]string, len(a))
	for k, v := range a {
		annotations[string(k)] = string(v)
	}
	ast := (*xast.Policy)(p.AST())
	invalid := func(msg string) error {
		return &PolicyError{Kind: ErrInvalidPolicy, PolicyID: id, File: ast.Position.Filename,
			Line: ast.Position.Line, Column: ast.Position.Column, Message: msg}
	}
	if tagged, ok := annotations[annotationID]; ok {
		switch {
		case id == "":
			id = tagged
		case id != tagged:
			return nil, invalid(fmt.Sprintf("the request names id %q but the policy's @id is %q", id, tagged))
		}
	}
	if id == "" {
		return nil, invalid("a policy needs an id: give one or annotate the policy with @id")
	}
	c := &compiled{
		Policy: Policy{
			ID:          id,
			Text:        text,
			Effect:      "permit",
			Annotations: annotations,
		},
		policy:    p,
		permit:    p.Effect() == cedar.Permit,
		scopeOnly: len(ast.Conditions) == 0,
		principal: scopeOf(ast.Principal),
		action:    scopeOf(ast.Action),
		resource:  scopeOf(ast.Resource),
		reason:    annotations[annotationReason],
	}
	if !c.permit {
		c.Effect = "forbid"
	}
	if !c.scopeOnly {
		unscoped := *ast
		unscoped.Principal, unscoped.Action, unscoped.Resource = xast.ScopeTypeAll{}, xast.ScopeTypeAll{}, xast.ScopeTypeAll{}
		c.conditions = cedar.NewPolicyFromAST((*cedarast.Policy)(&unscoped))
	}
	o, err := oversightOf(annotations)
	if err != nil {
		return nil, invalid(err.Error())
	}
	if o != nil && !c.permit {
		return nil, invalid("@oversight belongs on a permit: it says what a human must approve before the permit takes effect")
	}
	c.oversight = o
	return c, nil
}

// oversightOf reads @oversight, @approvers and @timeout. @approvers and
// @timeout without @oversight are a mistake worth reporting: the author
// clearly meant the policy to require approval.
func oversightOf(a map[string]string) (*Oversight, error) {
	req, ok := a[annotationOversight]
	_, hasApprovers := a[annotationApprovers]
	_, hasTimeout := a[annotationTimeout]
	if !ok {
		if hasApprovers || hasTimeout {
			return nil, fmt.Errorf("@approvers and @timeout need an @oversight annotation")
		}
		return nil, nil
	}
	if strings.TrimSpace(req) == "" {
		return nil, fmt.Errorf("@oversight needs a requirement, for example @oversight(\"two-person\")")
	}
	o := &Oversight{Requirement: req, Timeout: DefaultOversightTimeout}
	for _, name := range strings.Split(a[annotationApprovers], ",") {
		if name = strings.TrimSpace(name); name != "" {
			o.Approvers = append(o.Approvers, name)
		}
	}
	if t, ok := a[annotationTimeout]; ok {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("@timeout(%q) is not a positive duration such as \"30m\"", t)
		}
		o.Timeout = d
	}
	return o, nil
}

// cedarPosition matches the position cedar-go writes into a parse error
// ("parser error: parse error at <input>:3:22 ..."); it names no file.
var cedarPosition = regexp.MustCompile(`^(?:parser error: )?parse error at \S*:(\d+):(\d+):? ?`)

// syntaxError turns a cedar-go parse error into a PolicyError, moving the
// line and column from its text (cedar-go exposes no structured form) into
// the error's fields.
func syntaxError(id, file string, err error) error {
	pe := &PolicyError{Kind: ErrInvalidPolicy, PolicyID: id, File: file, Message: err.Error()}
	if m := cedarPosition.FindStringSubmatch(pe.Message); m != nil {
		pe.Line, _ = strconv.Atoi(m[1])
		pe.Column, _ = strconv.Atoi(m[2])
		pe.Message = "syntax error: " + pe.Message[len(m[0]):]
	}
	return pe
}

// public returns the policy as the store reports it; the annotation map is
// copied so callers cannot reach into a snapshot.
func (c *compiled) public() Policy {
	p := c.Policy
	p.Annotations = maps.Clone(c.Annotations)
	return p
}
