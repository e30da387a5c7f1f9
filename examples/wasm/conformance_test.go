// Package wasm_test holds every Wasm module `make wasm` builds, the SDKs'
// conformance guests and the example extensions, to the same suite: each
// registers in a real engine, lets unrelated requests through, decides
// what it documents with decisions the engine decodes, and never fails.
// The conformance guests are also held to abi/testdata/golden byte for
// byte. A missing module fails the suite; CRETO_SKIP_WASM=1 skips it.
package wasm_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/services/nhi"
	"github.com/creto-systems/creto/services/storage"
)

var languages = []string{"c", "assemblyscript", "rust", "wat"}

// check is one request and what the module must answer.
type check struct {
	name string
	at   time.Time // the engine's clock; noon when zero
	req  engine.Request
	want outcome
}

// extension is a built module and its documented behaviour.
type extension struct {
	lang, module string
	config       string
	checks       []check
	// badConfigs must each fail registration with this text in the error.
	badConfigs map[string]string
	// setup, when set, prepares the host's services before the checks;
	// verify, when set, checks what the extension left in them after.
	setup, verify func(t *testing.T, h *host)
}

// goldenChecks are the conformance guests' documented behaviour: the
// golden decisions, returned through the engine.
func goldenChecks(name string) []check {
	req := func(action string) engine.Request { return request("Agent:a", action, "Doc:d", "") }
	return []check{
		{name: "allow", req: req("golden-allow"), want: allow},
		{name: "deny", req: req("golden-deny"),
			want: deny("no-deletes-after-hours", "deletes are allowed 08:00-18:00 only")},
		{name: "oversight", req: req("golden-oversight"), want: outcome{
			Kind: engine.RequiresOversight, PolicyID: "large-transfer",
			Oversight: engine.Oversight{Requirement: "two-person", Approvers: []string{"cfo", "controller"}, Timeout: 30 * time.Minute},
		}},
		{name: "quota", req: req("golden-quota"), want: outcome{
			Kind: engine.QuotaExceeded, PolicyID: "llm-tokens/daily",
			Quota: engine.Quota{ID: "llm-tokens/daily", Limit: 100000, Used: 100001, ResetAt: time.Unix(0, 1764201600000000000).UTC()},
		}},
		{name: "rate limit", req: req("golden-ratelimit"), want: outcome{
			Kind: engine.RateLimited, PolicyID: "ext:" + name, RateLimit: engine.RateLimit{RetryAfter: 250 * time.Millisecond},
		}},
	}
}

