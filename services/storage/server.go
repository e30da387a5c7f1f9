package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	storagev1 "github.com/creto-systems/creto/api/creto/storage/v1"
	"github.com/creto-systems/creto/internal/caller"
	"github.com/creto-systems/creto/internal/rpcerr"
	"github.com/creto-systems/creto/services/nhi"
)

// ExtensionAgentPrefix starts the storage identity of every Wasm
// extension: extension "quota" owns objects as "extension:quota"
// (ExtensionAgent), the convention the vault uses for extensions' secrets.
// Server refuses agent callers whose id has the prefix, so a token issued
// to such an id cannot reach an extension's objects.
const ExtensionAgentPrefix = nhi.ExtensionIDPrefix

// ExtensionAgent returns the storage identity of the extension named name.
func ExtensionAgent(name string) string { return ExtensionAgentPrefix + name }

// RetrieveChunkBytes is the most plaintext one RetrieveStream message
// carries.
const RetrieveChunkBytes = 1 << 20

// unaryOverhead is what a RetrieveResponse needs beside the data: the
// metadata (custom metadata alone may be 8 KiB) and the framing, with room
// to spare.
const unaryOverhead = 64 << 10

// Server is the gRPC face of a Service (creto.storage.v1.StorageService).
// The service scopes every call by its caller (ownership, delegations,
// retention, quotas); Server only works out who the caller is — an agent
// acts as itself, an operator as the agent a request names as requester —
// and moves bytes. It never logs a request, a response or a URL.
type Server struct {
	storagev1.UnimplementedStorageServiceServer
	svc      *Service
	log      *slog.Logger
	unaryMax int64
	baseURL  func() string
}

// ServerOptions configures a Server.
type ServerOptions struct {
	// Log receives internal errors (with an incident id the client sees).
	Log *slog.Logger
	// MaxMessageBytes is the largest gRPC message the node accepts
	// (server.max_recv_msg_bytes); Retrieve refuses, as too large for one
	// message, an object that would not fit in one. Zero means gRPC's
	// default of 4 MiB.
	MaxMessageBytes int
	// BaseURL returns the node's HTTP base URL ("https://host:port", no
	// trailing slash), which GeneratePresignedUrl prefixes to the path and
	// query Presign returns. Nil leaves URLs relative.
	BaseURL func() string
}

// NewServer returns the StorageService implementation over svc.
func NewServer(svc *Service, opts ServerOptions) *Server {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 4 << 20
	}
	if opts.BaseURL == nil {
		opts.BaseURL = func() string { return "" }
	}
	return &Server{svc: svc, log: opts.Log, unaryMax: max(int64(opts.MaxMessageBytes)-unaryOverhead, 0), baseURL: opts.BaseURL}
}

// Register adds the service to a gRPC server.
func (s *Server) Register(g grpc.ServiceRegistrar) { storagev1.RegisterStorageServiceServer(g, s) }

// errReferenceHash marks a hash mismatch between a caller's reference and
// the version it resolves to: the caller's precondition failed, nothing
// is wrong with the data. A mismatch found while reading is data loss.
var errReferenceHash = errors.New("the reference's content hash is not the version's")

var domain = storagev1.StorageService_ServiceDesc.ServiceName

// errorTable maps the service's errors as docs/storage.md lists them. The
// quota, size and retention errors get their reasons, with their figures,
// from errorDetails.
var errorTable = rpcerr.Table{
	Domain: domain,
	Rules: []rpcerr.Rule{
		{Err: errReferenceHash, Code: codes.FailedPrecondition, Reason: "REFERENCE_HASH_MISMATCH"},
		{Err: ErrHashMismatch, Code: codes.DataLoss, Reason: "HASH_MISMATCH"},
		{Err: ErrQuotaExceeded, Code: codes.ResourceExhausted},
		{Err: ErrTooLarge, Code: codes.InvalidArgument},
		{Err: ErrRetained, Code: codes.FailedPrecondition},
		{Err: ErrAccessDenied, Code: codes.PermissionDenied, Reason: "ACCESS_DENIED"},
		{Err: ErrNotFound, Code: codes.NotFound, Reason: "NOT_FOUND"},
		// The owner has no usable key (unknown, suspended, revoked or
		// expired): the owner's state, not the request, is at fault.
		{Err: ErrEncryptionFailed, Code: codes.FailedPrecondition, Reason: "ENCRYPTION_FAILED"},
		{Err: ErrDecryptionFailed, Code: codes.DataLoss, Reason: "DECRYPTION_FAILED"},
		{Err: ErrCorrupt, Code: codes.DataLoss, Reason: "CORRUPT"},
		{Err: ErrInvalidArgument, Code: codes.InvalidArgument, Reason: "INVALID_ARGUMENT"},
		{Err: ErrClosed, Code: codes.Unavailable, Reason: "SHUTTING_DOWN"},
	},
	Details: errorDetails,
}

