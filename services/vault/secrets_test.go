package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creto-systems/creto/internal/kv"
)

func TestSecretVersionsAndCAS(t *testing.T) {
	f := newFixture(t, Config{})
	r := ref("agents/a/db", "PASSWORD")
	meta := SecretMetadata{Type: TypePassword, Description: "orders DB", Labels: map[string]string{"env": "prod"}}
	out, err := f.svc.CreateSecret(bg, "a", CreateSecretRequest{Ref: r, Value: val("pw-1"), Metadata: meta})
	must(t, err)
	if out.Version != 1 || out.CreatedBy != "a" || out.Value.Len() != 0 || out.Metadata.Labels["env"] != "prod" {
		t.Fatalf("create returned %+v", out)
	}
	_, err = f.svc.CreateSecret(bg, "a", CreateSecretRequest{Ref: r, Value: val("x"), Metadata: meta})
	wantErr(t, err, ErrAlreadyExists)

	update := func(v string, cas *uint32) (*Secret, error) {
		return f.svc.UpdateSecret(bg, "a", UpdateSecretRequest{Ref: r, Value: val(v), CAS: cas})
	}
	out, err = update("pw-2", nil)
	must(t, err)
	if out.Version != 2 {
		t.Fatalf("version %d", out.Version)
	}
	out, err = update("pw-3", ptr[uint32](2))
	must(t, err)
	if out.Version != 3 {
		t.Fatalf("version %d", out.Version)
	}
	for _, cas := range []uint32{2, 0, 4} {
		_, err = update("lost", ptr(cas))
		var ce *CASMismatchError
		if !errors.As(err, &ce) || ce.Expected != cas || ce.Current != 3 || !errors.Is(err, ErrCASMismatch) {
			t.Fatalf("CAS %d: %v", cas, err)
		}
	}
	if v, _ := f.get("a", r); v != "pw-3" {
		t.Fatalf("current value %q after refused writes", v)
	}
	for v, want := range map[uint32]string{1: "pw-1", 2: "pw-2", 3: "pw-3"} {
		s, err := f.svc.GetSecret(bg, "a", GetSecretRequest{Ref: r, Version: v})
		must(t, err)
		if got := string(s.Value.Expose()); got != want || s.Version != v || s.CreatedBy != "a" || s.Metadata.Description != "orders DB" {
			t.Fatalf("version %d: %q %+v", v, got, s)
		}
		s.Destroy()
	}
	_, err = f.svc.GetSecret(bg, "a", GetSecretRequest{Ref: r, Version: 9})
	wantErr(t, err, ErrNotFound)

	// CAS 0 is create-only.
	r2 := ref("agents/a/db", "REPLICA")
	_, err = f.svc.UpdateSecret(bg, "a", UpdateSecretRequest{Ref: r2, Value: val("x"), CAS: ptr[uint32](0)})
	wantErr(t, err, ErrInvalidArgument) // creating needs metadata
	out, err = f.svc.UpdateSecret(bg, "a", UpdateSecretRequest{Ref: r2, Value: val("r1"), CAS: ptr[uint32](0), Metadata: &SecretMetadata{Type: TypePassword}})
	must(t, err)
	if out.Version != 1 {
		t.Fatalf("create-only wrote version %d", out.Version)
	}
	_, err = f.svc.UpdateSecret(bg, "a", UpdateSecretRequest{Ref: ref("agents/a/db", "NONE"), Value: val("x")})
	wantErr(t, err, ErrNotFound)

	// Metadata can be replaced, but not the type.
	_, err = f.svc.UpdateSecret(bg, "a", UpdateSecretRequest{Ref: r, Value: val("x"), Metadata: &SecretMetadata{Type: TypeToken}})
	wantErr(t, err, ErrInvalidArgument)
	_, err = f.svc.UpdateSecret(bg, "a", UpdateSecretRequest{Ref: r, Value: val("pw-4"), Metadata: &SecretMetadata{Type: TypePassword, Description: "new"}})
	must(t, err)
	info, err := f.svc.GetSecretMetadata(bg, "a", r)
	must(t, err)
	if info.Owner != "a" || info.CurrentVersion != 4 || info.Metadata.Description != "new" || info.Metadata.Labels != nil || len(info.Versions) != 4 {
		t.Fatalf("metadata %+v", info)
	}
	for i, v := range info.Versions {
		if v.Version != uint32(i+1) || v.CreatedBy != "a" || v.CreatedAt.IsZero() || (i > 0 && !v.CreatedAt.After(info.Versions[i-1].CreatedAt)) {
			t.Fatalf("version info %+v", v)
		}
	}
}

