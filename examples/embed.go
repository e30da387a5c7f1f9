// Package examples holds the example agent-platform policy set: Cedar
// policies, entity data, a schema, example requests and the test suites
// that pin down what the policies decide. It embeds them so `creto demo`
// works from any directory with no files at hand.
package examples

import "embed"

// FS holds policies/*.cedar, entities.json, schema.cedarschema,
// requests/*.json and tests/*_test.yaml, at those paths.
//
//go:embed policies/*.cedar entities.json schema.cedarschema requests/*.json tests/*_test.yaml
var FS embed.FS

// Paths of the parts of the example set within FS.
const (
	Policies = "policies"
	Entities = "entities.json"
	Schema   = "schema.cedarschema"
	Requests = "requests"
	Tests    = "tests"
)
