package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	storagev1 "github.com/creto-systems/creto/api/creto/storage/v1"
	"github.com/creto-systems/creto/services/storage"
)

// BenchmarkStorageOverTheWire measures what serving storage costs: each
// operation in process (the anchor: storage.Service, as the adapter calls
// it) and over gRPC with TLS on loopback as an agent (token), in one run;
// and a 4 KiB read through a presigned URL over HTTPS.
//
//   - 4 KiB store (a new object each time: one HPKE wrap, one fsync'd
//     commit) and retrieve (of a pinned version: one unwrap in NHI);
//   - 16 MiB through Store/RetrieveStream in process and
//     StoreStream/RetrieveStream over gRPC, 1 MiB messages; and, as the
//     wire's own floor, the same messages streamed by a bare gRPC server
//     with the node's TLS settings that neither stores nor reads anything.
//
// go test -run '^$' -bench StorageOverTheWire -benchmem ./node/
func BenchmarkStorageOverTheWire(b *testing.B) {
	tn := startNode(b, "", nil)
	c := tn.storageClient("bot")
	caller := storage.Caller{Agent: "bot"}
	small := bytes.Repeat([]byte("s"), 4<<10)
	n := 0
	key := func() string { n++; return "k" + strconv.Itoa(n) }

	b.Run("store-4KiB/in-process", func(b *testing.B) {
		for b.Loop() {
			if _, err := tn.storage.Store(bg, caller, storage.StoreRequest{Key: key(), Classification: storage.AgentData}, bytes.NewReader(small)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("store-4KiB/grpc-agent", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Store(bg, &storagev1.StoreRequest{Reference: objectRef("", key()), Data: small, Classification: agentData}); err != nil {
				b.Fatal(err)
			}
		}
	})

	stored := storeObject(b, c, objectRef("default", "read-me"), string(small))
	ref := stored.GetReference()
	pinned := storage.StorageRef{Bucket: ref.GetBucket(), Key: ref.GetKey(), VersionID: ref.GetVersionId()}
	b.Run("retrieve-4KiB/in-process", func(b *testing.B) {
		for b.Loop() {
			if _, err := tn.storage.Retrieve(bg, caller, pinned); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("retrieve-4KiB/grpc-agent", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Retrieve(bg, &storagev1.RetrieveRequest{Reference: ref}); err != nil {
				b.Fatal(err)
			}
		}
	})
	u, err := c.GeneratePresignedUrl(bg, &storagev1.GeneratePresignedUrlRequest{Reference: ref, Operation: presignGet})
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS(b, tn.tlsDir(), "", "")}}
	b.Run("retrieve-4KiB/presigned-https", func(b *testing.B) {
		for b.Loop() {
			resp, err := client.Get(u.GetUrl())
			if err != nil {
				b.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || len(body) != len(small) {
				b.Fatalf("%d bytes, %v", len(body), err)
			}
		}
	})

	const size, chunk = 16 << 20, 1 << 20
	big := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	// drop deletes a stored 16 MiB object, untimed, so that repeated runs
	// neither fill the owner's quota nor the disk.
	drop := func(b *testing.B, ref storage.StorageRef) {
		b.StopTimer()
		if err := tn.storage.Delete(bg, caller, ref); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.Run("stream-16MiB/store/in-process", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			md, err := tn.storage.Store(bg, caller, storage.StoreRequest{Key: key(), Classification: storage.Artifact}, bytes.NewReader(big))
			if err != nil {
				b.Fatal(err)
			}
			drop(b, md.Ref)
		}
	})
	b.Run("stream-16MiB/store/grpc-agent", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			s, err := c.StoreStream(bg)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Send(&storagev1.StoreStreamRequest{Part: &storagev1.StoreStreamRequest_Header{Header: &storagev1.StoreStreamHeader{
				Reference: objectRef("", key()), Classification: storagev1.Classification_CLASSIFICATION_ARTIFACT, SizeBytes: size}}}); err != nil {
				b.Fatal(err)
			}
			for i := 0; i < size; i += chunk {
				if err := s.Send(&storagev1.StoreStreamRequest{Part: &storagev1.StoreStreamRequest_Chunk{Chunk: big[i : i+chunk]}}); err != nil {
					break // the server ended the call; CloseAndRecv has its status
				}
			}
			resp, err := s.CloseAndRecv()
			if err != nil {
				b.Fatal(err)
			}
			r := resp.GetReference()
			drop(b, storage.StorageRef{Bucket: r.GetBucket(), Key: r.GetKey(), VersionID: r.GetVersionId()})
		}
	})
	md, err := tn.storage.Store(bg, caller, storage.StoreRequest{Key: "read-me-big", Classification: storage.Artifact}, bytes.NewReader(big))
	if err != nil {
		b.Fatal(err)
	}
	bigRef, last := md.Ref, refProtoOf(md.Ref)
	b.Run("stream-16MiB/retrieve/in-process", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			r, err := tn.storage.RetrieveStream(bg, caller, bigRef)
			if err != nil {
				b.Fatal(err)
			}
			got, err := r.WriteTo(io.Discard)
			r.Close()
			if err != nil || got != size {
				b.Fatal(got, err)
			}
		}
	})
	raw := rawStreams(b, tn, big, chunk)
	b.Run("stream-16MiB/store/bare-grpc", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			s, err := raw.NewStream(bg, &grpc.StreamDesc{ClientStreams: true}, "/bench.Raw/Push")
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < size; i += chunk {
				if err := s.SendMsg(&storagev1.StoreStreamRequest{Part: &storagev1.StoreStreamRequest_Chunk{Chunk: big[i : i+chunk]}}); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.CloseSend(); err != nil {
				b.Fatal(err)
			}
			if err := s.RecvMsg(&storagev1.StoreStreamResponse{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stream-16MiB/retrieve/bare-grpc", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			s, err := raw.NewStream(bg, &grpc.StreamDesc{ServerStreams: true}, "/bench.Raw/Pull")
			if err != nil {
				b.Fatal(err)
			}
			if err := s.SendMsg(&storagev1.RetrieveStreamRequest{}); err != nil {
				b.Fatal(err)
			}
			if err := s.CloseSend(); err != nil {
				b.Fatal(err)
			}
			got := 0
			for {
				var msg storagev1.RetrieveStreamResponse
				err := s.RecvMsg(&msg)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				got += len(msg.GetChunk())
			}
			if got != size {
				b.Fatal(got)
			}
		}
	})
	b.Run("stream-16MiB/retrieve/grpc-agent", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			s, err := c.RetrieveStream(bg, &storagev1.RetrieveStreamRequest{Reference: last})
			if err != nil {
				b.Fatal(err)
			}
			got := 0
			for {
				msg, err := s.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				got += len(msg.GetChunk())
			}
			if got != size {
				b.Fatal(fmt.Sprint(got))
			}
		}
	})
}

