package node

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/creto-systems/creto/abi"
	authzv1 "github.com/creto-systems/creto/api/creto/authz/v1"
	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	vaultv1 "github.com/creto-systems/creto/api/creto/vault/v1"
	"github.com/creto-systems/creto/services/nhi"
	"github.com/creto-systems/creto/services/vault"
)

func secretRef(path, name string) *vaultv1.SecretRef {
	return &vaultv1.SecretRef{Path: path, Name: name}
}

func sandbox(id string) *vaultv1.SandboxId { return &vaultv1.SandboxId{Id: id} }

var generic = &vaultv1.SecretMetadata{Type: vaultv1.SecretType_SECRET_TYPE_GENERIC}

// createSecret creates a secret through the given connection.
func createSecret(t testing.TB, conn grpc.ClientConnInterface, ref *vaultv1.SecretRef, value string) {
	t.Helper()
	_, err := vaultv1.NewVaultServiceClient(conn).CreateSecret(bg, &vaultv1.CreateSecretRequest{Reference: ref, Value: []byte(value), Metadata: generic})
	if err != nil {
		t.Fatalf("create %v: %v", ref, err)
	}
}

func (tn *testNode) vaultHealth() healthpb.HealthCheckResponse_ServingStatus {
	tn.t.Helper()
	resp, err := healthpb.NewHealthClient(tn.anonymous()).Check(bg, &healthpb.HealthCheckRequest{Service: vaultServiceName})
	if err != nil {
		tn.t.Fatal(err)
	}
	return resp.GetStatus()
}

