package node

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	authzv1 "github.com/creto-systems/creto/api/creto/authz/v1"
	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	"github.com/creto-systems/creto/services/crypto"
	"github.com/creto-systems/creto/services/nhi"
)

// reason returns the ErrorInfo reason of a status error.
func reason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

func wantReason(t *testing.T, err error, code codes.Code, why string) {
	t.Helper()
	wantCode(t, err, code)
	if got := reason(err); got != why {
		t.Fatalf("reason %q, want %q (%v)", got, why, err)
	}
}

func registerRequest(id string) *nhiv1.RegisterAgentRequest {
	return &nhiv1.RegisterAgentRequest{Agent: &nhiv1.AgentIdentity{
		Id: id, Name: "Payments bot", Type: nhiv1.AgentType_AGENT_TYPE_SERVICE, OwnerId: "alice",
		Attributes: map[string]string{"team": "payments"},
	}}
}

func TestNHITokenLifecycleOverTheWire(t *testing.T) {
	tn := startNode(t, "", nil)
	op := nhiv1.NewNhiServiceClient(tn.operator())

	reg, err := op.RegisterAgent(bg, registerRequest("payments-bot"))
	if err != nil {
		t.Fatal(err)
	}
	a := reg.GetAgent()
	if a.GetId() != "payments-bot" || a.GetStatus() != nhiv1.AgentStatus_AGENT_STATUS_ACTIVE || a.GetCreatedAt() == nil ||
		a.GetType() != nhiv1.AgentType_AGENT_TYPE_SERVICE || a.GetAttributes()["team"] != "payments" {
		t.Fatalf("registered %v", a)
	}
	_, err = op.RegisterAgent(bg, registerRequest("payments-bot"))
	wantReason(t, err, codes.AlreadyExists, "ALREADY_EXISTS")

	issued, err := op.IssueToken(bg, &nhiv1.IssueTokenRequest{AgentId: "payments-bot", Ttl: durationpb.New(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	token := issued.GetToken()
	resolved, err := op.ResolveToken(bg, &nhiv1.ResolveTokenRequest{Token: token})
	if err != nil || resolved.GetAgent().GetId() != "payments-bot" {
		t.Fatalf("resolve: %v %v", resolved, err)
	}

	// The token is the agent's credential on every service.
	bot := nhiv1.NewNhiServiceClient(tn.dial(clientTLS(t, tn.tlsDir(), "", ""), grpcBearer(token)))
	if got, err := bot.GetAgent(bg, &nhiv1.GetAgentRequest{Id: "payments-bot"}); err != nil || got.GetAgent().GetOwnerId() != "alice" {
		t.Fatalf("the agent reads itself: %v %v", got, err)
	}

	if _, err := op.RevokeToken(bg, &nhiv1.RevokeTokenRequest{Token: token}); err != nil {
		t.Fatal(err)
	}
	_, err = bot.GetAgent(bg, &nhiv1.GetAgentRequest{Id: "payments-bot"})
	wantCode(t, err, codes.Unauthenticated)
	_, err = op.ResolveToken(bg, &nhiv1.ResolveTokenRequest{Token: token})
	wantReason(t, err, codes.Unauthenticated, "TOKEN_REVOKED")
	_, err = op.ResolveToken(bg, &nhiv1.ResolveTokenRequest{Token: "not a token"})
	wantReason(t, err, codes.InvalidArgument, "TOKEN_MALFORMED")

	// An agent may log itself out, and only itself.
	self, err := op.IssueToken(bg, &nhiv1.IssueTokenRequest{AgentId: "payments-bot"})
	if err != nil {
		t.Fatal(err)
	}
	other := tn.agentToken("other-bot")
	bot = nhiv1.NewNhiServiceClient(tn.dial(clientTLS(t, tn.tlsDir(), "", ""), grpcBearer(self.GetToken())))
	_, err = bot.RevokeToken(bg, &nhiv1.RevokeTokenRequest{Token: other})
	wantCode(t, err, codes.PermissionDenied)
	if _, err := tn.nhi.ResolveToken(bg, other); err != nil {
		t.Fatalf("the other agent's token survives: %v", err)
	}
	if _, err := bot.RevokeToken(bg, &nhiv1.RevokeTokenRequest{Token: self.GetToken()}); err != nil {
		t.Fatal(err)
	}
	_, err = bot.IsRegistered(bg, &nhiv1.IsRegisteredRequest{Id: "payments-bot"})
	wantCode(t, err, codes.Unauthenticated)

	// Revoking the agent ends every token it holds.
	fresh := tn.agentToken("payments-bot")
	bot = nhiv1.NewNhiServiceClient(tn.dial(clientTLS(t, tn.tlsDir(), "", ""), grpcBearer(fresh)))
	if _, err := bot.IsRevoked(bg, &nhiv1.IsRevokedRequest{Id: "payments-bot"}); err != nil {
		t.Fatal(err)
	}
	if _, err := op.RevokeAgent(bg, &nhiv1.RevokeAgentRequest{Id: "payments-bot"}); err != nil {
		t.Fatal(err)
	}
	_, err = bot.IsRevoked(bg, &nhiv1.IsRevokedRequest{Id: "payments-bot"})
	wantCode(t, err, codes.Unauthenticated)
	if r, err := op.IsRevoked(bg, &nhiv1.IsRevokedRequest{Id: "payments-bot"}); err != nil || !r.GetRevoked() {
		t.Fatalf("is revoked: %v %v", r, err)
	}
	_, err = op.IssueToken(bg, &nhiv1.IssueTokenRequest{AgentId: "payments-bot"})
	wantReason(t, err, codes.FailedPrecondition, "AGENT_REVOKED")
	_, err = op.IsRevoked(bg, &nhiv1.IsRevokedRequest{Id: "nobody"})
	wantReason(t, err, codes.NotFound, "NOT_FOUND")
}

func TestNHIAdministrationIsForOperators(t *testing.T) {
	tn := startNode(t, "", nil)
	bot := nhiv1.NewNhiServiceClient(tn.agent("bot"))
	tn.agentToken("peer")
	calls := map[string]func() error{
		"RegisterAgent": func() error { _, err := bot.RegisterAgent(bg, registerRequest("sneaky")); return err },
		"IssueToken":    func() error { _, err := bot.IssueToken(bg, &nhiv1.IssueTokenRequest{AgentId: "peer"}); return err },
		"ListAgents":    func() error { _, err := bot.ListAgents(bg, &nhiv1.ListAgentsRequest{}); return err },
		"RotateKeys":    func() error { _, err := bot.RotateKeys(bg, &nhiv1.RotateKeysRequest{AgentId: "bot"}); return err },
		"RevokeAgent":   func() error { _, err := bot.RevokeAgent(bg, &nhiv1.RevokeAgentRequest{Id: "peer"}); return err },
		"UpdateAgent": func() error {
			_, err := bot.UpdateAgent(bg, &nhiv1.UpdateAgentRequest{Agent: &nhiv1.AgentIdentity{Id: "bot", Name: "boss"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}}})
			return err
		},
	}
	for name, call := range calls {
		if err := call(); status.Code(err) != codes.PermissionDenied {
			t.Errorf("an agent calling %s: %v", name, err)
		}
	}
	if ok, _ := tn.nhi.IsRegistered(bg, "sneaky"); ok {
		t.Fatal("a refused RegisterAgent registered")
	}
	for _, id := range []string{"bot", "peer"} {
		a, err := tn.nhi.Get(bg, id)
		if err != nil || a.Name != "" || a.Status != "active" {
			t.Fatalf("%s after refused administration: %+v %v", id, a, err)
		}
	}
	if v, _ := tn.nhi.PublicKeyVersions(bg, "bot"); len(v) != 1 {
		t.Fatalf("a refused rotation left %d key versions", len(v))
	}
}

func TestNHIUpdateAndListAgents(t *testing.T) {
	tn := startNode(t, "", nil)
	op := nhiv1.NewNhiServiceClient(tn.operator())
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		if _, err := op.RegisterAgent(bg, registerRequest(id)); err != nil {
			t.Fatal(err)
		}
	}
	expires := time.Now().Add(48 * time.Hour).Truncate(time.Millisecond)
	up, err := op.UpdateAgent(bg, &nhiv1.UpdateAgentRequest{
		Agent: &nhiv1.AgentIdentity{Id: "c", Name: "renamed", Status: nhiv1.AgentStatus_AGENT_STATUS_SUSPENDED,
			ExpiresAt: timestamppb.New(expires), Attributes: map[string]string{"tier": "gold"}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name", "status", "expires_at", "attributes"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := up.GetAgent()
	if got.GetName() != "renamed" || got.GetStatus() != nhiv1.AgentStatus_AGENT_STATUS_SUSPENDED ||
		!got.GetExpiresAt().AsTime().Equal(expires) || len(got.GetAttributes()) != 1 || got.GetAttributes()["tier"] != "gold" {
		t.Fatalf("updated %v", got)
	}
	// Only the masked fields change; an empty attribute map clears them.
	up, err = op.UpdateAgent(bg, &nhiv1.UpdateAgentRequest{
		Agent:      &nhiv1.AgentIdentity{Id: "c", Name: "ignored"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"attributes", "expires_at"}},
	})
	if err != nil || up.GetAgent().GetName() != "renamed" || len(up.GetAgent().GetAttributes()) != 0 || up.GetAgent().GetExpiresAt() != nil {
		t.Fatalf("second update: %v %v", up, err)
	}
	for _, bad := range []*nhiv1.UpdateAgentRequest{
		{Agent: &nhiv1.AgentIdentity{Id: "c", Name: "x"}},
		{Agent: &nhiv1.AgentIdentity{Id: "c", OwnerId: "mallory"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"owner_id"}}},
		{Agent: &nhiv1.AgentIdentity{Id: "c", Status: nhiv1.AgentStatus_AGENT_STATUS_REVOKED}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"status"}}},
		{Agent: &nhiv1.AgentIdentity{Id: "c", Name: strings.Repeat("n", 300)}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}}},
	} {
		_, err := op.UpdateAgent(bg, bad)
		wantCode(t, err, codes.InvalidArgument)
	}
	if a, _ := tn.nhi.Get(bg, "c"); a.Name != "renamed" || a.OwnerID != "alice" || a.Status != "suspended" {
		t.Fatalf("refused updates changed %+v", a)
	}

	var ids []string
	token := ""
	for range 10 {
		page, err := op.ListAgents(bg, &nhiv1.ListAgentsRequest{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page.GetAgents() {
			ids = append(ids, a.GetId())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	if strings.Join(ids, ",") != "a,b,c,d,e" {
		t.Fatalf("pages gave %v", ids)
	}
	suspended, err := op.ListAgents(bg, &nhiv1.ListAgentsRequest{Status: nhiv1.AgentStatus_AGENT_STATUS_SUSPENDED})
	if err != nil || len(suspended.GetAgents()) != 1 || suspended.GetAgents()[0].GetId() != "c" || suspended.GetNextPageToken() != "" {
		t.Fatalf("suspended agents: %v %v", suspended, err)
	}
	_, err = op.ListAgents(bg, &nhiv1.ListAgentsRequest{PageSize: -1})
	wantCode(t, err, codes.InvalidArgument)
}

func TestNHIBadInputChangesNothing(t *testing.T) {
	tn := startNode(t, "", nil)
	op := nhiv1.NewNhiServiceClient(tn.operator())
	attrs := map[string]string{}
	for i := range 65 {
		attrs["k"+strings.Repeat("x", i)] = "v"
	}
	for name, a := range map[string]*nhiv1.AgentIdentity{
		"space in id":     {Id: "has space", Type: nhiv1.AgentType_AGENT_TYPE_SERVICE, OwnerId: "alice"},
		"oversize id":     {Id: strings.Repeat("a", 129), Type: nhiv1.AgentType_AGENT_TYPE_SERVICE, OwnerId: "alice"},
		"control in id":   {Id: "a\nb", Type: nhiv1.AgentType_AGENT_TYPE_SERVICE, OwnerId: "alice"},
		"no type":         {Id: "t1", OwnerId: "alice"},
		"unknown type":    {Id: "t2", Type: 42, OwnerId: "alice"},
		"no owner":        {Id: "t3", Type: nhiv1.AgentType_AGENT_TYPE_SERVICE},
		"oversize name":   {Id: "t4", Type: nhiv1.AgentType_AGENT_TYPE_SERVICE, OwnerId: "alice", Name: strings.Repeat("n", 257)},
		"65 attributes":   {Id: "t5", Type: nhiv1.AgentType_AGENT_TYPE_SERVICE, OwnerId: "alice", Attributes: attrs},
		"reserved attr":   {Id: "t6", Type: nhiv1.AgentType_AGENT_TYPE_SERVICE, OwnerId: "alice", Attributes: map[string]string{"owner": "bob"}},
		"expired already": {Id: "t7", Type: nhiv1.AgentType_AGENT_TYPE_SERVICE, OwnerId: "alice", ExpiresAt: timestamppb.New(time.Now().Add(-time.Hour))},
		"invalid time":    {Id: "t8", Type: nhiv1.AgentType_AGENT_TYPE_SERVICE, OwnerId: "alice", ExpiresAt: &timestamppb.Timestamp{Seconds: 1 << 62}},
		"revoked status":  {Id: "t9", Type: nhiv1.AgentType_AGENT_TYPE_SERVICE, OwnerId: "alice", Status: nhiv1.AgentStatus_AGENT_STATUS_REVOKED},
	} {
		_, err := op.RegisterAgent(bg, &nhiv1.RegisterAgentRequest{Agent: a})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v", name, err)
		}
	}
	if list, _ := tn.nhi.List(bg, nhi.ListOptions{}); len(list) != 0 {
		t.Fatalf("refused registrations left %d agents", len(list))
	}

	bot := nhiv1.NewNhiServiceClient(tn.agent("bot"))
	tn.agentToken("peer")
	perms := make([]string, 33)
	for i := range perms {
		perms[i] = "p" + strings.Repeat("x", i)
	}
	for name, req := range map[string]*nhiv1.CreateDelegationRequest{
		"33 permissions":     {DelegateeId: "peer", Permissions: perms},
		"no permission":      {DelegateeId: "peer"},
		"spaced permission":  {DelegateeId: "peer", Permissions: []string{"memory read"}},
		"oversize perm":      {DelegateeId: "peer", Permissions: []string{strings.Repeat("p", 129)}},
		"malformed delegate": {DelegateeId: "a b", Permissions: []string{"read"}},
		"to itself":          {DelegateeId: "bot", Permissions: []string{"read"}},
		"malformed parent":   {DelegateeId: "peer", Permissions: []string{"read"}, ParentId: "xyz"},
		"too far ahead":      {DelegateeId: "peer", Permissions: []string{"read"}, ExpiresAt: timestamppb.New(time.Now().Add(48 * time.Hour))},
	} {
		_, err := bot.CreateDelegation(bg, req)
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v", name, err)
		}
	}
	n := 0
	if err := tn.store.Scan(bg, []byte("nhi/dlg/"), func(_, _ []byte) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("refused delegations left %d records (%v)", n, err)
	}
	for name, call := range map[string]func() error{
		"malformed delegation id": func() error {
			_, err := bot.GetDelegationChain(bg, &nhiv1.GetDelegationChainRequest{DelegationId: "not-hex"})
			return err
		},
		"garbage chain": func() error {
			_, err := bot.VerifyDelegation(bg, &nhiv1.VerifyDelegationRequest{Chain: &nhiv1.VerifyDelegationRequest_Encoded{Encoded: []byte{1, 2, 3}}})
			return err
		},
		"no chain": func() error { _, err := bot.VerifyDelegation(bg, &nhiv1.VerifyDelegationRequest{}); return err },
		"short signature": func() error {
			_, err := bot.Verify(bg, &nhiv1.VerifyRequest{AgentId: "bot", Data: []byte("x"),
				Signature: &nhiv1.HybridSignature{Ed25519Signature: make([]byte, 64), MlDsaSignature: make([]byte, 10)}})
			return err
		},
		"other algorithm": func() error {
			_, err := bot.Verify(bg, &nhiv1.VerifyRequest{AgentId: "bot", Data: []byte("x"),
				Signature: &nhiv1.HybridSignature{Ed25519Signature: make([]byte, 64), MlDsaSignature: make([]byte, 3309), AlgorithmId: "rsa"}})
			return err
		},
		"token ttl beyond the maximum": func() error {
			_, err := op.IssueToken(bg, &nhiv1.IssueTokenRequest{AgentId: "bot", Ttl: durationpb.New(48 * time.Hour)})
			return err
		},
		"negative overlap": func() error {
			_, err := op.RotateKeys(bg, &nhiv1.RotateKeysRequest{AgentId: "bot", Overlap: durationpb.New(-time.Second)})
			return err
		},
	} {
		if err := call(); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v", name, err)
		}
	}
	if v, _ := tn.nhi.PublicKeyVersions(bg, "bot"); len(v) != 1 {
		t.Fatalf("a refused rotation left %d key versions", len(v))
	}
}

