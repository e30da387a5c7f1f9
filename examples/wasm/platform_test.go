package wasm_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/hosts"
	"github.com/creto-systems/creto/internal/guestbuild"
	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/audit"
	"github.com/creto-systems/creto/services/consensus"
	"github.com/creto-systems/creto/services/nhi"
	"github.com/creto-systems/creto/services/storage"
	"github.com/creto-systems/creto/services/vault"
)

// platform is the vault, audit log and consensus node a host opens for
// extensions that ask for creto:vault, vault-reveal, audit or consensus.
type platform struct {
	secrets *vault.Service
	audit   *audit.Service
	events  *audit.Logger
	cluster *consensus.Node
}

// openPlatform opens the services the capabilities need and returns
// their host modules.
func (h *host) openPlatform(t *testing.T, capabilities []string) []engine.HostModule {
	t.Helper()
	has := func(c string) bool { return slices.Contains(capabilities, c) }
	var mods []engine.HostModule
	if has(abi.CapabilityVault) || has(abi.CapabilityVaultReveal) {
		h.secrets = openVault(t)
		mods = append(mods, hosts.Vault{Secrets: h.secrets}, hosts.VaultReveal{Secrets: h.secrets})
	}
	if has(abi.CapabilityAudit) {
		h.audit, h.events = openAudit(t)
		mods = append(mods, hosts.Audit{Events: h.events})
	}
	if has(abi.CapabilityConsensus) {
		h.cluster = openCluster(t)
		mods = append(mods, hosts.Consensus{Timestamps: h.cluster})
	}
	return mods
}

