package hosts_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/hosts"
	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/nhi"
	"github.com/creto-systems/creto/services/storage"
	"github.com/creto-systems/creto/services/vault"
)

// storageNode is object storage as a node composes it: one store shared
// by a real NHI service and the storage service.
type storageNode struct {
	ids     *nhi.Service
	objects *storage.Service
}

func openStorage(t testing.TB, cfg storage.Config) *storageNode {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := kv.Open(filepath.Join(dir, "kv"))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := nhi.CreateFileSealer(filepath.Join(dir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	defer sealer.Close()
	ids, err := nhi.New(ctx, store, sealer, nhi.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.SweepInterval = -1
	objects, err := storage.Open(ctx, dir, store, ids, sealer, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { objects.Close(); ids.Close(); store.Close() })
	return &storageNode{ids: ids, objects: objects}
}

// agent registers an NHI agent, or the identity of an extension.
func (n *storageNode) agent(t testing.TB, id string) {
	t.Helper()
	var err error
	if name, ok := strings.CutPrefix(id, nhi.ExtensionIDPrefix); ok {
		_, err = n.ids.RegisterExtension(context.Background(), name)
	} else {
		_, err = n.ids.Register(context.Background(), nhi.AgentIdentity{ID: id, Type: nhi.AgentTypeService, OwnerID: "ops"})
	}
	if err != nil {
		t.Fatal(err)
	}
}

const storageManifest = `{"name": "hook", "capabilities": ["storage"]}`

// hookAgent is the storage identity of the test guest, registered as
// extension "hook".
var hookAgent = storage.ExtensionAgent("hook")

// storageEngine permits everything and runs the storage_ops guest over
// objects.
func storageEngine(t *testing.T, objects hosts.ObjectStore) *engine.Engine {
	t.Helper()
	e := engine.New(engine.WithHostModules(hosts.Storage{Objects: objects}))
	t.Cleanup(func() { e.Close() })
	ctx := context.Background()
	if _, err := e.CreatePolicy(ctx, "all", `permit (principal, action, resource);`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RegisterExtension(ctx, vaultGuest(t, "storage_ops.wasm", storageManifest),
		engine.ExtensionConfig{Grants: []string{abi.CapabilityStorage}}); err != nil {
		t.Fatal(err)
	}
	return e
}

// storageSays has the guest make one call — op on bucket ("-": none) and
// key, putting data — and returns what it reported.
func storageSays(t *testing.T, e *engine.Engine, op, bucket, key, data string) string {
	t.Helper()
	if data == "" {
		data = "{}"
	}
	d, err := e.Check(context.Background(), engine.Request{
		Principal: engine.Principal{Type: "Agent", ID: bucket}, Action: engine.EntityRef{ID: op},
		Resource: engine.EntityRef{Type: "Object", ID: key}, Context: []byte(data),
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != engine.Deny || d.PolicyID != "storage" {
		t.Fatalf("%s %s/%s: decision %v by %q (%s), want the guest's deny", op, bucket, key, d.Kind, d.PolicyID, d.Reason)
	}
	return d.Reason
}

func code(c int64) string { return strconv.FormatInt(c, 10) }

func TestStorageHostRoundTripsTheExtensionsObjects(t *testing.T) {
	ctx := context.Background()
	n := openStorage(t, storage.Config{})
	n.agent(t, hookAgent)
	e := storageEngine(t, n.objects)

	if got := storageSays(t, e, "get", "default", "notes/1", ""); got != code(abi.ENotFound) {
		t.Fatalf("get before any put: %q", got)
	}
	const note = `{"seen":["planner","payments-bot"]}`
	if got := storageSays(t, e, "put", "default", "notes/1", note); got != "0" {
		t.Fatalf("put: %q", got)
	}
	if got := storageSays(t, e, "get", "default", "notes/1", ""); got != note {
		t.Fatalf("get: %q, want %q", got, note)
	}
	// Too small a buffer: the full length, nothing written.
	if got := storageSays(t, e, "get-small", "default", "notes/1", ""); got != strconv.Itoa(len(note)) {
		t.Fatalf("get into 4 bytes: %q", got)
	}

	// The object is the extension identity's, encrypted like any agent's,
	// in the default bucket.
	owner := storage.Caller{Agent: hookAgent}
	md, err := n.objects.GetMetadata(ctx, owner, storage.StorageRef{Bucket: "default", Key: "notes/1"})
	if err != nil {
		t.Fatal(err)
	}
	if md.Owner != hookAgent || md.Classification != storage.AgentData || md.SizeBytes != int64(len(note)) {
		t.Fatalf("stored as %+v", md)
	}
	// stat reports the same record.
	rec, err := hex.DecodeString(storageSays(t, e, "stat", "default", "notes/1", ""))
	if err != nil || len(rec) != 32 {
		t.Fatalf("stat record %x: %v", rec, err)
	}
	le := binary.LittleEndian
	if size, created, expires, class, flags := int64(le.Uint64(rec)), int64(le.Uint64(rec[8:])), int64(le.Uint64(rec[16:])),
		le.Uint32(rec[24:]), le.Uint32(rec[28:]); size != md.SizeBytes || created != md.CreatedAt.UnixNano() ||
		expires != md.ExpiresAt.UnixNano() || class != uint32(storage.AgentData) || flags != 0 {
		t.Fatalf("stat: size %d created %d expires %d class %d flags %d; metadata %+v", size, created, expires, class, flags, md)
	}
	if md.ExpiresAt.IsZero() {
		t.Fatal("put with ttl 0 takes the default lifetime; the object never expires")
	}

	// Another bucket is another object.
	if got := storageSays(t, e, "put", "scratch", "notes/1", `{"v":2}`); got != "0" {
		t.Fatalf("put to another bucket: %q", got)
	}
	if got := storageSays(t, e, "get", "scratch", "notes/1", ""); got != `{"v":2}` {
		t.Fatalf("get from another bucket: %q", got)
	}
	if got := storageSays(t, e, "get", "default", "notes/1", ""); got != note {
		t.Fatalf("the default bucket's object changed: %q", got)
	}

	// A second put is a new version; delete removes every version.
	if got := storageSays(t, e, "put", "default", "notes/1", `{"seen":[]}`); got != "0" {
		t.Fatalf("second put: %q", got)
	}
	if got := storageSays(t, e, "get", "default", "notes/1", ""); got != `{"seen":[]}` {
		t.Fatalf("get after the second put: %q", got)
	}
	if got := storageSays(t, e, "delete", "default", "notes/1", ""); got != "0" {
		t.Fatalf("delete: %q", got)
	}
	for _, op := range []string{"get", "stat", "delete"} {
		if got := storageSays(t, e, op, "default", "notes/1", ""); got != code(abi.ENotFound) {
			t.Fatalf("%s after delete: %q", op, got)
		}
	}
	list, err := n.objects.List(ctx, owner, storage.ListRequest{Bucket: "default", AllVersions: true})
	if err != nil || len(list.Objects) != 0 {
		t.Fatalf("versions left after delete: %v %v", list.Objects, err)
	}
}

func TestStorageHostDeniesAnotherIdentitysObjects(t *testing.T) {
	ctx := context.Background()
	n := openStorage(t, storage.Config{})
	n.agent(t, hookAgent)
	n.agent(t, "alice")
	e := storageEngine(t, n.objects)
	alice := storage.Caller{Agent: "alice"}
	ref := storage.StorageRef{Bucket: "default", Key: "alice/plan"}
	md, err := n.objects.Store(ctx, alice, storage.StoreRequest{Bucket: ref.Bucket, Key: ref.Key, Classification: storage.AgentData},
		strings.NewReader("alice's plan"))
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"get", "get-small", "stat", "delete"} {
		if got := storageSays(t, e, op, "default", ref.Key, ""); got != code(abi.EDenied) {
			t.Errorf("%s of alice's object: %q", op, got)
		}
	}
	if got := storageSays(t, e, "put", "default", ref.Key, `{"overwrite":true}`); got != code(abi.EDenied) {
		t.Errorf("put over alice's object: %q", got)
	}
	// Nothing changed: one version, alice's bytes.
	obj, err := n.objects.Retrieve(ctx, alice, ref)
	if err != nil || string(obj.Data) != "alice's plan" || obj.Metadata.Ref.VersionID != md.Ref.VersionID {
		t.Fatalf("alice's object after the guest's attempts: %v %v", obj, err)
	}
}

func TestStorageHostRefusals(t *testing.T) {
	ctx := context.Background()
	n := openStorage(t, storage.Config{DefaultQuotaBytes: 64})
	n.agent(t, hookAgent)
	e := storageEngine(t, n.objects)
	owner := storage.Caller{Agent: hookAgent}

	for _, c := range []struct{ name, op, bucket, key, data, want string }{
		{"empty key", "put", "default", "", "", code(abi.EInvalid)},
		{"no bucket", "put", "-", "k", "", code(abi.EInvalid)},
		{"no bucket", "get", "-", "k", "", code(abi.EInvalid)},
		{"key over 1024 bytes", "get", "default", strings.Repeat("k", 1025), "", code(abi.EInvalid)},
		{"bucket over 63 bytes", "stat", strings.Repeat("b", 64), "k", "", code(abi.EInvalid)},
		{"bucket the service refuses", "put", "Not_A_Bucket", "k", "", code(abi.EInvalid)},
		{"over the quota", "put", "default", "big", `{"pad":"` + strings.Repeat("x", 64) + `"}`, code(abi.EDenied)},
	} {
		if got := storageSays(t, e, c.op, c.bucket, c.key, c.data); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	if list, err := n.objects.List(ctx, owner, storage.ListRequest{}); err != nil || len(list.Objects) != 0 {
		t.Fatalf("refused puts stored %v (%v)", list.Objects, err)
	}

	// A compliance object cannot be deleted, by the extension either.
	if _, err := n.objects.Store(ctx, owner, storage.StoreRequest{Key: "evidence", Classification: storage.Compliance},
		strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	if got := storageSays(t, e, "delete", "default", "evidence", ""); got != code(abi.EDenied) {
		t.Fatalf("delete of a retained object: %q", got)
	}
	rec, err := hex.DecodeString(storageSays(t, e, "stat", "default", "evidence", ""))
	if err != nil || binary.LittleEndian.Uint32(rec[28:]) != 1 || binary.LittleEndian.Uint64(rec[16:]) != 0 {
		t.Fatalf("stat of a retained object: %x %v", rec, err)
	}
}

func TestStorageHostBoundsObjectSizes(t *testing.T) {
	ctx := context.Background()
	n := openStorage(t, storage.Config{})
	n.agent(t, hookAgent)
	e := storageEngine(t, n.objects)
	// An object over the module's limit, stored through the API, is not
	// copied into guest memory.
	big := bytes.Repeat([]byte("x"), hosts.MaxStorageObjectBytes+1)
	if _, err := n.objects.Store(ctx, storage.Caller{Agent: hookAgent}, storage.StoreRequest{Key: "big", Classification: storage.Artifact},
		bytes.NewReader(big)); err != nil {
		t.Fatal(err)
	}
	if got := storageSays(t, e, "get", "default", "big", ""); got != code(abi.EInvalid) {
		t.Fatalf("get of %d bytes: %q", len(big), got)
	}
	// stat still describes it.
	rec, err := hex.DecodeString(storageSays(t, e, "stat", "default", "big", ""))
	if err != nil || binary.LittleEndian.Uint64(rec) != uint64(len(big)) {
		t.Fatalf("stat of the big object: %x %v", rec, err)
	}
}

func TestStorageHostNeedsAnActiveIdentity(t *testing.T) {
	ctx := context.Background()
	n := openStorage(t, storage.Config{})
	e := storageEngine(t, n.objects)
	// Objects are encrypted to the owner's NHI key: an extension identity
	// NHI does not know cannot store.
	if got := storageSays(t, e, "put", "default", "k", ""); got != code(abi.EDenied) {
		t.Fatalf("put by an unregistered identity: %q", got)
	}
	n.agent(t, hookAgent)
	if got := storageSays(t, e, "put", "default", "k", ""); got != "0" {
		t.Fatalf("put once registered: %q", got)
	}
	// Suspending the identity stops the extension's storage at once.
	suspended := nhi.StatusSuspended
	if _, err := n.ids.Update(ctx, hookAgent, nhi.AgentUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	if got := storageSays(t, e, "put", "default", "k2", ""); got != code(abi.EDenied) {
		t.Fatalf("put while suspended: %q", got)
	}
	if got := storageSays(t, e, "get", "default", "k", ""); got != code(abi.EUnavailable) {
		t.Fatalf("get while suspended: %q", got)
	}
}

func TestStorageHostWithoutAServiceIsUnavailable(t *testing.T) {
	e := storageEngine(t, nil)
	for _, op := range []string{"put", "get", "stat", "delete"} {
		if got := storageSays(t, e, op, "default", "k", ""); got != code(abi.EUnavailable) {
			t.Errorf("%s: %q", op, got)
		}
	}
}

func TestStorageCapabilityMustBeGranted(t *testing.T) {
	ctx := context.Background()
	e := engine.New(engine.WithHostModules(hosts.Storage{}))
	defer e.Close()
	_, err := e.RegisterExtension(ctx, vaultGuest(t, "storage_ops.wasm", storageManifest), engine.ExtensionConfig{Grants: []string{"state", "vault"}})
	if !errors.Is(err, engine.ErrImportNotGranted) {
		t.Fatalf("requested, not granted: %v", err)
	}
	_, err = e.RegisterExtension(ctx, vaultGuest(t, "storage_ops.wasm", `{"name": "hook"}`), engine.ExtensionConfig{Grants: []string{"storage"}})
	if !errors.Is(err, engine.ErrImportNotGranted) {
		t.Fatalf("granted, not requested: %v", err)
	}
	if n := len(e.ListExtensions()); n != 0 {
		t.Fatalf("%d extensions registered after refusals", n)
	}
}

// An extension has one identity in the vault and in storage.
func TestExtensionIdentityIsTheVaults(t *testing.T) {
	if storage.ExtensionAgent("hook") != vault.ExtensionAgent("hook") || storage.ExtensionAgentPrefix != vault.ExtensionAgentPrefix {
		t.Fatalf("storage names extensions %q, the vault %q", storage.ExtensionAgent("hook"), vault.ExtensionAgent("hook"))
	}
}
