package policytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/creto-systems/creto/bundle"
	"github.com/creto-systems/creto/engine"
)

// SuiteSuffixes are the file-name endings Load looks for in a directory.
var SuiteSuffixes = []string{"_test.yaml", "_test.yml", "_test.json"}

// Suite is a loaded test suite with its policies in an engine, ready to
// run. Suites come from Load and LoadFile; a Suite built by hand has no
// engine to run against.
type Suite struct {
	// Name identifies the suite in results.
	Name string
	// File is the path the suite was read from.
	File  string
	Cases []Case

	engine *engine.Engine
}

// Case is one request and what the policies must decide about it.
type Case struct {
	Name    string
	Request engine.Request
	Want    Expectation
}

// Expectation is what a case requires of the decision. Decision is always
// checked; nil fields are not checked at all, while an empty, non-nil slice
// requires the decision's list to be empty.
type Expectation struct {
	Decision engine.Kind
	// Reasons are the matched policies, compared as a set.
	Reasons []string
	// PolicyID is the policy that decided a deny or requires_oversight.
	PolicyID *string
	// Reason is the deny reason.
	Reason      *string
	Requirement *string
	// Approvers are the oversight approvers, compared as a set.
	Approvers []string
	Timeout   *time.Duration
	// Errors are the policies whose evaluation failed, compared as a set.
	Errors []string
}

// The file format, kept apart from the exported types so the YAML
// representation can change without changing the API.
type suiteFile struct {
	Name     string     `yaml:"name"`
	Policies string     `yaml:"policies"`
	Entities string     `yaml:"entities"`
	Schema   string     `yaml:"schema"`
	Cases    []caseFile `yaml:"cases"`
}

type caseFile struct {
	Name        string      `yaml:"name"`
	Request     requestFile `yaml:"request"`
	Expect      string      `yaml:"expect"`
	Reasons     *[]string   `yaml:"reasons"`
	PolicyID    *string     `yaml:"policy_id"`
	Reason      *string     `yaml:"reason"`
	Requirement *string     `yaml:"requirement"`
	Approvers   *[]string   `yaml:"approvers"`
	Timeout     *string     `yaml:"timeout"`
	Errors      *[]string   `yaml:"errors"`
}

type requestFile struct {
	Principal struct {
		Type       string    `yaml:"type"`
		ID         string    `yaml:"id"`
		Attributes yaml.Node `yaml:"attributes"`
	} `yaml:"principal"`
	Delegation []entityFile `yaml:"delegation"`
	Action     entityFile   `yaml:"action"`
	Resource   entityFile   `yaml:"resource"`
	Context    yaml.Node    `yaml:"context"`
}

type entityFile struct {
	Type string `yaml:"type"`
	ID   string `yaml:"id"`
}

func (e entityFile) ref() engine.EntityRef { return engine.EntityRef{Type: e.Type, ID: e.ID} }

