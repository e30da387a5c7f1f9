package consensus

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	consensusv1 "github.com/creto-systems/creto/api/creto/consensus/v1"
	"github.com/creto-systems/creto/internal/caller"
	"github.com/creto-systems/creto/internal/rpcerr"
)

// Server is the gRPC face of a Node's data surface
// (creto.consensus.v1.ConsensusService). The caller a Node sees is the
// authenticated identity in its Cedar form — Agent::"planner",
// Operator::"admin", Node::"node-2" — so idempotency keys and the caller
// recorded with ordered events never confuse an agent with an operator of
// the same name.
type Server struct {
	consensusv1.UnimplementedConsensusServiceServer
	node *Node
	log  *slog.Logger
}

// AdminServer is the gRPC face of a Node's membership surface
// (creto.consensus.v1.ConsensusAdminService).
type AdminServer struct {
	consensusv1.UnimplementedConsensusAdminServiceServer
	node *Node
	log  *slog.Logger
}

// NewServer returns the ConsensusService implementation over n.
func NewServer(n *Node, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{node: n, log: log}
}

// NewAdminServer returns the ConsensusAdminService implementation over n.
func NewAdminServer(n *Node, log *slog.Logger) *AdminServer {
	if log == nil {
		log = slog.Default()
	}
	return &AdminServer{node: n, log: log}
}

// Register adds the service to a gRPC server.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	consensusv1.RegisterConsensusServiceServer(g, s)
}

// Register adds the service to a gRPC server.
func (s *AdminServer) Register(g grpc.ServiceRegistrar) {
	consensusv1.RegisterConsensusAdminServiceServer(g, s)
}

// ReasonNotLeader is the ErrorInfo reason of a call a follower refused
// because it needs the leader. The ErrorInfo's metadata names the leader:
// MetadataLeaderAddress (its gRPC address, where the client repeats the
// call), MetadataLeaderID and MetadataLeaderRaftAddress.
const ReasonNotLeader = "NOT_LEADER"

// ErrorInfo metadata keys of a NOT_LEADER error.
const (
	MetadataLeaderAddress     = "leader_address"
	MetadataLeaderID          = "leader_id"
	MetadataLeaderRaftAddress = "leader_raft_address"
)

// rules map the package's sentinels to codes, most specific first.
// NotLeader is FAILED_PRECONDITION, not UNAVAILABLE: retrying on the same
// node is useless (and generic gRPC retry policies retry UNAVAILABLE);
// the client repeats the call at the leader the details name. An
// indeterminate outcome is ABORTED: retry with the same idempotency key.
// No quorum, no leader, a halted state machine and a closing node are
// UNAVAILABLE: nothing was proposed, so retrying later is safe.
var rules = []rpcerr.Rule{
	{Err: ErrIndeterminate, Code: codes.Aborted, Reason: "INDETERMINATE"},
	{Err: ErrNotLeader, Code: codes.FailedPrecondition}, // ErrorInfo from details
	{Err: ErrNoQuorum, Code: codes.Unavailable, Reason: "NO_QUORUM"},
	{Err: ErrHalted, Code: codes.Unavailable, Reason: "HALTED"},
	{Err: ErrClosed, Code: codes.Unavailable, Reason: "SHUTTING_DOWN"},
	{Err: ErrUnavailable, Code: codes.Unavailable, Reason: "UNAVAILABLE"},
	{Err: ErrAccessDenied, Code: codes.PermissionDenied, Reason: "ACCESS_DENIED"},
	{Err: ErrIdempotencyConflict, Code: codes.FailedPrecondition, Reason: "IDEMPOTENCY_CONFLICT"},
	{Err: ErrTooLarge, Code: codes.InvalidArgument, Reason: "TOO_LARGE"},
	{Err: ErrInvalidArgument, Code: codes.InvalidArgument, Reason: "INVALID_ARGUMENT"},
	{Err: ErrCorrupt, Code: codes.DataLoss, Reason: "CORRUPT"},
}

// notLeaderDetails names the leader in a NOT_LEADER error.
func notLeaderDetails(domain string) func(error) []protoadapt.MessageV1 {
	return func(err error) []protoadapt.MessageV1 {
		var nl *NotLeaderError
		if !errors.As(err, &nl) {
			return nil
		}
		return []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: ReasonNotLeader, Domain: domain, Metadata: map[string]string{
			MetadataLeaderAddress:     nl.LeaderClientAddress,
			MetadataLeaderID:          nl.LeaderID,
			MetadataLeaderRaftAddress: nl.LeaderAddress,
		}}}
	}
}

