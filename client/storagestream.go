package client

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	storagev1 "github.com/creto-systems/creto/api/creto/storage/v1"
)

// StoreStream stores a new version of an object read from r, in chunks of
// chunk_size_bytes: the client holds one chunk whatever the object's size
// (seed store_stream). req.Size, when known, lets the node refuse an
// object over its limit or the owner's quota before any chunk is sent.
// Each message must go within timeout_ms, not the whole object. Nothing is
// stored unless the whole of r was sent and the node acknowledged it; an
// error reading r ends the store with an ErrInvalidRequest whose cause is
// the reader's error. Never retried: r is consumed, and a retry after a
// lost answer would store a second version.
func (c *StorageClient) StoreStream(ctx context.Context, req StoreObjectRequest, r io.Reader) (ObjectMetadata, error) {
	const method = "StoreStream"
	if err := c.checkSize(method, req.Size); err != nil {
		return ObjectMetadata{}, err
	}
	header := &storagev1.StoreStreamHeader{Requester: agentRef(req.Requester), DelegationId: req.DelegationID, SizeBytes: req.Size}
	if err := fillStore(header, req); err != nil {
		return ObjectMetadata{}, err
	}
	release, err := c.acquireStream(ctx, method)
	if err != nil {
		return ObjectMetadata{}, err
	}
	defer release()
	resp, err := stream(ctx, c.svc, method, false, func(sctx context.Context) (*storagev1.StoreStreamResponse, error) {
		return c.upload(ctx, sctx, header, r)
	})
	if err != nil {
		return ObjectMetadata{}, err
	}
	return objectMetadataFrom(resp.GetMetadata()), nil
}

// upload sends the header, then r chunk by chunk, over one stream. caller
// is the caller's context, which says whose an ending is.
func (c *StorageClient) upload(caller, ctx context.Context, header *storagev1.StoreStreamHeader, r io.Reader) (*storagev1.StoreStreamResponse, error) {
	const method = "StoreStream"
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // an early return abandons the stream: nothing is stored
	w := newWatchdog(c.timeout, cancel)
	var st grpc.ClientStreamingClient[storagev1.StoreStreamRequest, storagev1.StoreStreamResponse]
	err := w.run(func() (err error) {
		if st, err = c.rpc.StoreStream(ctx); err == nil {
			err = st.Send(&storagev1.StoreStreamRequest{Part: &storagev1.StoreStreamRequest_Header{Header: header}})
		}
		return err
	})
	// One buffer for every chunk: Send has encoded the message when it
	// returns, and the client installs no stats handler that could read
	// it later.
	buf := make([]byte, c.chunk)
	chunk := &storagev1.StoreStreamRequest_Chunk{}
	msg := &storagev1.StoreStreamRequest{Part: chunk}
	var sent int64
	for err == nil {
		n, rerr := io.ReadFull(r, buf)
		eof := errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF)
		if rerr != nil && !eof {
			e := localError("storage", method, ErrInvalidRequest, "reading the object after %d bytes: %v", sent, rerr)
			e.cause = rerr
			return nil, e
		}
		if n > 0 {
			sent += int64(n)
			if err := c.overrun(sent, header.GetSizeBytes()); err != nil {
				return nil, err
			}
			chunk.Chunk = buf[:n]
			err = w.run(func() error { return st.Send(msg) })
		}
		if eof {
			break
		}
	}
	// Send reports io.EOF when the node ended the stream; CloseAndRecv
	// then returns its status.
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, w.or(caller, method, err)
	}
	if size := header.GetSizeBytes(); err == nil && size > 0 && sent < size {
		return nil, localError("storage", method, ErrInvalidRequest, "the reader ended after %d of the %d bytes announced", sent, size)
	}
	var resp *storagev1.StoreStreamResponse
	err = w.run(func() (err error) {
		resp, err = st.CloseAndRecv()
		return err
	})
	if err != nil {
		return nil, w.or(caller, method, err)
	}
	return resp, nil
}

// overrun refuses a stream that has passed max_object_size_bytes or the
// size it announced.
func (c *StorageClient) overrun(sent, size int64) error {
	if size > 0 && sent > size {
		return localError("storage", "StoreStream", ErrInvalidRequest, "the reader gave more than the %d bytes announced", size)
	}
	return c.checkSize("StoreStream", sent)
}

// RetrieveStream opens a version for reading in chunks (seed
// retrieve_stream): the client holds one chunk whatever the object's
// size. Opening it — up to the first message, which carries the metadata
// — is retried like any read; a stream that fails later is not. Close the
// reader when done. Each message must arrive within timeout_ms.
//
// Any error from Read means the object is not intact — a chunk that failed
// authentication, a content hash that does not match at the end, a broken
// connection: discard every byte read and act only on data whose Read
// ended with io.EOF.
func (c *StorageClient) RetrieveStream(ctx context.Context, req ObjectRequest) (*ObjectReader, error) {
	const method = "RetrieveStream"
	release, err := c.acquireStream(ctx, method)
	if err != nil {
		return nil, err
	}
	in := &storagev1.RetrieveStreamRequest{Reference: storageRefProto(req.Ref), Requester: agentRef(req.Requester), DelegationId: req.DelegationID}
	r, err := stream(ctx, c.svc, method, true, func(sctx context.Context) (*ObjectReader, error) {
		return c.open(ctx, sctx, in)
	})
	if err != nil {
		release()
		return nil, err
	}
	r.release = release
	return r, nil
}