// Seed §11.2, vault contract: delegated secrets are bound to a sandbox and
// memory-only, whether the runtime fetches its own agent's secrets or
// another agent's under a delegation.
func TestVaultDelegationContract(t *testing.T) {
	tn := startNode(t, "", nil)
	runtime := vaultv1.NewVaultServiceClient(tn.agent("runtime"))
	ref := secretRef("agents/runtime/test", "TEST_SECRET")
	createSecret(t, tn.agent("runtime"), ref, "s3cr3t")

	resp, err := runtime.GetDelegatedSecrets(bg, &vaultv1.GetDelegatedSecretsRequest{
		SandboxId: sandbox("sandbox-1"), References: []*vaultv1.SecretRef{ref}, Ttl: durationpb.New(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	s := resp.GetSecrets()[0]
	if !s.GetRestrictions().GetMemoryOnly() || s.GetRestrictions().GetBoundSandbox().GetId() != "sandbox-1" ||
		string(s.GetValue()) != "s3cr3t" || resp.GetDelegationId() == "" || s.GetExpiresAt() == nil || s.GetVersion() != "1" {
		t.Fatalf("direct fetch: %v", resp)
	}

	// Another agent, through a delegation bound to its sandbox.
	d, err := runtime.CreateDelegation(bg, &vaultv1.CreateDelegationRequest{
		Delegatee: agentRef("worker"), Secrets: []*vaultv1.SecretRef{ref}, Ttl: durationpb.New(time.Minute),
		Restrictions: &vaultv1.DelegationRestrictions{BoundSandbox: sandbox("sandbox-7"), MaxUses: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.GetDelegation().GetStatus() != vaultv1.DelegationStatus_DELEGATION_STATUS_ACTIVE || !d.GetDelegation().GetRestrictions().GetMemoryOnly() {
		t.Fatalf("delegation %v", d)
	}
	worker := vaultv1.NewVaultServiceClient(tn.agent("worker"))
	_, err = worker.GetDelegatedSecrets(bg, &vaultv1.GetDelegatedSecretsRequest{SandboxId: sandbox("sandbox-8"), References: []*vaultv1.SecretRef{ref}})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")
	got, err := worker.GetDelegatedSecrets(bg, &vaultv1.GetDelegatedSecretsRequest{SandboxId: sandbox("sandbox-7"), References: []*vaultv1.SecretRef{ref}})
	if err != nil {
		t.Fatal(err)
	}
	if s := got.GetSecrets()[0]; string(s.GetValue()) != "s3cr3t" || !s.GetRestrictions().GetMemoryOnly() ||
		s.GetRestrictions().GetBoundSandbox().GetId() != "sandbox-7" || got.GetDelegationId() != d.GetDelegation().GetId() {
		t.Fatalf("delegated fetch: %v", got)
	}
	// Reading directly is still refused: the delegation is for sandboxes.
	_, err = worker.GetSecret(bg, &vaultv1.GetSecretRequest{Reference: ref})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")
	// A lookup is not a use.
	look, err := worker.GetDelegation(bg, &vaultv1.GetDelegationRequest{DelegationId: d.GetDelegation().GetId()})
	if err != nil || look.GetDelegation().GetUses() != 1 {
		t.Fatalf("lookup: %v %v", look, err)
	}
}

// Seed §11.4: a delegation past its TTL gives DelegationExpired — over the
// wire FAILED_PRECONDITION with reason DELEGATION_EXPIRED.
func TestVaultExpiredDelegationOverTheWire(t *testing.T) {
	tn := startNode(t, "", nil)
	ref := secretRef("agents/delegator/keys", "TEST")
	createSecret(t, tn.agent("delegator"), ref, "v")
	_, err := vaultv1.NewVaultServiceClient(tn.agent("delegator")).CreateDelegation(bg, &vaultv1.CreateDelegationRequest{
		Delegatee: agentRef("delegatee"), Secrets: []*vaultv1.SecretRef{ref}, Ttl: durationpb.New(time.Millisecond),
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	_, err = vaultv1.NewVaultServiceClient(tn.agent("delegatee")).GetDelegatedSecrets(bg, &vaultv1.GetDelegatedSecretsRequest{
		SandboxId: sandbox("sb"), References: []*vaultv1.SecretRef{ref}, Ttl: durationpb.New(time.Minute),
	})
	wantReason(t, err, codes.FailedPrecondition, "DELEGATION_EXPIRED")
}

// A single-use delegation fetched by many gRPC clients at once, each on
// its own connection: exactly one gets the value.
func TestVaultSingleUseDelegationRacedOverTheWire(t *testing.T) {
	tn := startNode(t, "", nil)
	ref := secretRef("agents/owner/keys", "ONCE")
	createSecret(t, tn.agent("owner"), ref, "only-once")
	d, err := vaultv1.NewVaultServiceClient(tn.agent("owner")).CreateDelegation(bg, &vaultv1.CreateDelegationRequest{
		Delegatee: agentRef("racer"), Secrets: []*vaultv1.SecretRef{ref},
		Restrictions: &vaultv1.DelegationRestrictions{SingleUse: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	clients := make([]vaultv1.VaultServiceClient, n)
	token := tn.agentToken("racer")
	for i := range clients {
		clients[i] = vaultv1.NewVaultServiceClient(tn.dial(clientTLS(t, tn.tlsDir(), "", ""), grpcBearer(token)))
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	values := make([]string, n)
	for i := range n {
		wg.Go(func() {
			<-start
			r, err := clients[i].GetDelegatedSecrets(bg, &vaultv1.GetDelegatedSecretsRequest{
				SandboxId: sandbox("sb"), References: []*vaultv1.SecretRef{ref}, DelegationId: d.GetDelegation().GetId(),
			})
			errs[i] = err
			if err == nil {
				values[i] = string(r.GetSecrets()[0].GetValue())
			}
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil && values[i] == "only-once":
			won++
		case err == nil:
			t.Fatalf("client %d got %q", i, values[i])
		case reason(err) != "DELEGATION_EXHAUSTED":
			t.Fatalf("client %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d clients got the value", won)
	}
}

// A node with unseal = "shamir" starts sealed: VaultService is UNAVAILABLE
// (reason SEALED) and NOT_SERVING, until operators initialize and unseal
// it through VaultAdminService, which agents may not call.
func TestVaultSealedNodeUnsealsWithSharesOverTheAdminService(t *testing.T) {
	dir := t.TempDir()
	shamir := func(c *Config) { c.Vault.Unseal = UnsealShamir }
	tn := startNode(t, dir, shamir)
	agent := vaultv1.NewVaultServiceClient(tn.agent("a"))
	admin := vaultv1.NewVaultAdminServiceClient(tn.operator())
	ref := secretRef("agents/a/k", "K")

	if tn.vaultHealth() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("sealed vault health %v", tn.vaultHealth())
	}
	_, err := agent.GetSecret(bg, &vaultv1.GetSecretRequest{Reference: ref})
	wantReason(t, err, codes.Unavailable, "SEALED")
	_, err = vaultv1.NewVaultAdminServiceClient(tn.agent("a")).Status(bg, &vaultv1.StatusRequest{})
	wantCode(t, err, codes.PermissionDenied)
	_, err = vaultv1.NewVaultAdminServiceClient(tn.agent("a")).InitShamir(bg, &vaultv1.InitShamirRequest{Threshold: 1, Shares: 1})
	wantCode(t, err, codes.PermissionDenied)

	_, err = admin.InitShamir(bg, &vaultv1.InitShamirRequest{Threshold: 0, Shares: 5})
	wantReason(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
	_, err = admin.SubmitUnsealShares(bg, &vaultv1.SubmitUnsealSharesRequest{Shares: []string{"x"}})
	wantReason(t, err, codes.FailedPrecondition, "NOT_INITIALIZED")
	init, err := admin.InitShamir(bg, &vaultv1.InitShamirRequest{Threshold: 3, Shares: 5})
	if err != nil || len(init.GetShares()) != 5 {
		t.Fatalf("init: %v %v", init, err)
	}
	shares := init.GetShares()
	_, err = admin.InitShamir(bg, &vaultv1.InitShamirRequest{Threshold: 3, Shares: 5})
	wantReason(t, err, codes.FailedPrecondition, "ALREADY_INITIALIZED")
	_, err = admin.InitWithBackend(bg, &vaultv1.InitWithBackendRequest{})
	wantReason(t, err, codes.FailedPrecondition, "ALREADY_INITIALIZED")
	if _, err := os.Stat(filepath.Join(dir, "keys", "vault.key")); !os.IsNotExist(err) {
		t.Fatalf("a refused InitWithBackend left a key file: %v", err)
	}

	st, err := admin.SubmitUnsealShares(bg, &vaultv1.SubmitUnsealSharesRequest{Shares: shares[:2]})
	if err != nil || !st.GetStatus().GetSealed() || st.GetStatus().GetProgress() != 2 {
		t.Fatalf("two shares: %v %v", st, err)
	}
	// A typo is refused and not counted.
	typo := []byte(shares[2])
	typo[10] ^= 1
	if typo[10] == '=' || typo[10] < '2' {
		typo[10] = 'A'
	}
	_, err = admin.SubmitUnsealShares(bg, &vaultv1.SubmitUnsealSharesRequest{Shares: []string{string(typo)}})
	if code := reason(err); code != "SHARE_MALFORMED" && code != "SHARE_WRONG" {
		t.Fatalf("typo: %v", err)
	}
	_, err = admin.SubmitUnsealShares(bg, &vaultv1.SubmitUnsealSharesRequest{Shares: shares[1:2]})
	wantReason(t, err, codes.InvalidArgument, "SHARE_DUPLICATE")
	if s, _ := admin.Status(bg, &vaultv1.StatusRequest{}); s.GetProgress() != 2 || !s.GetSealed() || s.GetMode() != "shamir" || s.GetThreshold() != 3 {
		t.Fatalf("status after refusals %v", s)
	}
	st, err = admin.SubmitUnsealShares(bg, &vaultv1.SubmitUnsealSharesRequest{Shares: shares[4:5]})
	if err != nil || st.GetStatus().GetSealed() {
		t.Fatalf("third share: %v %v", st, err)
	}
	if tn.vaultHealth() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("unsealed vault health %v", tn.vaultHealth())
	}
	createSecret(t, tn.agent("a"), ref, "v1")

	// Sealing stops everything again.
	if _, err := admin.Seal(bg, &vaultv1.SealRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err = agent.GetSecret(bg, &vaultv1.GetSecretRequest{Reference: ref})
	wantReason(t, err, codes.Unavailable, "SEALED")
	if tn.vaultHealth() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatal("sealed again but serving")
	}

	// A restart stays sealed; shares unseal it, and the secret is there.
	tn.stop()
	tn = startNode(t, dir, shamir)
	admin = vaultv1.NewVaultAdminServiceClient(tn.operator())
	if _, err := admin.SubmitUnsealShares(bg, &vaultv1.SubmitUnsealSharesRequest{Shares: []string{shares[0], shares[3], shares[4]}}); err != nil {
		t.Fatal(err)
	}
	got, err := vaultv1.NewVaultServiceClient(tn.agent("a")).GetSecret(bg, &vaultv1.GetSecretRequest{Reference: ref})
	if err != nil || string(got.GetSecret().GetValue()) != "v1" {
		t.Fatalf("after restart: %v %v", got, err)
	}
}

// By default the node creates a key file on first start and unseals with
// it at every start.
func TestVaultAutoUnsealsWithTheNodesKeyFile(t *testing.T) {
	dir := t.TempDir()
	tn := startNode(t, dir, nil)
	if tn.vaultHealth() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health %v", tn.vaultHealth())
	}
	fi, err := os.Stat(filepath.Join(dir, "keys", "vault.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	ref := secretRef("agents/a/k", "K")
	createSecret(t, tn.agent("a"), ref, "persisted")
	st, err := vaultv1.NewVaultAdminServiceClient(tn.operator()).Status(bg, &vaultv1.StatusRequest{})
	if err != nil || st.GetMode() != "backend" || st.GetSealed() {
		t.Fatalf("status %v %v", st, err)
	}
	tn.stop()

	tn = startNode(t, dir, nil)
	got, err := vaultv1.NewVaultServiceClient(tn.agent("a")).GetSecret(bg, &vaultv1.GetSecretRequest{Reference: ref})
	if err != nil || string(got.GetSecret().GetValue()) != "persisted" {
		t.Fatalf("after restart: %v %v", got, err)
	}
	admin := vaultv1.NewVaultAdminServiceClient(tn.operator())
	if _, err := admin.Seal(bg, &vaultv1.SealRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.UnsealWithBackend(bg, &vaultv1.UnsealWithBackendRequest{}); err != nil {
		t.Fatal(err)
	}
	if tn.vaultHealth() != healthpb.HealthCheckResponse_SERVING {
		t.Fatal("unsealed with the key file but not serving")
	}
	tn.stop()

	// Without its key file the vault stays sealed; the node still serves.
	if err := os.Remove(filepath.Join(dir, "keys", "vault.key")); err != nil {
		t.Fatal(err)
	}
	tn = startNode(t, dir, nil)
	_, err = vaultv1.NewVaultServiceClient(tn.agent("a")).GetSecret(bg, &vaultv1.GetSecretRequest{Reference: ref})
	wantReason(t, err, codes.Unavailable, "SEALED")
	if _, err := os.Stat(filepath.Join(dir, "keys", "vault.key")); !os.IsNotExist(err) {
		t.Fatal("a new key file was made for an initialized vault")
	}
	_, err = vaultv1.NewVaultAdminServiceClient(tn.operator()).UnsealWithBackend(bg, &vaultv1.UnsealWithBackendRequest{})
	wantReason(t, err, codes.FailedPrecondition, "NO_KEY_FILE")
}

// Agents own their namespace, reach another agent's secrets only under a
// live NHI grant, act only as themselves, and never reach the seal;
// operators act as the agent a request names.
func TestVaultAgentAndOperatorPermissions(t *testing.T) {
	tn := startNode(t, "", nil)
	ownerConn := tn.agent("payments")
	ref := secretRef("agents/payments/stripe", "API_KEY")
	createSecret(t, ownerConn, ref, "sk-live")
	reader := vaultv1.NewVaultServiceClient(tn.agent("reporter"))
	get := func() error {
		_, err := reader.GetSecret(bg, &vaultv1.GetSecretRequest{Requester: agentRef("reporter"), Reference: ref})
		return err
	}
	wantReason(t, get(), codes.PermissionDenied, "ACCESS_DENIED")
	// Creating in another's namespace needs vault:write.
	_, err := reader.CreateSecret(bg, &vaultv1.CreateSecretRequest{Reference: secretRef("agents/payments/x", "Y"), Value: []byte("v"), Metadata: generic})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")
	// Acting as someone else.
	_, err = reader.GetSecret(bg, &vaultv1.GetSecretRequest{Requester: agentRef("payments"), Reference: ref})
	wantReason(t, err, codes.PermissionDenied, "NOT_SELF")

	grant, err := nhiv1.NewNhiServiceClient(ownerConn).CreateDelegation(bg, &nhiv1.CreateDelegationRequest{DelegateeId: "reporter", Permissions: []string{"vault:read"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := get(); err != nil {
		t.Fatalf("with vault:read: %v", err)
	}
	// vault:read is not vault:audit.
	_, err = reader.GetAccessLog(bg, &vaultv1.GetAccessLogRequest{Reference: ref})
	wantReason(t, err, codes.PermissionDenied, "ACCESS_DENIED")
	if _, err := nhiv1.NewNhiServiceClient(ownerConn).RevokeDelegation(bg, &nhiv1.RevokeDelegationRequest{DelegationId: grant.GetDelegation().GetId()}); err != nil {
		t.Fatal(err)
	}
	wantReason(t, get(), codes.PermissionDenied, "ACCESS_DENIED")

	op := vaultv1.NewVaultServiceClient(tn.operator())
	got, err := op.GetSecret(bg, &vaultv1.GetSecretRequest{Requester: agentRef("payments"), Reference: ref})
	if err != nil || string(got.GetSecret().GetValue()) != "sk-live" {
		t.Fatalf("operator as the owner: %v %v", got, err)
	}
	_, err = op.GetSecret(bg, &vaultv1.GetSecretRequest{Reference: ref})
	wantReason(t, err, codes.InvalidArgument, "NO_AGENT")
	// The owner reads its log, which names every access.
	log, err := vaultv1.NewVaultServiceClient(ownerConn).GetAccessLog(bg, &vaultv1.GetAccessLogRequest{Reference: ref})
	if err != nil {
		t.Fatal(err)
	}
	var trail []string
	for _, ev := range log.GetEvents() {
		trail = append(trail, ev.GetAgent().GetId()+" "+ev.GetOperation()+" "+strings.ToLower(strings.TrimPrefix(ev.GetOutcome().String(), "ACCESS_OUTCOME_")))
	}
	want := "payments create allowed|reporter get denied|reporter get allowed|reporter read_access_log denied|reporter get denied|payments get allowed"
	if strings.Join(trail, "|") != want {
		t.Fatalf("access log\n got %s\nwant %s", strings.Join(trail, "|"), want)
	}
	// No agent can hold an extension's vault identity: NHI registers none.
	if _, err := tn.nhi.Register(bg, nhiAgent("extension:hook")); !errors.Is(err, nhi.ErrInvalidArgument) {
		t.Fatalf("registering an extension's identity as an agent: %v", err)
	}
}

// Bad input of every kind is INVALID_ARGUMENT and changes nothing.
func TestVaultBadInputChangesNothing(t *testing.T) {
	tn := startNode(t, "", nil)
	conn := tn.agent("a")
	c := vaultv1.NewVaultServiceClient(conn)
	ref := secretRef("agents/a/k", "K")
	createSecret(t, conn, ref, "original")
	snapshot := func() string {
		t.Helper()
		m, err := c.GetSecretMetadata(bg, &vaultv1.GetSecretMetadataRequest{Reference: ref})
		if err != nil {
			t.Fatal(err)
		}
		l, err := c.ListSecrets(bg, &vaultv1.ListSecretsRequest{Path: "agents/a", Recursive: true})
		if err != nil {
			t.Fatal(err)
		}
		d, err := vaultv1.NewVaultServiceClient(tn.operator()).GetDelegatedSecrets(bg, &vaultv1.GetDelegatedSecretsRequest{
			Requester: agentRef("a"), SandboxId: sandbox("probe"), References: []*vaultv1.SecretRef{ref}})
		if err != nil {
			t.Fatal(err)
		}
		return m.GetInfo().GetCurrentVersion() + "/" + string(d.GetSecrets()[0].GetValue()) + "/" + prototext.Format(l)
	}
	before := snapshot()
	bad := map[string]func() error{
		"path with ..": func() error {
			_, err := c.CreateSecret(bg, &vaultv1.CreateSecretRequest{Reference: secretRef("agents/a/../b", "K"), Value: []byte("v"), Metadata: generic})
			return err
		},
		"no reference": func() error { _, err := c.GetSecret(bg, &vaultv1.GetSecretRequest{}); return err },
		"version not a number": func() error {
			_, err := c.GetSecret(bg, &vaultv1.GetSecretRequest{Reference: ref, Version: "latest"})
			return err
		},
		"unknown type": func() error {
			_, err := c.CreateSecret(bg, &vaultv1.CreateSecretRequest{Reference: secretRef("agents/a", "NEW"), Value: []byte("v"),
				Metadata: &vaultv1.SecretMetadata{Type: 263}})
			return err
		},
		"empty value": func() error {
			_, err := c.UpdateSecret(bg, &vaultv1.UpdateSecretRequest{Reference: ref})
			return err
		},
		"negative ttl": func() error {
			_, err := c.UpdateSecret(bg, &vaultv1.UpdateSecretRequest{Reference: ref, Value: []byte("v2"), Ttl: durationpb.New(-time.Second)})
			return err
		},
		"bad cas": func() error {
			cas := "one"
			_, err := c.UpdateSecret(bg, &vaultv1.UpdateSecretRequest{Reference: ref, Value: []byte("v2"), CasVersion: &cas})
			return err
		},
		"delete version 0": func() error {
			_, err := c.DeleteSecret(bg, &vaultv1.DeleteSecretRequest{Reference: ref, Versions: []string{"0"}, Destroy: true})
			return err
		},
		"bad delegation id": func() error {
			_, err := c.RevokeDelegation(bg, &vaultv1.RevokeDelegationRequest{DelegationId: "nope"})
			return err
		},
		"delegation too long": func() error {
			_, err := c.CreateDelegation(bg, &vaultv1.CreateDelegationRequest{Delegatee: agentRef("b"), Secrets: []*vaultv1.SecretRef{ref}, Ttl: durationpb.New(48 * time.Hour)})
			return err
		},
		"no sandbox": func() error {
			_, err := c.GetDelegatedSecrets(bg, &vaultv1.GetDelegatedSecretsRequest{References: []*vaultv1.SecretRef{ref}})
			return err
		},
		"bad page token": func() error {
			_, err := c.ListSecrets(bg, &vaultv1.ListSecretsRequest{Path: "agents/a", PageToken: "!!"})
			return err
		},
		"mac algorithm": func() error {
			_, err := c.ComputeMac(bg, &vaultv1.ComputeMacRequest{Reference: ref, Algorithm: "md5"})
			return err
		},
	}
	for name, call := range bad {
		if err := call(); reason(err) != "INVALID_ARGUMENT" {
			t.Errorf("%s: %v, want INVALID_ARGUMENT", name, err)
		}
	}
	if after := snapshot(); after != before {
		t.Fatalf("state changed:\n%s\n%s", before, after)
	}
}

// syncBuffer is a log sink safe for the node's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// No secret value, share or MAC key reaches the node's log, at debug level,
// through successes, failures and the seal operations.
func TestVaultSecretsNeverReachTheLog(t *testing.T) {
	var sink syncBuffer
	log := slog.New(slog.NewTextHandler(&sink, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The vault logs through the default logger too.
	prev := slog.Default()
	slog.SetDefault(log)
	t.Cleanup(func() { slog.SetDefault(prev) })
	tn := startNodeLogging(t, "", func(c *Config) { c.Vault.Unseal = UnsealShamir }, log)

	admin := vaultv1.NewVaultAdminServiceClient(tn.operator())
	init, err := admin.InitShamir(bg, &vaultv1.InitShamirRequest{Threshold: 2, Shares: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.SubmitUnsealShares(bg, &vaultv1.SubmitUnsealSharesRequest{Shares: init.GetShares()[:2]}); err != nil {
		t.Fatal(err)
	}
	const value = "VALUE-7c1e2f-never-logged"
	conn := tn.agent("a")
	c := vaultv1.NewVaultServiceClient(conn)
	ref := secretRef("agents/a/k", "K")
	createSecret(t, conn, ref, value)
	_, _ = c.CreateSecret(bg, &vaultv1.CreateSecretRequest{Reference: ref, Value: []byte(value), Metadata: generic}) // exists
	_, _ = c.UpdateSecret(bg, &vaultv1.UpdateSecretRequest{Reference: ref, Value: []byte(value + "-2")})
	_, _ = c.GetSecret(bg, &vaultv1.GetSecretRequest{Reference: ref})
	_, _ = c.GetDelegatedSecrets(bg, &vaultv1.GetDelegatedSecretsRequest{SandboxId: sandbox("s"), References: []*vaultv1.SecretRef{ref}})
	_, _ = c.ComputeMac(bg, &vaultv1.ComputeMacRequest{Reference: ref, Data: []byte("d")})
	_, _ = c.RotateSecret(bg, &vaultv1.RotateSecretRequest{Reference: ref, Value: []byte(value + "-3")})
	_, _ = c.CreateSecret(bg, &vaultv1.CreateSecretRequest{Reference: secretRef("agents/a/../x", "K"), Value: []byte(value)}) // invalid
	_, _ = vaultv1.NewVaultServiceClient(tn.agent("b")).GetSecret(bg, &vaultv1.GetSecretRequest{Reference: ref})              // denied
	_, _ = admin.SubmitUnsealShares(bg, &vaultv1.SubmitUnsealSharesRequest{Shares: init.GetShares()[2:]})                     // no-op, unsealed
	_, _ = admin.Seal(bg, &vaultv1.SealRequest{})
	_, _ = admin.SubmitUnsealShares(bg, &vaultv1.SubmitUnsealSharesRequest{Shares: []string{init.GetShares()[2] + "x"}}) // malformed
	tn.stop()

	out := sink.String()
	if !strings.Contains(out, "vault sealed") || !strings.Contains(out, "vault unsealed") {
		t.Fatalf("the capture missed the vault's own lines:\n%s", out)
	}
	for _, secret := range append([]string{value, hex.EncodeToString([]byte(value))}, init.GetShares()...) {
		if strings.Contains(out, secret) || strings.Contains(out, secret[:20]) {
			t.Fatalf("the log holds a secret (%.8s…):\n%s", secret, out)
		}
	}
}

// A Wasm extension registered on the node with the "vault" grant MACs
// with a secret an operator provisioned for it, through the node's
// engine.
func TestVaultExtensionMACsThroughTheNode(t *testing.T) {
	tn := startNode(t, "", nil)
	op := tn.operator()
	wasm, err := os.ReadFile(filepath.Join("..", "hosts", "testdata", "vault_mac.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := abi.ParseManifest([]byte(`{"name": "hook", "capabilities": ["vault"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if wasm, err = abi.WriteManifest(wasm, m); err != nil {
		t.Fatal(err)
	}
	az := authzv1.NewAuthorizationServiceClient(op)
	_, err = az.RegisterExtension(bg, &authzv1.RegisterExtensionRequest{Module: wasm})
	wantCode(t, err, codes.PermissionDenied)
	if _, err := az.RegisterExtension(bg, &authzv1.RegisterExtensionRequest{Module: wasm, Grants: []string{"vault"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := az.CreatePolicy(bg, &authzv1.CreatePolicyRequest{Id: "all", Text: `permit (principal, action, resource);`}); err != nil {
		t.Fatal(err)
	}
	// The operator provisions the key as the extension's vault identity.
	_, err = vaultv1.NewVaultServiceClient(op).CreateSecret(bg, &vaultv1.CreateSecretRequest{
		Requester: agentRef("extension:hook"), Reference: secretRef("agents/extension:hook/keys", "SIGNING"), Value: []byte("whsec-node"), Metadata: generic,
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := az.Check(bg, &authzv1.CheckRequest{Principal: &authzv1.Principal{Id: "payments-bot"}, Action: "call", Resource: `Hook::"h"`})
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, []byte("whsec-node"))
	mac.Write([]byte("payments-bot"))
	if got := resp.GetDecision().GetDeny().GetReason(); got != hex.EncodeToString(mac.Sum(nil)) {
		t.Fatalf("decision %v", resp.GetDecision())
	}
}

// The [vault] section reads the service's own keys and the unseal mode
// from the file and from CRETO_VAULT_* variables, and refuses an unknown
// mode at start.
func TestVaultConfigSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creto.toml")
	if err := os.WriteFile(path, []byte("[vault]\nmax_versions = 4\nunseal = \"auto\"\nscheduler_interval = \"5s\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path, []string{"CRETO_VAULT_UNSEAL=shamir", "CRETO_VAULT_MAX_REFS=7"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Vault.MaxVersions != 4 || c.Vault.MaxRefs != 7 || c.Vault.Unseal != UnsealShamir || c.Vault.SchedulerInterval != 5*time.Second {
		t.Fatalf("vault config %+v", c.Vault)
	}
	if _, err := LoadConfig("", []string{"CRETO_VAULT_NO_SUCH_KEY=1"}); err == nil {
		t.Fatal("an unknown CRETO_VAULT_ variable was accepted")
	}
	c.Vault.Unseal = "manual"
	if _, err := c.withDefaults(); err == nil || !strings.Contains(err.Error(), "vault.unseal") {
		t.Fatalf("unknown unseal mode: %v", err)
	}
	// An impossible service setting stops the node at Open.
	_, err = Open(bg, Config{Server: ServerConfig{DataDir: t.TempDir()}, Vault: VaultConfig{Config: vault.Config{MaxVersions: -1}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "max_versions") {
		t.Fatalf("max_versions -1: %v", err)
	}
}

// The adapter's conversions over the wire: paging tokens, version lists,
// check-and-set, rotation, metadata and a MAC equal to one computed here.
func TestVaultLifecycleOverTheWire(t *testing.T) {
	tn := startNode(t, "", nil)
	c := vaultv1.NewVaultServiceClient(tn.agent("a"))
	for _, name := range []string{"A", "B", "C"} {
		createSecret(t, tn.agent("a"), secretRef("agents/a/list", name), "v-"+name)
	}
	var names []string
	tok := ""
	for {
		page, err := c.ListSecrets(bg, &vaultv1.ListSecretsRequest{Path: "agents/a/list", PageSize: 2, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.GetSecrets() {
			names = append(names, s.GetReference().GetName()+"@"+s.GetCurrentVersion()+":"+s.GetOwner())
		}
		if tok = page.GetNextPageToken(); tok == "" {
			break
		}
	}
	if strings.Join(names, ",") != "A@1:a,B@1:a,C@1:a" {
		t.Fatalf("paged listing %v", names)
	}

	ref := secretRef("agents/a/list", "A")
	stale := "2"
	_, err := c.UpdateSecret(bg, &vaultv1.UpdateSecretRequest{Reference: ref, Value: []byte("x"), CasVersion: &stale})
	wantReason(t, err, codes.FailedPrecondition, "CAS_MISMATCH")
	current := "1"
	up, err := c.UpdateSecret(bg, &vaultv1.UpdateSecretRequest{Reference: ref, Value: []byte("v-A2"), CasVersion: &current})
	if err != nil || up.GetSecret().GetVersion() != "2" || len(up.GetSecret().GetValue()) != 0 {
		t.Fatalf("update: %v %v", up, err)
	}
	rot, err := c.RotateSecret(bg, &vaultv1.RotateSecretRequest{Reference: ref})
	if err != nil || rot.GetVersion() != "3" || rot.GetPreviousVersion() != "2" {
		t.Fatalf("rotate with the generator: %v %v", rot, err)
	}
	del, err := c.DeleteSecret(bg, &vaultv1.DeleteSecretRequest{Reference: ref, Versions: []string{"1", "3"}})
	if err != nil || strings.Join(del.GetVersions(), ",") != "1,3" {
		t.Fatalf("delete: %v %v", del, err)
	}
	_, err = c.GetSecret(bg, &vaultv1.GetSecretRequest{Reference: ref})
	wantReason(t, err, codes.NotFound, "SECRET_DELETED")
	old, err := c.GetSecret(bg, &vaultv1.GetSecretRequest{Reference: ref, Version: "2"})
	if err != nil || string(old.GetSecret().GetValue()) != "v-A2" || old.GetSecret().GetCreatedBy() != "a" {
		t.Fatalf("version 2: %v %v", old, err)
	}
	und, err := c.UndeleteSecret(bg, &vaultv1.UndeleteSecretRequest{Reference: ref, Versions: []string{"3"}})
	if err != nil || strings.Join(und.GetVersions(), ",") != "3" {
		t.Fatalf("undelete: %v %v", und, err)
	}
	meta, err := c.GetSecretMetadata(bg, &vaultv1.GetSecretMetadataRequest{Reference: ref})
	if err != nil || meta.GetInfo().GetCurrentVersion() != "3" || len(meta.GetInfo().GetVersions()) != 3 ||
		meta.GetInfo().GetVersions()[0].GetDeletedAt() == nil || meta.GetInfo().GetMetadata().GetType() != vaultv1.SecretType_SECRET_TYPE_GENERIC {
		t.Fatalf("metadata: %v %v", meta, err)
	}
	cur, err := c.GetSecret(bg, &vaultv1.GetSecretRequest{Reference: ref})
	if err != nil {
		t.Fatal(err)
	}
	mac, err := c.ComputeMac(bg, &vaultv1.ComputeMacRequest{Reference: ref, Data: []byte("payload")})
	want := hmac.New(sha256.New, cur.GetSecret().GetValue())
	want.Write([]byte("payload"))
	if err != nil || !hmac.Equal(mac.GetMac(), want.Sum(nil)) || mac.GetVersion() != "3" || mac.GetAlgorithm() != "hmac-sha256" {
		t.Fatalf("mac: %v %v", mac, err)
	}
	sched, err := c.GetRotationSchedule(bg, &vaultv1.GetRotationScheduleRequest{Reference: ref})
	if err != nil || sched.GetAutomatic() || sched.GetLastRotatedAt() == nil || sched.GetNextRotationAt() != nil {
		t.Fatalf("schedule: %v %v", sched, err)
	}
	purge, err := c.DeleteSecret(bg, &vaultv1.DeleteSecretRequest{Reference: ref, Destroy: true})
	if err != nil || !purge.GetPurged() {
		t.Fatalf("purge: %v %v", purge, err)
	}
	_, err = c.GetSecretMetadata(bg, &vaultv1.GetSecretMetadataRequest{Reference: ref})
	wantReason(t, err, codes.NotFound, "NOT_FOUND")
}
