package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	storagev1 "github.com/creto-systems/creto/api/creto/storage/v1"
)

// StorageClient stores and reads agents' encrypted objects with a node's
// StorageService (seed §3.2.2). Storage degrades partially (seed §13.3):
// errors are returned as they are and nothing is cached — a copy kept here
// could be an object its owner has since deleted or replaced. Reads
// (Retrieve, the opening of RetrieveStream, List, GetMetadata,
// PresignedURL) and Delete are retried on retryable errors; Store and
// StoreStream never are: a retry after a lost answer would store a second
// version.
type StorageClient struct {
	svc       *service
	rpc       storagev1.StorageServiceClient
	timeout   time.Duration // each message of a stream
	chunk     int
	maxObject int64
	streams   chan struct{} // a token per open stream
	ownedConn
}

// Classification says what an object is for; every object needs one
// (seed Classification).
type Classification uint8

// Classifications.
const (
	ClassificationUnspecified Classification = iota
	// AgentData is general agent data.
	AgentData
	// SandboxState is a sandbox checkpoint.
	SandboxState
	// MessagePayload is a large message payload.
	MessagePayload
	// Artifact is a build artifact or a log.
	Artifact
	// Sensitive objects are never served through a presigned GET URL.
	Sensitive
	// Compliance objects are retained for the node's
	// compliance_retention_days: no one can delete or change them.
	Compliance
)

// StorageRef names an object, or one version of it (seed StorageRef).
type StorageRef struct {
	// Bucket is empty for the node's default bucket in a store.
	Bucket string
	// Key is empty for a generated key in a store.
	Key string
	// VersionID is empty for the latest live version.
	VersionID string
	// ContentHash, when set in a request, must be the version's, or the
	// call fails with ErrConflict: how a caller asks for exactly the bytes
	// it was given a reference to.
	ContentHash []byte
}

// EncryptionConfig picks an object's algorithms; empty fields take the
// node's (AES-256-GCM data, X-Wing key wrap).
type EncryptionConfig struct {
	// Algorithm is "aes-256-gcm" or "chacha20-poly1305".
	Algorithm string
	// KeyWrapAlgorithm must be the owner's NHI key algorithm, "x-wing".
	KeyWrapAlgorithm string
}

// ObjectMetadata describes one version (seed ObjectMetadata).
type ObjectMetadata struct {
	// Ref is the version, with its content hash.
	Ref            StorageRef
	Owner          string
	Classification Classification
	// Size is the plaintext's length.
	Size      int64
	CreatedAt time.Time
	// ExpiresAt is when the version stops being visible; zero: never.
	ExpiresAt   time.Time
	Metadata    map[string]string
	ContentType string
	// RetainUntil is when compliance retention ends; zero: not retained.
	RetainUntil time.Time
}

// StoreObjectRequest describes an object to store: Store takes its data
// as a slice, StoreStream from a reader.
type StoreObjectRequest struct {
	// Requester is the agent storing; empty means the calling agent.
	Requester string
	// Owner is whose key encrypts the object; empty means the requester.
	Owner string
	// Ref is the bucket and key; no version or content hash.
	Ref            StorageRef
	Classification Classification
	// Metadata is free-form: at most 32 entries, 8 KiB in all.
	Metadata    map[string]string
	ContentType string
	Encryption  EncryptionConfig
	// TTL is the version's lifetime: 0 means the node's default_ttl_days,
	// unless NoExpiry is set.
	TTL      time.Duration
	NoExpiry bool
	// DelegationID is the NHI delegation granting "storage:write" when
	// the owner is another agent.
	DelegationID string
	// Size is StoreStream's exact length of the data, when known: the node
	// refuses a size over its limit or the owner's quota before a chunk is
	// sent, and data of another length fails the store. 0 means unknown.
	// Store sets it.
	Size int64
}

// ObjectRequest names a version to read, describe or delete.
type ObjectRequest struct {
	// Requester is the agent asking; empty means the calling agent.
	Requester string
	// Ref is the object; no version id means the latest live version (for
	// Delete: every version).
	Ref StorageRef
	// DelegationID is the NHI delegation granting the permission
	// ("storage:read", "storage:delete") when the owner is another agent.
	DelegationID string
}

// Object is a whole version: its data and metadata.
type Object struct {
	Data     []byte
	Metadata ObjectMetadata
}