func TestNHISignVerifyAndKeysOverTheWire(t *testing.T) {
	tn := startNode(t, "", nil)
	bot := nhiv1.NewNhiServiceClient(tn.agent("bot"))
	peer := nhiv1.NewNhiServiceClient(tn.agent("peer"))
	op := nhiv1.NewNhiServiceClient(tn.operator())
	data := []byte("attestation of sandbox 7")

	signed, err := bot.Sign(bg, &nhiv1.SignRequest{Data: data})
	if err != nil {
		t.Fatal(err)
	}
	sig := signed.GetSignature()
	if len(sig.GetEd25519Signature()) != 64 || len(sig.GetMlDsaSignature()) != 3309 || sig.GetAlgorithmId() != "ed25519+ml-dsa-65" {
		t.Fatalf("signature halves %d, %d, %q", len(sig.GetEd25519Signature()), len(sig.GetMlDsaSignature()), sig.GetAlgorithmId())
	}
	// An agent signs only as itself; an operator as the agent it names.
	_, err = bot.Sign(bg, &nhiv1.SignRequest{AgentId: "peer", Data: data})
	wantReason(t, err, codes.PermissionDenied, "NOT_SELF")
	_, err = op.Sign(bg, &nhiv1.SignRequest{Data: data})
	wantReason(t, err, codes.InvalidArgument, "NO_AGENT")
	if _, err := op.Sign(bg, &nhiv1.SignRequest{AgentId: "peer", Data: data}); err != nil {
		t.Fatal(err)
	}

	verify := func(agent string, data []byte, sig *nhiv1.HybridSignature) *nhiv1.VerifyResponse {
		t.Helper()
		v, err := peer.Verify(bg, &nhiv1.VerifyRequest{AgentId: agent, Data: data, Signature: sig})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := verify("bot", data, sig); !v.GetValid() {
		t.Fatalf("verify: %v", v)
	}
	seedSpelling := &nhiv1.HybridSignature{Ed25519Signature: sig.GetEd25519Signature(), MlDsaSignature: sig.GetMlDsaSignature(), AlgorithmId: "hybrid-ed25519-ml-dsa-65"}
	if v := verify("bot", data, seedSpelling); !v.GetValid() {
		t.Fatalf("the seed's algorithm name: %v", v)
	}
	if v := verify("bot", []byte("attestation of sandbox 8"), sig); v.GetValid() || v.GetReason() != "INVALID_SIGNATURE" {
		t.Fatalf("other data: %v", v)
	}
	if v := verify("peer", data, sig); v.GetValid() {
		t.Fatalf("another agent's key: %v", v)
	}
	// Halves of signatures of different data do not splice.
	other, err := bot.Sign(bg, &nhiv1.SignRequest{Data: []byte("attestation of sandbox 8")})
	if err != nil {
		t.Fatal(err)
	}
	spliced := &nhiv1.HybridSignature{Ed25519Signature: other.GetSignature().GetEd25519Signature(), MlDsaSignature: sig.GetMlDsaSignature()}
	if v := verify("bot", data, spliced); v.GetValid() {
		t.Fatal("a spliced signature verified")
	}
	_, err = peer.Verify(bg, &nhiv1.VerifyRequest{AgentId: "nobody", Data: data, Signature: sig})
	wantCode(t, err, codes.NotFound)

	// The keys let a third party verify offline: the hybrid key is the
	// ML-DSA-65 and Ed25519 components, and the halves put back together
	// verify under it with the node's message context.
	keys, err := peer.GetPublicKeys(bg, &nhiv1.GetPublicKeysRequest{AgentId: "bot"})
	if err != nil {
		t.Fatal(err)
	}
	k := keys.GetKeys()
	if len(k.GetSigningKeyEd25519()) != 32 || len(k.GetSigningKeyMlDsa()) != 1952 || len(k.GetKeyAgreementX25519()) != 32 ||
		len(k.GetEncapsulationKeyMlKem()) != 1184 || k.GetVersion() != 1 || k.GetAgentId() != "bot" || k.GetValidFrom() == nil || k.GetValidUntil() == nil {
		t.Fatalf("keys %d %d %d %d v%d", len(k.GetSigningKeyEd25519()), len(k.GetSigningKeyMlDsa()), len(k.GetKeyAgreementX25519()), len(k.GetEncapsulationKeyMlKem()), k.GetVersion())
	}
	hybrid, err := crypto.ParsePublicKey(k.GetHybridSigningKey())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(hybrid.Raw(), append(append([]byte(nil), k.GetSigningKeyMlDsa()...), k.GetSigningKeyEd25519()...)) {
		t.Fatal("the hybrid signing key is not ML-DSA-65 ‖ Ed25519")
	}
	kem, err := crypto.ParsePublicKey(k.GetHybridEncapsulationKey())
	if err != nil || !bytes.Equal(kem.Raw(), append(append([]byte(nil), k.GetEncapsulationKeyMlKem()...), k.GetKeyAgreementX25519()...)) {
		t.Fatalf("the hybrid KEM key is not ML-KEM-768 ‖ X25519: %v", err)
	}
	joined, err := crypto.EncodeSignature(crypto.Ed25519MLDSA65, append(append([]byte(nil), sig.GetMlDsaSignature()...), sig.GetEd25519Signature()...))
	if err != nil {
		t.Fatal(err)
	}
	if err := crypto.New().Verify(hybrid, data, []byte("creto-nhi-message/v1"), joined); err != nil {
		t.Fatalf("offline verification: %v", err)
	}

	// A rotation keeps the old key verifying for the overlap.
	rotated, err := op.RotateKeys(bg, &nhiv1.RotateKeysRequest{AgentId: "bot", Overlap: durationpb.New(time.Hour)})
	if err != nil || rotated.GetKeys().GetVersion() != 2 {
		t.Fatalf("rotate: %v %v", rotated, err)
	}
	versions, err := peer.ListPublicKeyVersions(bg, &nhiv1.ListPublicKeyVersionsRequest{AgentId: "bot"})
	if err != nil || len(versions.GetKeys()) != 2 || versions.GetKeys()[0].GetVersion() != 2 {
		t.Fatalf("versions: %v %v", versions, err)
	}
	if v := verify("bot", data, sig); !v.GetValid() {
		t.Fatalf("an old signature within the overlap: %v", v)
	}
	if _, err := op.RevokeAgent(bg, &nhiv1.RevokeAgentRequest{Id: "bot"}); err != nil {
		t.Fatal(err)
	}
	if v := verify("bot", data, sig); v.GetValid() || v.GetReason() != "AGENT_REVOKED" {
		t.Fatalf("a revoked agent's signature: %v", v)
	}
}

func TestNHIDelegationsOverTheWire(t *testing.T) {
	tn := startNode(t, "", nil)
	planner := nhiv1.NewNhiServiceClient(tn.agent("planner"))
	mailer := nhiv1.NewNhiServiceClient(tn.agent("mailer"))
	tn.agentToken("archiver")
	op := nhiv1.NewNhiServiceClient(tn.operator())

	// An agent delegates only its own authority.
	_, err := mailer.CreateDelegation(bg, &nhiv1.CreateDelegationRequest{DelegatorId: "planner", DelegateeId: "mailer", Permissions: []string{"send"}})
	wantReason(t, err, codes.PermissionDenied, "NOT_SELF")
	created, err := planner.CreateDelegation(bg, &nhiv1.CreateDelegationRequest{DelegateeId: "mailer", Permissions: []string{"send", "read"}})
	if err != nil {
		t.Fatal(err)
	}
	root := created.GetDelegation()
	if root.GetDelegator().GetId() != "planner" || root.GetDelegatee().GetOwnerId() != "alice" || root.GetDepth() != 1 ||
		strings.Join(root.GetPermissions(), ",") != "read,send" || len(root.GetSignature().GetMlDsaSignature()) != 3309 {
		t.Fatalf("created %v", root)
	}
	child, err := mailer.CreateDelegation(bg, &nhiv1.CreateDelegationRequest{DelegateeId: "archiver", Permissions: []string{"read"}, ParentId: root.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	// Narrowing only.
	_, err = mailer.CreateDelegation(bg, &nhiv1.CreateDelegationRequest{DelegateeId: "archiver", Permissions: []string{"delete"}, ParentId: root.GetId()})
	wantReason(t, err, codes.InvalidArgument, "DELEGATION_WIDENED")

	got, err := tn.nhiClient("archiver").GetDelegationChain(bg, &nhiv1.GetDelegationChainRequest{DelegationId: child.GetDelegation().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	chain := got.GetChain()
	if chain.GetRoot().GetId() != "planner" || len(chain.GetDelegations()) != 2 || chain.GetDelegations()[1].GetParentId() != root.GetId() {
		t.Fatalf("chain %v", chain)
	}
	v, err := op.VerifyDelegation(bg, &nhiv1.VerifyDelegationRequest{Chain: &nhiv1.VerifyDelegationRequest_DelegationId{DelegationId: child.GetDelegation().GetId()}})
	if err != nil || !v.GetValid() || len(v.GetChain().GetDelegations()) != 2 {
		t.Fatalf("verify by id: %v %v", v, err)
	}
	v, err = mailer.VerifyDelegation(bg, &nhiv1.VerifyDelegationRequest{Chain: &nhiv1.VerifyDelegationRequest_Encoded{Encoded: chain.GetEncoded()}})
	if err != nil || !v.GetValid() {
		t.Fatalf("verify the encoded chain: %v %v", v, err)
	}
	_, err = op.VerifyDelegation(bg, &nhiv1.VerifyDelegationRequest{Chain: &nhiv1.VerifyDelegationRequest_DelegationId{DelegationId: strings.Repeat("ab", 16)}})
	wantReason(t, err, codes.NotFound, "NOT_FOUND")

	// Only an agent that granted the link, or one above it, revokes it.
	archiver := tn.nhiClient("archiver")
	_, err = archiver.RevokeDelegation(bg, &nhiv1.RevokeDelegationRequest{DelegationId: child.GetDelegation().GetId()})
	wantCode(t, err, codes.PermissionDenied)
	_, err = mailer.RevokeDelegation(bg, &nhiv1.RevokeDelegationRequest{DelegationId: root.GetId()})
	wantCode(t, err, codes.PermissionDenied)
	if _, err := planner.RevokeDelegation(bg, &nhiv1.RevokeDelegationRequest{DelegationId: child.GetDelegation().GetId()}); err != nil {
		t.Fatalf("the root's delegator revokes a link below it: %v", err)
	}
	v, err = mailer.VerifyDelegation(bg, &nhiv1.VerifyDelegationRequest{Chain: &nhiv1.VerifyDelegationRequest_Encoded{Encoded: chain.GetEncoded()}})
	if err != nil || v.GetValid() || v.GetReason() != "DELEGATION_REVOKED" || v.GetChain() != nil {
		t.Fatalf("verify a revoked chain: %v %v", v, err)
	}
	_, err = tn.nhiClient("archiver").CreateDelegation(bg, &nhiv1.CreateDelegationRequest{DelegateeId: "planner", Permissions: []string{"read"}, ParentId: child.GetDelegation().GetId()})
	wantReason(t, err, codes.FailedPrecondition, "DELEGATION_REVOKED")
	if _, err := mailer.RevokeDelegation(bg, &nhiv1.RevokeDelegationRequest{DelegationId: strings.Repeat("cd", 16)}); status.Code(err) != codes.NotFound {
		t.Fatalf("revoke an unknown link: %v", err)
	}
}

func TestNHIHostModuleIsWiredIntoTheNodeEngine(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	if _, err := tn.nhi.Register(ctx, nhiAgent("payments-bot")); err != nil {
		t.Fatal(err)
	}
	c := authzv1.NewAuthorizationServiceClient(tn.operator())
	if _, err := c.CreatePolicy(ctx, &authzv1.CreatePolicyRequest{Id: "all", Text: `permit (principal, action, resource);`}); err != nil {
		t.Fatal(err)
	}
	module := guestModule(t, filepath.Join("..", "hosts", "testdata", "nhi_facts.wasm"), `{"name": "nhi-facts", "capabilities": ["nhi"]}`)
	_, err := c.RegisterExtension(ctx, &authzv1.RegisterExtensionRequest{Module: module})
	wantCode(t, err, codes.PermissionDenied) // the capability was not granted
	if _, err := c.RegisterExtension(ctx, &authzv1.RegisterExtensionRequest{Module: module, Grants: []string{"nhi"}}); err != nil {
		t.Fatal(err)
	}
	d := check(t, c, "payments-bot", "read", `Doc::"d"`).GetDecision()
	if want := "registered=1 revoked=0 status=1 owner=alice type=service team=-2 nope=-2 ownerlen=5"; d.GetDeny().GetReason() != want {
		t.Fatalf("decision %v, want a deny with %q", d, want)
	}
}

// nhiClient connects as an agent that is already registered.
func (tn *testNode) nhiClient(id string) nhiv1.NhiServiceClient {
	return nhiv1.NewNhiServiceClient(tn.agent(id))
}
