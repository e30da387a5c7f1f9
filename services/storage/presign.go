package storage

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/creto-systems/creto/services/crypto"
)

// PresignOp is what a presigned URL lets its holder do.
type PresignOp string

// Presigned operations (the seed's PresignedOperation).
const (
	PresignGet PresignOp = http.MethodGet
	PresignPut PresignOp = http.MethodPut
)

// PresignRequest asks for a presigned URL (seed PresignedUrlRequest).
type PresignRequest struct {
	Op PresignOp
	// Ref is, for GET, the object to read: the URL pins the version (the
	// latest live one when Ref has none). For PUT, the bucket and key to
	// store to; an empty key is generated, an empty bucket is the default.
	Ref StorageRef
	// TTL is the URL's lifetime: 0 means default_presign_ttl; at most
	// max_presign_ttl (7 days).
	TTL time.Duration
	// PUT only: the owner (empty: as Store decides), the classification,
	// the content type the upload must declare (empty: any), and the most
	// bytes it may carry (0: max_object_size_bytes).
	Owner          string
	Classification Classification
	ContentType    string
	MaxSize        int64
}

// PresignedURL is a URL anyone holding it may use, until it expires, for
// the one operation it was made for.
type PresignedURL struct {
	// URL is a path and query; the node serves it on its HTTP listener,
	// where Handler is mounted at Config.PresignPath.
	URL       string
	Method    string
	Ref       StorageRef
	ExpiresAt time.Time
}

// Presign issues a presigned URL. The URL is signed with HMAC-SHA256
// under a key derived from the sealed node secret; it names the issuer
// (and its delegation), whose access is checked again when the URL is
// used, so revoking the issuer's delegation or identity voids its URLs.
// GET needs storage:read, PUT storage:write. Sensitive objects are never
// served through presigned GET URLs.
func (s *Service) Presign(ctx context.Context, caller Caller, req PresignRequest) (PresignedURL, error) {
	if err := s.enter(); err != nil {
		return PresignedURL{}, fmt.Errorf("storage: presign: %w", err)
	}
	defer s.life.RUnlock()
	u, err := s.presign(ctx, caller, req)
	if err != nil {
		return PresignedURL{}, fmt.Errorf("storage: presign %s %v: %w", req.Op, req.Ref, err)
	}
	return u, nil
}

// presignParams are the signed fields of a presigned URL.
type presignParams struct {
	method, bucket, key, version string
	owner, class, ctype, max     string // PUT
	expires, agent, delegation   string
}

func (s *Service) presign(ctx context.Context, caller Caller, req PresignRequest) (PresignedURL, error) {
	if err := validateAgent("caller", caller.Agent); err != nil {
		return PresignedURL{}, err
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = s.cfg.DefaultPresignTTL
	}
	if ttl < 0 || ttl > s.cfg.MaxPresignTTL {
		return PresignedURL{}, invalid("URL lifetime %v outside 0..%v", ttl, s.cfg.MaxPresignTTL)
	}
	expires := s.now().Add(ttl).Truncate(time.Second)
	p := presignParams{method: string(req.Op), expires: strconv.FormatInt(expires.Unix(), 10), agent: caller.Agent, delegation: caller.Delegation}
	ref := req.Ref
	switch req.Op {
	case PresignGet:
		rec, err := s.readable(ctx, caller, ref)
		if err != nil {
			return PresignedURL{}, err
		}
		if rec.Classification == Sensitive {
			return PresignedURL{}, &AccessDeniedError{Agent: caller.Agent, Ref: rec.ref(), Permission: PermRead,
				Cause: errors.New("sensitive objects are not served through presigned URLs")}
		}
		ref = rec.ref()
		p.version = ref.VersionID
	case PresignPut:
		if err := s.presignPut(ctx, caller, req, &ref, &p); err != nil {
			return PresignedURL{}, err
		}
	default:
		return PresignedURL{}, invalid("presigned operation %s is not GET or PUT", quote(string(req.Op)))
	}
	p.bucket, p.key = ref.Bucket, ref.Key
	q := p.values()
	q.Set("sig", base64.RawURLEncoding.EncodeToString(s.presignMAC(&p)))
	return PresignedURL{URL: s.cfg.PresignPath + "?" + q.Encode(), Method: p.method, Ref: ref, ExpiresAt: expires.UTC()}, nil
}

