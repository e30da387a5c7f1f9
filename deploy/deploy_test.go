// Package deploy_test checks the monitoring files of deploy/ against a
// running node: the alert rules and the dashboard parse, their PromQL is
// well formed, and every metric and label they name is one a node
// exposes. promtool is not at hand and Prometheus's own parser is a large
// module, so the PromQL check is structural: balanced brackets, label
// matchers with compiling regexps, durations Prometheus accepts, and the
// metric names taken from what is left.
package deploy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/creto-systems/creto/client"
	"github.com/creto-systems/creto/node"
	"github.com/creto-systems/creto/services/consensus"
)

// ruleFile is Prometheus's rule file format.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// dashboard is the part of Grafana's dashboard model the test reads.
type dashboard struct {
	Title  string `json:"title"`
	UID    string `json:"uid"`
	Panels []struct {
		ID      int    `json:"id"`
		Title   string `json:"title"`
		Type    string `json:"type"`
		GridPos struct {
			W, H int
		} `json:"gridPos"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// query is one PromQL expression and where it comes from.
type query struct{ where, expr string }

func alertQueries(t *testing.T) []query {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	if len(f.Groups) == 0 {
		t.Fatal("no rule groups")
	}
	var out []query
	seen := map[string]bool{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			switch {
			case r.Alert == "" || seen[r.Alert]:
				t.Errorf("rule %q: missing or duplicate name", r.Alert)
			case !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]):
				t.Errorf("%s: severity %q", r.Alert, r.Labels["severity"])
			case r.Annotations["summary"] == "":
				t.Errorf("%s: no summary", r.Alert)
			}
			if _, err := model.ParseDuration(r.For); err != nil {
				t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
			}
			if !regexp.MustCompile(`(==|!=|>=|<=|>|<)\s*[0-9.]+\s*$`).MatchString(strings.TrimSpace(r.Expr)) {
				t.Errorf("%s: an alert expression ends in a comparison: %s", r.Alert, r.Expr)
			}
			seen[r.Alert] = true
			out = append(out, query{r.Alert, r.Expr})
		}
	}
	return out
}

func dashboardQueries(t *testing.T) []query {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("grafana", "creto.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard: %+v", d)
	}
	var out []query
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] || p.Title == "" || p.GridPos.W == 0 || p.GridPos.H == 0 || len(p.Targets) == 0 {
			t.Errorf("panel %d %q: id, title, size and targets", p.ID, p.Title)
		}
		ids[p.ID] = true
		for _, tg := range p.Targets {
			// Grafana's variables, as Grafana substitutes them.
			expr := strings.NewReplacer("$instance", ".*").Replace(tg.Expr)
			out = append(out, query{fmt.Sprintf("panel %q %s", p.Title, tg.RefID), expr})
		}
	}
	return out
}

// used is what a query names: metrics and, for each, its matcher labels.
type used map[string]map[string]bool

var (
	stringLit   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	matcher     = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")\s*$`)
	selector    = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)?\{([^{}]*)\}`)
	rangeSel    = regexp.MustCompile(`\[([^\[\]]*)\]`)
	grouping    = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	identifier  = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	notMetrics  = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "inf", "nan"}
	promqlFuncs = []string{"histogram_quantile", "rate", "irate", "increase", "sum", "avg", "max", "min", "count", "label_values"}
)

// parse checks a query's structure and returns what it names.
func parse(q query) (used, error) {
	depth := map[rune]int{}
	for _, r := range stringLit.ReplaceAllString(q.expr, `""`) {
		switch r {
		case '(', '{', '[':
			depth[r]++
		case ')':
			depth['(']--
		case '}':
			depth['{']--
		case ']':
			depth['[']--
		}
		for _, d := range depth {
			if d < 0 {
				return nil, fmt.Errorf("unbalanced brackets")
			}
		}
	}
	for open, d := range depth {
		if d != 0 {
			return nil, fmt.Errorf("unbalanced %c", open)
		}
	}
	u := used{}
	rest := selector.ReplaceAllStringFunc(q.expr, func(s string) string {
		m := selector.FindStringSubmatch(s)
		name, labels := m[1], map[string]bool{}
		for part := range strings.SplitSeq(m[2], ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			mm := matcher.FindStringSubmatch(part)
			if mm == nil {
				u["!bad matcher "+part] = nil
				continue
			}
			if strings.HasSuffix(mm[2], "~") {
				var re string
				_ = json.Unmarshal([]byte(mm[3]), &re)
				if _, err := regexp.Compile("^(?:" + re + ")$"); err != nil {
					u["!bad regexp "+re] = nil
				}
			}
			labels[mm[1]] = true
		}
		if name != "" {
			if u[name] == nil {
				u[name] = map[string]bool{}
			}
			for l := range labels {
				u[name][l] = true
			}
		}
		return " "
	})
	for k := range u {
		if strings.HasPrefix(k, "!") {
			return nil, fmt.Errorf("%s", k[1:])
		}
	}
	var err error
	rest = rangeSel.ReplaceAllStringFunc(rest, func(s string) string {
		if _, e := model.ParseDuration(s[1 : len(s)-1]); e != nil {
			err = fmt.Errorf("range %s: %v", s, e)
		}
		return " "
	})
	if err != nil {
		return nil, err
	}
	rest = grouping.ReplaceAllString(rest, " ")
	for _, id := range identifier.FindAllString(rest, -1) {
		name := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(id), "("))
		switch {
		case strings.HasSuffix(strings.TrimSpace(id), "("):
			if !slices.Contains(promqlFuncs, name) {
				return nil, fmt.Errorf("unknown function %s", name)
			}
		case slices.Contains(notMetrics, strings.ToLower(name)):
		default:
			if u[name] == nil {
				u[name] = map[string]bool{}
			}
		}
	}
	return u, nil
}

func TestQueriesParse(t *testing.T) {
	for _, q := range append(alertQueries(t), dashboardQueries(t)...) {
		u, err := parse(q)
		if err != nil {
			t.Errorf("%s: %v: %s", q.where, err, q.expr)
		} else if len(u) == 0 {
			t.Errorf("%s names no metric: %s", q.where, q.expr)
		}
	}
	// The checker must catch what it claims to.
	for _, bad := range []string{
		`rate(authz_requests_total[5m]`, `rate(authz_requests_total{code=~"(["}[5m])`, `rate(x[5 minutes])`,
		`sum(x{code=Unavailable})`, `histogram_quantil(0.99, x)`,
	} {
		if _, err := parse(query{"bad", bad}); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// Every metric and label the rules and the dashboard name is one a
// running node exposes once its services have been called. `up`, `job`
// and `instance` are Prometheus's own, added at scrape time.
func TestQueriesNameTheNodesMetrics(t *testing.T) {
	families := scrape(t)
	for _, q := range append(alertQueries(t), dashboardQueries(t)...) {
		u, err := parse(q)
		if err != nil {
			t.Fatalf("%s: %v", q.where, err)
		}
		for name, labels := range u {
			if name == "up" {
				continue
			}
			f, ok := families[name]
			if !ok {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if base, cut := strings.CutSuffix(name, suffix); cut && families[base].GetType() == dto.MetricType_HISTOGRAM {
						f, ok = families[base], true
					}
				}
			}
			if !ok {
				t.Errorf("%s: the node has no metric %s", q.where, name)
				continue
			}
			have := map[string]bool{"job": true, "instance": true}
			if f.GetType() == dto.MetricType_HISTOGRAM {
				have["le"] = true
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					have[l.GetName()] = true
				}
			}
			for l := range labels {
				if !have[l] {
					t.Errorf("%s: %s has no label %s", q.where, name, l)
				}
			}
		}
	}
}

// scrape starts a node, calls each of its services (a success and an
// error each, so every counter has children), and reads its /metrics:
// the consensus member's gauges and the audit logger's counters are there
// from the start.
func scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.Open(ctx, node.Config{Server: node.ServerConfig{DataDir: dir, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"},
		// Raft on a free port, electing itself at once.
		Consensus: consensus.Config{BindAddress: "127.0.0.1:0", HeartbeatTimeout: 50 * time.Millisecond,
			ElectionTimeout: 50 * time.Millisecond, LeaderLeaseTimeout: 25 * time.Millisecond}}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(ctx)
	tlsDir := filepath.Join(dir, "tls")
	cfg := client.Config{Transport: client.Transport{Endpoint: n.GRPCAddr().String(), TLSCA: filepath.Join(tlsDir, "ca.crt"),
		TLSCert: filepath.Join(tlsDir, "admin.crt"), TLSKey: filepath.Join(tlsDir, "admin.key"), TLSServerName: "localhost"}}
	for _, s := range []*client.ServiceConfig{&cfg.Authz.ServiceConfig, &cfg.NHI.ServiceConfig, &cfg.Memory.ServiceConfig, &cfg.Vault.ServiceConfig,
		&cfg.Storage.ServiceConfig, &cfg.Audit.ServiceConfig, &cfg.Consensus.ServiceConfig} {
		s.TimeoutMS, s.ConnectTimeoutMS = 5000, 5000
	}
	c, err := client.New(cfg, client.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Authz.Check(ctx, client.CheckRequest{Principal: client.Principal{ID: "a"}, Action: "read", Resource: "x"})
	c.Authz.Check(ctx, client.CheckRequest{Principal: client.Principal{ID: "a"}, Action: "read", Resource: `Bad::"`})
	c.NHI.IsRegistered(ctx, "a")
	c.NHI.GetAgent(ctx, "nobody")
	c.Memory.Query(ctx, client.QueryRequest{Agent: "a", Query: "q"})
	c.Memory.Query(ctx, client.QueryRequest{Agent: "a"})
	c.Vault.CreateSecret(ctx, client.CreateSecretRequest{Requester: "a", Ref: client.SecretRef{Path: "agents/a", Name: "K"},
		Value: client.NewSecretValue([]byte("v")), Metadata: client.SecretMetadata{Type: client.Generic}})
	c.Vault.GetSecret(ctx, "a", client.SecretRef{Path: "agents/a", Name: "NONE"}, "")
	if _, err := c.NHI.RegisterAgent(ctx, client.Agent{ID: "a", Type: client.AgentService, OwnerID: "o"}); err != nil {
		t.Fatal(err)
	}
	c.Storage.Store(ctx, client.StoreObjectRequest{Requester: "a", Classification: client.AgentData}, []byte("x"))
	c.Storage.Retrieve(ctx, client.ObjectRequest{Requester: "a", Ref: client.StorageRef{Bucket: "none", Key: "none"}})
	c.Audit.Log(ctx, client.AuditRecord{What: "deploy_test", Outcome: client.OutcomeSuccess})
	c.Audit.Log(ctx, client.AuditRecord{What: "deploy_test", Outcome: client.OutcomeSuccess, Source: "vault"})
	c.Consensus.GetTimestamp(ctx, 1)
	c.Consensus.OrderEvents(ctx, client.OrderEventsRequest{Events: []client.Event{{}}})

	ca, err := os.ReadFile(filepath.Join(tlsDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"}}}
	resp, err := hc.Get("https://" + n.HTTPAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return families
}
