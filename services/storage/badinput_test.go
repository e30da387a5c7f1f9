package storage

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/nhi"
)

// Every malformed store is ErrInvalidArgument, reads nothing and stores
// nothing.
func TestStoreBadInput(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice")
	ctx := context.Background()
	ok := StoreRequest{Bucket: "b", Key: "k", Classification: AgentData}
	with := func(f func(*StoreRequest)) StoreRequest { r := ok; f(&r); return r }
	many := map[string]string{}
	for i := range 33 {
		many[fmt.Sprint(i)] = "v"
	}
	big := map[string]string{}
	for i := range 9 {
		big[fmt.Sprint(i)] = strings.Repeat("v", 1000)
	}
	cases := map[string]struct {
		caller Caller
		req    StoreRequest
	}{
		"no caller":              {Caller{}, ok},
		"caller with a space":    {Caller{Agent: "a b"}, ok},
		"upper-case bucket":      {alice, with(func(r *StoreRequest) { r.Bucket = "Bucket" })},
		"bucket starting '-'":    {alice, with(func(r *StoreRequest) { r.Bucket = "-b" })},
		"long bucket":            {alice, with(func(r *StoreRequest) { r.Bucket = strings.Repeat("b", 64) })},
		"key with NUL":           {alice, with(func(r *StoreRequest) { r.Key = "a\x00b" })},
		"key with newline":       {alice, with(func(r *StoreRequest) { r.Key = "a\nb" })},
		"long key":               {alice, with(func(r *StoreRequest) { r.Key = strings.Repeat("k", 1025) })},
		"key not UTF-8":          {alice, with(func(r *StoreRequest) { r.Key = "\xff" })},
		"unspecified class":      {alice, with(func(r *StoreRequest) { r.Classification = 0 })},
		"unknown class":          {alice, with(func(r *StoreRequest) { r.Classification = 7 })},
		"negative class":         {alice, with(func(r *StoreRequest) { r.Classification = -1 })},
		"content type newline":   {alice, with(func(r *StoreRequest) { r.ContentType = "text/plain\n" })},
		"content type non-ASCII": {alice, with(func(r *StoreRequest) { r.ContentType = "text/plaın" })},
		"long content type":      {alice, with(func(r *StoreRequest) { r.ContentType = strings.Repeat("t", 256) })},
		"too many metadata":      {alice, with(func(r *StoreRequest) { r.Metadata = many })},
		"metadata too big":       {alice, with(func(r *StoreRequest) { r.Metadata = big })},
		"empty metadata key":     {alice, with(func(r *StoreRequest) { r.Metadata = map[string]string{"": "v"} })},
		"long metadata value":    {alice, with(func(r *StoreRequest) { r.Metadata = map[string]string{"k": strings.Repeat("v", 1025)} })},
		"metadata not UTF-8":     {alice, with(func(r *StoreRequest) { r.Metadata = map[string]string{"k": "\xff"} })},
		"negative TTL":           {alice, with(func(r *StoreRequest) { r.TTL = -time.Second })},
		"TTL of centuries":       {alice, with(func(r *StoreRequest) { r.TTL = 200 * 365 * day })},
		"negative size":          {alice, with(func(r *StoreRequest) { r.Size = -1 })},
		"bad owner":              {alice, with(func(r *StoreRequest) { r.Owner = "a\tb" })},
		"unknown algorithm":      {alice, with(func(r *StoreRequest) { r.Encryption = &EncryptionConfig{Algorithm: "rot13"} })},
		"KEM as data algorithm":  {alice, with(func(r *StoreRequest) { r.Encryption = &EncryptionConfig{Algorithm: "x-wing"} })},
		"other key wrap":         {alice, with(func(r *StoreRequest) { r.Encryption = &EncryptionConfig{KeyWrapAlgorithm: "ml-kem-768"} })},
		"customer key":           {alice, with(func(r *StoreRequest) { r.Encryption = &EncryptionConfig{CustomerKeyID: "kms://k"} })},
	}
	for name, c := range cases {
		_, err := e.s.Store(ctx, c.caller, c.req, failingReader{})
		wantErr(t, name, err, ErrInvalidArgument)
		if strings.Contains(err.Error(), strings.Repeat("k", 100)) {
			t.Fatalf("%s: the message carries the unbounded key", name)
		}
	}
	_, err := e.s.Store(ctx, alice, ok, nil)
	wantErr(t, "nil body", err, ErrInvalidArgument)
	e.unchanged("after bad stores", 0, 0)

	// Allowed variations do store.
	md := e.put(alice, StoreRequest{Key: "ключ/with spaces/ü", Encryption: &EncryptionConfig{Algorithm: "chacha20-poly1305", KeyWrapAlgorithm: "x25519+ml-kem-768"}}, []byte("x"))
	if string(e.get(alice, md.Ref)) != "x" {
		t.Fatal("chacha20-poly1305 object does not read back")
	}
}