// presignPut checks a PUT request as Store would check the upload, and
// fills in the reference and the PUT fields.
func (s *Service) presignPut(ctx context.Context, caller Caller, req PresignRequest, ref *StorageRef, p *presignParams) error {
	if ref.VersionID != "" || len(ref.ContentHash) != 0 {
		return invalid("a PUT URL names a bucket and key, not a version")
	}
	if ref.Bucket == "" {
		ref.Bucket = s.cfg.DefaultBucket
	}
	if ref.Key == "" {
		ref.Key = s.newVersionID()
	}
	if err := validateRef(*ref); err != nil {
		return err
	}
	if !req.Classification.valid() {
		return invalid("classification %v is not one of agent_data … compliance", req.Classification)
	}
	if err := validateContentType(req.ContentType); err != nil {
		return err
	}
	maxSize := req.MaxSize
	switch {
	case maxSize == 0:
		maxSize = s.cfg.MaxObjectSizeBytes
	case maxSize < 0:
		return invalid("negative maximum size %d", maxSize)
	case maxSize > s.cfg.MaxObjectSizeBytes:
		return &TooLargeError{Size: maxSize, Max: s.cfg.MaxObjectSizeBytes}
	}
	owner, err := s.writer(ctx, caller, ref.Bucket, ref.Key, req.Owner)
	if err != nil {
		return err
	}
	if _, _, err := s.ownerKey(ctx, owner); err != nil {
		return err
	}
	p.owner, p.class, p.ctype = owner, strconv.Itoa(int(req.Classification)), req.ContentType
	p.max = strconv.FormatInt(maxSize, 10)
	return nil
}

func (p *presignParams) values() url.Values {
	q := url.Values{}
	for _, f := range p.fields() {
		if f.value != "" && f.name != "method" {
			q.Set(f.name, f.value)
		}
	}
	return q
}

type presignField struct{ name, value string }

// fields lists the signed fields in signing order. The method is signed
// but not sent: the request's own method takes its place when a URL is
// checked, so a GET URL cannot be used to PUT.
func (p *presignParams) fields() []presignField {
	return []presignField{
		{"method", p.method}, {"bucket", p.bucket}, {"key", p.key}, {"version", p.version},
		{"owner", p.owner}, {"class", p.class}, {"type", p.ctype}, {"max", p.max},
		{"expires", p.expires}, {"agent", p.agent}, {"delegation", p.delegation},
	}
}

// presignMAC is HMAC-SHA256 over a label and every field, each
// length-prefixed so no two sets of fields encode alike. HMAC is enough:
// only this node (or its cluster, sharing the secret) issues and checks
// these URLs, so no third party needs a public key, and it costs a
// microsecond where a hybrid signature would cost 160.
func (s *Service) presignMAC(p *presignParams) []byte {
	mac, err := s.p.HMAC(crypto.HMACSHA256, s.presignKey, p.message())
	if err != nil {
		// HMAC-SHA256 is always supported and takes any key.
		panic(fmt.Sprintf("storage: presign mac: %v", err))
	}
	return mac
}

// Handler serves presigned URLs: GET streams the pinned version, PUT
// stores the request body. Mount it at Config.PresignPath on the node's
// HTTP listener. A URL that is expired, tampered with, used with another
// method, or whose issuer has lost access gets 403; an upload larger than
// the URL allows gets 413, and one past the owner's quota 507. A refused
// request changes nothing.
func (s *Service) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// presignError is a refusal with its HTTP status. Its message names the
// reason but never a key or signature.
type presignError struct {
	status int
	msg    string
}

