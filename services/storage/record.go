package storage

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/creto-systems/creto/internal/kv"
)

// Store layout. Every key of this service starts with "storage/"; fields
// inside a key are separated by NUL, which no bucket, key, agent id or
// version id may contain, so one prefix never covers another's keys.
//
//	storage/meta/schema                   "1"
//	storage/meta/secret                   the node secret, sealed by the Sealer
//	storage/obj/<bucket>\0<key>\0<vid>    the version record (JSON)
//	storage/blob/<vid>                    the envelope of an inline version
//	storage/own/<owner>\0<bucket>\0<key>\0<vid>   owner index: class (1) ‖ expiry ms (8)
//	storage/exp/<expiry ms, 8 bytes>\0<bucket>\0<key>\0<vid>   expiry index
//
// Version ids begin with their creation time, so a key's versions sort
// oldest first and its latest is the last. Expiry times are big-endian so
// the sweeper reads the expiry index in time order and stops at now.
const (
	keySchema    = "storage/meta/schema"
	keySecret    = "storage/meta/secret"
	prefixObj    = "storage/obj/"
	prefixBlob   = "storage/blob/"
	prefixOwner  = "storage/own/"
	prefixExpiry = "storage/exp/"

	schemaVersion = "1"
)

// record is one version as the store holds it. The envelope header holds
// the cryptographic parameters; the record holds what the service needs to
// find, list, account and check the version without opening it.
type record struct {
	Bucket         string            `json:"bucket"`
	Key            string            `json:"key"`
	VersionID      string            `json:"version_id"`
	Owner          string            `json:"owner"`
	Classification Classification    `json:"classification"`
	ContentType    string            `json:"content_type,omitempty"`
	Size           int64             `json:"size"`
	Segments       int64             `json:"segments"`
	SegmentSize    int               `json:"segment_size"`
	EnvelopeSize   int64             `json:"envelope_size"`
	ContentHash    []byte            `json:"content_hash"`
	CreatedAt      int64             `json:"created_ms"`
	ExpiresAt      int64             `json:"expires_ms,omitempty"`
	RetainUntil    int64             `json:"retain_until_ms,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	// Inline is set when the envelope is in the store (storage/blob/<vid>)
	// rather than in a file.
	Inline bool `json:"inline,omitempty"`
}

func (r *record) ref() StorageRef {
	return StorageRef{Bucket: r.Bucket, Key: r.Key, VersionID: r.VersionID, ContentHash: append([]byte(nil), r.ContentHash...)}
}

// expiredAt reports whether the version is invisible at ms.
func (r *record) expiredAt(ms int64) bool { return r.ExpiresAt != 0 && ms >= r.ExpiresAt }

// retainedAt reports whether compliance retention still holds at ms.
func (r *record) retainedAt(ms int64) bool { return r.RetainUntil != 0 && ms < r.RetainUntil }

// retainedError is the error for an operation refused by retention.
func (r *record) retainedError() error {
	return &RetainedError{Ref: r.ref(), Until: time.UnixMilli(r.RetainUntil).UTC()}
}

func (r *record) metadata() ObjectMetadata {
	m := ObjectMetadata{
		Ref:            r.ref(),
		Owner:          r.Owner,
		Classification: r.Classification,
		ContentType:    r.ContentType,
		SizeBytes:      r.Size,
		CreatedAt:      time.UnixMilli(r.CreatedAt).UTC(),
		ContentHash:    append([]byte(nil), r.ContentHash...),
		CustomMetadata: cloneMetadata(r.Metadata),
	}
	if r.ExpiresAt != 0 {
		m.ExpiresAt = time.UnixMilli(r.ExpiresAt).UTC()
	}
	if r.RetainUntil != 0 {
		m.RetainUntil = time.UnixMilli(r.RetainUntil).UTC()
	}
	return m
}

func encodeRecord(r *record) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		// Every field is a string, an integer, a byte slice or a string map.
		panic(fmt.Sprintf("storage: encode record: %v", err))
	}
	return b
}

func decodeRecord(key, val []byte) (*record, error) {
	var r record
	if err := json.Unmarshal(val, &r); err != nil {
		return nil, corrupt("record %s: %v", quote(string(key)), err)
	}
	if string(key) != string(objectKey(r.Bucket, r.Key, r.VersionID)) {
		return nil, corrupt("record %s names another version", quote(string(key)))
	}
	return &r, nil
}

func objectPrefix(bucket, key string) []byte {
	return []byte(prefixObj + bucket + "\x00" + key + "\x00")
}

func objectKey(bucket, key, vid string) []byte {
	return append(objectPrefix(bucket, key), vid...)
}

func blobKey(vid string) []byte { return []byte(prefixBlob + vid) }

func ownerPrefix(owner string) []byte { return []byte(prefixOwner + owner + "\x00") }

func ownerKey(r *record) []byte {
	return append(ownerPrefix(r.Owner), r.Bucket+"\x00"+r.Key+"\x00"+r.VersionID...)
}

// ownerValue lets a listing filter on class and expiry without reading
// each record.
func ownerValue(r *record) []byte {
	return binary.BigEndian.AppendUint64([]byte{byte(r.Classification)}, uint64(r.ExpiresAt))
}

func expiryKey(r *record) []byte {
	k := binary.BigEndian.AppendUint64([]byte(prefixExpiry), uint64(r.ExpiresAt))
	return append(k, "\x00"+r.Bucket+"\x00"+r.Key+"\x00"+r.VersionID...)
}

// putRecord adds the writes that store r and its index entries to b.
func putRecord(b *kv.Batch, r *record) {
	b.Set(objectKey(r.Bucket, r.Key, r.VersionID), encodeRecord(r))
	b.Set(ownerKey(r), ownerValue(r))
	if r.ExpiresAt != 0 {
		b.Set(expiryKey(r), nil)
	}
}

// deleteRecord adds the deletes that remove r, its index entries and its
// inline envelope to b.
func deleteRecord(b *kv.Batch, r *record) {
	b.Delete(objectKey(r.Bucket, r.Key, r.VersionID))
	b.Delete(ownerKey(r))
	if r.ExpiresAt != 0 {
		b.Delete(expiryKey(r))
	}
	if r.Inline {
		b.Delete(blobKey(r.VersionID))
	}
}
