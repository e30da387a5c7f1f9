package hosts_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/hosts"
	"github.com/creto-systems/creto/services/storage"
)

// BenchmarkStorageHost is the cost creto:storage/v1 adds to a check, in
// one run: the engine's cheapest guest (continue.wasm, no host call) as
// the floor; the storage_ops guest reading a 1 KiB object with get, then
// storing a 1 KiB object with put, once per check; each followed by the
// in-process call the host function makes (RetrieveStream read to the
// end; Store). Reads run first: every put adds a version.
//
// go test -run '^$' -bench StorageHost -benchmem ./hosts/
func BenchmarkStorageHost(b *testing.B) {
	ctx := context.Background()
	n := openStorage(b, storage.Config{})
	n.agent(b, hookAgent)
	owner := storage.Caller{Agent: hookAgent}
	data := bytes.Repeat([]byte("d"), 1<<10)
	readRef := storage.StorageRef{Bucket: "default", Key: "read-me"}
	if _, err := n.objects.Store(ctx, owner, storage.StoreRequest{Bucket: readRef.Bucket, Key: readRef.Key, Classification: storage.AgentData},
		bytes.NewReader(data)); err != nil {
		b.Fatal(err)
	}
	// put stores the request's context: a 1 KiB JSON object.
	putContext := append(append([]byte(`{"d":"`), bytes.Repeat([]byte("d"), 1<<10-8)...), `"}`...)
	// guest benchmarks a check by a guest, which must answer want (its deny
	// reason, or "" for no decision).
	guest := func(name, path, op, key, want string) {
		b.Run(name, func(b *testing.B) {
			e := engine.New(engine.WithHostModules(hosts.Storage{Objects: n.objects}))
			defer e.Close()
			if _, err := e.CreatePolicy(ctx, "all", `permit (principal, action, resource);`); err != nil {
				b.Fatal(err)
			}
			module, err := os.ReadFile(path)
			if err == nil {
				module, err = withManifest(module, storageManifest)
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.RegisterExtension(ctx, module, engine.ExtensionConfig{Grants: []string{"storage"}}); err != nil {
				b.Fatal(err)
			}
			req := engine.Request{Principal: engine.Principal{Type: "Agent", ID: "default"}, Action: engine.EntityRef{ID: op},
				Resource: engine.EntityRef{Type: "Object", ID: key}, Context: putContext}
			if d, err := e.Check(ctx, req); err != nil || d.Reason != want {
				b.Fatalf("the guest answered %q (%v), want %q", d.Reason, err, want)
			}
			for b.Loop() {
				if _, err := e.Check(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	ops := filepath.Join("testdata", "storage_ops.wasm")
	guest("guest-without-host-call", filepath.Join("..", "engine", "testdata", "ext", "continue.wasm"), "get", readRef.Key, "")
	guest("guest-get-1KiB", ops, "get", readRef.Key, string(data))
	b.Run("get-in-process", func(b *testing.B) {
		for b.Loop() {
			r, err := n.objects.RetrieveStream(ctx, owner, readRef)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.WriteTo(io.Discard); err != nil {
				b.Fatal(err)
			}
			r.Close()
		}
	})
	guest("guest-put-1KiB", ops, "put", "put-me", "0")
	b.Run("put-in-process", func(b *testing.B) {
		for b.Loop() {
			if _, err := n.objects.Store(ctx, owner, storage.StoreRequest{Bucket: "default", Key: "put-me", Classification: storage.AgentData,
				Size: int64(len(putContext))}, bytes.NewReader(putContext)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
