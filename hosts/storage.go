package hosts

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/services/storage"
)

// ObjectStore is the part of object storage creto:storage/v1 calls;
// *storage.Service implements it.
type ObjectStore interface {
	Store(ctx context.Context, caller storage.Caller, req storage.StoreRequest, body io.Reader) (storage.ObjectMetadata, error)
	RetrieveStream(ctx context.Context, caller storage.Caller, ref storage.StorageRef) (*storage.ObjectReader, error)
	GetMetadata(ctx context.Context, caller storage.Caller, ref storage.StorageRef) (storage.ObjectMetadata, error)
	Delete(ctx context.Context, caller storage.Caller, ref storage.StorageRef) error
}

// Storage is creto:storage/v1 (capability "storage", SPEC.md §6.10): small
// objects an extension keeps in the node's encrypted object storage. The
// extension acts as storage.ExtensionAgent(name), "extension:<name>" —
// the identity its vault secrets use — and the service's access control
// applies as to any agent: it owns what it stores, and reads another
// agent's objects only through that agent's delegation, which this module
// never presents. Objects are encrypted to that identity's NHI key, so it
// must be a registered, active NHI agent (the node registers it at the
// extension's first put).
type Storage struct{ Objects ObjectStore }

var _ engine.HostModule = Storage{}

// Capability implements engine.HostModule.
func (Storage) Capability() string { return abi.CapabilityStorage }

// MaxStorageObjectBytes bounds an object put or got through the module:
// it is copied to or from guest memory inside a check. Larger objects are
// for the gRPC API's streams.
const MaxStorageObjectBytes = 1 << 20

// statSize is the length of stat's record (SPEC.md §6.10).
const statSize = 32

// Bounds of the names a guest passes, checked before they are copied: a
// bucket is at most 63 bytes, a key 1024 (docs/storage.md).
const (
	maxBucketBytes = 63
	maxKeyBytes    = 1024
)

// Functions implements engine.HostModule.
func (h Storage) Functions(ext string) []engine.HostFunction {
	c := storage.Caller{Agent: storage.ExtensionAgent(ext)}
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	// call reads the (bucket_ptr, bucket_len, key_ptr, key_len) arguments
	// at stack[0:4] and runs do with the object's reference, putting its
	// result — or the code for its error — on the stack.
	call := func(do func(ctx context.Context, m api.Module, ref storage.StorageRef, stack []uint64) (int64, error)) api.GoModuleFunc {
		return func(ctx context.Context, m api.Module, stack []uint64) {
			ref, code := objectRef(m, stack)
			if code == 0 && h.Objects == nil {
				code = abi.EUnavailable
			}
			if code < 0 {
				stack[0] = uint64(code)
				return
			}
			r, err := do(ctx, m, ref, stack)
			if err != nil {
				r = storageCode(err)
			}
			stack[0] = uint64(r)
		}
	}
	return []engine.HostFunction{
		// put(bucket_ptr, bucket_len, key_ptr, key_len, data_ptr, data_len,
		// class i32, ttl_s i64) -> i32
		{Name: "put", Params: []api.ValueType{i32, i32, i32, i32, i32, i32, i32, i64}, Results: []api.ValueType{i32},
			Func: call(func(ctx context.Context, m api.Module, ref storage.StorageRef, stack []uint64) (int64, error) {
				ttl, ok := ttlSeconds(int64(stack[7]))
				if uint32(stack[5]) > MaxStorageObjectBytes || !ok {
					return abi.EInvalid, nil
				}
				data, ok := engine.GuestBytes(m, uint32(stack[4]), uint32(stack[5]))
				if !ok {
					return abi.EInvalid, nil
				}
				// The service reads the body before it returns, so the
				// view of guest memory does not outlive the call.
				_, err := h.Objects.Store(ctx, c, storage.StoreRequest{
					Bucket: ref.Bucket, Key: ref.Key, Classification: storage.Classification(int32(stack[6])),
					TTL: ttl, Size: int64(len(data)),
				}, bytes.NewReader(data))
				return 0, err
			})},
		// get(bucket_ptr, bucket_len, key_ptr, key_len, out_ptr, out_cap
		// i32) -> i32
		{Name: "get", Params: []api.ValueType{i32, i32, i32, i32, i32, i32}, Results: []api.ValueType{i32},
			Func: call(func(ctx context.Context, m api.Module, ref storage.StorageRef, stack []uint64) (int64, error) {
				r, err := h.Objects.RetrieveStream(ctx, c, ref)
				if err != nil {
					return 0, err
				}
				defer r.Close()
				size := r.Metadata().SizeBytes
				switch {
				case size > MaxStorageObjectBytes:
					return abi.EInvalid, nil
				case size > int64(uint32(stack[5])):
					return size, nil // the return convention: nothing written
				}
				out, ok := m.Memory().Read(uint32(stack[4]), uint32(size))
				if !ok {
					return abi.EInvalid, nil
				}
				// Chunk by chunk into the guest's buffer, to the end, where
				// the content hash is checked: on an error the guest gets a
				// negative code and must ignore what the buffer holds.
				if _, err := r.WriteTo(&fixedWriter{buf: out}); err != nil {
					return 0, err
				}
				return size, nil
			})},
		// stat(bucket_ptr, bucket_len, key_ptr, key_len, out_ptr, out_cap
		// i32) -> i32
		{Name: "stat", Params: []api.ValueType{i32, i32, i32, i32, i32, i32}, Results: []api.ValueType{i32},
			Func: call(func(ctx context.Context, m api.Module, ref storage.StorageRef, stack []uint64) (int64, error) {
				md, err := h.Objects.GetMetadata(ctx, c, ref)
				if err != nil {
					return 0, err
				}
				return engine.PutResult(m, uint32(stack[4]), uint32(stack[5]), statRecord(&md)), nil
			})},
		// delete(bucket_ptr, bucket_len, key_ptr, key_len i32) -> i32
		{Name: "delete", Params: []api.ValueType{i32, i32, i32, i32}, Results: []api.ValueType{i32},
			Func: call(func(ctx context.Context, _ api.Module, ref storage.StorageRef, _ []uint64) (int64, error) {
				return 0, h.Objects.Delete(ctx, c, ref)
			})},
	}
}