// errorDetails carries the figures of the errors that have them: a quota's
// used and limit bytes (rpcerr.Quota), a size and its maximum, the end of
// a retention.
func errorDetails(err error) []protoadapt.MessageV1 {
	var quota *QuotaExceededError
	var size *TooLargeError
	var kept *RetainedError
	switch {
	case errors.As(err, &quota):
		return rpcerr.Quota(domain, "owner:"+quota.Owner, "the owner's stored and in-flight bytes would pass its quota",
			quota.Used, quota.Limit, "bytes")
	case errors.As(err, &size):
		return []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: "TOO_LARGE", Domain: domain, Metadata: map[string]string{
			"size": strconv.FormatInt(size.Size, 10), "max": strconv.FormatInt(size.Max, 10), "unit": "bytes",
		}}}
	case errors.As(err, &kept):
		return []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: "RETAINED", Domain: domain, Metadata: map[string]string{
			"retain_until": kept.Until.UTC().Format(time.RFC3339),
		}}}
	}
	return nil
}

func (s *Server) status(ctx context.Context, err error) error {
	return errorTable.Status(ctx, s.log, err)
}

// resolved maps the error of a call that resolves a caller's reference: a
// hash mismatch there is the reference's, never the data's.
func (s *Server) resolved(ctx context.Context, err error) error {
	if errors.Is(err, ErrHashMismatch) {
		err = fmt.Errorf("%w: %w", errReferenceHash, err)
	}
	return s.status(ctx, err)
}

// requested is what every request carries about who makes it.
type requested interface {
	GetRequester() *nhiv1.AgentIdentity
	GetDelegationId() string
}

// callerOf returns the Caller of a request: the authenticated agent, or
// the agent an operator names (caller.Acting), and the delegation it acts
// through. Agent tokens for an extension's identity are refused.
func callerOf(ctx context.Context, in requested) (Caller, error) {
	id, err := caller.Acting(ctx, in.GetRequester().GetId())
	if err != nil {
		return Caller{}, err
	}
	if who, _ := caller.From(ctx); who.Kind == caller.Agent && strings.HasPrefix(id, ExtensionAgentPrefix) {
		return Caller{}, fmt.Errorf("%w: agent %s: ids beginning %q are extensions' storage identities", ErrAccessDenied, quote(id), ExtensionAgentPrefix)
	}
	return Caller{Agent: id, Delegation: in.GetDelegationId()}, nil
}

// Store stores an object from one message.
func (s *Server) Store(ctx context.Context, in *storagev1.StoreRequest) (*storagev1.StoreResponse, error) {
	c, req, err := storeFrom(ctx, in)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	req.Size = int64(len(in.GetData()))
	md, err := s.svc.Store(ctx, c, req, bytes.NewReader(in.GetData()))
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &storagev1.StoreResponse{Reference: refProto(md.Ref), Metadata: metadataProto(md)}, nil
}

// StoreStream stores an object from a stream: the header, then chunks.
// The chunks are written into a pipe the service reads from as it
// encrypts, so the node holds no more than two messages (the one being
// written and one received ahead) and the service's own chunk buffers,
// whatever the object's size.
func (s *Server) StoreStream(stream storagev1.StorageService_StoreStreamServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return s.status(ctx, invalid("the stream ended before its header"))
	}
	if err != nil {
		return err
	}
	h := first.GetHeader()
	if h == nil {
		return s.status(ctx, invalid("the first message of a stream must carry the header"))
	}
	c, req, err := storeFrom(ctx, h)
	if err != nil {
		return s.status(ctx, err)
	}
	if req.Size = h.GetSizeBytes(); req.Size < 0 {
		return s.status(ctx, invalid("negative size %d", req.Size))
	}

	pr, pw := io.Pipe()
	type result struct {
		md  ObjectMetadata
		err error
	}
	done := make(chan result, 1)
	go func() {
		md, err := s.svc.Store(ctx, c, req, pr)
		// Unblocks a chunk being written if the store ended early.
		pr.CloseWithError(errStoreEnded)
		done <- result{md, err}
	}()
	recvErr := pump(stream, pw)
	r := <-done
	switch {
	case r.err == nil:
		return stream.SendAndClose(&storagev1.StoreStreamResponse{Reference: refProto(r.md.Ref), Metadata: metadataProto(r.md)})
	case recvErr != nil && !errors.Is(recvErr, errStoreEnded):
		// The client went away or broke the stream; that, not the
		// store's view of it, is what happened.
		return s.status(ctx, recvErr)
	}
	return s.status(ctx, r.err)
}

