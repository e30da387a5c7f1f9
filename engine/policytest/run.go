package policytest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/creto-systems/creto/engine"
)

// Result is the outcome of one case.
type Result struct {
	Suite, Case string
	Decision    engine.Decision
	// Failure says how the decision differs from the expectation, or why
	// the request could not be evaluated; it is empty when the case passed.
	Failure string
	// Duration is the wall time of the check.
	Duration time.Duration
}

// Name is the case's full name, suite/case, which filters match against.
func (r Result) Name() string { return FullName(r.Suite, r.Case) }

// Passed reports whether the decision met the expectation.
func (r Result) Passed() bool { return r.Failure == "" }

// FullName joins a suite and case name the way results and filters see
// them.
func FullName(suite, c string) string { return suite + "/" + c }

// Run evaluates the cases whose full name match accepts (every case when
// match is nil) and returns their results in suite order.
func (s *Suite) Run(ctx context.Context, match func(fullName string) bool) []Result {
	var out []Result
	for _, c := range s.Cases {
		if match != nil && !match(FullName(s.Name, c.Name)) {
			continue
		}
		start := time.Now()
		d, err := s.engine.Check(ctx, c.Request)
		r := Result{Suite: s.Name, Case: c.Name, Decision: d, Duration: time.Since(start)}
		if err != nil {
			r.Failure = "the engine rejected the request: " + err.Error()
		} else {
			r.Failure = c.Want.mismatch(d)
		}
		out = append(out, r)
	}
	return out
}

// mismatch describes every way d misses the expectation, or returns "".
// A wrong decision is reported alone: the details of a decision of the
// wrong kind would only be noise.
func (w *Expectation) mismatch(d engine.Decision) string {
	if d.Kind != w.Decision {
		return fmt.Sprintf("got %s, want %s", Describe(d), w.Decision)
	}
	var errIDs []string
	for _, e := range d.Errors {
		errIDs = append(errIDs, e.PolicyID)
	}
	var out []string
	check := func(field string, ok bool, got, want any) {
		if !ok {
			out = append(out, fmt.Sprintf("%s: got %v, want %v", field, got, want))
		}
	}
	if w.Reasons != nil {
		check("reasons", sameSet(d.MatchedPolicies, w.Reasons), list(d.MatchedPolicies), list(w.Reasons))
	}
	if w.PolicyID != nil {
		check("policy_id", d.PolicyID == *w.PolicyID, quoted(d.PolicyID), quoted(*w.PolicyID))
	}
	if w.Reason != nil {
		check("reason", d.Reason == *w.Reason, quoted(d.Reason), quoted(*w.Reason))
	}
	if w.Requirement != nil {
		check("requirement", d.Oversight.Requirement == *w.Requirement, quoted(d.Oversight.Requirement), quoted(*w.Requirement))
	}
	if w.Approvers != nil {
		check("approvers", sameSet(d.Oversight.Approvers, w.Approvers), list(d.Oversight.Approvers), list(w.Approvers))
	}
	if w.Timeout != nil {
		check("timeout", d.Oversight.Timeout == *w.Timeout, d.Oversight.Timeout, *w.Timeout)
	}
	if w.Errors != nil {
		check("errors", sameSet(errIDs, w.Errors), list(errIDs), list(w.Errors))
	}
	return strings.Join(out, "; ")
}

func sameSet(got, want []string) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(slices.Compact(g), slices.Compact(w))
}

type list []string

func (l list) String() string { return "[" + strings.Join(l, ", ") + "]" }

type quoted string

func (q quoted) String() string { return fmt.Sprintf("%q", string(q)) }

// Describe renders a decision for people: its kind and, in parentheses,
// what explains it, for example
//
//	deny (policy forbid-egress-unlisted, reason "the host is not allowed")
//	requires_oversight (policy payments-large-oversight, two-person by cfo, controller within 1h0m0s)
func Describe(d engine.Decision) string {
	var parts []string
	switch d.Kind {
	case engine.Allow:
		if len(d.MatchedPolicies) > 0 {
			parts = append(parts, "policies "+strings.Join(d.MatchedPolicies, ", "))
		}
	case engine.Deny:
		if d.PolicyID != "" {
			parts = append(parts, "policy "+d.PolicyID)
		}
		parts = append(parts, fmt.Sprintf("reason %q", d.Reason))
	case engine.RequiresOversight:
		o := d.Oversight
		detail := o.Requirement
		if len(o.Approvers) > 0 {
			detail += " by " + strings.Join(o.Approvers, ", ")
		}
		parts = append(parts, "policy "+d.PolicyID, detail+" within "+o.Timeout.String())
	case engine.QuotaExceeded:
		parts = append(parts, fmt.Sprintf("quota %s, %d of %d used", d.Quota.ID, d.Quota.Used, d.Quota.Limit))
	case engine.RateLimited:
		parts = append(parts, "retry after "+d.RateLimit.RetryAfter.String())
	}
	if len(d.Errors) > 0 {
		ids := make([]string, len(d.Errors))
		for i, e := range d.Errors {
			ids[i] = e.PolicyID
		}
		parts = append(parts, "evaluation errors in "+strings.Join(ids, ", "))
	}
	if len(parts) == 0 {
		return d.Kind.String()
	}
	return d.Kind.String() + " (" + strings.Join(parts, ", ") + ")"
}