func examples() []extension {
	var out []extension
	for _, lang := range languages {
		name := lang + "-conformance"
		out = append(out, extension{lang: lang, module: "conformance", checks: goldenChecks(name),
			badConfigs: map[string]string{"refuse": "conformance: refused"}})
	}
	morning, evening := time.Date(2025, 11, 26, 3, 0, 0, 0, time.UTC), time.Date(2025, 11, 26, 19, 30, 0, 0, time.UTC)
	afterHours := deny("no-deletes-after-hours", "deletes are allowed 08:00-18:00 only")
	held := outcome{Kind: engine.RequiresOversight, PolicyID: "large-transfer",
		Oversight: engine.Oversight{Requirement: "two-person", Approvers: []string{"cfo", "controller"}, Timeout: 30 * time.Minute}}
	tooDeep := deny("prod-guard", "agents acting through a long delegation chain may not touch protected resources")
	chain := []string{"User:alice", "Agent:planner", "Agent:worker"}
	return append(out,
		extension{lang: "c", module: "business_hours", checks: []check{
			{name: "in hours by the caller's clock", at: morning, req: request("User:u", "delete", "Doc:d", `{"hour": 10}`), want: allow},
			{name: "last hour", req: request("User:u", "delete", "Doc:d", `{"hour": 17}`), want: allow},
			{name: "before opening", req: request("User:u", "delete", "Doc:d", `{"hour": 7}`), want: afterHours},
			{name: "at closing", req: request("User:u", "delete", "Doc:d", `{"hour": 18}`), want: afterHours},
			{name: "no hour, engine clock in hours", req: request("User:u", "delete", "Doc:d", `{}`), want: allow},
			{name: "no hour, engine clock at night", at: morning, req: request("User:u", "delete", "Doc:d", ""), want: afterHours},
			{name: "not an hour, engine clock", at: evening, req: request("User:u", "delete", "Doc:d", `{"hour": "ten"}`), want: afterHours},
			{name: "other actions at night", at: morning, req: request("User:u", "read", "Doc:d", `{"hour": 3}`), want: allow},
		}},
		extension{lang: "assemblyscript", module: "two_person", config: `{"threshold": 10000}`, checks: []check{
			{name: "large", req: request("Agent:bot", "transfer_funds", "Account:ops", `{"amount": 25000, "currency": "EUR"}`), want: held},
			{name: "at the threshold", req: request("Agent:bot", "transfer_funds", "Account:ops", `{"amount": 10000}`), want: held},
			{name: "small", req: request("Agent:bot", "transfer_funds", "Account:ops", `{"amount": 9999}`), want: allow},
			{name: "nested amount is not the amount", req: request("Agent:bot", "transfer_funds", "Account:ops", `{"fee": {"amount": 1000000000}, "amount": 5}`), want: allow},
			{name: "no amount", req: request("Agent:bot", "transfer_funds", "Account:ops", `{"memo": "x"}`), want: allow},
			{name: "unreadable amount", req: request("Agent:bot", "transfer_funds", "Account:ops", `{"amount": "lots"}`), want: held},
			{name: "context too large to send", req: request("Agent:bot", "transfer_funds", "Account:ops",
				`{"amount": 1, "memo": "`+strings.Repeat("x", 70_000)+`"}`), want: held},
			{name: "other actions", req: request("Agent:bot", "read", "Account:ops", `{"amount": 25000}`), want: allow},
		}, badConfigs: map[string]string{
			``:                   "threshold",
			`{"threshold": 0}`:   "threshold",
			`{"limit": 10}`:      "threshold",
			`{"threshold": "1"}`: "threshold",
		}},
		extension{lang: "rust", module: "prod_guard", config: `{"prefix": "prod/", "max_depth": 2}`, checks: []check{
			{name: "deep chain, protected", req: request("Agent:worker", "write", "Db:prod/orders", "", append(chain, "Agent:sub")...), want: tooDeep},
			{name: "three links, protected", req: request("Agent:worker", "read", "Db:prod/orders", "", chain...), want: tooDeep},
			{name: "two links, protected", req: request("Agent:worker", "write", "Db:prod/orders", "", chain[:2]...), want: allow},
			{name: "deep chain, unprotected", req: request("Agent:worker", "write", "Db:staging/orders", "", chain...), want: allow},
			{name: "prefix must lead", req: request("Agent:worker", "write", "Db:old-prod/orders", "", chain...), want: allow},
			{name: "people are not agents", req: request("User:bob", "write", "Db:prod/orders", "", chain...), want: allow},
		}, badConfigs: map[string]string{
			`{}`:                                "prefix",
			`{"prefix": ""}`:                    "prefix",
			`{"prefix": 5}`:                     "prefix",
			`{"prefix": "p/", "max_depth": -1}`: "max_depth",
			`{"prefix": "` + strings.Repeat("p", 129) + `"}`: "prefix",
		}},
		extension{lang: "wat", module: "agent_no_approve", checks: []check{
			{name: "agent approves", req: request("Agent:bot", "approve_payment", "Invoice:1", ""),
				want: deny("agents-cannot-approve", "payments need a human approver")},
			{name: "person approves", req: request("User:carol", "approve_payment", "Invoice:1", ""), want: allow},
			{name: "agent pays", req: request("Agent:bot", "pay", "Invoice:1", ""), want: allow},
		}},
		extension{lang: "go", module: "egress", config: `{"allow": ["api.openai.com", "*.internal.example.com"]}`, checks: []check{
			{name: "listed host", req: request("Agent:bot", "network_egress", "Host:api.openai.com", ""), want: allow},
			{name: "listed domain", req: request("Agent:bot", "network_egress", "Host:git.internal.example.com", ""), want: allow},
			{name: "unlisted host", req: request("Agent:bot", "network_egress", "Host:pastebin.com", ""),
				want: deny("egress-allowlist", "egress to pastebin.com is not on the allow-list")},
			{name: "suffix is not the domain", req: request("Agent:bot", "network_egress", "Host:evilinternal.example.com", ""),
				want: deny("egress-allowlist", "egress to evilinternal.example.com is not on the allow-list")},
			{name: "people are not filtered", req: request("User:u", "network_egress", "Host:pastebin.com", ""), want: allow},
		}, badConfigs: map[string]string{
			``:              "allow-list",
			`{"allow": []}`: "allow-list",
		}},
		extension{lang: "go", module: "standing", setup: standingAgents, verify: refusalRecords, checks: []check{
			{name: "active agent", req: request("Agent:bot", "read", "Doc:d", ""), want: allow},
			{name: "suspended agent", req: request("Agent:paused", "read", "Doc:d", ""),
				want: deny("agent-standing", "agent paused is suspended in the identity registry")},
			{name: "revoked agent", req: request("Agent:gone", "write", "Doc:d", ""),
				want: deny("agent-standing", "agent gone is revoked in the identity registry")},
			{name: "unknown agent", req: request("Agent:ghost", "read", "Invoice:7", ""),
				want: deny("agent-standing", "agent ghost is not registered in the identity registry")},
			{name: "agent before its expiry", req: request("Agent:lapsed", "read", "Doc:d", ""), want: allow},
			{name: "expired agent", at: expired, req: request("Agent:lapsed", "read", "Doc:d", ""),
				want: deny("agent-standing", "agent lapsed is expired in the identity registry")},
			{name: "people are not agents", req: request("User:paused", "read", "Doc:d", ""), want: allow},
		}},
		extension{lang: "wat", module: "inactive_guard", setup: inactiveAgents, verify: denialLog, checks: []check{
			{name: "active agent", req: request("Agent:bot", "read", "Doc:d", ""), want: allow},
			{name: "suspended agent", req: request("Agent:paused", "read", "Doc:d", ""), want: inactive},
			{name: "revoked agent", req: request("Agent:gone", "write", "Doc:d", ""), want: inactive},
			{name: "unknown agent", req: request("Agent:ghost", "read", "Doc:d", ""), want: inactive},
			{name: "suspended agent again", req: request("Agent:paused", "delete", "Doc:d", ""), want: inactive},
			{name: "people are not agents", req: request("User:paused", "read", "Doc:d", ""), want: allow},
		}},
		extension{lang: "wat", module: "template", checks: []check{
			{name: "the placeholder rule", req: request("User:u", "example", "Doc:d", ""), want: deny("template", "replace this rule")},
		}},
	)
}