// errStoreEnded is what writing to the pipe fails with once the store has
// returned.
var errStoreEnded = errors.New("the store has ended")

// pump writes every chunk the stream carries into pw and closes it: with
// io.EOF when the client half-closed, with the failure otherwise. It
// returns the failure, if any.
//
// One message is received ahead while the previous one is written: gRPC
// grants the client more flow-control window only as messages are
// received, so without it the transfer and the encryption would take
// turns instead of overlapping. The pipe still holds nothing: at most the
// message being written and the one received ahead are in memory.
func pump(stream storagev1.StorageService_StoreStreamServer, pw *io.PipeWriter) error {
	type received struct {
		chunk []byte
		err   error
	}
	ahead := make(chan received, 1)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			msg, err := stream.Recv()
			if err == nil && msg.GetHeader() != nil {
				err = invalid("a stream carries one header, in its first message")
			}
			select {
			case ahead <- received{msg.GetChunk(), err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	// The receiver ends at its next message (or the client's end) once
	// stopped; it must not outlive the handler.
	defer func() { close(stop); <-done }()
	for {
		r := <-ahead
		if errors.Is(r.err, io.EOF) {
			return pw.Close()
		}
		err := r.err
		if err == nil {
			_, err = pw.Write(r.chunk)
		}
		if err != nil {
			pw.CloseWithError(err)
			return err
		}
	}
}

// storeFields is what StoreRequest and StoreStreamHeader share.
type storeFields interface {
	requested
	GetOwner() *nhiv1.AgentIdentity
	GetClassification() storagev1.Classification
	GetMetadata() map[string]string
	GetEncryption() *storagev1.EncryptionConfig
	GetTtl() *durationpb.Duration
	GetReference() *storagev1.StorageRef
	GetContentType() string
}

// storeFrom reads the caller and the StoreRequest (without size and data)
// of a store.
func storeFrom(ctx context.Context, in storeFields) (Caller, StoreRequest, error) {
	c, err := callerOf(ctx, in)
	if err != nil {
		return Caller{}, StoreRequest{}, err
	}
	ref := in.GetReference()
	if ref.GetVersionId() != "" || len(ref.GetContentHash()) != 0 {
		return Caller{}, StoreRequest{}, invalid("a store names a bucket and key, not a version or a content hash")
	}
	class, err := classFrom(in.GetClassification())
	if err != nil {
		return Caller{}, StoreRequest{}, err
	}
	ttl, err := ttlFrom(in.GetTtl())
	if err != nil {
		return Caller{}, StoreRequest{}, err
	}
	req := StoreRequest{
		Bucket: ref.GetBucket(), Key: ref.GetKey(), Owner: in.GetOwner().GetId(), Classification: class,
		ContentType: in.GetContentType(), Metadata: in.GetMetadata(), TTL: ttl,
	}
	if e := in.GetEncryption(); e != nil {
		req.Encryption = &EncryptionConfig{Algorithm: e.GetAlgorithm(), KeyWrapAlgorithm: e.GetKeyWrapAlgorithm(), CustomerKeyID: e.GetCustomerKeyId()}
	}
	return c, req, nil
}

// Retrieve returns a whole version in one message.
func (s *Server) Retrieve(ctx context.Context, in *storagev1.RetrieveRequest) (*storagev1.RetrieveResponse, error) {
	c, err := callerOf(ctx, in)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	r, err := s.svc.RetrieveStream(ctx, c, refFrom(in.GetReference()))
	if err != nil {
		return nil, s.resolved(ctx, err)
	}
	defer r.Close()
	md := r.Metadata()
	if md.SizeBytes > s.unaryMax {
		return nil, s.status(ctx, fmt.Errorf("storage: retrieve %v: over the limit of one message, use RetrieveStream: %w",
			md.Ref, &TooLargeError{Size: md.SizeBytes, Max: s.unaryMax}))
	}
	data := bytes.NewBuffer(make([]byte, 0, md.SizeBytes))
	if _, err := r.WriteTo(data); err != nil {
		return nil, s.status(ctx, err)
	}
	return &storagev1.RetrieveResponse{Data: data.Bytes(), Metadata: metadataProto(md)}, nil
}

// RetrieveStream sends a version in chunks of RetrieveChunkBytes. An error
// after the first message is the terminal status the client must treat
// as "discard what you got" (see the proto).
func (s *Server) RetrieveStream(in *storagev1.RetrieveStreamRequest, stream storagev1.StorageService_RetrieveStreamServer) error {
	ctx := stream.Context()
	c, err := callerOf(ctx, in)
	if err != nil {
		return s.status(ctx, err)
	}
	r, err := s.svc.RetrieveStream(ctx, c, refFrom(in.GetReference()))
	if err != nil {
		return s.resolved(ctx, err)
	}
	defer r.Close()
	msg := &storagev1.RetrieveStreamResponse{Metadata: metadataProto(r.Metadata())}
	for {
		// A fresh buffer per message: gRPC may still hold a sent message
		// (stats handlers read them lazily), so one is never reused.
		buf := make([]byte, RetrieveChunkBytes)
		n, err := io.ReadFull(r, buf)
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			return s.status(ctx, err)
		}
		if n > 0 || msg.Metadata != nil {
			msg.Chunk = buf[:n]
			if err := stream.Send(msg); err != nil {
				return err
			}
		}
		if eof {
			return nil
		}
		msg = &storagev1.RetrieveStreamResponse{}
	}
}

// Delete deletes a version, or every version of an object.
func (s *Server) Delete(ctx context.Context, in *storagev1.DeleteRequest) (*storagev1.DeleteResponse, error) {
	c, err := callerOf(ctx, in)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	if err := s.svc.Delete(ctx, c, refFrom(in.GetReference())); err != nil {
		return nil, s.resolved(ctx, err)
	}
	return &storagev1.DeleteResponse{}, nil
}

// List returns a page of one owner's objects.
func (s *Server) List(ctx context.Context, in *storagev1.ListRequest) (*storagev1.ListResponse, error) {
	c, err := callerOf(ctx, in)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	class, err := classFrom(in.GetClassification())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	resp, err := s.svc.List(ctx, c, ListRequest{
		Owner: in.GetOwner().GetId(), Classification: class, Bucket: in.GetBucket(), Prefix: in.GetPrefix(),
		AllVersions: in.GetAllVersions(), Cursor: in.GetPageToken(), Limit: int(in.GetPageSize()),
	})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &storagev1.ListResponse{Objects: make([]*storagev1.ObjectMetadata, len(resp.Objects)), NextPageToken: resp.NextCursor}
	for i, md := range resp.Objects {
		out.Objects[i] = metadataProto(md)
	}
	return out, nil
}

// GetMetadata returns a version's metadata.
func (s *Server) GetMetadata(ctx context.Context, in *storagev1.GetMetadataRequest) (*storagev1.GetMetadataResponse, error) {
	c, err := callerOf(ctx, in)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	md, err := s.svc.GetMetadata(ctx, c, refFrom(in.GetReference()))
	if err != nil {
		return nil, s.resolved(ctx, err)
	}
	return &storagev1.GetMetadataResponse{Metadata: metadataProto(md)}, nil
}

// UpdateMetadata changes the fields the mask names.
func (s *Server) UpdateMetadata(ctx context.Context, in *storagev1.UpdateMetadataRequest) (*storagev1.UpdateMetadataResponse, error) {
	c, err := callerOf(ctx, in)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	req, err := updateFrom(in)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	md, err := s.svc.UpdateMetadata(ctx, c, req)
	if err != nil {
		return nil, s.resolved(ctx, err)
	}
	return &storagev1.UpdateMetadataResponse{Metadata: metadataProto(md)}, nil
}

func updateFrom(in *storagev1.UpdateMetadataRequest) (UpdateMetadataRequest, error) {
	req := UpdateMetadataRequest{Ref: refFrom(in.GetReference())}
	paths := in.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		return req, invalid("update_mask is empty: it would change nothing")
	}
	for _, p := range paths {
		switch p {
		case "custom_metadata":
			req.Metadata = in.GetCustomMetadata()
			if req.Metadata == nil {
				req.Metadata = map[string]string{} // named and empty: clear it
			}
		case "content_type":
			ct := in.GetContentType()
			req.ContentType = &ct
		case "classification":
			class, err := classFrom(in.GetClassification())
			if err != nil {
				return req, err
			}
			if class == ClassificationUnspecified {
				return req, invalid("update_mask names classification but the request leaves it unspecified")
			}
			req.Classification = class
		case "ttl":
			ttl, err := ttlFrom(in.GetTtl())
			if err != nil {
				return req, err
			}
			if ttl == 0 {
				ttl = NoExpiry // named and unset: remove the expiry
			}
			req.TTL = ttl
		default:
			return req, invalid("update_mask path %s is not custom_metadata, content_type, classification or ttl", quote(p))
		}
	}
	return req, nil
}

