package audit

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/internal/wire"
)

// The export format, version 1 (docs/audit.md):
//
//	"creto-audit-export/v1\n"
//	u16 length, Ed25519 verifier key; u16 length, hybrid verifier key
//	u32 checkpoint count, then each: u32 length, signed checkpoint
//	per record: 0x01, 32-byte stored leaf hash, u32 length, leaf
//	0x00, u64 record count
//
// Integers are big-endian. The leaf hashes are the ones the node stored,
// so a record altered in the export (or in the store before) is named by
// its index; the signed checkpoints are what proves the rest.
const exportMagic = "creto-audit-export/v1\n"

// ExportStats says what Export wrote.
type ExportStats struct {
	Entries     int64
	Checkpoints int
}

// Export writes the audit log kept in store to w in the export format,
// for VerifyExport to check anywhere. On a live node it is a consistent
// view: the checkpoints are read first, the records after, so every
// checkpoint's records are in the export.
func Export(ctx context.Context, store kv.Store, w io.Writer) (ExportStats, error) {
	st, err := export(ctx, store, w)
	if err != nil {
		return st, opError("export", "", err)
	}
	return st, nil
}

func export(ctx context.Context, store kv.Store, w io.Writer) (ExportStats, error) {
	var st ExportStats
	src := &storeSource{ctx: ctx, store: store}
	v, err := src.verifier()
	if err != nil {
		return st, err
	}
	cps, err := src.checkpoints()
	if err != nil {
		return st, err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	hdr := wire.Encoder(exportMagic)
	hdr.Str16(v.Ed25519Key())
	hdr.Str16(v.HybridKey())
	hdr.U32(uint32(len(cps)))
	for _, c := range cps {
		hdr.U32(uint32(len(c.note)))
		hdr.Raw(c.note)
	}
	if _, err := bw.Write(hdr); err != nil {
		return st, err
	}
	st.Checkpoints = len(cps)
	var frame []byte
	leafHashes := newHashStreams(ctx, store)
	defer leafHashes.close()
	missing := false
	err = store.Scan(ctx, []byte(prefixRecords), func(key, leaf []byte) error {
		if len(key) != len(prefixRecords)+8 {
			return detail(ErrMalformed, "record key %q", key)
		}
		pos := int64(binary.BigEndian.Uint64(key[len(prefixRecords):]))
		var h tlog.Hash
		if !missing {
			// A missing leaf hash is exported as zeros, and so are the
			// rest (the level's order is lost): verification then names
			// the first entry affected.
			var err error
			h, err = leafHashes.next(0, pos)
			if errors.Is(err, ErrMalformed) {
				missing, h = true, tlog.Hash{}
			} else if err != nil {
				return err
			}
		}
		frame = append(frame[:0], 1)
		frame = append(frame, h[:]...)
		frame = binary.BigEndian.AppendUint32(frame, uint32(len(leaf)))
		frame = append(frame, leaf...)
		st.Entries++
		_, err = bw.Write(frame)
		return err
	})
	if err != nil {
		return st, err
	}
	if _, err := bw.Write(binary.BigEndian.AppendUint64([]byte{0}, uint64(st.Entries))); err != nil {
		return st, err
	}
	return st, bw.Flush()
}

// VerifyExport checks an export end to end, as VerifyStore checks a
// store: the same errors, plus ErrMalformed for input that is not an
// export at all. A truncated or altered export names the first entry it
// cannot vouch for.
func VerifyExport(ctx context.Context, r io.Reader, trusted *Verifier) (Report, error) {
	rep, err := verifyLog(ctx, &exportSource{r: bufio.NewReaderSize(r, 64<<10)}, trusted)
	if err != nil {
		return rep, fmt.Errorf("audit: verify export: %w", err)
	}
	return rep, nil
}

// exportSource reads an export as it is verified, holding one record at
// a time.
type exportSource struct {
	r *bufio.Reader
}

// read reads exactly n bytes; a short read is io.ErrUnexpectedEOF.
func (e *exportSource) read(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(e.r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

func (e *exportSource) u16String() (string, error) {
	n, err := e.read(2)
	if err != nil {
		return "", err
	}
	b, err := e.read(int(binary.BigEndian.Uint16(n)))
	return string(b), err
}

func (e *exportSource) verifier() (*Verifier, error) {
	magic, err := e.read(len(exportMagic))
	if err != nil || string(magic) != exportMagic {
		return nil, detail(ErrMalformed, "not an audit export (%s)", quote(string(magic)))
	}
	edKey, err := e.u16String()
	if err != nil {
		return nil, detail(ErrMalformed, "export header: %v", err)
	}
	hyKey, err := e.u16String()
	if err != nil {
		return nil, detail(ErrMalformed, "export header: %v", err)
	}
	v, err := ParseVerifier(edKey, hyKey)
	if err != nil {
		return nil, fmt.Errorf("export header: %w", err)
	}
	return v, nil
}

func (e *exportSource) checkpoints() ([]filedCheckpoint, error) {
	nb, err := e.read(4)
	if err != nil {
		return nil, detail(ErrMalformed, "export header: %v", err)
	}
	n := binary.BigEndian.Uint32(nb)
	var out []filedCheckpoint
	for i := range n {
		lb, err := e.read(4)
		if err != nil {
			return nil, badCheckpoint(-1, "checkpoint %d of the export: %v", i, err)
		}
		l := binary.BigEndian.Uint32(lb)
		if l > maxNoteSize {
			return nil, badCheckpoint(-1, "checkpoint %d of the export is %d bytes, limit %d", i, l, maxNoteSize)
		}
		note, err := e.read(int(l))
		if err != nil {
			return nil, badCheckpoint(-1, "checkpoint %d of the export: %v", i, err)
		}
		out = append(out, filedCheckpoint{size: -1, note: note})
	}
	return out, nil
}

func (e *exportSource) records(fn func(pos int64, leaf []byte, check hashCheck) error) error {
	for pos := int64(0); ; pos++ {
		tag, err := e.r.ReadByte()
		if err != nil {
			return tampered(pos, "the export ends without its trailer: truncated")
		}
		switch tag {
		case 0:
			e.r.UnreadByte()
			return nil
		case 1:
		default:
			return tampered(pos, "bad frame tag %d", tag)
		}
		hdr, err := e.read(tlog.HashSize + 4)
		if err != nil {
			return tampered(pos, "truncated")
		}
		stored := tlog.Hash(hdr[:tlog.HashSize])
		n := binary.BigEndian.Uint32(hdr[tlog.HashSize:])
		if n > maxEncodedRecordSize {
			return tampered(pos, "a %d-byte record, limit %d", n, maxEncodedRecordSize)
		}
		leaf, err := e.read(int(n))
		if err != nil {
			return tampered(pos, "truncated")
		}
		err = fn(pos, leaf, func(hashes []tlog.Hash) error {
			if hashes[0] != stored {
				return errors.New("the record does not match its stored leaf hash")
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
}

func (e *exportSource) finish(count int64) error {
	trailer, err := e.read(9)
	if err != nil || trailer[0] != 0 {
		return tampered(count, "the export ends without its trailer: truncated")
	}
	if n := int64(binary.BigEndian.Uint64(trailer[1:])); n != count {
		return tampered(min(n, count), "the export declares %d entries and holds %d", n, count)
	}
	if _, err := e.r.ReadByte(); !errors.Is(err, io.EOF) {
		return tampered(count, "data after the export's trailer")
	}
	return nil
}
