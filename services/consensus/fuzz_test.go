package consensus

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// The decoders below read bytes that come from the raft log, from other
// nodes' snapshots or from the store: none may panic, and whatever decodes
// must encode back to the same bytes.

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(envelope{typ: "vault.uses", caller: "a", payload: []byte("p")}.encode())
	f.Add(envelope{typ: "t", caller: "c", idemKey: "k", fingerprint: make([]byte, 32)}.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEnvelope(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.encode(), b) {
			t.Fatalf("%x does not re-encode", b)
		}
	})
}

func FuzzDecodeEventBatch(f *testing.F) {
	body := encodeEventBody([]Event{{ID: "a", Payload: []byte("x")}, {ID: "b"}})
	f.Add(encodeEventBatch(100, 1<<30, "n1", body))
	f.Fuzz(func(t *testing.T, b []byte) {
		batch, err := decodeEventBatch(b)
		if err != nil {
			return
		}
		r := reader{b: batch.body}
		events := r.events(len(batch.body))
		if r.err != nil || uint64(len(events)) != batch.n {
			t.Fatalf("%x: the body counts %d events but decodes %d: %v", b, batch.n, len(events), r.err)
		}
		if !bytes.Equal(encodeEventBatch(batch.retain, batch.first, batch.node, encodeEventBody(events)), b) {
			t.Fatalf("%x does not re-encode", b)
		}
	})
}

func FuzzReadSnapshot(f *testing.F) {
	var good bytes.Buffer
	good.Write(snapshotMagic)
	good.Write(appendBytes(nil, []byte("a/applied")))
	good.Write(appendBytes(nil, be64(7)))
	good.Write(appendBytes(nil, []byte("h/x/k")))
	good.Write(appendBytes(nil, []byte("v")))
	good.Write(binary.AppendUvarint(nil, 0))
	good.Write(be64(2))
	f.Add(good.Bytes())
	f.Add(good.Bytes()[:good.Len()-3])
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, applied, err := readSnapshot(bytes.NewReader(b), false)
		if err != nil {
			return
		}
		_, first, err := readSnapshot(bytes.NewReader(b), true)
		if err != nil || (len(recs) > 0 && string(recs[0][0]) == keyApplied && first != applied) {
			t.Fatalf("the first record disagrees: %d vs %d, %v", first, applied, err)
		}
	})
}

func FuzzDecodeStoredRecords(f *testing.F) {
	f.Add([]byte{idemRecordVersion, 1, 't'})
	f.Add(append(be64(5), 2, 'n', '1', 1, 'c', 1, 1, 'e', 1, 'p'))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeIdemRecord(b)
		_, _ = decodeStoredBatch(1, b)
	})
}
