package engine

import (
	"encoding/json"
	"fmt"
	"time"
)

// Kind is the outcome of a check. The zero value is not a valid outcome, so
// a Decision that was never filled in is never mistaken for an Allow.
type Kind uint8

// The five outcomes of seed §2.2.
const (
	Allow Kind = iota + 1
	Deny
	RequiresOversight
	QuotaExceeded
	RateLimited
)

var kindNames = [...]string{
	Allow:             "allow",
	Deny:              "deny",
	RequiresOversight: "requires_oversight",
	QuotaExceeded:     "quota_exceeded",
	RateLimited:       "rate_limited",
}

// String returns the wire name: allow, deny, requires_oversight,
// quota_exceeded or rate_limited.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, error) {
	for k, name := range kindNames {
		if name != "" && name == s {
			return Kind(k), nil
		}
	}
	return 0, fmt.Errorf("unknown decision %q (want allow, deny, requires_oversight, quota_exceeded or rate_limited)", s)
}

// MarshalText encodes the wire name.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes the wire name.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	*k = v
	return err
}

// Decision is the answer to a check. Kind says which of the detail fields
// are meaningful. Slices in a Decision may be shared with the engine's
// cache: treat them as read-only.
type Decision struct {
	Kind Kind

	// PolicyID names the policy that determined a Deny or RequiresOversight
	// (empty for the default deny, when no permit matched).
	PolicyID string
	// Reason explains a Deny: the @reason annotation of the forbid that
	// matched, or a default sentence.
	Reason string

	Oversight Oversight // when Kind == RequiresOversight
	Quota     Quota     // when Kind == QuotaExceeded
	RateLimit RateLimit // when Kind == RateLimited

	// MatchedPolicies lists, sorted, the policies that determined the
	// decision: the satisfied forbids of a Deny, or the satisfied permits of
	// an Allow or RequiresOversight (Cedar's "reasons").
	MatchedPolicies []string
	// Errors lists policies whose evaluation failed; Cedar skips them.
	Errors []EvalError
	// EvaluationTime is how long the engine spent on this check.
	EvaluationTime time.Duration
	// Cached reports that the decision came from the decision cache.
	Cached bool
}

// Allowed reports whether the caller may proceed without further steps.
func (d Decision) Allowed() bool { return d.Kind == Allow }

// Oversight says what a human must approve before the action proceeds.
type Oversight struct {
	// Requirement is the value of @oversight, for example "two-person".
	Requirement string
	// Approvers lists who may approve (from @approvers).
	Approvers []string
	// Timeout is how long approval may take (from @timeout).
	Timeout time.Duration
}

// Quota describes an exhausted quota.
type Quota struct {
	ID      string
	Limit   int64
	Used    int64
	ResetAt time.Time
}

// RateLimit describes a rate limit that was hit.
type RateLimit struct {
	RetryAfter time.Duration
	Remaining  int32
}

// EvalError is a policy whose evaluation failed, with Cedar's message.
type EvalError struct {
	PolicyID string `json:"policy_id"`
	Message  string `json:"message"`
}

// decisionJSON is the stable JSON shape used by the CLI and test suites.
type decisionJSON struct {
	Decision          Kind        `json:"decision"`
	Reasons           []string    `json:"reasons"`
	Errors            []EvalError `json:"errors"`
	EvaluationTimeNS  int64       `json:"evaluation_time_ns"`
	PolicyID          string      `json:"policy_id,omitempty"`
	Reason            string      `json:"reason,omitempty"`
	Requirement       string      `json:"requirement,omitempty"`
	RequiredApprovers []string    `json:"required_approvers,omitempty"`
	TimeoutNS         int64       `json:"timeout_ns,omitempty"`
	QuotaID           string      `json:"quota_id,omitempty"`
	Limit             int64       `json:"limit,omitempty"`
	Used              int64       `json:"used,omitempty"`
	ResetAt           *time.Time  `json:"reset_at,omitempty"`
	RetryAfterNS      int64       `json:"retry_after_ns,omitempty"`
	Remaining         int32       `json:"requests_remaining,omitempty"`
	Cached            bool        `json:"cached,omitempty"`
}

// MarshalJSON writes the decision in the shape `creto check` prints.
func (d Decision) MarshalJSON() ([]byte, error) {
	out := decisionJSON{
		Decision:         d.Kind,
		Reasons:          d.MatchedPolicies,
		Errors:           d.Errors,
		EvaluationTimeNS: d.EvaluationTime.Nanoseconds(),
		PolicyID:         d.PolicyID,
		Reason:           d.Reason,
		Cached:           d.Cached,
	}
	if out.Reasons == nil {
		out.Reasons = []string{}
	}
	if out.Errors == nil {
		out.Errors = []EvalError{}
	}
	switch d.Kind {
	case RequiresOversight:
		out.Requirement = d.Oversight.Requirement
		out.RequiredApprovers = d.Oversight.Approvers
		out.TimeoutNS = d.Oversight.Timeout.Nanoseconds()
	case QuotaExceeded:
		out.QuotaID, out.Limit, out.Used = d.Quota.ID, d.Quota.Limit, d.Quota.Used
		if !d.Quota.ResetAt.IsZero() {
			out.ResetAt = &d.Quota.ResetAt
		}
	case RateLimited:
		out.RetryAfterNS = d.RateLimit.RetryAfter.Nanoseconds()
		out.Remaining = d.RateLimit.Remaining
	}
	return json.Marshal(out)
}
