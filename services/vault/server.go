package vault

import (
	"context"
	"encoding/base64"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	vaultv1 "github.com/creto-systems/creto/api/creto/vault/v1"
	"github.com/creto-systems/creto/internal/caller"
	"github.com/creto-systems/creto/internal/rpcerr"
	"github.com/creto-systems/creto/services/nhi"
)

// ExtensionAgentPrefix starts the vault identity of every Wasm extension:
// extension "quota" uses secrets as "extension:quota" (ExtensionAgent), so
// an operator provisions them under "agents/extension:quota/…". Server
// refuses agent callers whose id has the prefix, and NHI registers no such
// agent: an agent under such an id would otherwise own an extension's
// secrets.
const ExtensionAgentPrefix = nhi.ExtensionIDPrefix

// ExtensionAgent returns the vault identity of the extension named name.
func ExtensionAgent(name string) string { return ExtensionAgentPrefix + name }

// Server is the gRPC face of a Service (creto.vault.v1.VaultService). The
// vault scopes every call by its caller (owners, the Authorizer,
// delegations); Server only works out who the caller is: an agent acts as
// itself, an operator as the agent a request names. Values are copied
// into the response with Expose and the vault's copy destroyed at once;
// Server never logs a request or a response.
type Server struct {
	vaultv1.UnimplementedVaultServiceServer
	svc *Service
	log *slog.Logger
}

// NewServer returns the VaultService implementation over svc.
func NewServer(svc *Service, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{svc: svc, log: log}
}

// Register adds the service to a gRPC server.
func (s *Server) Register(g grpc.ServiceRegistrar) { vaultv1.RegisterVaultServiceServer(g, s) }

// dataRules map the vault's sentinels for agents. A delegation that can no
// longer be used (expired, exhausted, revoked) is FAILED_PRECONDITION, as
// NHI's delegation states are: the caller was entitled once and the
// delegation's state, not the caller, is at fault; a fetch no delegation
// covers is PERMISSION_DENIED. A sealed vault is UNAVAILABLE: up, but
// serving nothing until an operator unseals it.
var dataRules = []rpcerr.Rule{
	{Err: ErrAccessDenied, Code: codes.PermissionDenied, Reason: "ACCESS_DENIED"},
	{Err: ErrSecretDeleted, Code: codes.NotFound, Reason: "SECRET_DELETED"},
	{Err: ErrSecretDestroyed, Code: codes.NotFound, Reason: "SECRET_DESTROYED"},
	{Err: ErrNotFound, Code: codes.NotFound, Reason: "NOT_FOUND"},
	{Err: ErrAlreadyExists, Code: codes.AlreadyExists, Reason: "ALREADY_EXISTS"},
	{Err: ErrCASMismatch, Code: codes.FailedPrecondition, Reason: "CAS_MISMATCH"},
	{Err: ErrSecretExpired, Code: codes.FailedPrecondition, Reason: "SECRET_EXPIRED"},
	{Err: ErrDelegationNotFound, Code: codes.NotFound, Reason: "DELEGATION_NOT_FOUND"},
	{Err: ErrDelegationExpired, Code: codes.FailedPrecondition, Reason: "DELEGATION_EXPIRED"},
	{Err: ErrDelegationExhausted, Code: codes.FailedPrecondition, Reason: "DELEGATION_EXHAUSTED"},
	{Err: ErrDelegationRevoked, Code: codes.FailedPrecondition, Reason: "DELEGATION_REVOKED"},
	{Err: ErrNoGenerator, Code: codes.InvalidArgument, Reason: "NO_GENERATOR"},
	{Err: ErrInvalidArgument, Code: codes.InvalidArgument, Reason: "INVALID_ARGUMENT"},
	{Err: ErrHSMUnavailable, Code: codes.Unavailable, Reason: "HSM_UNAVAILABLE"},
	{Err: ErrSealed, Code: codes.Unavailable, Reason: "SEALED"},
	{Err: ErrAuditFailed, Code: codes.Unavailable, Reason: "AUDIT_FAILED"},
	{Err: ErrCorrupt, Code: codes.DataLoss, Reason: "CORRUPT"},
	{Err: ErrUnavailable, Code: codes.Unimplemented, Reason: "ACCESS_LOG_UNAVAILABLE"},
	{Err: ErrClosed, Code: codes.Unavailable, Reason: "SHUTTING_DOWN"},
}