func (s *Service) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != s.cfg.PresignPath {
		http.NotFound(w, r)
		return
	}
	p, perr := s.checkPresigned(r)
	if perr != nil {
		http.Error(w, perr.msg, perr.status)
		return
	}
	caller := Caller{Agent: p.agent, Delegation: p.delegation}
	ref := StorageRef{Bucket: p.bucket, Key: p.key, VersionID: p.version}
	if r.Method == http.MethodGet {
		s.serveGet(w, r, caller, ref)
	} else {
		s.servePut(w, r, caller, ref, p)
	}
}

// checkPresigned verifies a request against its URL: one value per
// parameter, a known method, an unexpired time, and the signature.
func (s *Service) checkPresigned(r *http.Request) (*presignParams, *presignError) {
	forbidden := func(msg string) *presignError { return &presignError{http.StatusForbidden, msg} }
	if r.Method != http.MethodGet && r.Method != http.MethodPut {
		return nil, forbidden("presigned URLs serve GET and PUT only")
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, forbidden("malformed query")
	}
	p := &presignParams{method: r.Method}
	set := map[string]*string{
		"bucket": &p.bucket, "key": &p.key, "version": &p.version, "owner": &p.owner, "class": &p.class,
		"type": &p.ctype, "max": &p.max, "expires": &p.expires, "agent": &p.agent, "delegation": &p.delegation,
	}
	var sig []byte
	for name, vals := range q {
		if len(vals) != 1 {
			return nil, forbidden("repeated query parameter")
		}
		if name == "sig" {
			if sig, err = base64.RawURLEncoding.Strict().DecodeString(vals[0]); err != nil {
				return nil, forbidden("malformed signature")
			}
			continue
		}
		dst, ok := set[name]
		if !ok {
			return nil, forbidden("unknown query parameter")
		}
		*dst = vals[0]
	}
	exp, err := strconv.ParseInt(p.expires, 10, 64)
	if err != nil {
		return nil, forbidden("malformed expiry")
	}
	if s.now().Unix() >= exp {
		return nil, forbidden("the URL has expired")
	}
	// Checked after expiry so a tampered URL and an expired one are told
	// apart only by their own parameters, never by the signature.
	if err := s.p.VerifyHMAC(crypto.HMACSHA256, s.presignKey, p.message(), sig); err != nil {
		return nil, forbidden("the URL's signature does not match it (tampered, or used with another method)")
	}
	return p, nil
}

// message is what presignMAC signs.
func (p *presignParams) message() []byte {
	msg := []byte("creto-storage/presign/v1")
	for _, f := range p.fields() {
		msg = binary.BigEndian.AppendUint32(msg, uint32(len(f.value)))
		msg = append(msg, f.value...)
	}
	return msg
}

func (s *Service) serveGet(w http.ResponseWriter, r *http.Request, caller Caller, ref StorageRef) {
	rd, err := s.RetrieveStream(r.Context(), caller, ref)
	if err != nil {
		writeError(w, err)
		return
	}
	defer rd.Close()
	md := rd.Metadata()
	if md.Classification == Sensitive {
		writeError(w, &AccessDeniedError{Agent: caller.Agent, Ref: md.Ref, Permission: PermRead,
			Cause: errors.New("sensitive objects are not served through presigned URLs")})
		return
	}
	h := w.Header()
	ct := md.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.FormatInt(md.SizeBytes, 10))
	h.Set("ETag", `"`+hex.EncodeToString(md.ContentHash)+`"`)
	h.Set("X-Creto-Version-Id", md.Ref.VersionID)
	if _, err := rd.WriteTo(w); err != nil {
		// The status is sent: abort the connection, so the client sees a
		// body shorter than Content-Length rather than a clean end.
		slog.Warn("storage: presigned GET failed mid-body", "ref", md.Ref.String(), "err", err)
		panic(http.ErrAbortHandler)
	}
}

