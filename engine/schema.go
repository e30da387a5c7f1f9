package engine

import (
	"fmt"
	"strings"

	cedar "github.com/cedar-policy/cedar-go"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	xschema "github.com/cedar-policy/cedar-go/x/exp/schema"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"
)

// schema is a resolved Cedar schema and its validator. cedar-go's schema
// support is experimental (x/exp); it is isolated here so a change of its
// API touches one file.
type schema struct {
	text      string
	validator *validate.Validator
}

// ParseSchema parses a Cedar schema in the human-readable format, or in the
// JSON format when the text starts with '{'.
func parseSchema(name string, text []byte) (*schema, error) {
	var s xschema.Schema
	s.SetFilename(name)
	var err error
	if strings.HasPrefix(strings.TrimSpace(string(text)), "{") {
		err = s.UnmarshalJSON(text)
	} else {
		err = s.UnmarshalCedar(text)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	resolved, err := s.Resolve()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	return &schema{text: string(text), validator: validate.New(resolved, validate.WithStrict())}, nil
}

// check validates one policy strictly against the schema; without a
// schema (s == nil) every policy passes.
func (s *schema) check(c *compiled) error {
	if s == nil {
		return nil
	}
	ast := (*xast.Policy)(c.policy.AST())
	if err := s.validator.Policy(c.ID, ast); err != nil {
		var msgs []string
		for _, e := range flatten(err) {
			msgs = append(msgs, e.Error())
		}
		return &PolicyError{Kind: ErrInvalidPolicy, PolicyID: c.ID, File: ast.Position.Filename,
			Line: ast.Position.Line, Column: ast.Position.Column,
			Message: "schema: " + strings.Join(msgs, "; ")}
	}
	return nil
}

// checkEntities validates entity data against the schema.
func (s *schema) checkEntities(m cedar.EntityMap) error {
	if err := s.validator.Entities(m); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidEntities, err)
	}
	return nil
}

// checkRequest validates a request's entity types, action and context
// (as the caller sent it, before the engine adds the delegation chain)
// against the schema.
func (s *schema) checkRequest(r *Request) error {
	ctx, err := decodeObject(r.Context)
	if err != nil {
		return invalidRequest("context: %v", err)
	}
	uids := r.uids()
	creq := cedar.Request{Principal: uids[dimPrincipal], Action: uids[dimAction], Resource: uids[dimResource], Context: ctx}
	if err := s.validator.Request(creq); err != nil {
		return invalidRequest("schema: %v", err)
	}
	return nil
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
