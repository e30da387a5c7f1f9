// Package feed turns what the engine and the services report into audit
// events for an audit.Logger: an engine.Observer for authorization
// decisions and extension failures, and an nhi.EventHandler for identity
// changes. It is wiring, like hosts/ and cmd/creto: it imports the engine
// and the services so that neither they nor the audit service import one
// another.
//
// The adapters only build a record and call Logger.Emit, which never
// blocks: a check or an NHI change never waits for the audit log.
package feed

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/creto-systems/creto/entity"
	"github.com/creto-systems/creto/services/audit"
)

// ref renders an entity reference in Cedar's form, Type::"id", the form
// a record's Resource and delegation links take.
func ref(r entity.Ref) string {
	return clip(r.Type+"::"+strconv.Quote(r.ID), audit.MaxResourceLen)
}

// id returns s if it can stand as an identifier in a record as it is, and
// otherwise its quoted form: a Cedar id may hold characters (a newline)
// that a record refuses, and a refused event would be lost.
func id(s string, max int) string {
	if s != "" && utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }) < 0 {
		return clip(s, max)
	}
	return clip(strconv.Quote(s), max)
}

// clip cuts s to at most max bytes on a rune boundary.
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}

// text makes free text (a reason, an error) safe for a record's Why:
// valid UTF-8 within the limit.
func text(s string) string {
	return clip(strings.ToValidUTF8(s, "\uFFFD"), audit.MaxWhyLen)
}
