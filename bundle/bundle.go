// Package bundle builds an engine from the files that define a policy
// deployment: Cedar policies, entity data and an optional schema.
//
// `creto check`, `creto policy validate`, `creto demo` and the policy test
// runner all load through this package, so a policy set that passes its
// tests is loaded exactly the way it will be checked.
package bundle

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/creto-systems/creto/engine"
)

// Files names the parts of a bundle.
type Files struct {
	// FS, when set, holds the files and the paths below are slash-separated
	// names within it (an embed.FS, say). When nil the paths are
	// operating-system paths.
	FS fs.FS
	// Policies is a Cedar file, or a directory searched recursively for
	// *.cedar files.
	Policies string
	// Entities is a Cedar entity JSON file; empty means no entities.
	Entities string
	// Schema is a Cedar schema, human-readable or JSON; empty means none.
	// With a schema, every policy and the entity data must conform to it.
	Schema string
}

// Problem is one thing wrong with a bundle.
type Problem struct {
	// File is the path of the file at fault, as it was given (joined with
	// the policy directory for policy files); empty when unknown.
	File string
	// Line and Column locate the problem in File when they are positive.
	Line, Column int
	Message      string
	// Err is the underlying error; it wraps one of the engine's sentinels
	// when the engine reported the problem.
	Err error
}

// String formats the problem as compilers do: file:line:col: message.
func (p Problem) String() string {
	switch {
	case p.File != "" && p.Line > 0:
		return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Column, p.Message)
	case p.File != "":
		return p.File + ": " + p.Message
	}
	return p.Message
}

// Error lists every problem found while loading a bundle.
type Error struct {
	Problems []Problem
}

// Error reports the first problem on one line, so a command can print it
// as its single error message, and counts the rest.
func (e *Error) Error() string {
	if len(e.Problems) == 0 {
		return "bundle: no problems recorded"
	}
	msg := e.Problems[0].String()
	switch n := len(e.Problems) - 1; n {
	case 0:
		return msg
	case 1:
		return msg + " (and 1 more problem)"
	default:
		return msg + " (and " + strconv.Itoa(n) + " more problems)"
	}
}

// Unwrap exposes each problem's error to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	out := make([]error, 0, len(e.Problems))
	for _, p := range e.Problems {
		if p.Err != nil {
			out = append(out, p.Err)
		}
	}
	return out
}

// Load reads f into a new engine created with opts. It reports every
// problem it finds, not just the first, as an *Error; on error it returns
// no engine, so nothing ever evaluates against a partly loaded bundle.
func Load(ctx context.Context, f Files, opts ...engine.Option) (*engine.Engine, error) {
	var l loader
	ents := engine.NewEntities()
	// The bundle's entities come last so a caller's option cannot silently
	// replace them.
	e := engine.New(append(slices.Clip(opts), engine.WithEntities(ents))...)

	if f.Schema != "" {
		if text, ok := l.read(f, f.Schema); ok {
			if err := e.SetSchema(f.Schema, text); err != nil {
				l.add(schemaProblem(f.Schema, err))
			}
		}
	}
	l.loadPolicies(ctx, e, f)
	if f.Entities != "" {
		if text, ok := l.read(f, f.Entities); ok {
			m, err := engine.ParseEntities(text)
			if err == nil {
				err = e.CheckEntities(m)
			}
			if l.fail(f.Entities, err) {
				ents.Replace(m)
			}
		}
	}
	if len(l.problems) > 0 {
		e.Close()
		// Report in reading order: by file, then position.
		slices.SortStableFunc(l.problems, func(a, b Problem) int {
			return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
		})
		return nil, &Error{Problems: l.problems}
	}
	return e, nil
}

// loader accumulates problems so one run reports all of them.
type loader struct {
	problems []Problem
}

func (l *loader) add(p Problem) { l.problems = append(l.problems, p) }

// fail records err, if any, against file (which may be empty) and
// reports whether err was nil.
func (l *loader) fail(file string, err error) bool {
	if err == nil {
		return true
	}
	l.add(Problem{File: file, Message: err.Error(), Err: err})
	return false
}

func (l *loader) read(f Files, name string) ([]byte, bool) {
	var b []byte
	var err error
	if f.FS != nil {
		b, err = fs.ReadFile(f.FS, name)
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		l.fail("", err) // the path error already names the file
		return nil, false
	}
	return b, true
}

// loadPolicies reads every policy file and installs the policies. Parse
// errors do not stop it: the policies that parse are still handed to the
// engine, so annotation and schema problems surface in the same run.
func (l *loader) loadPolicies(ctx context.Context, e *engine.Engine, f Files) {
	if f.Policies == "" {
		l.add(Problem{Message: "no policies given"})
		return
	}
	fsys, root := f.FS, f.Policies
	if fsys == nil {
		if _, err := os.Stat(f.Policies); err != nil {
			l.fail("", err) // names the path as the user gave it
			return
		}
		fsys, root = os.DirFS(filepath.Dir(f.Policies)), filepath.Base(f.Policies)
	}
	info, err := fs.Stat(fsys, root)
	if err != nil {
		l.fail("", err)
		return
	}
	// The engine names files relative to the policy directory; show them
	// as the user named them.
	display := func(name string) string {
		switch {
		case name == "":
			return ""
		case !info.IsDir():
			return f.Policies
		case f.FS != nil:
			return path.Join(f.Policies, name)
		}
		return filepath.Join(f.Policies, filepath.FromSlash(name))
	}
	srcs, err := engine.ReadPolicyFS(fsys, root)
	l.policyErrors(err, display)
	if len(srcs) == 0 {
		if err == nil {
			l.add(Problem{File: f.Policies, Message: "no .cedar files"})
		}
		return
	}
	l.policyErrors(e.ReplacePolicies(ctx, srcs), display)
}

// policyErrors records each error joined in err, placing policy errors at
// their file and position.
func (l *loader) policyErrors(err error, display func(string) string) {
	for _, err := range flatten(err) {
		var pe *engine.PolicyError
		if !errors.As(err, &pe) {
			l.fail("", err)
			continue
		}
		l.add(policyProblem(pe, display(pe.File)))
	}
}

// schemaProblem lifts the position cedar-go writes into a schema parse
// error ("invalid schema: FILE:L:C: ...") into the problem's fields, so the
// file is not named twice.
func schemaProblem(file string, err error) Problem {
	p := Problem{File: file, Message: err.Error(), Err: err}
	prefix, rest, ok := strings.Cut(p.Message, " "+file+":")
	if !ok {
		return p
	}
	var line, col int
	var msg string
	if n, _ := fmt.Sscanf(rest, "%d:%d:", &line, &col); n == 2 {
		_, msg, _ = strings.Cut(rest, ": ")
		p.Line, p.Column, p.Message = line, col, prefix+" "+msg
	}
	return p
}

func policyProblem(pe *engine.PolicyError, file string) Problem {
	msg := cmp.Or(pe.Message, pe.Kind.Error())
	// cedar-go's schema messages already name the policy, in backquotes.
	if pe.PolicyID != "" && !strings.Contains(msg, "`"+pe.PolicyID+"`") {
		msg = fmt.Sprintf("policy %q: %s", pe.PolicyID, msg)
	}
	return Problem{File: file, Line: pe.Line, Column: pe.Column, Message: msg, Err: pe}
}

// flatten expands errors.Join trees into their leaves.
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