// ListObjectsRequest selects one owner's objects (seed list).
type ListObjectsRequest struct {
	// Requester is the agent listing; empty means the calling agent.
	Requester string
	// Owner is whose objects; empty means the requester.
	Owner string
	// Classification keeps one classification when set.
	Classification Classification
	// Bucket narrows to one bucket; Prefix (which needs Bucket) to keys
	// starting with it.
	Bucket, Prefix string
	// AllVersions lists every live version, not each key's latest.
	AllVersions bool
	// PageSize is at most 1000; 0 means 100.
	PageSize int
	// PageToken is the previous page's NextPageToken.
	PageToken string
	// DelegationID grants "storage:read" when the owner is another agent.
	DelegationID string
}

// ObjectPage is one page of a listing, in (bucket, key) order.
type ObjectPage struct {
	Objects []ObjectMetadata
	// NextPageToken is empty on the last page.
	NextPageToken string
}

// PresignOp is what a presigned URL allows.
type PresignOp uint8

// Presigned operations (seed PresignedOperation).
const (
	PresignOpUnspecified PresignOp = iota
	// PresignGet reads one version.
	PresignGet
	// PresignPut uploads one new version.
	PresignPut
)

// PresignRequest asks for a presigned URL (seed presigned_url).
type PresignRequest struct {
	// Requester is the agent asking, whose access is checked again
	// whenever the URL is used; empty means the calling agent.
	Requester string
	Op        PresignOp
	// Ref is, for GET, the object (the URL pins the version); for PUT,
	// the bucket and key (an empty key is generated).
	Ref StorageRef
	// TTL is the URL's lifetime: 0 means the node's default (15 minutes).
	TTL time.Duration
	// PUT only: the Content-Type the upload must send (empty: any), its
	// most bytes (0: the node's limit), the new version's owner (empty:
	// as Store decides) and classification (required).
	ContentType    string
	MaxSize        int64
	Owner          string
	Classification Classification
	// DelegationID grants "storage:read" (GET) or "storage:write" (PUT)
	// when the owner is another agent; revoking it voids the URL.
	DelegationID string
}

// PresignedURL is a URL anyone holding it may use, until it expires, for
// one operation.
type PresignedURL struct {
	// URL is a bearer credential, so it prints redacted: Expose it to use
	// it.
	URL SecretValue
	// Method is "GET" or "PUT".
	Method string
	// Ref is the pinned version (GET) or the bucket and key (PUT).
	Ref       StorageRef
	ExpiresAt time.Time
}

// NewStorageClient builds a client of the [storage] section alone.
func NewStorageClient(cfg StorageConfig, opts ...Option) (*StorageClient, error) {
	return standalone(cfg, opts, newStorage)
}

func newStorage(d *dialer, top Transport, cfg StorageConfig) (*StorageClient, error) {
	def := DefaultConfig().Storage
	p, err := cfg.ServiceConfig.resolve("storage", top, def.ServiceConfig)
	if err != nil {
		return nil, err
	}
	setDefault(&cfg.ChunkSizeBytes, def.ChunkSizeBytes)
	setDefault(&cfg.MaxConcurrentStreams, def.MaxConcurrentStreams)
	setDefault(&cfg.MaxObjectSizeBytes, def.MaxObjectSizeBytes)
	switch {
	// A chunk travels in one message, which the node caps at 16 MiB by
	// default; 4 MiB leaves room under any sane limit.
	case cfg.ChunkSizeBytes < 1<<10 || cfg.ChunkSizeBytes > 4<<20:
		return nil, fmt.Errorf("%w: storage.chunk_size_bytes %d: want 1024 to 4194304", ErrConfig, cfg.ChunkSizeBytes)
	case cfg.MaxConcurrentStreams < 1 || cfg.MaxConcurrentStreams > 10_000:
		return nil, fmt.Errorf("%w: storage.max_concurrent_streams %d: want 1 to 10000", ErrConfig, cfg.MaxConcurrentStreams)
	case cfg.MaxObjectSizeBytes < 1 || cfg.MaxObjectSizeBytes > 1<<40:
		return nil, fmt.Errorf("%w: storage.max_object_size_bytes %d: want 1 to 1099511627776", ErrConfig, cfg.MaxObjectSizeBytes)
	}
	conn, err := d.dial("storage", p)
	if err != nil {
		return nil, err
	}
	return &StorageClient{
		svc:     newService("storage", storagev1.StorageService_ServiceDesc.ServiceName, conn, p, d.opts.log),
		rpc:     storagev1.NewStorageServiceClient(conn),
		timeout: p.timeout, chunk: cfg.ChunkSizeBytes, maxObject: cfg.MaxObjectSizeBytes,
		streams: make(chan struct{}, cfg.MaxConcurrentStreams),
	}, nil
}

