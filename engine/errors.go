package engine

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error the engine returns wraps exactly one of them,
// so callers (and the gRPC layer) match with errors.Is and never parse text.
var (
	// ErrInvalidRequest: the request is malformed or exceeds a limit. The
	// engine denies it without evaluating anything.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrInvalidPolicy: a policy does not parse, does not validate against the
	// loaded schema, or carries a malformed annotation.
	ErrInvalidPolicy = errors.New("invalid policy")
	// ErrPolicyNotFound: no policy has the given id.
	ErrPolicyNotFound = errors.New("policy not found")
	// ErrPolicyExists: a create named an id that is already taken.
	ErrPolicyExists = errors.New("policy already exists")
	// ErrConflict: an optimistic-concurrency precondition (an etag) no longer
	// holds because someone else changed the policy first.
	ErrConflict = errors.New("policy version conflict")
	// ErrInvalidSchema: the Cedar schema does not parse or resolve.
	ErrInvalidSchema = errors.New("invalid schema")
	// ErrInvalidEntities: entity data does not parse or violates the schema.
	ErrInvalidEntities = errors.New("invalid entities")
	// ErrClosed: the engine was closed.
	ErrClosed = errors.New("engine closed")
)

// PolicyError describes why one policy in a change was rejected. Line and
// Column point into the policy text when the problem has a position.
type PolicyError struct {
	PolicyID string
	File     string
	Line     int
	Column   int
	Message  string
	// Kind is the sentinel this error matches: ErrInvalidPolicy,
	// ErrPolicyNotFound, ErrPolicyExists or ErrConflict.
	Kind error
}

func (e *PolicyError) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind.Error())
	if e.PolicyID != "" {
		fmt.Fprintf(&b, " %q", e.PolicyID)
	}
	if e.Line > 0 {
		b.WriteString(" at ")
		if e.File != "" {
			b.WriteString(e.File)
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%d:%d", e.Line, e.Column)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Unwrap lets errors.Is match the sentinel kind.
func (e *PolicyError) Unwrap() error { return e.Kind }

// BatchError reports the requests of a CheckBatch that could not be
// evaluated. Each of them received a Deny decision; the others were
// evaluated normally.
type BatchError struct {
	// Items maps the index of each failed request to its error.
	Items map[int]error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("%d of the batch's requests are invalid (first: %v)", len(e.Items), e.first())
}

func (e *BatchError) first() error {
	lowest := -1
	for i := range e.Items {
		if lowest < 0 || i < lowest {
			lowest = i
		}
	}
	return fmt.Errorf("request %d: %w", lowest, e.Items[lowest])
}

// Unwrap exposes the item errors to errors.Is and errors.As.
func (e *BatchError) Unwrap() []error {
	errs := make([]error, 0, len(e.Items))
	for _, err := range e.Items {
		errs = append(errs, err)
	}
	return errs
}

func invalidRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
}