// TestExtensions runs the suite against every module.
func TestExtensions(t *testing.T) {
	for _, x := range examples() {
		t.Run(x.lang+"/"+x.module, func(t *testing.T) {
			t.Parallel()
			module := load(t, x.lang, x.module)
			m, err := abi.ReadManifest(module)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d bytes (manifest %q included)", len(module), m.Name)
			h := newHost(t, m.Capabilities...)
			if x.setup != nil {
				x.setup(t, h)
			}
			for config, want := range x.badConfigs {
				_, err := h.register(module, config)
				if !errors.Is(err, engine.ErrExtensionInvalid) || !strings.Contains(err.Error(), want) {
					t.Errorf("config %.40q: got %v, want a refusal mentioning %q", config, err, want)
				}
			}
			if _, err := h.register(module, x.config); err != nil {
				t.Fatal(err)
			}
			unrelated := request("Service:conformance", "unrelated_action", "Thing:t", `{"amount": 1000000000000, "hour": 3}`)
			for _, c := range append([]check{{name: "unrelated request", req: unrelated, want: allow}}, x.checks...) {
				h.clock.set(noon)
				if !c.at.IsZero() {
					h.clock.set(c.at)
				}
				d, err := h.Check(bg, c.req)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if got := outcomeOf(d); got.String() != c.want.String() {
					t.Errorf("%s:\n got %v\nwant %v", c.name, got, c.want)
				}
			}
			if s := h.stats(m.Name); s.Failures != 0 {
				t.Errorf("%d failed calls: %+v", s.Failures, s)
			}
			if x.verify != nil {
				x.verify(t, h)
			}
		})
	}
}

// inactive is inactive-guard's decision.
var inactive = deny("inactive-agent", "the agent is not active in the identity registry")