func TestBadReferences(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice")
	ctx := context.Background()
	md := e.put(alice, StoreRequest{Bucket: "b", Key: "k"}, []byte("x"))
	bad := map[string]StorageRef{
		"no bucket":             {Key: "k"},
		"no key":                {Bucket: "b"},
		"short version":         {Bucket: "b", Key: "k", VersionID: md.Ref.VersionID[1:]},
		"upper-case version":    {Bucket: "b", Key: "k", VersionID: strings.ToUpper(md.Ref.VersionID)},
		"non-hex version":       {Bucket: "b", Key: "k", VersionID: strings.Repeat("g", 32)},
		"short hash":            {Bucket: "b", Key: "k", ContentHash: make([]byte, 31)},
		"key with control char": {Bucket: "b", Key: "k\x7f"},
	}
	for name, ref := range bad {
		for op, err := range map[string]error{
			"retrieve": func() error { _, err := e.s.Retrieve(ctx, alice, ref); return err }(),
			"metadata": func() error { _, err := e.s.GetMetadata(ctx, alice, ref); return err }(),
			"delete":   e.s.Delete(ctx, alice, ref),
			"update":   func() error { _, err := e.s.UpdateMetadata(ctx, alice, UpdateMetadataRequest{Ref: ref}); return err }(),
			"presign":  func() error { _, err := e.s.Presign(ctx, alice, PresignRequest{Op: PresignGet, Ref: ref}); return err }(),
		} {
			wantErr(t, name+": "+op, err, ErrInvalidArgument)
		}
	}
	unknown := StorageRef{Bucket: "b", Key: "k", VersionID: strings.Repeat("0", 32)}
	_, err := e.s.Retrieve(ctx, alice, unknown)
	wantErr(t, "unknown version", err, ErrNotFound)
	_, err = e.s.Retrieve(ctx, alice, StorageRef{Bucket: "b", Key: "nope"})
	wantErr(t, "unknown key", err, ErrNotFound)
	e.unchanged("after bad references", 1, 0)
}

func TestConfigValidation(t *testing.T) {
	bad := map[string]Config{
		"tiny chunks":         {ChunkSizeBytes: 1024},
		"huge chunks":         {ChunkSizeBytes: 64 << 20},
		"no streams":          {MaxConcurrentStreams: -1},
		"signature as AEAD":   {DefaultAlgorithm: "ed25519"},
		"AEAD as key wrap":    {DefaultKeyWrap: "aes-256-gcm"},
		"negative quota":      {DefaultQuotaBytes: -1},
		"negative max size":   {MaxObjectSizeBytes: -5},
		"negative retention":  {ComplianceRetentionDays: -1},
		"inline over 1 MiB":   {InlineMaxBytes: 2 << 20},
		"presign over 7 days": {MaxPresignTTL: 8 * day},
		"default over max":    {DefaultPresignTTL: 2 * time.Hour, MaxPresignTTL: time.Hour},
		"relative path":       {PresignPath: "presigned"},
		"path with query":     {PresignPath: "/p?x=1"},
		"bad default bucket":  {DefaultBucket: "B"},
	}
	for name, cfg := range bad {
		if _, err := cfg.resolve(); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			wantErr(t, name, err, ErrInvalidArgument)
		}
	}
	s, err := Config{}.resolve()
	if err != nil || s.Config != DefaultConfig() {
		t.Fatalf("zero config does not resolve to the defaults: %v", err)
	}

	dir := t.TempDir()
	store, sealer, ids, err := openNode(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	defer ids.Close()
	defer sealer.Close()
	for name, args := range map[string]struct {
		dir    string
		store  kv.Store
		ids    Identity
		sealer Sealer
	}{
		"no dir":      {"", store, ids, sealer},
		"no store":    {dir, nil, ids, sealer},
		"no identity": {dir, store, nil, sealer},
		"no sealer":   {dir, store, ids, nil},
	} {
		_, err := Open(context.Background(), args.dir, args.store, args.ids, args.sealer, Config{})
		wantErr(t, name, err, ErrInvalidArgument)
	}
}

// A store sealed under one node key cannot be opened with another, and a
// store whose secret vanished is not silently given a new one.
func TestNodeSecret(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice")
	e.put(alice, StoreRequest{Key: "k"}, []byte("x"))
	e.close()
	ctx := context.Background()
	store, sealer, ids, err := openNode(ctx, e.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	defer ids.Close()
	other, err := nhi.CreateFileSealer(t.TempDir() + "/other.key")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, e.dir, store, ids, other, testConfig())
	wantErr(t, "another node key", err, nhi.ErrSealed)
	var b kv.Batch
	b.Delete([]byte(keySecret))
	if err := store.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, e.dir, store, ids, sealer, testConfig())
	wantErr(t, "secret deleted", err, ErrCorrupt)
	// Nothing was created: the store still has no secret.
	if _, err := store.Get(ctx, []byte(keySecret)); err == nil {
		t.Fatal("a new secret was created over existing objects")
	}
	sealer.Close()
}
