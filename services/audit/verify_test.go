package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/creto-systems/creto/internal/kv"
)

// tamperLog is a closed log of 40 records with checkpoints at 5 (the
// first commit's), 10, 25 and 40, and its verifier.
func tamperLog(t testing.TB) (*logEnv, *Verifier) {
	t.Helper()
	e := newEnv(t, Config{})
	for _, n := range []int{10, 15, 15} {
		e.appendN(n, 5, func(i int) Record { return rec(fmt.Sprintf("agent-%d", i%2), fmt.Sprint(i)) })
		e.checkpointAt()
	}
	v := e.svc.Verifier()
	if err := e.svc.Close(); err != nil {
		t.Fatal(err)
	}
	e.svc = nil
	return e, v
}

func set(t *testing.T, st kv.Store, key, val []byte) {
	t.Helper()
	var b kv.Batch
	b.Set(key, val)
	if err := st.Apply(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
}

func del(t *testing.T, st kv.Store, keys ...[]byte) {
	t.Helper()
	var b kv.Batch
	for _, k := range keys {
		b.Delete(k)
	}
	if err := st.Apply(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, st kv.Store, key []byte) []byte {
	t.Helper()
	v, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantTampered checks err is a verification failure at entry index (or
// -1) and checkpoint cp (or -1), with reason containing why.
func wantTampered(t *testing.T, err error, index, cp int64, why string) {
	t.Helper()
	var ve *VerificationError
	if !errors.Is(err, ErrVerification) || !errors.As(err, &ve) {
		t.Fatalf("got %v, want a verification failure", err)
	}
	if ve.Index != index || ve.Checkpoint != cp || !strings.Contains(ve.Reason, why) {
		t.Fatalf("got %q (entry %d, checkpoint %d), want entry %d, checkpoint %d, %q", err, ve.Index, ve.Checkpoint, index, cp, why)
	}
}

func TestVerifyStoreIntact(t *testing.T) {
	e, v := tamperLog(t)
	rep, err := VerifyStore(context.Background(), e.store, v)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != 40 || rep.Checkpoints != 4 || rep.Latest.Size != 40 || rep.Uncovered != 0 || !rep.TrustedKeys || rep.Origin != v.Origin() {
		t.Fatalf("report %+v", rep)
	}
	rep, err = VerifyStore(context.Background(), e.store, nil)
	if err != nil || rep.TrustedKeys {
		t.Fatalf("without trusted keys: %+v %v", rep, err)
	}
}

func TestVerifyStoreFindsTampering(t *testing.T) {
	ctx := context.Background()
	cases := map[string]struct {
		tamper    func(t *testing.T, st kv.Store)
		index, cp int64
		why       string
	}{
		"flipped byte in a record": {func(t *testing.T, st kv.Store) {
			leaf := get(t, st, recordKey(17))
			leaf[bytes.Index(leaf, []byte("agent-"))] ^= 0x20 // "Agent-…": still decodes
			set(t, st, recordKey(17), leaf)
		}, 17, -1, "does not match its stored leaf hash"},
		"record that no longer decodes": {func(t *testing.T, st kv.Store) {
			set(t, st, recordKey(3), append(get(t, st, recordKey(3)), 0))
		}, 3, -1, "does not decode"},
		"record moved": {func(t *testing.T, st kv.Store) {
			set(t, st, recordKey(5), get(t, st, recordKey(6)))
		}, 5, -1, "says it is entry 6"},
		"record deleted": {func(t *testing.T, st kv.Store) {
			del(t, st, recordKey(12))
		}, 12, -1, "missing"},
		"tail truncated": {func(t *testing.T, st kv.Store) {
			del(t, st, recordKey(37), recordKey(38), recordKey(39))
		}, 37, -1, "missing"},
		"tree hash deleted": {func(t *testing.T, st kv.Store) {
			del(t, st, hashKey(2, 4)) // completed by record 19
		}, 19, -1, "level 2) missing"},
		"tree hash altered": {func(t *testing.T, st kv.Store) {
			set(t, st, hashKey(1, 10), make([]byte, 32)) // completed by record 21
		}, 21, -1, "level 1) does not match"},
		"record and all hashes rewritten consistently": {func(t *testing.T, st kv.Store) {
			rewrite(t, st, 13)
		}, -1, 25, "entries 10..24 were altered"},
		"checkpoint size altered": {func(t *testing.T, st kv.Store) {
			n := get(t, st, checkpointKey(25))
			set(t, st, checkpointKey(25), bytes.Replace(n, []byte("\n25\n"), []byte("\n24\n"), 1))
		}, -1, 25, "signature does not verify"},
		"hybrid line stripped": {func(t *testing.T, st kv.Store) {
			n := get(t, st, checkpointKey(10))
			lines := strings.Split(strings.TrimSuffix(string(n), "\n"), "\n")
			set(t, st, checkpointKey(10), []byte(strings.Join(lines[:len(lines)-1], "\n")+"\n"))
		}, -1, 10, "hybrid"},
		"checkpoint from other keys": {func(t *testing.T, st kv.Store) {
			forged := testCheckpoint(t, testKeys(t, ReadVerifierOf(t, st).Origin()), 40)
			set(t, st, checkpointKey(40), forged)
			set(t, st, []byte(keyLatest), forged)
		}, -1, 40, "not signed by this log's keys"},
		"latest checkpoint replaced by an older one": {func(t *testing.T, st kv.Store) {
			set(t, st, []byte(keyLatest), get(t, st, checkpointKey(25)))
		}, -1, -1, "not the last checkpoint"},
		"size record lowered": {func(t *testing.T, st kv.Store) {
			set(t, st, []byte(keySize), binary.BigEndian.AppendUint64(nil, 39))
		}, 39, -1, "past the log's size"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e, v := tamperLog(t)
			c.tamper(t, e.store)
			_, err := VerifyStore(ctx, e.store, v)
			wantTampered(t, err, c.index, c.cp, c.why)
		})
	}
}

// ReadVerifierOf reads a store's verifier or fails the test.
func ReadVerifierOf(t *testing.T, st kv.Store) *Verifier {
	t.Helper()
	v, err := ReadVerifier(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// rewrite alters record i and recomputes every stored tree hash from the
// altered records, as an attacker with write access to the store but not
// the signing keys would: only the signed roots can tell.
func rewrite(t *testing.T, st kv.Store, i int64) {
	t.Helper()
	ctx := context.Background()
	leaf := get(t, st, recordKey(i))
	r, err := DecodeLeaf(leaf)
	if err != nil {
		t.Fatal(err)
	}
	r.Why = "nothing happened"
	forged, err := EncodeLeaf(&r)
	if err != nil {
		t.Fatal(err)
	}
	var b kv.Batch
	b.Set(recordKey(i), forged)
	var last [maxLevels]tlog.Hash
	err = st.Scan(ctx, []byte(prefixRecords), func(key, val []byte) error {
		pos := int64(binary.BigEndian.Uint64(key[len(prefixRecords):]))
		if pos == i {
			val = forged
		}
		hs, err := tlog.StoredHashes(pos, val, frontierReader(pos, &last))
		if err != nil {
			return err
		}
		for l, h := range hs {
			b.Set(hashKey(l, pos>>l), h[:])
			last[l] = h
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyStoreRefusesOtherKeys(t *testing.T) {
	e, _ := tamperLog(t)
	other := testKeys(t, "somewhere.else")
	_, err := VerifyStore(context.Background(), e.store, other.verifier)
	wantTampered(t, err, -1, -1, "keys other than the trusted ones")
	empty, _ := testStore(t)
	if _, err := VerifyStore(context.Background(), empty, nil); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrVerification) {
		t.Fatalf("a store without a log: %v", err)
	}
}

func exportLog(t *testing.T, st kv.Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	stats, err := Export(context.Background(), st, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Entries != 40 || stats.Checkpoints != 4 {
		t.Fatalf("export stats %+v", stats)
	}
	return buf.Bytes()
}

func TestVerifyExport(t *testing.T) {
	ctx := context.Background()
	e, v := tamperLog(t)
	exp := exportLog(t, e.store)
	rep, err := VerifyExport(ctx, bytes.NewReader(exp), v)
	if err != nil || rep.Entries != 40 || rep.Checkpoints != 4 || rep.Latest.Size != 40 {
		t.Fatalf("%+v %v", rep, err)
	}
	// Where record 17's bytes sit in the export.
	leaf17 := get(t, e.store, recordKey(17))
	at := bytes.Index(exp, leaf17)
	cases := map[string]struct {
		data      []byte
		index, cp int64
		why       string
	}{
		"flipped byte": {func() []byte {
			b := bytes.Clone(exp)
			b[at+bytes.Index(leaf17, []byte("agent-"))] ^= 0x20
			return b
		}(), 17, -1, "stored leaf hash"},
		"truncated mid-record": {exp[:at+5], 17, -1, "truncated"},
		"trailer cut":          {exp[:len(exp)-9], 40, -1, "truncated"},
		"trailer count wrong": {func() []byte {
			b := bytes.Clone(exp)
			b[len(b)-1]++
			return b
		}(), 40, -1, "declares 41"},
		"trailing garbage": {append(bytes.Clone(exp), 7), 40, -1, "after the export's trailer"},
	}
	for name, c := range cases {
		_, err := VerifyExport(ctx, bytes.NewReader(c.data), v)
		var ve *VerificationError
		if !errors.As(err, &ve) || ve.Index != c.index || ve.Checkpoint != c.cp || !strings.Contains(ve.Reason, c.why) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	// A store altered before export is caught in the export too.
	rewrite(t, e.store, 30)
	_, err = VerifyExport(ctx, bytes.NewReader(exportLog(t, e.store)), v)
	wantTampered(t, err, -1, 40, "entries 25..39 were altered")

	for name, data := range map[string][]byte{
		"empty":           nil,
		"not an export":   []byte("hello world, this is not an audit export at all"),
		"header cut":      exp[:len(exportMagic)+10],
		"bad keys":        append([]byte(exportMagic), 0, 1, 'x', 0, 1, 'y'),
		"checkpoints cut": exp[:bytes.Index(exp, []byte("\n\n— "))],
	} {
		_, err := VerifyExport(ctx, bytes.NewReader(data), nil)
		if err == nil || (name != "checkpoints cut" && (!errors.Is(err, ErrMalformed) || errors.Is(err, ErrVerification))) {
			t.Errorf("%s: got %v, want bad input", name, err)
		}
	}
}