// openStore is a fresh kv store, closed after the test.
func openStore(t *testing.T, dir string) kv.Store {
	t.Helper()
	store, err := kv.Open(filepath.Join(dir, "kv"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// openVault is an unsealed vault with one key share.
func openVault(t *testing.T) *vault.Service {
	t.Helper()
	v, err := vault.Open(bg, openStore(t, t.TempDir()), vault.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	shares, err := v.InitShamir(bg, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.SubmitUnsealShares(bg, shares[0]); err != nil {
		t.Fatal(err)
	}
	return v
}

// auditor is the identity the tests read the audit log as.
const auditor = "auditor"

// openAudit is an audit log and the Logger extensions emit through.
func openAudit(t *testing.T) (*audit.Service, *audit.Logger) {
	t.Helper()
	dir := t.TempDir()
	sealer, err := nhi.CreateFileSealer(filepath.Join(dir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	defer sealer.Close()
	readers := audit.AuthorizerFunc(func(_ context.Context, caller, _ string, _ audit.Access) error {
		if caller == auditor {
			return nil
		}
		return audit.ErrAccessDenied
	})
	svc, err := audit.Open(bg, openStore(t, dir), sealer, audit.Config{Authorizer: readers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	logger, err := audit.NewLogger(svc, audit.LoggerConfig{SpoolPath: filepath.Join(dir, "audit.spool"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logger.Close(bg) })
	return svc, logger
}

// auditRecords flushes the Logger and returns the records of source.
func (h *host) auditRecords(t *testing.T, source string) []audit.Record {
	t.Helper()
	if err := h.events.Flush(bg); err != nil {
		t.Fatal(err)
	}
	res, err := h.audit.Query(bg, auditor, audit.QueryRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	for _, r := range res.Records {
		if r.Source == source {
			out = append(out, r)
		}
	}
	return out
}

// clusterNode is the id of the one-node cluster's node.
const clusterNode = "node-1"

// openCluster is a one-node consensus cluster on loopback, with a leader.
func openCluster(t *testing.T) *consensus.Node {
	t.Helper()
	dir := t.TempDir()
	n, err := consensus.Open(bg, dir, openStore(t, dir), consensus.Config{NodeID: clusterNode, BindAddress: "127.0.0.1:0",
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond, LeaderLeaseTimeout: 25 * time.Millisecond,
		LogSegmentBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	if _, err := n.WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

// platformGuests are the SDKs' platform guests: each calls one binding of
// the platform modules per action and reports the result as a quota
// decision (see sdk/go/platform).
var platformGuests = []string{"go", "c", "rust", "assemblyscript"}

func loadPlatform(t *testing.T, lang string) []byte {
	t.Helper()
	if lang == "go" {
		b, err := guestbuild.Go(filepath.Join("..", "..", "sdk", "go", "platform"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return load(t, lang, "platform")
}

// got is what a platform guest reported.
type got struct {
	text       string
	n, m       int64
	at         time.Time
	resetIsSet bool
}

func (g got) String() string { return fmt.Sprintf("%.60q %d %d %v", g.text, g.n, g.m, g.at) }

// platformCall has the guest run action on principal Agent:<p> and
// resource R:<r>.
func platformCall(t *testing.T, h *host, p, action, r, contextJSON string) got {
	t.Helper()
	d, err := h.Check(bg, request("Agent:"+p, action, "R:"+r, contextJSON))
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != engine.QuotaExceeded {
		t.Fatalf("%s(%q, %q): %v %q %s, want the guest's report", action, p, r, d.Kind, d.PolicyID, d.Reason)
	}
	return got{text: d.Quota.ID, n: d.Quota.Limit, m: d.Quota.Used, at: d.Quota.ResetAt, resetIsSet: !d.Quota.ResetAt.IsZero()}
}

// Fixtures of the platform suite.
var (
	// longOwner and bio are longer than any SDK's first buffer, so reading
	// them takes the return convention's retry.
	longOwner = "org-" + strings.Repeat("o", 120)
	bio       = strings.Repeat("a long biography. ", 40)
	// secretValue likewise.
	secretValue = "whsec-" + strings.Repeat("s", 300)
	// blob is a context the guest stores and reads back, 3 KiB.
	blob = `{"blob": "` + strings.Repeat("b", 3000) + `"}`
)

// lapse is when agent "lapsed" expires: after noon, the engine's clock,
// and before the clock expired sets.
var lapse = time.Now().Add(time.Hour).Truncate(time.Second)

// expired is a time by the engine's clock when "lapsed" has expired.
var expired = lapse.Add(time.Hour)

// platformFixtures registers agents and the extension's identity, provisions the guest's secret and
// stores an object of another identity's in the guest's bucket.
func platformFixtures(t *testing.T, h *host, ext string) {
	t.Helper()
	for _, a := range []nhi.AgentIdentity{
		{ID: "bot", Type: nhi.AgentTypeService, OwnerID: "ops", Attributes: map[string]string{"team": "payments", "bio": bio}},
		{ID: "paused", Type: nhi.AgentTypeAssistant, OwnerID: longOwner},
		{ID: "gone", Type: nhi.AgentTypeWorkflow, OwnerID: "ops"},
		{ID: "lapsed", Type: nhi.AgentTypeAutonomous, OwnerID: "ops", ExpiresAt: lapse},
	} {
		if _, err := h.ids.Register(bg, a); err != nil {
			t.Fatal(err)
		}
	}
	// A node registers the extension's storage identity at its first put.
	if _, err := h.ids.RegisterExtension(bg, ext); err != nil {
		t.Fatal(err)
	}
	suspended := nhi.StatusSuspended
	if _, err := h.ids.Update(bg, "paused", nhi.AgentUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	if err := h.ids.Revoke(bg, "gone"); err != nil {
		t.Fatal(err)
	}
	for owner, value := range map[string]string{ext: secretValue, "other": "not yours"} {
		id := vault.ExtensionAgent(owner)
		if _, err := h.secrets.CreateSecret(bg, id, vault.CreateSecretRequest{
			Ref:      vault.SecretRef{Path: "agents/" + id + "/keys", Name: "SIGNING"},
			Value:    vault.NewSecretValue([]byte(value)),
			Metadata: vault.SecretMetadata{Type: vault.TypeGeneric}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.objects.Store(bg, storage.Caller{Agent: "bot"}, storage.StoreRequest{Bucket: "platform", Key: "theirs",
		Classification: storage.AgentData}, strings.NewReader("bot's")); err != nil {
		t.Fatal(err)
	}
}

// TestPlatformBindings holds every SDK's bindings of creto:nhi, vault,
// vault-reveal, audit, storage and consensus to one table, against the
// real host modules over real services: right arguments in the right
// order, results decoded, errors as the ABI's codes, and the retry when a
// result is longer than the first buffer.
func TestPlatformBindings(t *testing.T) {
	for _, lang := range platformGuests {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			module := loadPlatform(t, lang)
			m, err := abi.ReadManifest(module)
			if err != nil {
				t.Fatal(err)
			}
			h := newHost(t, m.Capabilities...)
			platformFixtures(t, h, m.Name)
			if _, err := h.register(module, ""); err != nil {
				t.Fatal(err)
			}
			own, other := "agents/"+vault.ExtensionAgent(m.Name)+"/keys", "agents/"+vault.ExtensionAgent("other")+"/keys"
			mac := hmac.New(sha256.New, []byte(secretValue))
			mac.Write([]byte("bot"))
			value := func(text string, n int64) got { return got{text: text, n: n} }
			code := func(c int) got { return got{n: int64(c)} }
			for _, c := range []struct {
				p, action, r string
				want         got
			}{
				{"bot", "is_registered", "", value("", 1)},
				{"gone", "is_registered", "", value("", 1)},
				{"ghost", "is_registered", "", value("", 0)},
				{"bot", "is_revoked", "", value("", 0)},
				{"gone", "is_revoked", "", value("", 1)},
				{"ghost", "is_revoked", "", code(abi.ENotFound)},
				{"bot", "status", "", value("", 1)},
				{"paused", "status", "", value("", 2)},
				{"gone", "status", "", value("", 3)},
				{"ghost", "status", "", code(abi.ENotFound)},
				{strings.Repeat("x", 129), "status", "", code(abi.EInvalid)},
				{"bot", "owner", "", value("ops", 0)},
				{"paused", "owner", "", value(longOwner, 0)},
				{"ghost", "owner", "", code(abi.ENotFound)},
				{"bot", "agent_type", "", value("service", 0)},
				{"paused", "agent_type", "", value("assistant", 0)},
				{"bot", "attribute", "team", value("payments", 0)},
				{"bot", "attribute", "bio", value(bio, 0)},
				{"bot", "attribute", "missing", code(abi.ENotFound)},
				{"ghost", "attribute", "team", code(abi.ENotFound)},
				{"bot", "mac", own, value(hex.EncodeToString(mac.Sum(nil)), 32)},
				{"bot", "mac", other, code(abi.EDenied)},
				{"bot", "mac", "agents/" + vault.ExtensionAgent(m.Name) + "/none", code(abi.ENotFound)},
				{"bot", "reveal", own, value(secretValue, int64(len(secretValue)))},
				{"bot", "reveal", other, code(abi.EDenied)},
				{"bot", "emit", "platform.check", value("", 0)},
				{"bot", "emit", "", code(abi.EInvalid)},
				{"bot", "get", "theirs", code(abi.EDenied)},
				{"bot", "get", "k1", code(abi.ENotFound)},
				{"bot", "stat", "k1", code(abi.ENotFound)},
				{"bot", "delete", "k1", code(abi.ENotFound)},
			} {
				if g := platformCall(t, h, c.p, c.action, c.r, ""); g.String() != c.want.String() {
					t.Errorf("%s(%.20q, %.40q):\n got %v\nwant %v", c.action, c.p, c.r, g, c.want)
				}
			}

			// An active agent past its expiry, by the engine's clock.
			h.clock.set(expired)
			if g := platformCall(t, h, "lapsed", "status", "", ""); g.String() != value("", 4).String() {
				t.Errorf("status of an expired agent: %v", g)
			}
			h.clock.set(noon)
			if g := platformCall(t, h, "lapsed", "status", "", ""); g.String() != value("", 1).String() {
				t.Errorf("status of an agent before its expiry: %v", g)
			}

			// Storage: put, get (3 KiB: a retry), stat, delete.
			if g := platformCall(t, h, "bot", "put", "k1", blob); g.String() != value("", 0).String() {
				t.Fatalf("put: %v", g)
			}
			if lang == "go" {
				// Go's TTL is a time.Duration: a negative one other than
				// NoExpiry is refused in the guest, and nothing is stored.
				if g := platformCall(t, h, "bot", "put_lapsed", "k9", blob); g.String() != value("", -4).String() {
					t.Errorf("put with a lapsed TTL: %v", g)
				}
				if g := platformCall(t, h, "bot", "get", "k9", ""); g.String() != value("", -2).String() {
					t.Errorf("get after a refused put: %v", g)
				}
			}
			if g := platformCall(t, h, "bot", "get", "k1", ""); g.text != blob || g.n != int64(len(blob)) {
				t.Errorf("get: %v, want the %d-byte blob", g, len(blob))
			}
			st := platformCall(t, h, "bot", "stat", "k1", "")
			created, expires := st.at, time.Unix(0, st.m)
			if st.text != "4/0" || st.n != int64(len(blob)) || time.Since(created).Abs() > time.Minute ||
				expires.Sub(created).Round(time.Second) != time.Hour {
				t.Errorf("stat: %v: want class 4, not retained, %d bytes, created now, expiring an hour later", st, len(blob))
			}
			if g := platformCall(t, h, "bot", "delete", "k1", ""); g.String() != value("", 0).String() {
				t.Errorf("delete: %v", g)
			}
			if g := platformCall(t, h, "bot", "get", "k1", ""); g.String() != code(abi.ENotFound).String() {
				t.Errorf("get after delete: %v", g)
			}

			// Consensus: the cluster's timestamps, increasing, decoded field
			// by field.
			var last uint64
			for i := range 2 {
				ts := platformCall(t, h, "bot", "timestamp", "", "")
				logical := uint64(ts.n)
				if ts.text != clusterNode || ts.m != 1 || logical <= last ||
					ts.at.UnixNano() != int64(logical>>18)*int64(time.Millisecond) {
					t.Errorf("timestamp %d: %v, want node %q, consensus, increasing, physical = logical's millisecond", i, ts, clusterNode)
				}
				last = logical
			}

			// Audit: the one emit the log accepted, in the principal's name.
			rs := h.auditRecords(t, "ext:"+m.Name)
			if len(rs) != 1 {
				t.Fatalf("%d records from the guest: %+v", len(rs), rs)
			}
			if r := rs[0]; r.Who != "bot" || r.What != "platform.check" || r.Resource != "bot" || r.Why != "checked" ||
				r.Outcome != audit.Denied || r.Context["via"] != "platform" || r.Context["principal_type"] != "Agent" {
				t.Errorf("audit record %+v", r)
			}
			if s := h.stats(m.Name); s.Failures != 0 {
				t.Errorf("%d failed calls: %+v", s.Failures, s)
			}
		})
	}
}

// standingAgents are inactiveAgents and one that has expired by the
// engine's clock at expired.
func standingAgents(t *testing.T, h *host) {
	t.Helper()
	inactiveAgents(t, h)
	if _, err := h.ids.Register(bg, nhi.AgentIdentity{ID: "lapsed", Type: nhi.AgentTypeService, OwnerID: "ops", ExpiresAt: lapse}); err != nil {
		t.Fatal(err)
	}
}

// refusalRecords checks agent-standing's audit records: one per refusal,
// in the refused agent's name, with the standing that decided it.
func refusalRecords(t *testing.T, h *host) {
	t.Helper()
	var got []string
	for _, r := range h.auditRecords(t, "ext:agent-standing") {
		if r.What != "agent.refused" || r.Outcome != audit.Denied {
			t.Errorf("record %+v", r)
		}
		got = append(got, fmt.Sprintf("%s %s %s: %s (%s)", r.Who, r.Context["action"], r.Resource, r.Why, r.Context["standing"]))
	}
	want := []string{
		`paused read Doc::"d": agent is suspended (suspended)`,
		`gone write Doc::"d": agent is revoked (revoked)`,
		`ghost read Invoice::"7": agent is not registered (not registered)`,
		`lapsed read Doc::"d": agent is expired (expired)`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit records\n got %q\nwant %q", got, want)
	}
}