// Load reads the suites at paths, each a suite file or a directory searched
// recursively for files ending in one of SuiteSuffixes, and loads their
// fixtures. It reports every broken suite, not just the first; on error it
// returns no suites, so a run never silently skips one.
func Load(ctx context.Context, paths ...string) ([]*Suite, error) {
	var files []string
	var errs []error
	for _, p := range paths {
		found, err := suiteFiles(p)
		if err != nil {
			errs = append(errs, err)
		}
		files = append(files, found...)
	}
	var suites []*Suite
	seen := map[string]string{}
	for _, f := range files {
		s, err := LoadFile(ctx, f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// Results are reported by name, so two suites sharing one would
		// make the output ambiguous.
		if prev, dup := seen[s.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: suite name %q is already used by %s", f, s.Name, prev))
			continue
		}
		seen[s.Name] = f
		suites = append(suites, s)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return suites, nil
}

func suiteFiles(p string) ([]string, error) {
	info, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{p}, nil
	}
	var out []string
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && isSuiteFile(d.Name()) {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no suite files (*%s)", p, strings.Join(SuiteSuffixes, ", *"))
	}
	slices.Sort(out)
	return out, nil
}

func isSuiteFile(name string) bool {
	return slices.ContainsFunc(SuiteSuffixes, func(s string) bool { return strings.HasSuffix(name, s) })
}

// LoadFile reads one suite file and loads its fixtures. Errors name the
// file.
func LoadFile(ctx context.Context, path string) (*Suite, error) {
	s, err := loadFile(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func loadFile(ctx context.Context, path string) (*Suite, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sf, err := decodeSuite(text)
	if err != nil {
		return nil, err
	}
	s := &Suite{Name: sf.Name, File: path}
	if s.Name == "" {
		s.Name = defaultName(path)
	}
	if sf.Policies == "" {
		return nil, errors.New("policies: required (a .cedar file or a directory of them)")
	}
	if len(sf.Cases) == 0 {
		return nil, errors.New("cases: the suite has none")
	}
	names := map[string]bool{}
	for i, cf := range sf.Cases {
		c, err := cf.compile()
		if err != nil {
			if cf.Name == "" {
				return nil, fmt.Errorf("cases[%d]: %w", i, err)
			}
			return nil, fmt.Errorf("case %q: %w", cf.Name, err)
		}
		if names[c.Name] {
			return nil, fmt.Errorf("case %q: the name is used twice", c.Name)
		}
		names[c.Name] = true
		s.Cases = append(s.Cases, c)
	}
	dir := filepath.Dir(path)
	s.engine, err = bundle.Load(ctx, bundle.Files{
		Policies: relativeTo(dir, sf.Policies),
		Entities: relativeTo(dir, sf.Entities),
		Schema:   relativeTo(dir, sf.Schema),
	}, engine.WithCache(engine.CacheConfig{}), engine.WithRequestValidation())
	if err != nil {
		return nil, err
	}
	return s, nil
}

func relativeTo(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, filepath.FromSlash(p))
}

func defaultName(path string) string {
	base := filepath.Base(path)
	for _, suffix := range SuiteSuffixes {
		if name, ok := strings.CutSuffix(base, suffix); ok {
			return name
		}
	}
	return strings.TrimSuffix(base, filepath.Ext(base))
}

func decodeSuite(text []byte) (suiteFile, error) {
	var sf suiteFile
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(&sf); err != nil {
		if errors.Is(err, io.EOF) {
			return sf, errors.New("the file is empty")
		}
		return sf, yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return sf, errors.New("the file holds more than one YAML document")
	}
	return sf, nil
}

var unknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)

// yamlError flattens yaml.v3's multi-line error into one line and speaks of
// suite fields rather than Go types.
func yamlError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = unknownField.ReplaceAllString(m, `unknown field "$1"`)
	}
	return errors.New(strings.Join(msgs, "; "))
}

func (cf *caseFile) compile() (Case, error) {
	if cf.Name == "" {
		return Case{}, errors.New("name: required")
	}
	c := Case{Name: cf.Name}
	if cf.Expect == "" {
		return c, errors.New("expect: required (allow, deny, requires_oversight, quota_exceeded or rate_limited)")
	}
	kind, err := engine.ParseKind(cf.Expect)
	if err != nil {
		return c, fmt.Errorf("expect: %w", err)
	}
	c.Want = Expectation{
		Decision:    kind,
		Reasons:     deref(cf.Reasons),
		PolicyID:    cf.PolicyID,
		Reason:      cf.Reason,
		Requirement: cf.Requirement,
		Approvers:   deref(cf.Approvers),
		Errors:      deref(cf.Errors),
	}
	if cf.Timeout != nil {
		d, err := time.ParseDuration(*cf.Timeout)
		if err != nil {
			return c, fmt.Errorf("timeout: %w", err)
		}
		c.Want.Timeout = &d
	}
	c.Request, err = cf.Request.compile()
	if err != nil {
		return c, fmt.Errorf("request: %w", err)
	}
	return c, nil
}

// deref keeps the distinction the file makes: an absent list is not
// checked, an empty one must match an empty list.
func deref(p *[]string) []string {
	if p == nil {
		return nil
	}
	if *p == nil {
		return []string{}
	}
	return *p
}

func (rf *requestFile) compile() (engine.Request, error) {
	r := engine.Request{
		Principal: engine.Principal{Type: rf.Principal.Type, ID: rf.Principal.ID},
		Action:    rf.Action.ref(),
		Resource:  rf.Resource.ref(),
	}
	for _, d := range rf.Delegation {
		r.Delegation = append(r.Delegation, d.ref())
	}
	var err error
	if r.Principal.Attributes, err = nodeJSON(&rf.Principal.Attributes); err != nil {
		return r, fmt.Errorf("principal attributes: %w", err)
	}
	if r.Context, err = nodeJSON(&rf.Context); err != nil {
		return r, fmt.Errorf("context: %w", err)
	}
	return r, nil
}