func table(domain string) rpcerr.Table {
	return rpcerr.Table{Domain: domain, Rules: rules, Details: notLeaderDetails(domain)}
}

var (
	dataTable  = table(consensusv1.ConsensusService_ServiceDesc.ServiceName)
	adminTable = table(consensusv1.ConsensusAdminService_ServiceDesc.ServiceName)
)

// NotLeaderFromStatus turns a NOT_LEADER status a follower returned back
// into the *NotLeaderError it stands for (LeaderClientAddress is where to
// repeat the call); ok is false for any other error.
func NotLeaderFromStatus(err error) (nl *NotLeaderError, ok bool) {
	st, isStatus := status.FromError(err)
	if !isStatus || st.Code() != codes.FailedPrecondition {
		return nil, false
	}
	for _, d := range st.Details() {
		if info, isInfo := d.(*errdetails.ErrorInfo); isInfo && info.GetReason() == ReasonNotLeader {
			md := info.GetMetadata()
			return &NotLeaderError{LeaderID: md[MetadataLeaderID], LeaderAddress: md[MetadataLeaderRaftAddress],
				LeaderClientAddress: md[MetadataLeaderAddress]}, true
		}
	}
	return nil, false
}

// callerName is the authenticated caller in its Cedar form.
func callerName(ctx context.Context) (string, error) {
	who, ok := caller.From(ctx)
	if !ok {
		return "", caller.ErrUnauthenticated
	}
	return who.String(), nil
}

// GetTimestamp returns timestamps from the leader's oracle.
func (s *Server) GetTimestamp(ctx context.Context, in *consensusv1.GetTimestampRequest) (*consensusv1.GetTimestampResponse, error) {
	who, err := callerName(ctx)
	if err != nil {
		return nil, dataTable.Status(ctx, s.log, err)
	}
	r, err := s.node.GetTimestamp(ctx, who, GetTimestampRequest{Count: in.GetCount(), AllowLocal: in.GetAllowLocal()})
	if err != nil {
		return nil, dataTable.Status(ctx, s.log, err)
	}
	return &consensusv1.GetTimestampResponse{Timestamp: timestampProto(r.Timestamp), Count: r.Count,
		Consensus: r.Consensus, Warning: r.Warning}, nil
}

// OrderEvents orders a batch of events.
func (s *Server) OrderEvents(ctx context.Context, in *consensusv1.OrderEventsRequest) (*consensusv1.OrderEventsResponse, error) {
	who, err := callerName(ctx)
	if err != nil {
		return nil, dataTable.Status(ctx, s.log, err)
	}
	req := OrderEventsRequest{Events: make([]Event, len(in.GetEvents())), IdempotencyKey: in.GetIdempotencyKey()}
	for i, e := range in.GetEvents() {
		req.Events[i] = Event{ID: e.GetId(), Payload: e.GetPayload()}
	}
	res, err := s.node.OrderEvents(ctx, who, req)
	if err != nil {
		return nil, dataTable.Status(ctx, s.log, err)
	}
	out := &consensusv1.OrderEventsResponse{Events: make([]*consensusv1.EventOrder, len(res.Events)), Duplicate: res.Duplicate}
	for i, e := range res.Events {
		out.Events[i] = &consensusv1.EventOrder{Id: e.ID, Sequence: e.Sequence, Timestamp: timestampProto(e.Timestamp)}
	}
	return out, nil
}

// GetClusterStatus reports the cluster as this node sees it.
func (s *Server) GetClusterStatus(ctx context.Context, _ *consensusv1.GetClusterStatusRequest) (*consensusv1.GetClusterStatusResponse, error) {
	who, err := callerName(ctx)
	if err != nil {
		return nil, dataTable.Status(ctx, s.log, err)
	}
	st, err := s.node.GetClusterStatus(ctx, who)
	if err != nil {
		return nil, dataTable.Status(ctx, s.log, err)
	}
	out := &consensusv1.GetClusterStatusResponse{
		NodeId: st.NodeID, Role: roleProto[st.Role], LeaderId: st.LeaderID, LeaderGrpcAddress: st.LeaderClientAddress,
		Term: st.Term, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex, LastLogIndex: st.LastLogIndex,
		Writable: st.Writable, ServingTimestamps: st.ServingTimestamps,
	}
	for _, m := range st.Members {
		out.Members = append(out.Members, &consensusv1.Member{Id: m.ID, RaftAddress: m.Address, GrpcAddress: m.ClientAddress,
			Suffrage: suffrageProto[m.Suffrage], Health: healthProto[m.Health], Leader: m.Leader})
	}
	return out, nil
}