// GeneratePresignedUrl issues a presigned URL on the node's HTTP listener.
func (s *Server) GeneratePresignedUrl(ctx context.Context, in *storagev1.GeneratePresignedUrlRequest) (*storagev1.GeneratePresignedUrlResponse, error) {
	c, err := callerOf(ctx, in)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	req := PresignRequest{Ref: refFrom(in.GetReference()), Owner: in.GetOwner().GetId(), ContentType: in.GetContentType(), MaxSize: in.GetMaxSizeBytes()}
	switch in.GetOperation() {
	case storagev1.PresignedOperation_PRESIGNED_OPERATION_GET:
		req.Op = PresignGet
	case storagev1.PresignedOperation_PRESIGNED_OPERATION_PUT:
		req.Op = PresignPut
	default:
		return nil, s.status(ctx, invalid("operation must be PRESIGNED_OPERATION_GET or PRESIGNED_OPERATION_PUT"))
	}
	if req.Classification, err = classFrom(in.GetClassification()); err != nil {
		return nil, s.status(ctx, err)
	}
	if d := in.GetTtl(); d != nil {
		if err := d.CheckValid(); err != nil {
			return nil, s.status(ctx, invalid("ttl: %v", err))
		}
		req.TTL = d.AsDuration()
	}
	u, err := s.svc.Presign(ctx, c, req)
	if err != nil {
		return nil, s.resolved(ctx, err)
	}
	return &storagev1.GeneratePresignedUrlResponse{
		Url: s.baseURL() + u.URL, Method: u.Method, Reference: refProto(u.Ref), ExpiresAt: timestamppb.New(u.ExpiresAt),
	}, nil
}

