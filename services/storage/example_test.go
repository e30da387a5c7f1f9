package storage_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/nhi"
	"github.com/creto-systems/creto/services/storage"
)

// A sandbox agent checkpoints its state, a supervisor it delegated to reads
// it back, a stranger is refused, and a presigned URL serves the object
// over HTTP.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "storage-example")
	defer os.RemoveAll(dir)

	// The node: one store, one sealer, identity, then storage beside it.
	store, err := kv.Open(filepath.Join(dir, "kv"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	sealer, err := nhi.CreateFileSealer(filepath.Join(dir, "node.key"))
	if err != nil {
		log.Fatal(err)
	}
	ids, err := nhi.New(ctx, store, sealer, nhi.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer ids.Close()
	svc, err := storage.Open(ctx, dir, store, ids, sealer, storage.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()
	sealer.Close() // both services have what they need from it

	for _, id := range []string{"sandbox-7", "supervisor", "stranger"} {
		if _, err := ids.Register(ctx, nhi.AgentIdentity{ID: id, Type: nhi.AgentTypeAutonomous, OwnerID: "acme"}); err != nil {
			log.Fatal(err)
		}
	}

	// Store a checkpoint as a stream: encrypted under a fresh key wrapped
	// to sandbox-7's X-Wing key.
	owner := storage.Caller{Agent: "sandbox-7"}
	md, err := svc.Store(ctx, owner, storage.StoreRequest{
		Bucket: "checkpoints", Key: "run-1/step-3", Classification: storage.SandboxState,
		ContentType: "application/json",
	}, strings.NewReader(`{"step":3,"cursor":"page-9"}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored", md.Ref.Bucket+"/"+md.Ref.Key, md.SizeBytes, "bytes,", md.Classification)

	// The supervisor reads it through a delegation granting storage:read.
	d, err := ids.CreateDelegation(ctx, "sandbox-7", "supervisor", []string{storage.PermRead}, time.Time{}, nil)
	if err != nil {
		log.Fatal(err)
	}
	supervisor := storage.Caller{Agent: "supervisor", Delegation: d.ID().String()}
	r, err := svc.RetrieveStream(ctx, supervisor, md.Ref)
	if err != nil {
		log.Fatal(err)
	}
	data, err := io.ReadAll(r) // the content hash is checked before io.EOF
	r.Close()
	fmt.Println("supervisor reads:", string(data), err)

	_, err = svc.Retrieve(ctx, storage.Caller{Agent: "stranger"}, md.Ref)
	fmt.Println("stranger:", errors.Is(err, storage.ErrAccessDenied))
	err = svc.Delete(ctx, supervisor, md.Ref)
	fmt.Println("supervisor deletes:", errors.Is(err, storage.ErrAccessDenied))

	// A presigned GET URL, served by the handler the node mounts.
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	u, err := svc.Presign(ctx, owner, storage.PresignRequest{Op: storage.PresignGet, Ref: md.Ref})
	if err != nil {
		log.Fatal(err)
	}
	resp, err := http.Get(srv.URL + u.URL)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println("presigned GET:", resp.StatusCode, string(body))
	// Output:
	// stored checkpoints/run-1/step-3 28 bytes, sandbox_state
	// supervisor reads: {"step":3,"cursor":"page-9"} <nil>
	// stranger: true
	// supervisor deletes: true
	// presigned GET: 200 {"step":3,"cursor":"page-9"}
}