// Store stores a new version of an object and returns its metadata (seed
// store). Data larger than chunk_size_bytes goes as StoreStream would send
// it, so no object meets the node's limit on one message. Never retried.
func (c *StorageClient) Store(ctx context.Context, req StoreObjectRequest, data []byte) (ObjectMetadata, error) {
	if req.Size != 0 && req.Size != int64(len(data)) {
		return ObjectMetadata{}, localError("storage", "Store", ErrInvalidRequest, "size %d, but %d bytes of data", req.Size, len(data))
	}
	req.Size = int64(len(data))
	if len(data) > c.chunk {
		return c.StoreStream(ctx, req, bytes.NewReader(data))
	}
	if err := c.checkSize("Store", req.Size); err != nil {
		return ObjectMetadata{}, err
	}
	in := &storagev1.StoreRequest{Data: data, Requester: agentRef(req.Requester), DelegationId: req.DelegationID}
	if err := fillStore(in, req); err != nil {
		return ObjectMetadata{}, err
	}
	resp, err := call(ctx, c.svc, "Store", false, func(ctx context.Context) (*storagev1.StoreResponse, error) {
		return c.rpc.Store(ctx, in)
	})
	if err != nil {
		return ObjectMetadata{}, err
	}
	return objectMetadataFrom(resp.GetMetadata()), nil
}

// storeFields is what StoreRequest and StoreStreamHeader share.
type storeFields interface {
	*storagev1.StoreRequest | *storagev1.StoreStreamHeader
}

// fillStore copies a request's header fields into a unary request or a
// stream header.
func fillStore[M storeFields](m M, req StoreObjectRequest) error {
	ttl, err := storeTTL(req)
	if err != nil {
		return err
	}
	ref := &storagev1.StorageRef{Bucket: req.Ref.Bucket, Key: req.Ref.Key, VersionId: req.Ref.VersionID, ContentHash: req.Ref.ContentHash}
	var enc *storagev1.EncryptionConfig
	if req.Encryption != (EncryptionConfig{}) {
		enc = &storagev1.EncryptionConfig{Algorithm: req.Encryption.Algorithm, KeyWrapAlgorithm: req.Encryption.KeyWrapAlgorithm}
	}
	class := storagev1.Classification(req.Classification)
	switch m := any(m).(type) {
	case *storagev1.StoreRequest:
		m.Owner, m.Classification, m.Metadata, m.Encryption, m.Ttl, m.Reference, m.ContentType =
			agentRef(req.Owner), class, req.Metadata, enc, ttl, ref, req.ContentType
	case *storagev1.StoreStreamHeader:
		m.Owner, m.Classification, m.Metadata, m.Encryption, m.Ttl, m.Reference, m.ContentType =
			agentRef(req.Owner), class, req.Metadata, enc, ttl, ref, req.ContentType
	}
	return nil
}

// storeTTL is a store's TTL on the wire: unset for the node's default,
// zero for none.
func storeTTL(req StoreObjectRequest) (*durationpb.Duration, error) {
	switch {
	case req.TTL < 0:
		return nil, localError("storage", "Store", ErrInvalidRequest, "negative TTL %v", req.TTL)
	case req.NoExpiry && req.TTL != 0:
		return nil, localError("storage", "Store", ErrInvalidRequest, "a TTL (%v) and NoExpiry", req.TTL)
	case req.NoExpiry:
		return durationpb.New(0), nil
	case req.TTL > 0:
		return durationpb.New(req.TTL), nil
	}
	return nil, nil
}