// Conversions. The wire's Classification numbers are the service's (the
// seed numbers both alike).

func classFrom(p storagev1.Classification) (Classification, error) {
	c := Classification(p)
	if c != ClassificationUnspecified && !c.valid() {
		return 0, invalid("classification %d is not one of the seed's", int32(p))
	}
	return c, nil
}

// ttlFrom reads a version's lifetime as the seed's protobuf means it:
// unset takes the default (0), zero means no expiry.
func ttlFrom(d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, invalid("ttl: %v", err)
	}
	switch ttl := d.AsDuration(); {
	case ttl < 0:
		return 0, invalid("negative ttl %v", ttl)
	case ttl == 0:
		return NoExpiry, nil
	default:
		return ttl, nil
	}
}

func refFrom(r *storagev1.StorageRef) StorageRef {
	return StorageRef{Bucket: r.GetBucket(), Key: r.GetKey(), VersionID: r.GetVersionId(), ContentHash: r.GetContentHash()}
}

func refProto(r StorageRef) *storagev1.StorageRef {
	return &storagev1.StorageRef{Bucket: r.Bucket, Key: r.Key, VersionId: r.VersionID, ContentHash: r.ContentHash}
}

// timeProto is an optional timestamp: the zero time is unset.
func timeProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func metadataProto(md ObjectMetadata) *storagev1.ObjectMetadata {
	return &storagev1.ObjectMetadata{
		Reference: refProto(md.Ref), Owner: &nhiv1.AgentIdentity{Id: md.Owner}, Classification: storagev1.Classification(md.Classification),
		SizeBytes: md.SizeBytes, CreatedAt: timestamppb.New(md.CreatedAt), ExpiresAt: timeProto(md.ExpiresAt),
		ContentHash: md.ContentHash, CustomMetadata: md.CustomMetadata, ContentType: md.ContentType, RetainUntil: timeProto(md.RetainUntil),
	}
}
