package storage

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/creto-systems/creto/services/nhi"
)

// Only the owner, or an agent acting through a verified delegation from
// the owner that grants the permission, gets in; everything else is
// *AccessDeniedError and changes nothing.
func TestAccessThroughDelegation(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice", "bob", "carol", "mallory")
	ctx := context.Background()
	md := e.put(alice, StoreRequest{Bucket: "b", Key: "doc"}, []byte("alice's data"))
	ref := StorageRef{Bucket: "b", Key: "doc"}

	reader := e.delegate("alice", "bob", PermRead)
	writer := e.delegate("alice", "carol", PermWrite, PermDelete)
	foreign := e.delegate("mallory", "bob", PermRead, PermWrite, PermDelete)
	stolen := Caller{Agent: "mallory", Delegation: reader.Delegation} // bob's delegation, presented by mallory

	if got := e.get(reader, ref); string(got) != "alice's data" {
		t.Fatalf("delegated read: %q", got)
	}
	if _, err := e.s.GetMetadata(ctx, reader, ref); err != nil {
		t.Fatalf("delegated metadata read: %v", err)
	}
	if l, err := e.s.List(ctx, reader, ListRequest{Owner: "alice"}); err != nil || len(l.Objects) != 1 {
		t.Fatalf("delegated list: %v %v", l, err)
	}
	v2, err := e.s.Store(ctx, writer, StoreRequest{Bucket: "b", Key: "doc", Classification: AgentData}, bytes.NewReader([]byte("v2")))
	if err != nil || v2.Owner != "alice" {
		t.Fatalf("delegated write: %v (owner %q)", err, v2.Owner)
	}

	denied := []struct {
		name string
		do   func() error
	}{
		{"stranger reads", func() error { _, err := e.s.Retrieve(ctx, Caller{Agent: "mallory"}, ref); return err }},
		{"reader writes", func() error {
			_, err := e.s.Store(ctx, reader, StoreRequest{Bucket: "b", Key: "doc", Classification: AgentData}, bytes.NewReader(nil))
			return err
		}},
		{"reader deletes", func() error { return e.s.Delete(ctx, reader, ref) }},
		{"reader updates", func() error {
			_, err := e.s.UpdateMetadata(ctx, reader, UpdateMetadataRequest{Ref: ref, Metadata: map[string]string{"x": "y"}})
			return err
		}},
		{"writer reads", func() error { _, err := e.s.Retrieve(ctx, writer, ref); return err }},
		{"delegation from another root", func() error { _, err := e.s.Retrieve(ctx, foreign, ref); return err }},
		{"someone else's delegation", func() error { _, err := e.s.Retrieve(ctx, stolen, ref); return err }},
		{"malformed delegation id", func() error {
			_, err := e.s.Retrieve(ctx, Caller{Agent: "bob", Delegation: "zz"}, ref)
			return err
		}},
		{"stranger lists", func() error {
			_, err := e.s.List(ctx, Caller{Agent: "mallory"}, ListRequest{Owner: "alice"})
			return err
		}},
		{"stranger reads usage", func() error { _, err := e.s.Usage(ctx, Caller{Agent: "mallory"}, "alice"); return err }},
		{"stranger creates for alice", func() error {
			_, err := e.s.Store(ctx, Caller{Agent: "mallory"}, StoreRequest{Key: "new", Owner: "alice", Classification: AgentData}, bytes.NewReader(nil))
			return err
		}},
	}
	for _, d := range denied {
		err := d.do()
		wantErr(t, d.name, err, ErrAccessDenied)
		var ad *AccessDeniedError
		if !errors.As(err, &ad) || ad.Agent == "" || ad.Permission == "" {
			t.Fatalf("%s: not an *AccessDeniedError: %v", d.name, err)
		}
	}
	e.unchanged("after denied calls", 2, 0)

	// Revoking the delegation revokes the access at once.
	id, _ := nhi.ParseDelegationID(reader.Delegation)
	if err := e.ids.RevokeDelegation(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.Retrieve(ctx, reader, md.Ref)
	wantErr(t, "revoked delegation", err, ErrAccessDenied, nhi.ErrDelegationRevoked)
}

// Two agents racing to create the same key: one owns it, the other's
// store fails and leaves nothing behind.
func TestConcurrentCreateOneOwner(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice", "bob")
	ctx := context.Background()
	errs := make(chan error, 2)
	for _, who := range []string{"alice", "bob"} {
		go func() {
			_, err := e.s.Store(ctx, Caller{Agent: who}, StoreRequest{Key: "contested", Classification: AgentData}, bytes.NewReader(payload(3*minChunkSize, 9)))
			errs <- err
		}()
	}
	ok := 0
	for range 2 {
		err := <-errs
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrAccessDenied):
			t.Fatalf("loser failed with %v", err)
		}
	}
	vs, err := e.s.versions(ctx, e.s.cfg.DefaultBucket, "contested")
	if err != nil {
		t.Fatal(err)
	}
	owners := map[string]bool{}
	for _, v := range vs {
		owners[v.Owner] = true
	}
	if ok == 0 || len(owners) != 1 || len(vs) != ok || len(e.files()) != ok {
		t.Fatalf("%d stores succeeded, versions %d by owners %v, %d files", ok, len(vs), owners, len(e.files()))
	}
}