// checkSize refuses an object over max_object_size_bytes before anything
// is sent.
func (c *StorageClient) checkSize(method string, size int64) error {
	switch {
	case size < 0:
		return localError("storage", method, ErrInvalidRequest, "negative size %d", size)
	case size > c.maxObject:
		e := localError("storage", method, ErrTooLarge, "%d bytes, over max_object_size_bytes (%d)", size, c.maxObject)
		e.detail = &TooLargeError{Size: size, Max: c.maxObject}
		return e
	}
	return nil
}

// Retrieve returns a whole version (seed retrieve). A version over the
// node's limit on one message is read through RetrieveStream instead, up
// to max_object_size_bytes.
func (c *StorageClient) Retrieve(ctx context.Context, req ObjectRequest) (Object, error) {
	in := &storagev1.RetrieveRequest{Reference: storageRefProto(req.Ref), Requester: agentRef(req.Requester), DelegationId: req.DelegationID}
	resp, err := call(ctx, c.svc, "Retrieve", true, func(ctx context.Context) (*storagev1.RetrieveResponse, error) {
		return c.rpc.Retrieve(ctx, in)
	})
	var e *Error
	if errors.As(err, &e) && e.Reason == "TOO_LARGE" {
		return c.retrieveStreamed(ctx, req)
	}
	if err != nil {
		return Object{}, err
	}
	md := objectMetadataFrom(resp.GetMetadata())
	if int64(len(resp.GetData())) != md.Size {
		return Object{}, localError("storage", "Retrieve", ErrInternal, "%d bytes for an object of %d", len(resp.GetData()), md.Size)
	}
	return Object{Data: resp.GetData(), Metadata: md}, nil
}

// retrieveStreamed reads a whole version through RetrieveStream.
func (c *StorageClient) retrieveStreamed(ctx context.Context, req ObjectRequest) (Object, error) {
	r, err := c.RetrieveStream(ctx, req)
	if err != nil {
		return Object{}, err
	}
	defer r.Close()
	md := r.Metadata()
	if err := c.checkSize("Retrieve", md.Size); err != nil {
		return Object{}, err
	}
	data := bytes.NewBuffer(make([]byte, 0, md.Size))
	if _, err := data.ReadFrom(r); err != nil {
		return Object{}, err
	}
	return Object{Data: data.Bytes(), Metadata: md}, nil
}

// Delete deletes one version, or every version when the reference names
// none (seed delete). It is retried: deleting twice leaves the same
// state. A retried Delete that then finds nothing returns nil — the first
// attempt, whose answer was lost, may have deleted it; either way it is
// gone.
func (c *StorageClient) Delete(ctx context.Context, req ObjectRequest) error {
	_, err := call(ctx, c.svc, "Delete", true, func(ctx context.Context) (*storagev1.DeleteResponse, error) {
		return c.rpc.Delete(ctx, &storagev1.DeleteRequest{Reference: storageRefProto(req.Ref), Requester: agentRef(req.Requester), DelegationId: req.DelegationID})
	})
	var e *Error
	if errors.As(err, &e) && e.Attempts > 1 && errors.Is(e.Kind, ErrNotFound) {
		return nil
	}
	return err
}

// List returns a page of one owner's objects, in (bucket, key) order (seed
// list); pass NextPageToken back for the next.
func (c *StorageClient) List(ctx context.Context, req ListObjectsRequest) (ObjectPage, error) {
	if req.PageSize < 0 || req.PageSize > 1000 {
		return ObjectPage{}, localError("storage", "List", ErrInvalidRequest, "page size %d: want 0 to 1000", req.PageSize)
	}
	in := &storagev1.ListRequest{Owner: agentRef(req.Owner), Classification: storagev1.Classification(req.Classification),
		Bucket: req.Bucket, Prefix: req.Prefix, AllVersions: req.AllVersions, PageSize: int32(req.PageSize), PageToken: req.PageToken,
		Requester: agentRef(req.Requester), DelegationId: req.DelegationID}
	resp, err := call(ctx, c.svc, "List", true, func(ctx context.Context) (*storagev1.ListResponse, error) {
		return c.rpc.List(ctx, in)
	})
	if err != nil {
		return ObjectPage{}, err
	}
	out := ObjectPage{Objects: make([]ObjectMetadata, len(resp.GetObjects())), NextPageToken: resp.GetNextPageToken()}
	for i, m := range resp.GetObjects() {
		out.Objects[i] = objectMetadataFrom(m)
	}
	return out, nil
}