// ReadEvents returns ordered events from this node's applied state.
func (s *Server) ReadEvents(ctx context.Context, in *consensusv1.ReadEventsRequest) (*consensusv1.ReadEventsResponse, error) {
	who, err := callerName(ctx)
	if err != nil {
		return nil, dataTable.Status(ctx, s.log, err)
	}
	res, err := s.node.ReadEvents(ctx, who, ReadEventsRequest{From: in.GetFrom(), Limit: int(in.GetLimit())})
	if err != nil {
		return nil, dataTable.Status(ctx, s.log, err)
	}
	out := &consensusv1.ReadEventsResponse{Events: make([]*consensusv1.OrderedEvent, len(res.Events)), Next: res.Next, Oldest: res.Oldest, Last: res.Last}
	for i, e := range res.Events {
		out.Events[i] = &consensusv1.OrderedEvent{Sequence: e.Sequence, Timestamp: timestampProto(e.Timestamp), Id: e.ID, Payload: e.Payload, Caller: e.Caller}
	}
	return out, nil
}

// AddServer adds or promotes a server.
func (s *AdminServer) AddServer(ctx context.Context, in *consensusv1.AddServerRequest) (*consensusv1.AddServerResponse, error) {
	who, err := callerName(ctx)
	if err != nil {
		return nil, adminTable.Status(ctx, s.log, err)
	}
	res, err := s.node.AddServer(ctx, who, AddServerRequest{ID: in.GetId(), Address: in.GetRaftAddress(), Voter: in.GetVoter(), ClientAddress: in.GetGrpcAddress()})
	if err != nil {
		return nil, adminTable.Status(ctx, s.log, err)
	}
	return &consensusv1.AddServerResponse{Index: res.Index}, nil
}

// RemoveServer removes a server.
func (s *AdminServer) RemoveServer(ctx context.Context, in *consensusv1.RemoveServerRequest) (*consensusv1.RemoveServerResponse, error) {
	who, err := callerName(ctx)
	if err == nil {
		err = s.node.RemoveServer(ctx, who, RemoveServerRequest{ID: in.GetId()})
	}
	if err != nil {
		return nil, adminTable.Status(ctx, s.log, err)
	}
	return &consensusv1.RemoveServerResponse{}, nil
}

// TransferLeadership hands leadership to a voter.
func (s *AdminServer) TransferLeadership(ctx context.Context, in *consensusv1.TransferLeadershipRequest) (*consensusv1.TransferLeadershipResponse, error) {
	who, err := callerName(ctx)
	if err == nil {
		err = s.node.TransferLeadership(ctx, who, TransferLeadershipRequest{ID: in.GetId()})
	}
	if err != nil {
		return nil, adminTable.Status(ctx, s.log, err)
	}
	return &consensusv1.TransferLeadershipResponse{}, nil
}

func timestampProto(t Timestamp) *consensusv1.Timestamp {
	return &consensusv1.Timestamp{Logical: t.Logical, Physical: t.Physical, NodeId: t.NodeID}
}

var (
	roleProto = map[Role]consensusv1.Role{
		RoleLeader: consensusv1.Role_ROLE_LEADER, RoleFollower: consensusv1.Role_ROLE_FOLLOWER,
		RoleCandidate: consensusv1.Role_ROLE_CANDIDATE, RoleShutdown: consensusv1.Role_ROLE_SHUTDOWN,
	}
	suffrageProto = map[Suffrage]consensusv1.Suffrage{
		Voter: consensusv1.Suffrage_SUFFRAGE_VOTER, Nonvoter: consensusv1.Suffrage_SUFFRAGE_NONVOTER,
		Staging: consensusv1.Suffrage_SUFFRAGE_STAGING,
	}
	healthProto = map[Health]consensusv1.Health{
		Healthy: consensusv1.Health_HEALTH_HEALTHY, Unhealthy: consensusv1.Health_HEALTH_UNHEALTHY,
		Unknown: consensusv1.Health_HEALTH_UNKNOWN,
	}
)
