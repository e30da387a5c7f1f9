// Package errfmt builds the services' error values in the house shape:
// "<service>: <operation>[ <subject>]: <cause>…", every cause a sentinel
// still matchable with errors.Is, and every caller-supplied string in a
// message quoted and bounded.
//
// Each service keeps its own sentinels and its short local helpers
// (opError, detail, quote) over these, so the rules of how an error reads
// and what a message may carry are written once.
package errfmt

import (
	"fmt"
	"strings"
)

// quoteLimit is how many bytes of a caller-supplied string a message
// shows: enough to recognise an id, too few to flood a log.
const quoteLimit = 64

// Op builds an operation's error: "<service>: <op>[ <subject>]: <cause>:
// <cause>…", with subject quoted (Quote) and every cause wrapped, so
// errors.Is matches each of them.
func Op(service, op, subject string, causes ...error) error {
	prefix := service + ": " + op
	if subject != "" {
		prefix += " " + Quote(subject)
	}
	args := make([]any, len(causes))
	for i, c := range causes {
		args[i] = c
	}
	return fmt.Errorf(prefix+strings.Repeat(": %w", len(causes)), args...)
}

// Detail attaches an explanation to a sentinel without hiding it from
// errors.Is: "<sentinel>: <explanation>".
func Detail(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}

// Quote bounds and escapes a caller-supplied string before it goes into
// an error message, so a hostile id can neither forge log lines (control
// characters and quotes come out escaped) nor flood them (past 64 bytes it
// is cut and marked with an ellipsis).
func Quote(s string) string {
	if len(s) > quoteLimit {
		return fmt.Sprintf("%q…", s[:quoteLimit])
	}
	return fmt.Sprintf("%q", s)
}