// inactiveAgents registers an active, a suspended and a revoked agent,
// and the identity inactive-guard keeps its records as.
func inactiveAgents(t *testing.T, h *host) {
	t.Helper()
	suspended := nhi.StatusSuspended
	for _, id := range []string{"bot", "paused", "gone"} {
		if _, err := h.ids.Register(bg, nhi.AgentIdentity{ID: id, Type: nhi.AgentTypeService, OwnerID: "ops"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.ids.RegisterExtension(bg, "inactive-guard"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ids.Update(bg, "paused", nhi.AgentUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	if err := h.ids.Revoke(bg, "gone"); err != nil {
		t.Fatal(err)
	}
}

// denialLog checks inactive-guard's record: a version of
// inactive-guard/<agent> per denial, holding the status NHI gave.
func denialLog(t *testing.T, h *host) {
	t.Helper()
	ext := storage.Caller{Agent: storage.ExtensionAgent("inactive-guard")}
	want := map[string][]string{"paused": {"status=2", "status=2"}, "gone": {"status=3"}, "ghost": {"status=-2"}}
	list, err := h.objects.List(bg, ext, storage.ListRequest{Bucket: "inactive-guard", AllVersions: true})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, md := range list.Objects {
		obj, err := h.objects.Retrieve(bg, ext, md.Ref)
		if err != nil {
			t.Fatal(err)
		}
		got[md.Ref.Key] = append(got[md.Ref.Key], string(obj.Data))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("denial log %v, want %v", got, want)
	}
}

// TestHostFunctions checks each SDK's bindings of creto:log, request,
// state and time against the engine's host modules: the guests call every
// function and report the results in a quota decision.
func TestHostFunctions(t *testing.T) {
	for _, lang := range languages {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			h := newHost(t)
			info, err := h.register(load(t, lang, "conformance"), "")
			if err != nil {
				t.Fatal(err)
			}
			req := request("Agent:a", "hostcalls", "Doc:d", `{"k": [1, 2]}`)
			req.Principal.Attributes = []byte(`{"tier":"gold"}`)
			for calls := int64(1); calls <= 2; calls++ {
				d, err := h.Check(bg, req)
				if err != nil {
					t.Fatal(err)
				}
				want := outcome{Kind: engine.QuotaExceeded, PolicyID: `{"k": [1, 2]}`, Quota: engine.Quota{
					ID: `{"k": [1, 2]}`, Limit: calls, Used: int64(len(req.Principal.Attributes)), ResetAt: noon}}
				if got := outcomeOf(d); got.String() != want.String() {
					t.Fatalf("call %d:\n got %v\nwant %v (stats: %+v)", calls, got, want, h.stats(info.Name))
				}
			}
			if !h.logs.contains("conformance: hostcalls") {
				t.Errorf("creto:log/v1 write did not reach the engine's log: %q", h.logs.messages)
			}
			if s := h.stats(info.Name); s.Failures != 0 {
				t.Errorf("%d failed calls", s.Failures)
			}
		})
	}
}

// TestGoldenDecisions: the SDKs' decision builders write exactly the
// golden records, and their error helper status 2 with the message.
func TestGoldenDecisions(t *testing.T) {
	vectors := goldens[goldenDecision](t, "decision")
	for _, lang := range languages {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			p := newProbe(t, load(t, lang, "conformance"))
			for _, g := range vectors {
				status, got := p.result(t, p.call(t, "golden_decision", uint64(g.Decision.Kind)))
				if want := unhex(t, g.Hex); status != abi.StatusDecision || !bytes.Equal(got, want) {
					t.Errorf("%s: status %d\n got %x\nwant %x", g.Name, status, got, want)
				}
			}
			status, got := p.result(t, p.call(t, "golden_error"))
			if status != abi.StatusError || string(got) != "conformance: refused" {
				t.Errorf("error: status %d, %q", status, got)
			}
		})
	}
}

// Fields of the conformance guests' probe export.
const (
	probeFlags      = 9
	probeOutcome    = 10
	probeDelegation = 11
	probeLink       = 16
)

// TestGoldenRequests: the SDKs' readers read the golden requests' fields
// in place.
func TestGoldenRequests(t *testing.T) {
	vectors := goldens[goldenRequest](t, "request")
	for _, lang := range languages {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			p := newProbe(t, load(t, lang, "conformance"))
			for _, g := range vectors {
				b := unhex(t, g.Hex)
				p.put(t, b)
				n := uint64(len(b))
				r := g.Request
				strs := []string{r.Principal.Type, r.Principal.ID, r.Action.Type, r.Action.ID, r.Resource.Type, r.Resource.ID,
					string(r.Context), string(r.Attributes), r.TraceID}
				for field, want := range strs {
					if got := p.view(t, p.call(t, "probe", n, uint64(field)), uint32(n)); string(got) != want {
						t.Errorf("%s field %d: got %q, want %q", g.Name, field, got, want)
					}
				}
				scalars := map[uint64]uint64{probeFlags: uint64(r.Flags), probeOutcome: uint64(r.Outcome), probeDelegation: uint64(len(r.Delegation))}
				for field, want := range scalars {
					if got := p.call(t, "probe", n, field); got != want {
						t.Errorf("%s field %d: got %d, want %d", g.Name, field, got, want)
					}
				}
				for i, link := range r.Delegation {
					typ := p.view(t, p.call(t, "probe", n, uint64(probeLink+2*i)), uint32(n))
					id := p.view(t, p.call(t, "probe", n, uint64(probeLink+2*i+1)), uint32(n))
					if string(typ) != link.Type || string(id) != link.ID {
						t.Errorf("%s link %d: got %s:%s, want %s:%s", g.Name, i, typ, id, link.Type, link.ID)
					}
				}
				if got := p.call(t, "probe", n, uint64(probeLink+2*len(r.Delegation))); got != math.MaxUint64 {
					t.Errorf("%s: a link past the chain read as %#x", g.Name, got)
				}
			}
			// What is not a request is refused, not misread.
			full := unhex(t, vectors[0].Hex)
			p.put(t, append([]byte("CRQ2"), full[4:]...))
			if got := p.call(t, "probe", uint64(len(full)), 0); got != math.MaxUint64 {
				t.Errorf("bad magic: %#x", got)
			}
			p.put(t, full)
			if got := p.call(t, "probe", abi.RequestHeaderSize-1, 0); got != math.MaxUint64 {
				t.Errorf("short request: %#x", got)
			}
		})
	}
}