// GetMetadata returns one version's metadata.
func (c *StorageClient) GetMetadata(ctx context.Context, req ObjectRequest) (ObjectMetadata, error) {
	resp, err := call(ctx, c.svc, "GetMetadata", true, func(ctx context.Context) (*storagev1.GetMetadataResponse, error) {
		return c.rpc.GetMetadata(ctx, &storagev1.GetMetadataRequest{Reference: storageRefProto(req.Ref), Requester: agentRef(req.Requester), DelegationId: req.DelegationID})
	})
	if err != nil {
		return ObjectMetadata{}, err
	}
	return objectMetadataFrom(resp.GetMetadata()), nil
}

// PresignedURL returns a time-limited URL on the node's HTTP listener that
// lets whoever holds it GET one version or PUT one upload (seed
// presigned_url). Issuing one changes nothing, so it is retried.
func (c *StorageClient) PresignedURL(ctx context.Context, req PresignRequest) (PresignedURL, error) {
	if req.Op != PresignGet && req.Op != PresignPut {
		return PresignedURL{}, localError("storage", "GeneratePresignedUrl", ErrInvalidRequest, "operation %d: want PresignGet or PresignPut", req.Op)
	}
	if req.TTL < 0 || req.MaxSize < 0 {
		return PresignedURL{}, localError("storage", "GeneratePresignedUrl", ErrInvalidRequest, "negative TTL or maximum size")
	}
	in := &storagev1.GeneratePresignedUrlRequest{Reference: storageRefProto(req.Ref), Operation: storagev1.PresignedOperation(req.Op),
		ContentType: req.ContentType, MaxSizeBytes: req.MaxSize, Owner: agentRef(req.Owner),
		Classification: storagev1.Classification(req.Classification), Requester: agentRef(req.Requester), DelegationId: req.DelegationID}
	if req.TTL > 0 {
		in.Ttl = durationpb.New(req.TTL)
	}
	resp, err := call(ctx, c.svc, "GeneratePresignedUrl", true, func(ctx context.Context) (*storagev1.GeneratePresignedUrlResponse, error) {
		return c.rpc.GeneratePresignedUrl(ctx, in)
	})
	if err != nil {
		return PresignedURL{}, err
	}
	return PresignedURL{URL: NewSecretValue([]byte(resp.GetUrl())), Method: resp.GetMethod(),
		Ref: storageRefFrom(resp.GetReference()), ExpiresAt: timeFrom(resp.GetExpiresAt())}, nil
}

// Health reports the storage service's health (seed health).
func (c *StorageClient) Health(ctx context.Context) Health { return c.svc.health(ctx) }

// Stats returns the client's counters.
func (c *StorageClient) Stats() Stats { return c.svc.Stats() }

// Close releases the client's connection; streams still open fail.
func (c *StorageClient) Close() error { return c.closeConn() }

func storageRefProto(r StorageRef) *storagev1.StorageRef {
	return &storagev1.StorageRef{Bucket: r.Bucket, Key: r.Key, VersionId: r.VersionID, ContentHash: r.ContentHash}
}

func storageRefFrom(r *storagev1.StorageRef) StorageRef {
	return StorageRef{Bucket: r.GetBucket(), Key: r.GetKey(), VersionID: r.GetVersionId(), ContentHash: r.GetContentHash()}
}

func objectMetadataFrom(m *storagev1.ObjectMetadata) ObjectMetadata {
	return ObjectMetadata{
		Ref: storageRefFrom(m.GetReference()), Owner: m.GetOwner().GetId(), Classification: Classification(m.GetClassification()),
		Size: m.GetSizeBytes(), CreatedAt: timeFrom(m.GetCreatedAt()), ExpiresAt: timeFrom(m.GetExpiresAt()),
		Metadata: maps.Clone(m.GetCustomMetadata()), ContentType: m.GetContentType(), RetainUntil: timeFrom(m.GetRetainUntil()),
	}
}

// acquireStream takes a stream slot, waiting for one while
// max_concurrent_streams are open.
func (c *StorageClient) acquireStream(ctx context.Context, method string) (release func(), err error) {
	select {
	case c.streams <- struct{}{}:
		return func() { <-c.streams }, nil
	case <-ctx.Done():
		return nil, decode(ctx, "storage", method, ctx.Err())
	}
}