func TestConcurrentCASHasOneWinner(t *testing.T) {
	f := newFixture(t, Config{})
	r := ref("agents/a", "K")
	f.create("a", r, "v1")
	var wins, mismatches atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_, err := f.svc.UpdateSecret(bg, "a", UpdateSecretRequest{Ref: r, Value: val(fmt.Sprint("w", i)), CAS: ptr[uint32](1)})
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, ErrCASMismatch):
				mismatches.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || mismatches.Load() != 7 {
		t.Fatalf("%d wins, %d mismatches", wins.Load(), mismatches.Load())
	}
	info, _ := f.svc.GetSecretMetadata(bg, "a", r)
	if info.CurrentVersion != 2 {
		t.Fatalf("current version %d", info.CurrentVersion)
	}
}

func TestMaxVersionsDestroysOldest(t *testing.T) {
	f := newFixture(t, Config{MaxVersions: 3})
	r := ref("agents/a", "K")
	f.create("a", r, "v1")
	for i := 2; i <= 5; i++ {
		_, err := f.svc.UpdateSecret(bg, "a", UpdateSecretRequest{Ref: r, Value: val(fmt.Sprint("v", i))})
		must(t, err)
	}
	info, _ := f.svc.GetSecretMetadata(bg, "a", r)
	if len(info.Versions) != 3 || info.Versions[0].Version != 3 {
		t.Fatalf("kept %+v", info.Versions)
	}
	_, err := f.svc.GetSecret(bg, "a", GetSecretRequest{Ref: r, Version: 2})
	wantErr(t, err, ErrNotFound)
	if n := len(f.dump(string(refKey(prefixValue, r)))); n != 3 {
		t.Fatalf("%d value records in the store", n)
	}
}

func TestDeleteUndeleteDestroyPurge(t *testing.T) {
	f := newFixture(t, Config{})
	r := ref("agents/a", "K")
	f.create("a", r, "v1")
	_, err := f.svc.UpdateSecret(bg, "a", UpdateSecretRequest{Ref: r, Value: val("v2")})
	must(t, err)

	// Soft delete of the current version.
	resp, err := f.svc.DeleteSecret(bg, "a", DeleteSecretRequest{Ref: r})
	must(t, err)
	if !slices.Equal(resp.Versions, []uint32{2}) || resp.Purged {
		t.Fatalf("delete %+v", resp)
	}
	_, err = f.get("a", r)
	wantErr(t, err, ErrNotFound, ErrSecretDeleted)
	s, err := f.svc.GetSecret(bg, "a", GetSecretRequest{Ref: r, Version: 1})
	must(t, err)
	s.Destroy()
	info, _ := f.svc.GetSecretMetadata(bg, "a", r)
	if v := info.Versions[1]; v.DeletedAt.IsZero() || v.DeletedBy != "a" || v.Destroyed {
		t.Fatalf("deleted version %+v", v)
	}
	got, err := f.svc.UndeleteSecret(bg, "a", UndeleteSecretRequest{Ref: r, Versions: []uint32{2}})
	must(t, err)
	if v, err := f.get("a", r); err != nil || v != "v2" || !slices.Equal(got, []uint32{2}) {
		t.Fatalf("after undelete: %q %v %v", v, err, got)
	}

	// Destroy erases the value record for good.
	_, err = f.svc.DeleteSecret(bg, "a", DeleteSecretRequest{Ref: r, Versions: []uint32{1}, Destroy: true})
	must(t, err)
	_, err = f.svc.GetSecret(bg, "a", GetSecretRequest{Ref: r, Version: 1})
	wantErr(t, err, ErrNotFound, ErrSecretDestroyed)
	if _, ok := f.dump(string(valueKey(r, 1)))[string(valueKey(r, 1))]; ok {
		t.Fatal("the destroyed value is still stored")
	}
	_, err = f.svc.UndeleteSecret(bg, "a", UndeleteSecretRequest{Ref: r, Versions: []uint32{1}})
	wantErr(t, err, ErrSecretDestroyed)

	// Bad version lists change nothing.
	before := f.dump("vault/m/")
	for _, vs := range [][]uint32{{7}, {2, 2}} {
		_, err = f.svc.DeleteSecret(bg, "a", DeleteSecretRequest{Ref: r, Versions: vs})
		if err == nil {
			t.Fatalf("delete %v accepted", vs)
		}
	}
	if !maps.EqualFunc(before, f.dump("vault/m/"), bytes.Equal) {
		t.Fatal("a refused delete changed the metadata")
	}

	// Destroy with no versions purges the secret; the name can be reused.
	resp, err = f.svc.DeleteSecret(bg, "a", DeleteSecretRequest{Ref: r, Destroy: true})
	must(t, err)
	if !resp.Purged {
		t.Fatal("not purged")
	}
	_, err = f.svc.GetSecretMetadata(bg, "a", r)
	wantErr(t, err, ErrNotFound)
	if n := len(f.dump(string(refKey(prefixValue, r)))) + len(f.dump(string(metaKey(r)))); n != 0 {
		t.Fatalf("%d records left after purge", n)
	}
	if out := f.create("a", r, "again"); out.Version != 1 {
		t.Fatalf("re-created at version %d", out.Version)
	}
	// The access log survives the purge.
	if len(f.events("a", r)) < 8 {
		t.Fatal("the purge lost the access log")
	}
}