var dataTable = rpcerr.Table{Domain: vaultv1.VaultService_ServiceDesc.ServiceName, Rules: dataRules}

func (s *Server) status(ctx context.Context, err error) error {
	return dataTable.Status(ctx, s.log, err)
}

// acting returns the agent the vault should see as the caller of a
// request naming agent (caller.Acting), refusing agent tokens for an
// extension's identity.
func acting(ctx context.Context, agent string) (string, error) {
	id, err := caller.Acting(ctx, agent)
	if err != nil {
		return "", err
	}
	if who, _ := caller.From(ctx); who.Kind == caller.Agent && strings.HasPrefix(id, ExtensionAgentPrefix) {
		return "", fmt.Errorf("%w: agent %s: ids beginning %q are extensions' vault identities", ErrAccessDenied, quote(id), ExtensionAgentPrefix)
	}
	return id, nil
}

// GetSecret returns a version of a secret with its value.
func (s *Server) GetSecret(ctx context.Context, in *vaultv1.GetSecretRequest) (*vaultv1.GetSecretResponse, error) {
	who, err := acting(ctx, in.GetRequester().GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	v, err := parseVersion(in.GetVersion())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	sec, err := s.svc.GetSecret(ctx, who, GetSecretRequest{Ref: refFrom(in.GetReference()), Version: v})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	defer sec.Destroy()
	return &vaultv1.GetSecretResponse{Secret: secretProto(sec)}, nil
}

// GetSecrets returns several secrets, all or nothing.
func (s *Server) GetSecrets(ctx context.Context, in *vaultv1.GetSecretsRequest) (*vaultv1.GetSecretsResponse, error) {
	who, err := acting(ctx, in.GetRequester().GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	resp, err := s.svc.GetSecrets(ctx, who, GetSecretsRequest{Refs: refsFrom(in.GetReferences())})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	defer resp.Destroy()
	out := &vaultv1.GetSecretsResponse{Secrets: make([]*vaultv1.Secret, len(resp.Secrets))}
	for i := range resp.Secrets {
		out.Secrets[i] = secretProto(&resp.Secrets[i])
	}
	return out, nil
}

// CreateSecret creates a secret.
func (s *Server) CreateSecret(ctx context.Context, in *vaultv1.CreateSecretRequest) (*vaultv1.CreateSecretResponse, error) {
	who, err := acting(ctx, in.GetRequester().GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	value := takeValue(in.GetValue())
	defer value.Destroy()
	meta, err := metadataFrom(in.GetMetadata())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	ttl, err := durationFrom("ttl", in.GetTtl())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	sec, err := s.svc.CreateSecret(ctx, who, CreateSecretRequest{Ref: refFrom(in.GetReference()), Value: value, Metadata: meta, TTL: ttl})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &vaultv1.CreateSecretResponse{Secret: secretProto(sec)}, nil
}

// UpdateSecret writes the next version.
func (s *Server) UpdateSecret(ctx context.Context, in *vaultv1.UpdateSecretRequest) (*vaultv1.UpdateSecretResponse, error) {
	who, err := acting(ctx, in.GetRequester().GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	value := takeValue(in.GetValue())
	defer value.Destroy()
	req := UpdateSecretRequest{Ref: refFrom(in.GetReference()), Value: value}
	if in.Metadata != nil {
		meta, err := metadataFrom(in.GetMetadata())
		if err != nil {
			return nil, s.status(ctx, err)
		}
		req.Metadata = &meta
	}
	if req.TTL, err = durationFrom("ttl", in.GetTtl()); err != nil {
		return nil, s.status(ctx, err)
	}
	if req.CAS, err = casFrom(in.CasVersion); err != nil {
		return nil, s.status(ctx, err)
	}
	sec, err := s.svc.UpdateSecret(ctx, who, req)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &vaultv1.UpdateSecretResponse{Secret: secretProto(sec)}, nil
}

// DeleteSecret deletes, destroys or purges.
func (s *Server) DeleteSecret(ctx context.Context, in *vaultv1.DeleteSecretRequest) (*vaultv1.DeleteSecretResponse, error) {
	who, err := acting(ctx, in.GetRequester().GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	versions, err := parseVersions(in.GetVersions())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	resp, err := s.svc.DeleteSecret(ctx, who, DeleteSecretRequest{Ref: refFrom(in.GetReference()), Versions: versions, Destroy: in.GetDestroy()})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &vaultv1.DeleteSecretResponse{Versions: versionStrings(resp.Versions), Purged: resp.Purged}, nil
}

// UndeleteSecret restores soft-deleted versions.
func (s *Server) UndeleteSecret(ctx context.Context, in *vaultv1.UndeleteSecretRequest) (*vaultv1.UndeleteSecretResponse, error) {
	who, err := acting(ctx, in.GetRequester().GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	versions, err := parseVersions(in.GetVersions())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	done, err := s.svc.UndeleteSecret(ctx, who, UndeleteSecretRequest{Ref: refFrom(in.GetReference()), Versions: versions})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &vaultv1.UndeleteSecretResponse{Versions: versionStrings(done)}, nil
}

// GetSecretMetadata returns metadata and history.
func (s *Server) GetSecretMetadata(ctx context.Context, in *vaultv1.GetSecretMetadataRequest) (*vaultv1.GetSecretMetadataResponse, error) {
	who, err := acting(ctx, in.GetRequester().GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	info, err := s.svc.GetSecretMetadata(ctx, who, refFrom(in.GetReference()))
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &vaultv1.GetSecretMetadataResponse{Info: infoProto(info)}, nil
}

// ListSecrets lists a path. The page token is the last reference of the
// previous page.
func (s *Server) ListSecrets(ctx context.Context, in *vaultv1.ListSecretsRequest) (*vaultv1.ListSecretsResponse, error) {
	who, err := acting(ctx, in.GetRequester().GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	after, err := parseListToken(in.GetPageToken())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	resp, err := s.svc.ListSecrets(ctx, who, ListSecretsRequest{Path: in.GetPath(), Recursive: in.GetRecursive(), Limit: int(in.GetPageSize()), After: after})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &vaultv1.ListSecretsResponse{Secrets: make([]*vaultv1.SecretInfo, len(resp.Secrets))}
	for i := range resp.Secrets {
		out.Secrets[i] = infoProto(&resp.Secrets[i])
	}
	if resp.Next != (SecretRef{}) {
		out.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(resp.Next.Path + "\x00" + resp.Next.Name))
	}
	return out, nil
}

// GetDelegatedSecrets fetches values for a sandbox.
func (s *Server) GetDelegatedSecrets(ctx context.Context, in *vaultv1.GetDelegatedSecretsRequest) (*vaultv1.GetDelegatedSecretsResponse, error) {
	who, err := acting(ctx, in.GetRequester().GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	ttl, err := durationFrom("ttl", in.GetTtl())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	resp, err := s.svc.GetDelegatedSecrets(ctx, who, GetDelegatedSecretsRequest{
		SandboxID: in.GetSandboxId().GetId(), Refs: refsFrom(in.GetReferences()), TTL: ttl, DelegationID: in.GetDelegationId(),
	})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	defer resp.Destroy()
	out := &vaultv1.GetDelegatedSecretsResponse{
		Secrets: make([]*vaultv1.DelegatedSecret, len(resp.Secrets)), DelegationId: resp.DelegationID, ExpiresAt: timeProto(resp.ExpiresAt),
	}
	for i, d := range resp.Secrets {
		out.Secrets[i] = &vaultv1.DelegatedSecret{
			Reference: refProto(d.Ref), Value: copyValue(d.Value), ExpiresAt: timeProto(d.ExpiresAt),
			Restrictions: restrictionsProto(d.Restrictions), Version: versionString(d.Version),
		}
	}
	return out, nil
}

// CreateDelegation delegates secrets.
func (s *Server) CreateDelegation(ctx context.Context, in *vaultv1.CreateDelegationRequest) (*vaultv1.CreateDelegationResponse, error) {
	who, err := acting(ctx, in.GetDelegator().GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	ttl, err := durationFrom("ttl", in.GetTtl())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	rs := in.GetRestrictions()
	d, err := s.svc.CreateDelegation(ctx, who, CreateDelegationRequest{
		Delegatee: in.GetDelegatee().GetId(), Secrets: refsFrom(in.GetSecrets()), TTL: ttl,
		Restrictions: DelegationRestrictions{BoundSandbox: rs.GetBoundSandbox().GetId(), SingleUse: rs.GetSingleUse(), MemoryOnly: rs.GetMemoryOnly(), MaxUses: rs.GetMaxUses()},
	})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &vaultv1.CreateDelegationResponse{Delegation: delegationProto(d)}, nil
}

// RevokeDelegation revokes a delegation.
func (s *Server) RevokeDelegation(ctx context.Context, in *vaultv1.RevokeDelegationRequest) (*vaultv1.RevokeDelegationResponse, error) {
	who, err := acting(ctx, in.GetDelegator().GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	if err := s.svc.RevokeDelegation(ctx, who, in.GetDelegationId()); err != nil {
		return nil, s.status(ctx, err)
	}
	return &vaultv1.RevokeDelegationResponse{}, nil
}

// GetDelegation looks a delegation up without using it.
func (s *Server) GetDelegation(ctx context.Context, in *vaultv1.GetDelegationRequest) (*vaultv1.GetDelegationResponse, error) {
	who, err := acting(ctx, in.GetRequester().GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	d, err := s.svc.GetDelegation(ctx, who, in.GetDelegationId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &vaultv1.GetDelegationResponse{Delegation: delegationProto(d)}, nil
}

// RotateSecret rotates a secret.
func (s *Server) RotateSecret(ctx context.Context, in *vaultv1.RotateSecretRequest) (*vaultv1.RotateSecretResponse, error) {
	who, err := acting(ctx, in.GetRequester().GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	value := takeValue(in.GetValue())
	defer value.Destroy()
	cas, err := casFrom(in.CasVersion)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	r, err := s.svc.RotateSecret(ctx, who, RotateSecretRequest{Ref: refFrom(in.GetReference()), Value: value, CAS: cas})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &vaultv1.RotateSecretResponse{
		Reference: refProto(r.Ref), Version: versionString(r.Version), PreviousVersion: versionString(r.PreviousVersion),
		RotatedAt: timeProto(r.RotatedAt), NextRotationAt: timeProto(r.NextRotationAt),
	}, nil
}

// GetRotationSchedule returns a secret's rotation state.
func (s *Server) GetRotationSchedule(ctx context.Context, in *vaultv1.GetRotationScheduleRequest) (*vaultv1.GetRotationScheduleResponse, error) {
	who, err := acting(ctx, in.GetRequester().GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	r, err := s.svc.GetRotationSchedule(ctx, who, refFrom(in.GetReference()))
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &vaultv1.GetRotationScheduleResponse{
		Reference: refProto(r.Ref), LastRotatedAt: timeProto(r.LastRotatedAt), NextRotationAt: timeProto(r.NextRotationAt), Automatic: r.Automatic,
	}
	if r.Interval > 0 {
		out.Interval = durationpb.New(r.Interval)
	}
	return out, nil
}

// ComputeMac returns a MAC under a secret.
func (s *Server) ComputeMac(ctx context.Context, in *vaultv1.ComputeMacRequest) (*vaultv1.ComputeMacResponse, error) {
	who, err := acting(ctx, in.GetRequester().GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	v, err := parseVersion(in.GetVersion())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	r, err := s.svc.MAC(ctx, who, MACRequest{Ref: refFrom(in.GetReference()), Version: v, Algorithm: in.GetAlgorithm(), Data: in.GetData()})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &vaultv1.ComputeMacResponse{Mac: r.MAC, Version: versionString(r.Version), Algorithm: r.Algorithm}, nil
}

// GetAccessLog returns a secret's access events.
func (s *Server) GetAccessLog(ctx context.Context, in *vaultv1.GetAccessLogRequest) (*vaultv1.GetAccessLogResponse, error) {
	who, err := acting(ctx, in.GetRequester().GetId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	req := GetAccessLogRequest{Ref: refFrom(in.GetReference()), Limit: int(in.GetPageSize()), PageToken: in.GetPageToken()}
	if req.Since, err = timeFrom("since", in.GetSince()); err != nil {
		return nil, s.status(ctx, err)
	}
	if req.Until, err = timeFrom("until", in.GetUntil()); err != nil {
		return nil, s.status(ctx, err)
	}
	resp, err := s.svc.GetAccessLog(ctx, who, req)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &vaultv1.GetAccessLogResponse{Events: make([]*vaultv1.AccessEvent, len(resp.Events)), NextPageToken: resp.NextPageToken}
	for i, ev := range resp.Events {
		pe := &vaultv1.AccessEvent{
			Time: timeProto(ev.Time), Agent: agentProto(ev.Agent), Operation: ev.Operation.String(), Reference: refProto(ev.Ref),
			DelegationId: ev.DelegationID, Outcome: vaultv1.AccessOutcome(ev.Outcome), Reason: ev.Reason,
		}
		if ev.Version != 0 {
			pe.Version = versionString(ev.Version)
		}
		if ev.SandboxID != "" {
			pe.SandboxId = &vaultv1.SandboxId{Id: ev.SandboxID}
		}
		out.Events[i] = pe
	}
	return out, nil
}

// AdminServer is the gRPC face of the seal (creto.vault.v1.VaultAdminService):
// the operator surface of Status, InitShamir, InitWithBackend,
// SubmitUnsealShares, UnsealWithBackend, ResetUnseal and Seal. Register it
// only behind operator-only access; shares are never logged.
type AdminServer struct {
	vaultv1.UnimplementedVaultAdminServiceServer
	svc  *Service
	opts AdminOptions
}

// AdminOptions configure an AdminServer.
type AdminOptions struct {
	Log *slog.Logger
	// Backend opens the node's key backend for InitWithBackend (create
	// true: a missing key is made) and UnsealWithBackend (create false: a
	// missing key is an error matching fs.ErrNotExist). release wipes it.
	// Nil means the node has no backend: both calls are FAILED_PRECONDITION.
	Backend func(ctx context.Context, create bool) (b KeyBackend, release func(), err error)
	// Changed is called with the seal status after every call that may
	// have changed it, so the node can report the vault's health.
	Changed func(SealStatus)
}

// NewAdminServer returns the VaultAdminService implementation over svc.
func NewAdminServer(svc *Service, opts AdminOptions) *AdminServer {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &AdminServer{svc: svc, opts: opts}
}

// Register adds the service to a gRPC server.
func (s *AdminServer) Register(g grpc.ServiceRegistrar) {
	vaultv1.RegisterVaultAdminServiceServer(g, s)
}

// errNoBackend: the node was given no key backend.
var errNoBackend = fmt.Errorf("%w: this node has no key backend", ErrUnsealFailed)

var adminTable = rpcerr.Table{
	Domain: vaultv1.VaultAdminService_ServiceDesc.ServiceName,
	Rules: append([]rpcerr.Rule{
		{Err: ErrShareMalformed, Code: codes.InvalidArgument, Reason: "SHARE_MALFORMED"},
		{Err: ErrShareForeign, Code: codes.InvalidArgument, Reason: "SHARE_FOREIGN"},
		{Err: ErrShareDuplicate, Code: codes.InvalidArgument, Reason: "SHARE_DUPLICATE"},
		{Err: ErrShareWrong, Code: codes.InvalidArgument, Reason: "SHARE_WRONG"},
		{Err: ErrAlreadyInitialized, Code: codes.FailedPrecondition, Reason: "ALREADY_INITIALIZED"},
		{Err: ErrNotInitialized, Code: codes.FailedPrecondition, Reason: "NOT_INITIALIZED"},
		{Err: ErrUnsealFailed, Code: codes.FailedPrecondition, Reason: "UNSEAL_FAILED"},
		{Err: fs.ErrNotExist, Code: codes.FailedPrecondition, Reason: "NO_KEY_FILE"},
	}, dataRules...),
}

func (s *AdminServer) status(ctx context.Context, err error) error {
	return adminTable.Status(ctx, s.opts.Log, err)
}

// changed reports the seal state after a call that may have changed it.
func (s *AdminServer) changed(ctx context.Context) {
	if s.opts.Changed == nil {
		return
	}
	if st, err := s.svc.Status(ctx); err == nil {
		s.opts.Changed(st)
	}
}

func statusProto(st SealStatus) *vaultv1.StatusResponse {
	return &vaultv1.StatusResponse{
		Initialized: st.Initialized, Sealed: st.Sealed, Mode: st.Mode,
		Threshold: int32(st.Threshold), Shares: int32(st.Shares), Progress: int32(st.Progress),
	}
}

// Status reports the seal state.
func (s *AdminServer) Status(ctx context.Context, _ *vaultv1.StatusRequest) (*vaultv1.StatusResponse, error) {
	st, err := s.svc.Status(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return statusProto(st), nil
}

// InitShamir initializes with Shamir shares and returns them, once.
func (s *AdminServer) InitShamir(ctx context.Context, in *vaultv1.InitShamirRequest) (*vaultv1.InitShamirResponse, error) {
	shares, err := s.svc.InitShamir(ctx, int(in.GetThreshold()), int(in.GetShares()))
	s.changed(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	s.opts.Log.InfoContext(ctx, "vault initialized with Shamir shares", "threshold", in.GetThreshold(), "shares", in.GetShares())
	return &vaultv1.InitShamirResponse{Shares: shares}, nil
}

// withBackend runs fn with the node's key backend.
func (s *AdminServer) withBackend(ctx context.Context, create bool, fn func(KeyBackend) error) error {
	if s.opts.Backend == nil {
		return errNoBackend
	}
	b, release, err := s.opts.Backend(ctx, create)
	if err != nil {
		return err
	}
	defer release()
	return fn(b)
}

// InitWithBackend initializes with the node's key backend.
func (s *AdminServer) InitWithBackend(ctx context.Context, _ *vaultv1.InitWithBackendRequest) (*vaultv1.InitWithBackendResponse, error) {
	if st, err := s.svc.Status(ctx); err == nil && st.Initialized {
		// Checked first so that a refused call creates no key file.
		return nil, s.status(ctx, opError("init", "", ErrAlreadyInitialized))
	}
	err := s.withBackend(ctx, true, func(b KeyBackend) error { return s.svc.InitWithBackend(ctx, b) })
	s.changed(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &vaultv1.InitWithBackendResponse{}, nil
}

// SubmitUnsealShares adds shares towards the quorum.
func (s *AdminServer) SubmitUnsealShares(ctx context.Context, in *vaultv1.SubmitUnsealSharesRequest) (*vaultv1.SubmitUnsealSharesResponse, error) {
	st, err := s.svc.SubmitUnsealShares(ctx, in.GetShares()...)
	s.changed(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	if !st.Sealed {
		s.opts.Log.InfoContext(ctx, "vault unsealed with shares")
	}
	return &vaultv1.SubmitUnsealSharesResponse{Status: statusProto(st)}, nil
}

// UnsealWithBackend unseals with the node's key backend.
func (s *AdminServer) UnsealWithBackend(ctx context.Context, _ *vaultv1.UnsealWithBackendRequest) (*vaultv1.UnsealWithBackendResponse, error) {
	err := s.withBackend(ctx, false, func(b KeyBackend) error { return s.svc.UnsealWithBackend(ctx, b) })
	s.changed(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &vaultv1.UnsealWithBackendResponse{}, nil
}

// ResetUnseal discards submitted shares.
func (s *AdminServer) ResetUnseal(ctx context.Context, _ *vaultv1.ResetUnsealRequest) (*vaultv1.ResetUnsealResponse, error) {
	s.svc.ResetUnseal()
	s.changed(ctx)
	return &vaultv1.ResetUnsealResponse{}, nil
}

// Seal wipes the root key.
func (s *AdminServer) Seal(ctx context.Context, _ *vaultv1.SealRequest) (*vaultv1.SealResponse, error) {
	err := s.svc.Seal(ctx)
	s.changed(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	s.opts.Log.InfoContext(ctx, "vault sealed by an operator", "caller", callerName(ctx))
	return &vaultv1.SealResponse{}, nil
}

func callerName(ctx context.Context) string {
	if who, ok := caller.From(ctx); ok {
		return who.String()
	}
	return ""
}

// Conversions. Versions travel as decimal strings ("" means 0, the
// current one), times as Timestamps (unset for the zero time).

func parseVersion(s string) (uint32, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, invalid("version %s is not a decimal number", quote(s))
	}
	return uint32(v), nil
}

func parseVersions(in []string) ([]uint32, error) {
	out := make([]uint32, len(in))
	for i, s := range in {
		v, err := parseVersion(s)
		if err != nil {
			return nil, err
		}
		if v == 0 {
			return nil, invalid("version %d of the list is empty or 0", i)
		}
		out[i] = v
	}
	return out, nil
}

func versionString(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

func versionStrings(vs []uint32) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = versionString(v)
	}
	return out
}

func casFrom(s *string) (*uint32, error) {
	if s == nil {
		return nil, nil
	}
	v, err := parseVersion(*s)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func parseListToken(tok string) (SecretRef, error) {
	if tok == "" {
		return SecretRef{}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	path, name, ok := strings.Cut(string(b), "\x00")
	if err != nil || !ok {
		return SecretRef{}, invalid("malformed page token")
	}
	return SecretRef{Path: path, Name: name}, nil
}

func refFrom(r *vaultv1.SecretRef) SecretRef { return SecretRef{Path: r.GetPath(), Name: r.GetName()} }

func refsFrom(in []*vaultv1.SecretRef) []SecretRef {
	out := make([]SecretRef, len(in))
	for i, r := range in {
		out[i] = refFrom(r)
	}
	return out
}

func refProto(r SecretRef) *vaultv1.SecretRef { return &vaultv1.SecretRef{Path: r.Path, Name: r.Name} }

func refsProto(in []SecretRef) []*vaultv1.SecretRef {
	out := make([]*vaultv1.SecretRef, len(in))
	for i, r := range in {
		out[i] = refProto(r)
	}
	return out
}

func agentProto(id string) *nhiv1.AgentIdentity { return &nhiv1.AgentIdentity{Id: id} }

// takeValue copies a request's value into a SecretValue and clears the
// request's bytes, so one copy (the caller destroys it) is left.
func takeValue(b []byte) SecretValue {
	v := NewSecretValue(b)
	clear(b)
	return v
}

// copyValue copies a value into a response; the caller destroys the
// vault's copy once the response is built.
func copyValue(v SecretValue) []byte {
	if v.Len() == 0 {
		return nil
	}
	return append([]byte(nil), v.Expose()...)
}

func durationFrom(field string, d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, invalid("%s: %v", field, err)
	}
	return d.AsDuration(), nil
}

func timeFrom(field string, t *timestamppb.Timestamp) (time.Time, error) {
	if t == nil {
		return time.Time{}, nil
	}
	if err := t.CheckValid(); err != nil {
		return time.Time{}, invalid("%s: %v", field, err)
	}
	return t.AsTime(), nil
}

func timeProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func metadataFrom(m *vaultv1.SecretMetadata) (SecretMetadata, error) {
	t := m.GetType()
	if t < 0 || t > vaultv1.SecretType(TypeGeneric) {
		return SecretMetadata{}, invalid("secret type %d is unknown", int32(t))
	}
	iv, err := durationFrom("rotation.interval", m.GetRotation().GetInterval())
	if err != nil {
		return SecretMetadata{}, err
	}
	return SecretMetadata{Type: SecretType(t), Description: m.GetDescription(), Labels: m.GetLabels(), Rotation: RotationPolicy{Interval: iv}}, nil
}

func metadataProto(m SecretMetadata) *vaultv1.SecretMetadata {
	out := &vaultv1.SecretMetadata{Type: vaultv1.SecretType(m.Type), Description: m.Description, Labels: m.Labels}
	if m.Rotation.Interval > 0 {
		out.Rotation = &vaultv1.RotationPolicy{Interval: durationpb.New(m.Rotation.Interval)}
	}
	return out
}

// secretProto copies a secret, with its value if it has one.
func secretProto(s *Secret) *vaultv1.Secret {
	return &vaultv1.Secret{
		Reference: refProto(s.Ref), Value: copyValue(s.Value), Version: versionString(s.Version), Metadata: metadataProto(s.Metadata),
		CreatedAt: timeProto(s.CreatedAt), ExpiresAt: timeProto(s.ExpiresAt), CreatedBy: s.CreatedBy,
	}
}

func infoProto(in *SecretInfo) *vaultv1.SecretInfo {
	out := &vaultv1.SecretInfo{
		Reference: refProto(in.Ref), Owner: in.Owner, Metadata: metadataProto(in.Metadata), CurrentVersion: versionString(in.CurrentVersion),
		CreatedAt: timeProto(in.CreatedAt), UpdatedAt: timeProto(in.UpdatedAt), Versions: make([]*vaultv1.VersionInfo, len(in.Versions)),
	}
	for i, v := range in.Versions {
		out.Versions[i] = &vaultv1.VersionInfo{
			Version: versionString(v.Version), CreatedAt: timeProto(v.CreatedAt), CreatedBy: v.CreatedBy, ExpiresAt: timeProto(v.ExpiresAt),
			DeletedAt: timeProto(v.DeletedAt), DeletedBy: v.DeletedBy, Destroyed: v.Destroyed,
		}
	}
	return out
}

func restrictionsProto(r DelegationRestrictions) *vaultv1.DelegationRestrictions {
	out := &vaultv1.DelegationRestrictions{SingleUse: r.SingleUse, MemoryOnly: r.MemoryOnly, MaxUses: r.MaxUses}
	if r.BoundSandbox != "" {
		out.BoundSandbox = &vaultv1.SandboxId{Id: r.BoundSandbox}
	}
	return out
}

func delegationProto(d *Delegation) *vaultv1.Delegation {
	return &vaultv1.Delegation{
		Id: d.ID, Delegator: agentProto(d.Delegator), Delegatee: agentProto(d.Delegatee), Secrets: refsProto(d.Secrets),
		CreatedAt: timeProto(d.CreatedAt), ExpiresAt: timeProto(d.ExpiresAt), Restrictions: restrictionsProto(d.Restrictions),
		Status: vaultv1.DelegationStatus(d.Status), Uses: d.Uses, RevokedAt: timeProto(d.RevokedAt),
	}
}