// TestJSON holds the SDKs' JSON readers (all but WAT's, which has none) to
// one table.
func TestJSON(t *testing.T) {
	const missing = "<missing>"
	cases := []struct {
		json, key string
		raw       string // the value as written, or missing
		integer   string // what the integer reader makes of it, or missing
		str       string // what the string reader makes of it, or missing
	}{
		{`{"hour": 10}`, "hour", "10", "10", missing},
		{` { "a" : { "hour": 1 }, "hour" : -7.9 } `, "hour", "-7.9", "-7", missing},
		{"{\n\t\"n\":\r\n3\n}", "n", "3", "3", missing},
		{`{"s": "x\"}{,", "n": 3}`, "n", "3", "3", missing},
		{`{"arr": [1, {"n": 2}, "]"], "n": [3]}`, "n", "[3]", missing, missing},
		{`{"deep": {"x": {"y": "}"}}, "after": 1}`, "after", "1", "1", missing},
		{`{"n": 1e3}`, "n", "1e3", missing, missing},
		{`{"n": 123456789012345678}`, "n", "123456789012345678", "123456789012345678", missing},
		{`{"n": 1234567890123456789}`, "n", "1234567890123456789", missing, missing},
		{`{"n": -}`, "n", "-", missing, missing},
		{`{"prefix": "prod/"}`, "prefix", `"prod/"`, missing, "prod/"},
		{`{"q": "a\"b"}`, "q", `"a\"b"`, missing, `a\"b`},
		{`{"e": ""}`, "e", `""`, missing, ""},
		{`{"t": true, "z": null}`, "z", "null", missing, missing},
		{`{"été": 1}`, "été", "1", "1", missing},
		{`{"a\"b": 5}`, `a\"b`, "5", "5", missing},
		{`{"a": 1}`, "b", missing, missing, missing},
		{`{"a": {"b": 1}}`, "b", missing, missing, missing},
		{`[{"a": 1}]`, "a", missing, missing, missing},
		{`{"a": 1,`, "b", missing, missing, missing},
		{`{"a": "open}`, "a", missing, missing, missing},
		{`{"a" 1}`, "a", missing, missing, missing},
		{`{"a": }`, "a", missing, missing, missing},
		{``, "a", missing, missing, missing},
	}
	for _, lang := range languages {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			p := newProbe(t, load(t, lang, "conformance"))
			if !p.has("json_probe") {
				t.Skipf("the %s helpers have no JSON reader", lang)
			}
			for _, c := range cases {
				p.put(t, []byte(c.json+c.key))
				n := uint32(len(c.json))
				lookup := func(mode uint64) uint64 { return p.call(t, "json_probe", uint64(n), uint64(len(c.key)), mode) }
				got := missing
				if v := lookup(0); v != math.MaxUint64 {
					got = string(p.view(t, v, n))
				}
				gotInt, gotStr := missing, missing
				if got != missing {
					if v := int64(lookup(1)); v != math.MinInt64 {
						gotInt = fmt.Sprint(v)
					}
					if v := lookup(2); v != math.MaxUint64 {
						gotStr = string(p.view(t, v, n))
					}
				}
				if got != c.raw || gotInt != c.integer || gotStr != c.str {
					t.Errorf("%s in %q: got %q, int %s, string %q; want %q, int %s, string %q",
						c.key, c.json, got, gotInt, gotStr, c.raw, c.integer, c.str)
				}
			}
		})
	}
}