func TestSecretExpiry(t *testing.T) {
	f := newFixture(t, Config{})
	r := ref("agents/a", "K")
	_, err := f.svc.CreateSecret(bg, "a", CreateSecretRequest{Ref: r, Value: val("v"), Metadata: SecretMetadata{Type: TypeToken}, TTL: time.Hour})
	must(t, err)
	if _, err := f.get("a", r); err != nil {
		t.Fatal(err)
	}
	f.clock.advance(time.Hour)
	_, err = f.get("a", r)
	wantErr(t, err, ErrSecretExpired)
	info, err := f.svc.GetSecretMetadata(bg, "a", r)
	must(t, err)
	if !info.Versions[0].ExpiresAt.Equal(info.Versions[0].CreatedAt.Add(time.Hour)) {
		t.Fatalf("expiry %+v", info.Versions[0])
	}
	// A new version without TTL is readable again.
	_, err = f.svc.UpdateSecret(bg, "a", UpdateSecretRequest{Ref: r, Value: val("v2")})
	must(t, err)
	if v, err := f.get("a", r); err != nil || v != "v2" {
		t.Fatalf("%q %v", v, err)
	}
}

func TestAccessModel(t *testing.T) {
	var asked []AccessRequest
	var mu sync.Mutex
	authz := AuthorizerFunc(func(ctx context.Context, req AccessRequest) error {
		mu.Lock()
		asked = append(asked, req)
		mu.Unlock()
		switch {
		case req.Agent == "platform" && req.Access == AccessWrite:
			return nil
		case req.Agent == "auditor" && req.Access == AccessAudit:
			return nil
		case req.Agent == "slow":
			return context.DeadlineExceeded
		}
		return ErrAccessDenied
	})
	f := newFixture(t, Config{Authorizer: authz})
	mine := ref("agents/a/api", "OPENAI")
	f.create("a", mine, "sk-a")

	// Other agents get nothing, and cannot tell whether a secret exists.
	for name, err := range map[string]error{
		"get":              second(f.svc.GetSecret(bg, "b", GetSecretRequest{Ref: mine})),
		"get missing":      second(f.svc.GetSecret(bg, "b", GetSecretRequest{Ref: ref("agents/a/api", "NONE")})),
		"metadata":         second(f.svc.GetSecretMetadata(bg, "b", mine)),
		"update":           second(f.svc.UpdateSecret(bg, "b", UpdateSecretRequest{Ref: mine, Value: val("x")})),
		"delete":           second(f.svc.DeleteSecret(bg, "b", DeleteSecretRequest{Ref: mine, Destroy: true})),
		"rotate":           second(f.svc.RotateSecret(bg, "b", RotateSecretRequest{Ref: mine})),
		"schedule":         second(f.svc.GetRotationSchedule(bg, "b", mine)),
		"access log":       second(f.svc.GetAccessLog(bg, "b", GetAccessLogRequest{Ref: mine})),
		"create in a's ns": second(f.svc.CreateSecret(bg, "b", CreateSecretRequest{Ref: ref("agents/a/x", "K"), Value: val("x"), Metadata: SecretMetadata{Type: TypeGeneric}})),
		"create outside":   second(f.svc.CreateSecret(bg, "b", CreateSecretRequest{Ref: ref("shared", "K"), Value: val("x"), Metadata: SecretMetadata{Type: TypeGeneric}})),
		"delegate":         second(f.svc.CreateDelegation(bg, "b", CreateDelegationRequest{Delegatee: "c", Secrets: []SecretRef{mine}})),
	} {
		var de *AccessDeniedError
		if !errors.As(err, &de) || de.Agent != "b" || errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if v, _ := f.get("a", mine); v != "sk-a" {
		t.Fatal("a denied write changed the secret")
	}
	// The owner of a namespace learns a secret is missing.
	_, err := f.get("a", ref("agents/a/api", "NONE"))
	wantErr(t, err, ErrNotFound)

	// A platform agent with a write grant provisions a secret into a's
	// namespace: a owns it, the platform wrote it.
	prov := ref("agents/a/api", "STRIPE")
	_, err = f.svc.CreateSecret(bg, "platform", CreateSecretRequest{Ref: prov, Value: val("sk-stripe"), Metadata: SecretMetadata{Type: TypeAPIKey}})
	must(t, err)
	s, err := f.svc.GetSecret(bg, "a", GetSecretRequest{Ref: prov})
	must(t, err)
	if string(s.Value.Expose()) != "sk-stripe" || s.CreatedBy != "platform" {
		t.Fatalf("%+v", s)
	}
	s.Destroy()
	info, _ := f.svc.GetSecretMetadata(bg, "a", prov)
	if info.Owner != "a" {
		t.Fatalf("owner %q", info.Owner)
	}
	_, err = f.get("platform", prov) // write is not read
	wantErr(t, err, ErrAccessDenied)
	// Outside every namespace the creator owns the secret.
	shared := ref("shared/db", "URL")
	_, err = f.svc.CreateSecret(bg, "platform", CreateSecretRequest{Ref: shared, Value: val("postgres://"), Metadata: SecretMetadata{Type: TypeConnectionString}})
	must(t, err)
	if v, err := f.get("platform", shared); err != nil || v != "postgres://" {
		t.Fatalf("%q %v", v, err)
	}
	// The auditor reads the access log but not the value.
	if _, err := f.svc.GetAccessLog(bg, "auditor", GetAccessLogRequest{Ref: mine}); err != nil {
		t.Fatal(err)
	}
	_, err = f.get("auditor", mine)
	wantErr(t, err, ErrAccessDenied)
	// An authorizer that cannot decide denies, keeping its cause.
	_, err = f.get("slow", mine)
	wantErr(t, err, ErrAccessDenied, context.DeadlineExceeded)

	mu.Lock()
	defer mu.Unlock()
	for _, req := range asked {
		if req.Agent == "a" {
			t.Fatalf("the authorizer was asked about the owner: %+v", req)
		}
		if req.Ref == mine && req.Owner != "a" {
			t.Fatalf("owner %q in %+v", req.Owner, req)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func TestBadInputChangesNothing(t *testing.T) {
	f := newFixture(t, Config{MaxValueBytes: 16, MaxLabels: 2})
	good := ref("agents/a", "K")
	f.create("a", good, "v1")
	before := f.dump("")
	meta := SecretMetadata{Type: TypeGeneric}
	create := func(caller string, r SecretRef, v string, m SecretMetadata, ttl time.Duration) error {
		_, err := f.svc.CreateSecret(bg, caller, CreateSecretRequest{Ref: r, Value: val(v), Metadata: m, TTL: ttl})
		return err
	}
	long := strings.Repeat("x", 300)
	cases := map[string]error{
		"empty caller":        create("", ref("agents/a", "N"), "v", meta, 0),
		"caller with space":   create("a b", ref("agents/a", "N"), "v", meta, 0),
		"caller too long":     create(long, ref("agents/a", "N"), "v", meta, 0),
		"caller control":      create("a\n", ref("agents/a", "N"), "v", meta, 0),
		"empty path":          create("a", ref("", "N"), "v", meta, 0),
		"leading slash":       create("a", ref("/agents/a", "N"), "v", meta, 0),
		"empty segment":       create("a", ref("agents//a", "N"), "v", meta, 0),
		"dot segment":         create("a", ref("agents/a/./x", "N"), "v", meta, 0),
		"dotdot segment":      create("a", ref("agents/a/../b", "N"), "v", meta, 0),
		"NUL in path":         create("a", ref("agents/a\x00b", "N"), "v", meta, 0),
		"bad UTF-8":           create("a", ref("agents/a", "N\xff"), "v", meta, 0),
		"slash in name":       create("a", ref("agents/a", "N/M"), "v", meta, 0),
		"empty name":          create("a", ref("agents/a", ""), "v", meta, 0),
		"name too long":       create("a", ref("agents/a", long), "v", meta, 0),
		"path too long":       create("a", ref("agents/a/"+strings.Repeat("p/", 300), "N"), "v", meta, 0),
		"empty value":         create("a", ref("agents/a", "N"), "", meta, 0),
		"oversize value":      create("a", ref("agents/a", "N"), strings.Repeat("v", 17), meta, 0),
		"unspecified type":    create("a", ref("agents/a", "N"), "v", SecretMetadata{}, 0),
		"unknown type":        create("a", ref("agents/a", "N"), "v", SecretMetadata{Type: 99}, 0),
		"too many labels":     create("a", ref("agents/a", "N"), "v", SecretMetadata{Type: TypeGeneric, Labels: map[string]string{"a": "", "b": "", "c": ""}}, 0),
		"empty label key":     create("a", ref("agents/a", "N"), "v", SecretMetadata{Type: TypeGeneric, Labels: map[string]string{"": "x"}}, 0),
		"oversize label":      create("a", ref("agents/a", "N"), "v", SecretMetadata{Type: TypeGeneric, Labels: map[string]string{"k": long}}, 0),
		"oversize descr":      create("a", ref("agents/a", "N"), "v", SecretMetadata{Type: TypeGeneric, Description: strings.Repeat("d", 5000)}, 0),
		"negative TTL":        create("a", ref("agents/a", "N"), "v", meta, -time.Second),
		"rotation too often":  create("a", ref("agents/a", "N"), "v", SecretMetadata{Type: TypeToken, Rotation: RotationPolicy{Interval: time.Millisecond}}, 0),
		"get many: none":      second(f.svc.GetSecrets(bg, "a", GetSecretsRequest{})),
		"get many: duplicate": second(f.svc.GetSecrets(bg, "a", GetSecretsRequest{Refs: []SecretRef{good, good}})),
		"get many: too many":  second(f.svc.GetSecrets(bg, "a", GetSecretsRequest{Refs: make([]SecretRef, 101)})),
		"list: bad limit":     second(f.svc.ListSecrets(bg, "a", ListSecretsRequest{Path: "agents/a", Limit: 1001})),
		"list: bad path":      second(f.svc.ListSecrets(bg, "a", ListSecretsRequest{Path: "agents/"})),
		"log: reversed range": second(f.svc.GetAccessLog(bg, "a", GetAccessLogRequest{Ref: good, Since: time.Now(), Until: time.Now().Add(-time.Hour)})),
		"log: bad token":      second(f.svc.GetAccessLog(bg, "a", GetAccessLogRequest{Ref: good, PageToken: "zz"})),
		"undelete: none":      second(f.svc.UndeleteSecret(bg, "a", UndeleteSecretRequest{Ref: good})),
	}
	for name, err := range cases {
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, err := ParseSecretType("SSH_KEY")
	wantErr(t, err, ErrInvalidArgument)
	if st, err := ParseSecretType("CONNECTION_STRING"); err != nil || st != TypeConnectionString || st.String() != "CONNECTION_STRING" {
		t.Fatal(st, err)
	}
	// Automatic rotation of a type without a generator names the cause.
	err = create("a", ref("agents/a", "N"), "v", SecretMetadata{Type: TypeCertificate, Rotation: RotationPolicy{Interval: time.Hour}}, 0)
	wantErr(t, err, ErrInvalidArgument, ErrNoGenerator)

	after := f.dump("")
	// The one change allowed: the "log: bad token" call was authorized and
	// its failure recorded.
	for k := range after {
		if _, ok := before[k]; !ok && !strings.HasPrefix(k, prefixLog) {
			t.Fatalf("bad input wrote %q", k)
		}
	}
	for k, v := range before {
		if !bytes.Equal(after[k], v) {
			t.Fatalf("bad input changed %q", k)
		}
	}
}

// A flipped byte anywhere in a stored record, or a record moved to another
// key, is ErrCorrupt and nothing is returned.
func TestTamperedRecordsAreRefused(t *testing.T) {
	f := newFixture(t, Config{})
	a, b := ref("agents/a", "A"), ref("agents/a", "B")
	f.create("a", a, "value-a1")
	_, err := f.svc.UpdateSecret(bg, "a", UpdateSecretRequest{Ref: a, Value: val("value-a2")})
	must(t, err)
	f.create("a", b, "value-b")
	set := func(key []byte, v []byte) {
		var batch kv.Batch
		batch.Set(key, v)
		must(t, f.store.Apply(bg, &batch))
	}
	raw := func(key []byte) []byte { return f.dump(string(key))[string(key)] }
	check := func(what string, r SecretRef, version uint32, sentinels ...error) {
		t.Helper()
		s, err := f.svc.GetSecret(bg, "a", GetSecretRequest{Ref: r, Version: version})
		if s != nil {
			t.Fatalf("%s: returned %v", what, s)
		}
		wantErr(t, err, sentinels...)
		if strings.Contains(err.Error(), "value-") {
			t.Fatalf("%s: the error carries a value: %v", what, err)
		}
	}

	v2 := raw(valueKey(a, 2))
	for i := 0; i < len(v2); i += 7 {
		bad := bytes.Clone(v2)
		bad[i] ^= 0x01
		set(valueKey(a, 2), bad)
		check(fmt.Sprintf("value byte %d", i), a, 0, ErrCorrupt)
	}
	set(valueKey(a, 2), v2)
	// Version 1's ciphertext under version 2's key, and b's under a's.
	set(valueKey(a, 2), raw(valueKey(a, 1)))
	check("version swapped", a, 2, ErrCorrupt)
	set(valueKey(a, 2), raw(valueKey(b, 1)))
	check("secret swapped", a, 2, ErrCorrupt)
	set(valueKey(a, 2), v2)

	// Metadata: a flipped byte, or another secret's metadata (which would
	// hand over its owner).
	ma := raw(metaKey(a))
	bad := bytes.Clone(ma)
	bad[len(bad)/2] ^= 0x80
	set(metaKey(a), bad)
	check("metadata byte", a, 0, ErrCorrupt)
	_, err = f.svc.GetSecretMetadata(bg, "a", a)
	wantErr(t, err, ErrCorrupt)
	set(metaKey(a), raw(metaKey(b)))
	check("metadata swapped", a, 0, ErrCorrupt)
	set(metaKey(a), ma)
	if v, err := f.get("a", a); err != nil || v != "value-a2" {
		t.Fatalf("after repair: %q %v", v, err)
	}
	// Each refusal was recorded as failed, with the reason.
	n := 0
	for _, ev := range f.events("a", a) {
		if ev.Outcome == OutcomeFailed && ev.Reason == "corrupt" {
			n++
		}
	}
	if n < 10 {
		t.Fatalf("%d corrupt reads recorded", n)
	}
}

// Nothing a caller writes — value, description, labels — appears in the
// store in plaintext; only paths and names do, in keys.
func TestEverythingEncryptedAtRest(t *testing.T) {
	f := newFixture(t, Config{})
	r := ref("agents/a", "K")
	_, err := f.svc.CreateSecret(bg, "a", CreateSecretRequest{Ref: r, Value: val("sup3r-s3cret-value"),
		Metadata: SecretMetadata{Type: TypeGeneric, Description: "describe-me", Labels: map[string]string{"label-key": "label-value"}}})
	must(t, err)
	_, err = f.svc.CreateDelegation(bg, "a", CreateDelegationRequest{Delegatee: "delegatee-b", Secrets: []SecretRef{r}})
	must(t, err)
	f.get("a", r)
	for k, v := range f.dump("") {
		for _, needle := range []string{"sup3r-s3cret-value", "describe-me", "label-key", "label-value", "delegatee-b"} {
			if strings.Contains(k, needle) || bytes.Contains(v, []byte(needle)) {
				t.Fatalf("%q is stored in plaintext under %q", needle, k)
			}
		}
	}
}

func TestGetSecretsAllOrNothing(t *testing.T) {
	f := newFixture(t, Config{})
	x, y := ref("agents/a", "X"), ref("agents/a", "Y")
	f.create("a", x, "vx")
	f.create("a", y, "vy")
	f.create("b", ref("agents/b", "Z"), "vz")
	resp, err := f.svc.GetSecrets(bg, "a", GetSecretsRequest{Refs: []SecretRef{y, x}})
	must(t, err)
	if len(resp.Secrets) != 2 || string(resp.Secrets[0].Value.Expose()) != "vy" || string(resp.Secrets[1].Value.Expose()) != "vx" {
		t.Fatalf("%+v", resp.Secrets)
	}
	resp.Destroy()
	if resp.Secrets[0].Value.Len() != 0 {
		t.Fatal("Destroy left the value")
	}
	resp, err = f.svc.GetSecrets(bg, "a", GetSecretsRequest{Refs: []SecretRef{x, ref("agents/b", "Z"), y}})
	if resp != nil {
		t.Fatal("a partial response")
	}
	wantErr(t, err, ErrAccessDenied)
}

func TestListSecrets(t *testing.T) {
	f := newFixture(t, Config{})
	for _, r := range []SecretRef{ref("agents/a/x", "K1"), ref("agents/a/x", "K2"), ref("agents/a/x/sub", "K3"), ref("agents/a/xy", "K4"), ref("agents/a", "K0")} {
		f.create("a", r, "v")
	}
	names := func(resp *ListSecretsResponse) string {
		var out []string
		for _, s := range resp.Secrets {
			out = append(out, s.Ref.Path+"/"+s.Ref.Name)
		}
		return strings.Join(out, ",")
	}
	list := func(caller string, req ListSecretsRequest) *ListSecretsResponse {
		t.Helper()
		resp, err := f.svc.ListSecrets(bg, caller, req)
		must(t, err)
		return resp
	}
	if got := names(list("a", ListSecretsRequest{Path: "agents/a/x"})); got != "agents/a/x/K1,agents/a/x/K2" {
		t.Fatalf("direct: %s", got)
	}
	if got := names(list("a", ListSecretsRequest{Path: "agents/a/x", Recursive: true})); got != "agents/a/x/K1,agents/a/x/K2,agents/a/x/sub/K3" {
		t.Fatalf("recursive: %s", got)
	}
	p1 := list("a", ListSecretsRequest{Path: "agents/a", Recursive: true, Limit: 2})
	p2 := list("a", ListSecretsRequest{Path: "agents/a", Recursive: true, Limit: 2, After: p1.Next})
	p3 := list("a", ListSecretsRequest{Path: "agents/a", Recursive: true, Limit: 2, After: p2.Next})
	if got := names(p1) + ";" + names(p2) + ";" + names(p3); got != "agents/a/K0,agents/a/x/K1;agents/a/x/K2,agents/a/x/sub/K3;agents/a/xy/K4" || p3.Next != (SecretRef{}) {
		t.Fatalf("pages: %s next %v", got, p3.Next)
	}
	if got := names(list("b", ListSecretsRequest{Path: "agents/a", Recursive: true})); got != "" {
		t.Fatalf("b sees %s", got)
	}
	// Listings are recorded on the path, for its namespace's owner.
	evs := f.events("a", SecretRef{Path: "agents/a"})
	if len(evs) != 4 || evs[3].Agent != "b" || evs[3].Operation != OpList {
		t.Fatalf("path events %+v", evs)
	}
	_, err := f.svc.GetAccessLog(bg, "b", GetAccessLogRequest{Ref: SecretRef{Path: "agents/a"}})
	wantErr(t, err, ErrAccessDenied)
}