// fixedWriter fills buf and refuses to write past it.
type fixedWriter struct {
	buf []byte
	n   int
}

func (w *fixedWriter) Write(p []byte) (int, error) {
	if len(p) > len(w.buf)-w.n {
		return 0, io.ErrShortBuffer
	}
	w.n += copy(w.buf[w.n:], p)
	return len(p), nil
}

// objectRef reads the (bucket_ptr, bucket_len, key_ptr, key_len)
// arguments. The service validates the names; here they are only bounded
// and copied out of guest memory. Both are required: a generated key
// would be lost to the guest, and the node's default bucket is the
// service's to choose.
func objectRef(m api.Module, stack []uint64) (storage.StorageRef, int64) {
	if n := uint32(stack[1]); n == 0 || n > maxBucketBytes {
		return storage.StorageRef{}, abi.EInvalid
	}
	if n := uint32(stack[3]); n == 0 || n > maxKeyBytes {
		return storage.StorageRef{}, abi.EInvalid
	}
	bucket, ok1 := engine.GuestBytes(m, uint32(stack[0]), uint32(stack[1]))
	key, ok2 := engine.GuestBytes(m, uint32(stack[2]), uint32(stack[3]))
	if !ok1 || !ok2 {
		return storage.StorageRef{}, abi.EInvalid
	}
	return storage.StorageRef{Bucket: string(bucket), Key: string(key)}, 0
}

// ttlSeconds reads put's ttl_s: 0 the node's default lifetime, -1 none,
// a positive number of seconds; anything else is not a lifetime.
func ttlSeconds(s int64) (time.Duration, bool) {
	switch {
	case s == 0:
		return 0, true
	case s == -1:
		return storage.NoExpiry, true
	case s < 0 || s > math.MaxInt64/int64(time.Second):
		return 0, false
	}
	return time.Duration(s) * time.Second, true
}

// statRecord is stat's 32-byte record, little-endian: size u64, created
// i64 and expires i64 in Unix nanoseconds (expires 0: never), the
// classification u32, and flags u32 (bit 0: under compliance retention).
func statRecord(md *storage.ObjectMetadata) []byte {
	b := make([]byte, 0, statSize)
	b = binary.LittleEndian.AppendUint64(b, uint64(md.SizeBytes))
	b = binary.LittleEndian.AppendUint64(b, uint64(md.CreatedAt.UnixNano()))
	var expires int64
	if !md.ExpiresAt.IsZero() {
		expires = md.ExpiresAt.UnixNano()
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(expires))
	b = binary.LittleEndian.AppendUint32(b, uint32(md.Classification))
	var flags uint32
	if !md.RetainUntil.IsZero() && time.Now().Before(md.RetainUntil) {
		flags |= 1
	}
	return binary.LittleEndian.AppendUint32(b, flags)
}

// storageCode is the ABI code for a storage error. Refusals — another
// identity's object, a retained object, a full quota, the extension's own
// identity suspended or revoked (its key unusable) — are EDENIED.
func storageCode(err error) int64 {
	switch {
	case errors.Is(err, storage.ErrAccessDenied), errors.Is(err, storage.ErrRetained),
		errors.Is(err, storage.ErrQuotaExceeded), errors.Is(err, storage.ErrEncryptionFailed):
		return abi.EDenied
	case errors.Is(err, storage.ErrNotFound):
		return abi.ENotFound
	case errors.Is(err, storage.ErrInvalidArgument), errors.Is(err, storage.ErrTooLarge):
		return abi.EInvalid
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return abi.EDeadline
	}
	// Data that does not decrypt or match its hash, a closed service, an
	// identity that could not be registered: storage cannot serve now.
	return abi.EUnavailable
}
