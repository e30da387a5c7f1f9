// Package policytest runs policy test suites: files that pair requests with
// the decision the policies must reach, in the spirit of `opa test`. The
// `creto policy test` command is a thin front end to it, and Go tests can
// use it directly:
//
//	func TestPolicies(t *testing.T) {
//		suites, err := policytest.Load(context.Background(), "testdata/policies")
//		if err != nil {
//			t.Fatal(err)
//		}
//		for _, s := range suites {
//			for _, r := range s.Run(context.Background(), nil) {
//				if !r.Passed() {
//					t.Errorf("%s: %s", r.Name(), r.Failure)
//				}
//			}
//		}
//	}
//
// # Suite files
//
// A suite is a YAML file (JSON works too, being YAML) of this shape:
//
//	name: agent-basics              # optional; defaults to the file name without _test.yaml
//	policies: ../policies           # required: a .cedar file or a directory of them
//	entities: ../entities.json      # optional: Cedar entity JSON
//	schema: ../schema.cedarschema   # optional: policies, entities and requests must conform
//	cases:
//	  - name: reader can read
//	    request:
//	      principal: {type: Agent, id: alice-bot, attributes: {attested: true}}
//	      delegation: [{type: User, id: alice}]   # optional: origin first
//	      action: {id: read_file}                 # type defaults to Action
//	      resource: {type: File, id: d1}
//	      context: {port: 443}                    # optional; {} when absent
//	    expect: allow                 # allow | deny | requires_oversight | quota_exceeded | rate_limited
//	    reasons: [files-team-read]    # optional: exactly these matched policies, in any order
//	    policy_id: some-policy        # optional: the deciding policy ("" for the default deny)
//	    reason: "..."                 # optional: the deny reason
//	    requirement: two-person       # optional: the oversight requirement
//	    approvers: [cfo, controller]  # optional: the approvers, in any order
//	    timeout: 30m                  # optional: the oversight timeout
//	    errors: [some-policy]         # optional: exactly the policies whose evaluation failed
//
// Paths are relative to the suite file. The fixtures are loaded with package
// bundle, exactly as `creto check` loads them; with a schema, requests are
// validated against it too. Unknown fields anywhere in a suite are errors, so
// a misspelt expectation cannot pass silently. The request's context and
// principal attributes are converted to the JSON the engine reads, so
// Cedar's escapes work as written: {__entity: {type: User, id: alice}},
// {__extn: {fn: decimal, arg: "1.5"}}. Cedar has no floating-point numbers,
// so a YAML float in a request is an error.
//
// A directory given to Load is searched recursively for files named
// *_test.yaml, *_test.yml or *_test.json.
package policytest