func (s *Service) servePut(w http.ResponseWriter, r *http.Request, caller Caller, ref StorageRef, p *presignParams) {
	maxSize, err1 := strconv.ParseInt(p.max, 10, 64)
	class, err2 := strconv.Atoi(p.class)
	if err1 != nil || err2 != nil {
		http.Error(w, "malformed PUT parameters", http.StatusForbidden)
		return
	}
	if p.ctype != "" && r.Header.Get("Content-Type") != p.ctype {
		http.Error(w, "the Content-Type differs from the one the URL was signed for", http.StatusForbidden)
		return
	}
	if r.ContentLength > maxSize {
		writeError(w, &TooLargeError{Size: r.ContentLength, Max: maxSize})
		return
	}
	req := StoreRequest{Bucket: ref.Bucket, Key: ref.Key, Owner: p.owner, Classification: Classification(class),
		ContentType: r.Header.Get("Content-Type"), Size: max(r.ContentLength, 0)}
	body := &limitedBody{r: r.Body, max: maxSize}
	md, err := s.Store(r.Context(), caller, req, body)
	if err != nil {
		if body.cut != nil && !errors.Is(err, ErrTooLarge) {
			// The client's upload broke off: its refusal, not the node's
			// failure, whatever Store made of the short read.
			err = fmt.Errorf("%w: the upload was cut short: %v", ErrInvalidArgument, body.cut)
		}
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{
		"bucket": md.Ref.Bucket, "key": md.Ref.Key, "version_id": md.Ref.VersionID,
		"content_hash": hex.EncodeToString(md.ContentHash), "size": md.SizeBytes,
	})
}

// limitedBody fails with *TooLargeError at the first byte past max, and
// never returns that byte: like http.MaxBytesReader, it reads at most one
// byte beyond what it may return, so the error cannot be lost behind a
// read that happens to fill the caller's buffer.
type limitedBody struct {
	r   io.Reader
	n   int64 // bytes returned so far
	max int64
	err error
	// cut is the error with which reading the client's body failed, if it
	// did: a connection closed or reset mid-upload.
	cut error
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if room := l.max - l.n; int64(len(p)) > room+1 {
		p = p[:room+1]
	}
	n, err := l.r.Read(p)
	if err != nil && err != io.EOF {
		l.cut = err
	}
	if l.n+int64(n) > l.max {
		n = int(l.max - l.n)
		l.err = &TooLargeError{Size: l.max + 1, Max: l.max}
		err = l.err
	}
	l.n += int64(n)
	return n, err
}

// writeError answers a refused request with the status its error maps to
// and a fixed message: whoever holds a URL is not authenticated, so the
// detail (an issuer's delegation, a key) goes to the log, not to them.
func writeError(w http.ResponseWriter, err error) {
	status, msg := http.StatusInternalServerError, "internal error"
	switch {
	case errors.Is(err, ErrAccessDenied):
		status, msg = http.StatusForbidden, "the URL's issuer may not do this (any more)"
	case errors.Is(err, ErrNotFound):
		status, msg = http.StatusNotFound, "no such object"
	case errors.Is(err, ErrTooLarge):
		status, msg = http.StatusRequestEntityTooLarge, "the upload is larger than the URL allows"
	case errors.Is(err, ErrQuotaExceeded):
		status, msg = http.StatusInsufficientStorage, "the owner's quota is exhausted"
	case errors.Is(err, ErrInvalidArgument):
		status, msg = http.StatusBadRequest, "the upload does not match the URL"
	case errors.Is(err, ErrRetained):
		status, msg = http.StatusConflict, "the object is under retention"
	case errors.Is(err, ErrEncryptionFailed):
		// The owner lost its key (suspended, revoked, expired) after the
		// URL was issued: a refusal, like the issuer's lost access.
		status, msg = http.StatusForbidden, "the URL's owner cannot receive objects (any more)"
	case errors.Is(err, ErrClosed):
		status, msg = http.StatusServiceUnavailable, "unavailable"
	}
	// Refusals are logged at debug level: anyone can send them.
	level := slog.LevelDebug
	if status == http.StatusInternalServerError {
		level = slog.LevelError
	}
	slog.Log(context.Background(), level, "storage: presigned request refused", "status", status, "err", err)
	http.Error(w, msg, status)
}