// rawStreams serves, with the node's TLS settings on a loopback port of
// its own, a bare gRPC service with the storage streams' message types and
// nothing behind them: Push reads a client stream and discards it, Pull
// sends data in chunk-sized messages. It returns a client connection.
func rawStreams(b *testing.B, tn *testNode, data []byte, chunk int) *grpc.ClientConn {
	b.Helper()
	desc := grpc.ServiceDesc{ServiceName: "bench.Raw", HandlerType: (*any)(nil), Streams: []grpc.StreamDesc{
		{StreamName: "Push", ClientStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
			for {
				var m storagev1.StoreStreamRequest
				if err := ss.RecvMsg(&m); errors.Is(err, io.EOF) {
					return ss.SendMsg(&storagev1.StoreStreamResponse{})
				} else if err != nil {
					return err
				}
			}
		}},
		{StreamName: "Pull", ServerStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
			if err := ss.RecvMsg(&storagev1.RetrieveStreamRequest{}); err != nil {
				return err
			}
			for i := 0; i < len(data); i += chunk {
				buf := make([]byte, chunk) // as the adapter does: a fresh buffer per message
				copy(buf, data[i:])
				if err := ss.SendMsg(&storagev1.RetrieveStreamResponse{Chunk: buf}); err != nil {
					return err
				}
			}
			return nil
		}},
	}}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(tn.tls)), grpc.MaxRecvMsgSize(tn.cfg.Server.MaxRecvMsgBytes))
	srv.RegisterService(&desc, struct{}{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(lis)
	b.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(b, tn.tlsDir(), "", ""))))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return conn
}

func refProtoOf(r storage.StorageRef) *storagev1.StorageRef {
	return &storagev1.StorageRef{Bucket: r.Bucket, Key: r.Key, VersionId: r.VersionID}
}