// open starts a stream and reads its first message.
func (c *StorageClient) open(caller, ctx context.Context, in *storagev1.RetrieveStreamRequest) (*ObjectReader, error) {
	ctx, cancel := context.WithCancel(ctx)
	w := newWatchdog(c.timeout, cancel)
	var st grpc.ServerStreamingClient[storagev1.RetrieveStreamResponse]
	var first *storagev1.RetrieveStreamResponse
	err := w.run(func() (err error) {
		if st, err = c.rpc.RetrieveStream(ctx, in); err == nil {
			first, err = st.Recv()
		}
		return err
	})
	switch {
	case errors.Is(err, io.EOF):
		err = localError("storage", "RetrieveStream", ErrInternal, "the stream ended before the object's metadata")
	case err == nil && first.GetMetadata() == nil:
		err = localError("storage", "RetrieveStream", ErrInternal, "the stream's first message carries no metadata")
	}
	if err != nil {
		cancel()
		return nil, w.or(caller, "RetrieveStream", err)
	}
	return &ObjectReader{md: objectMetadataFrom(first.GetMetadata()), st: st, caller: caller, cancel: cancel, w: w, buf: first.GetChunk()}, nil
}

// ObjectReader reads one version from a RetrieveStream. It is not safe for
// concurrent use.
type ObjectReader struct {
	md      ObjectMetadata
	st      grpc.ServerStreamingClient[storagev1.RetrieveStreamResponse]
	caller  context.Context
	cancel  context.CancelFunc
	w       *watchdog
	release func()
	once    sync.Once

	buf  []byte // the rest of the current chunk
	read int64  // bytes handed out
	err  error  // sticky: io.EOF at a sound end
}

// Metadata returns the version's metadata, from the stream's first
// message.
func (r *ObjectReader) Metadata() ObjectMetadata { return r.md }

// Read reads the next bytes of the object. It returns io.EOF only once the
// node ended the stream with OK after exactly the object's size; any other
// error means the data read is not to be trusted (see RetrieveStream).
func (r *ObjectReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		var msg *storagev1.RetrieveStreamResponse
		err := r.w.run(func() (err error) {
			msg, err = r.st.Recv()
			return err
		})
		switch {
		case errors.Is(err, io.EOF) && r.read != r.md.Size:
			r.err = localError("storage", "RetrieveStream", ErrInternal, "the stream ended after %d of the object's %d bytes", r.read, r.md.Size)
		case errors.Is(err, io.EOF):
			r.err = io.EOF
		case err != nil:
			r.err = r.w.or(r.caller, "RetrieveStream", err)
		case msg.GetMetadata() != nil:
			r.err = localError("storage", "RetrieveStream", ErrInternal, "metadata in a message after the first")
		default:
			r.buf = msg.GetChunk()
		}
		if r.err != nil {
			r.Close()
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	if r.read += int64(n); r.read > r.md.Size {
		r.err, r.buf = localError("storage", "RetrieveStream", ErrInternal, "more bytes than the object's %d", r.md.Size), nil
		r.Close()
		return 0, r.err
	}
	return n, nil
}

// Close ends the stream and frees its slot; it always returns nil.
// Closing twice is harmless.
func (r *ObjectReader) Close() error {
	r.once.Do(func() {
		r.cancel()
		if r.release != nil {
			r.release()
		}
	})
	return nil
}

// watchdog ends a stream whose next message takes longer than timeout_ms
// to go or to come: a stalled node fails the call without bounding how
// long a large object may take.
type watchdog struct {
	d     time.Duration
	t     *time.Timer
	fired atomic.Bool
}

// newWatchdog returns a watchdog that calls cancel when it fires.
func newWatchdog(d time.Duration, cancel context.CancelFunc) *watchdog {
	w := &watchdog{d: d}
	w.t = time.AfterFunc(d, func() {
		w.fired.Store(true)
		cancel()
	})
	w.t.Stop()
	return w
}

// run runs f, one message's send or receive, with the watchdog armed.
func (w *watchdog) run(f func() error) error {
	w.t.Reset(w.d)
	err := f()
	w.t.Stop()
	return err
}

// or is the error a stream ended with: a timeout if the watchdog ended
// it, otherwise err as the node or the caller's context made it.
func (w *watchdog) or(caller context.Context, method string, err error) *Error {
	if w.fired.Load() && caller.Err() == nil {
		return &Error{Service: "storage", Method: method, Kind: ErrTimeout, Code: codes.DeadlineExceeded,
			Message: "no message within timeout_ms (" + w.d.String() + ")"}
	}
	return decode(caller, "storage", method, err)
}
