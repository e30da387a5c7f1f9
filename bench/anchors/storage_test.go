package anchors

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/sio"
	tinkstream "github.com/tink-crypto/tink-go/v2/streamingaead/subtle"
	"github.com/zeebo/blake3"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/crypto"
	"github.com/creto-systems/creto/services/nhi"
	"github.com/creto-systems/creto/services/storage"
)

// Storage streaming against its anchor: raw AES-256-GCM and BLAKE3 over
// the same bytes, in the same 1 MiB chunks, doing the same file I/O
// (write then fsync the file and its directory; read it back), with no
// envelope, no key wrap, no metadata and no checks beyond the AEAD tags
// and the final hash. Run:
//
//	cd bench/anchors && go test -run '^$' -bench 'Storage' -benchtime 1x -count 5 .
//
// STORAGE_BENCH_BYTES overrides the 1 GiB object size.

const chunk = 1 << 20

func streamBytes() int64 {
	if v, err := strconv.ParseInt(os.Getenv("STORAGE_BENCH_BYTES"), 10, 64); err == nil && v > 0 {
		return v
	}
	return 1 << 30
}

// repeatReader serves n bytes cycling through one random megabyte, so
// producing the input costs a memcpy in both pipelines.
type repeatReader struct {
	block []byte
	n     int64
}

var randomBlock = func() []byte {
	b := make([]byte, chunk)
	rand.Read(b)
	return b
}()

func newRepeatReader(n int64) *repeatReader { return &repeatReader{block: randomBlock, n: n} }

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && r.n > 0 {
		c := copy(p[k:min(len(p), k+int(min(r.n, int64(chunk))))], r.block)
		k += c
		r.n -= int64(c)
	}
	return k, nil
}

// node is a storage service on its own store, sealer and NHI, as a node
// runs it, with one registered agent.
type node struct {
	store kv.Store
	ids   *nhi.Service
	svc   *storage.Service
}

const benchOwner = "bench-agent"

func openNode(tb testing.TB, dir string) *node {
	return openNodeWith(tb, dir, storage.Config{MaxObjectSizeBytes: 2 << 30, SweepInterval: -1})
}

func openNodeWith(tb testing.TB, dir string, cfg storage.Config) *node {
	ctx := context.Background()
	store, err := kv.Open(filepath.Join(dir, "kv"))
	if err != nil {
		tb.Fatal(err)
	}
	keyPath := filepath.Join(dir, "node.key")
	sealer, err := nhi.OpenFileSealer(keyPath)
	if errors.Is(err, os.ErrNotExist) {
		sealer, err = nhi.CreateFileSealer(keyPath)
	}
	if err != nil {
		tb.Fatal(err)
	}
	defer sealer.Close()
	ids, err := nhi.New(ctx, store, sealer, nhi.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	if ok, _ := ids.IsRegistered(ctx, benchOwner); !ok {
		if _, err := ids.Register(ctx, nhi.AgentIdentity{ID: benchOwner, Type: nhi.AgentTypeService, OwnerID: "bench"}); err != nil {
			tb.Fatal(err)
		}
	}
	svc, err := storage.Open(ctx, dir, store, ids, sealer, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return &node{store: store, ids: ids, svc: svc}
}

func (n *node) close() {
	n.svc.Close()
	n.ids.Close()
	n.store.Close()
}

var benchCaller = storage.Caller{Agent: benchOwner}

func (n *node) store1(tb testing.TB, key string, size int64) storage.ObjectMetadata {
	md, err := n.svc.Store(context.Background(), benchCaller,
		storage.StoreRequest{Bucket: "bench", Key: key, Classification: storage.Artifact}, newRepeatReader(size))
	if err != nil {
		tb.Fatal(err)
	}
	return md
}

func (n *node) retrieve(tb testing.TB, ref storage.StorageRef) {
	r, err := n.svc.RetrieveStream(context.Background(), benchCaller, ref)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	if _, err := r.WriteTo(io.Discard); err != nil {
		tb.Fatal(err)
	}
}

// anchor is the raw pipeline: one AES-256-GCM key, a counter nonce per
// chunk, keyed BLAKE3 of the plaintext, one file.
type anchor struct {
	gcm     cipher.AEAD
	hashKey []byte
	sum     []byte
}

func newAnchor() *anchor {
	key := make([]byte, 32)
	rand.Read(key)
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	return &anchor{gcm: gcm, hashKey: key}
}

func (a *anchor) nonce(n *[12]byte, i uint64) []byte {
	binary.BigEndian.PutUint64(n[4:], i)
	return n[:]
}

func (a *anchor) store(tb testing.TB, path string, src io.Reader) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	h, _ := blake3.NewKeyed(a.hashKey)
	buf := make([]byte, chunk+16)
	var nonce [12]byte
	for i := uint64(0); ; i++ {
		n, err := io.ReadFull(src, buf[:chunk])
		if n > 0 {
			h.Write(buf[:n])
			if _, err := f.Write(a.gcm.Seal(buf[:0], a.nonce(&nonce, i), buf[:n], nil)); err != nil {
				tb.Fatal(err)
			}
		}
		if err != nil {
			break
		}
	}
	a.sum = h.Sum(nil)
	if err := f.Sync(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	d, _ := os.Open(filepath.Dir(path))
	d.Sync()
	d.Close()
}

func (a *anchor) retrieve(tb testing.TB, path string) {
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	h, _ := blake3.NewKeyed(a.hashKey)
	buf := make([]byte, chunk+16)
	var nonce [12]byte
	for i := uint64(0); ; i++ {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			pt, oerr := a.gcm.Open(buf[:0], a.nonce(&nonce, i), buf[:n], nil)
			if oerr != nil {
				tb.Fatal(oerr)
			}
			h.Write(pt)
			io.Discard.Write(pt)
		}
		if err != nil {
			break
		}
	}
	if !bytes.Equal(h.Sum(nil), a.sum) {
		tb.Fatal("anchor hash mismatch")
	}
}

// BenchmarkStorageStream stores and retrieves one object of 1 GiB through
// the storage service and through the anchor. Both run in every
// iteration, in alternating order, so both see the same machine (other
// work on a shared host moves both alike); each reports its throughput,
// and the ratio is the service's as a percentage of the anchor's.
func BenchmarkStorageStream(b *testing.B) {
	size := streamBytes()
	dir := b.TempDir()
	n := openNode(b, dir)
	defer n.close()
	a := newAnchor()
	anchorPath := filepath.Join(dir, "anchor.bin")
	b.Run("store", func(b *testing.B) {
		var creto, anchor time.Duration
		for i := 0; b.Loop(); i++ {
			var md storage.ObjectMetadata
			alternate(i, &creto, &anchor,
				func() { md = n.store1(b, fmt.Sprint("store-", i), size) },
				func() { a.store(b, anchorPath, newRepeatReader(size)) })
			b.StopTimer()
			if err := n.svc.Delete(context.Background(), benchCaller, md.Ref); err != nil {
				b.Fatal(err)
			}
			os.Remove(anchorPath)
			b.StartTimer()
		}
		reportPair(b, size, creto, anchor)
	})
	md := n.store1(b, "retrieve", size)
	a.store(b, anchorPath, newRepeatReader(size))
	b.Run("retrieve", func(b *testing.B) {
		var creto, anchor time.Duration
		for i := 0; b.Loop(); i++ {
			alternate(i, &creto, &anchor, func() { n.retrieve(b, md.Ref) }, func() { a.retrieve(b, anchorPath) })
		}
		reportPair(b, size, creto, anchor)
	})
}

// alternate runs both pipelines, timing each, the service first on even
// iterations and the anchor first on odd ones, so neither always inherits
// the disk state the other leaves.
func alternate(i int, creto, anchor *time.Duration, c, a func()) {
	timed := func(d *time.Duration, f func()) {
		start := time.Now()
		f()
		*d += time.Since(start)
	}
	if i%2 == 0 {
		timed(creto, c)
		timed(anchor, a)
	} else {
		timed(anchor, a)
		timed(creto, c)
	}
}

// reportPair reports two pipelines' throughput over the same iterations
// and the first's as a percentage of the second's.
func reportPair(b *testing.B, size int64, creto, anchor time.Duration) {
	mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(creto), "creto-MB/s")
	b.ReportMetric(mbps(anchor), "anchor-MB/s")
	b.ReportMetric(100*anchor.Seconds()/creto.Seconds(), "%-of-anchor")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkStorageSmall is the latency of one 4 KiB object: store (key
// wrap, one fsync'd commit of an inline envelope) and retrieve (key unwrap
// through NHI, decrypt, hash check). Beside it, in the same iterations:
// the same with the envelope in its own file (inline_max_bytes = -1: file
// fsync, directory fsync, then the commit), for the layout decision; and
// the anchor, the plaintext written as one fsync'd commit to a bare store
// and read back, the floor of any durable small write. Each reports its
// median and mean.
func BenchmarkStorageSmall(b *testing.B) {
	data := make([]byte, 4<<10)
	rand.Read(data)
	ctx := context.Background()
	type path struct {
		name            string
		store, retrieve func(i int) error
	}
	var paths []path
	for _, l := range []struct {
		name   string
		inline int
	}{{"inline", 0}, {"file", -1}} {
		n := openNodeWith(b, b.TempDir(), storage.Config{InlineMaxBytes: l.inline, SweepInterval: -1})
		defer n.close()
		var last storage.StorageRef
		paths = append(paths, path{name: l.name,
			store: func(i int) error {
				md, err := n.svc.Store(ctx, benchCaller, storage.StoreRequest{Bucket: "bench", Key: fmt.Sprint("small-", i),
					Classification: storage.AgentData}, bytes.NewReader(data))
				last = md.Ref
				return err
			},
			retrieve: func(int) error { _, err := n.svc.Retrieve(ctx, benchCaller, last); return err },
		})
	}
	bare, err := kv.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer bare.Close()
	var lastKey []byte
	paths = append(paths, path{name: "anchor-kv",
		store: func(i int) error {
			var batch kv.Batch
			lastKey = []byte(fmt.Sprint("small-", i))
			batch.Set(lastKey, data)
			return bare.Apply(ctx, &batch)
		},
		retrieve: func(int) error { _, err := bare.Get(ctx, lastKey); return err },
	})
	measure := func(b *testing.B, op func(p path, i int) error) {
		took := make([][]time.Duration, len(paths))
		for i := 0; b.Loop(); i++ {
			for k, p := range paths {
				start := time.Now()
				if err := op(p, i); err != nil {
					b.Fatal(err)
				}
				took[k] = append(took[k], time.Since(start))
			}
		}
		for k, t := range took {
			var sum time.Duration
			for _, d := range t {
				sum += d
			}
			slices.Sort(t)
			b.ReportMetric(float64(t[len(t)/2].Microseconds()), paths[k].name+"-p50-µs")
			b.ReportMetric(float64(sum.Microseconds())/float64(len(t)), paths[k].name+"-mean-µs")
		}
		b.ReportMetric(0, "ns/op")
	}
	b.Run("store-4KiB", func(b *testing.B) { measure(b, func(p path, i int) error { return p.store(i) }) })
	b.Run("retrieve-4KiB", func(b *testing.B) { measure(b, func(p path, i int) error { return p.retrieve(i) }) })
}

// BenchmarkStorageLayout is the other layout considered for large
// objects: the envelope's 1 MiB chunks as values in the node's store,
// sixteen to a synced commit (one commit for the whole object would hold
// it all in memory), then read back with a scan — beside a file written,
// fsync'd and read, as the service does.
func BenchmarkStorageLayout(b *testing.B) {
	size := streamBytes()
	dir := b.TempDir()
	store, err := kv.Open(filepath.Join(dir, "kv"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	b.Run("kv-chunks/write", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; b.Loop(); i++ {
			var batch kv.Batch
			for c := int64(0); c*chunk < size; c++ {
				batch.Set([]byte(fmt.Sprintf("obj/%d/%08d", i, c)), randomBlock)
				if batch.Len() == 16 {
					if err := store.Apply(ctx, &batch); err != nil {
						b.Fatal(err)
					}
					batch.Reset()
				}
			}
			if err := store.Apply(ctx, &batch); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("kv-chunks/read", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if err := store.Scan(ctx, []byte("obj/0/"), func(_, v []byte) error { io.Discard.Write(v); return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
	path := filepath.Join(dir, "file.bin")
	b.Run("file/write", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			io.CopyBuffer(f, newRepeatReader(size), make([]byte, chunk))
			f.Sync()
			f.Close()
		}
	})
	b.Run("file/read", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			io.CopyBuffer(io.Discard, f, make([]byte, chunk))
			f.Close()
		}
	})
}

// --- peak memory -----------------------------------------------------

// rssChildEnv names the operation a child process runs and measures.
const rssChildEnv = "STORAGE_RSS_CHILD"

func TestMain(m *testing.M) {
	if op := os.Getenv(rssChildEnv); op != "" {
		if err := rssChild(op, os.Getenv("STORAGE_RSS_DIR")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// procStatusKiB reads a field (VmRSS, VmHWM) of /proc/self/status.
func procStatusKiB(field string) (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}

// rssChild sets up, resets the peak-RSS mark (writing 5 to clear_refs
// sets VmHWM to the current RSS), runs one operation on an object the
// parent prepared in dir, and prints the RSS before and the peak during
// it, in KiB.
func rssChild(op, dir string) error {
	size := streamBytes()
	var run func(testing.TB)
	switch op {
	case "creto/store", "creto/retrieve":
		n := openNode(failer{}, dir)
		defer n.close()
		run = func(tb testing.TB) { n.store1(tb, "rss-store", size) }
		if op == "creto/retrieve" {
			run = func(tb testing.TB) { n.retrieve(tb, storage.StorageRef{Bucket: "bench", Key: "rss"}) }
		}
	case "anchor/store":
		a := newAnchor()
		run = func(tb testing.TB) { a.store(tb, filepath.Join(dir, "anchor-rss.bin"), newRepeatReader(size)) }
	default:
		return fmt.Errorf("unknown operation %q", op)
	}
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return err
	}
	base, err := procStatusKiB("VmRSS")
	if err != nil {
		return err
	}
	run(failer{})
	peak, err := procStatusKiB("VmHWM")
	if err != nil {
		return err
	}
	fmt.Println(base, peak)
	return nil
}

// failer lets the shared helpers run outside a test.
type failer struct{ testing.TB }

func (failer) Fatal(args ...any) { panic(fmt.Sprint(args...)) }

// BenchmarkStorageStreamRSS runs each 1 GiB operation in a fresh process
// and reports its peak RSS growth: VmHWM during the operation minus VmRSS
// just before it.
func BenchmarkStorageStreamRSS(b *testing.B) {
	size := streamBytes()
	dir := b.TempDir()
	n := openNode(b, dir)
	n.store1(b, "rss", size)
	n.close()
	for _, op := range []string{"creto/store", "creto/retrieve", "anchor/store"} {
		b.Run(op, func(b *testing.B) {
			var growth int64
			for b.Loop() {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), rssChildEnv+"="+op, "STORAGE_RSS_DIR="+dir, fmt.Sprint("STORAGE_BENCH_BYTES=", size))
				cmd.Stderr = os.Stderr
				out, err := cmd.Output()
				if err != nil {
					b.Fatal(err)
				}
				var base, peak int64
				if _, err := fmt.Sscan(string(out), &base, &peak); err != nil {
					b.Fatalf("child said %q: %v", out, err)
				}
				growth = max(growth, peak-base)
			}
			b.ReportMetric(float64(growth)/1024, "MiB-peak-growth")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// --- the streaming AEAD, against the libraries we could have used ------

const aeadBytes = 256 << 20

// BenchmarkStreamAEAD seals and opens 256 MiB in memory with Creto's
// segmented AEAD (1 MiB segments), Tink's AES-GCM-HKDF streaming AEAD
// (1 MiB segments) and minio/sio's DARE 2.0 (its fixed 64 KiB packages),
// with one AES-256-GCM call per 1 MiB chunk as the floor.
func BenchmarkStreamAEAD(b *testing.B) {
	key := make([]byte, 32)
	rand.Read(key)
	info := []byte("creto-storage/data/v1\x00header")
	salt, prefix := make([]byte, 32), make([]byte, 7)
	ckey, _ := crypto.NewSymmetricKey(crypto.AES256GCM, key)
	tink, err := tinkstream.NewAESGCMHKDF(key, "SHA256", 32, chunk+16, 0)
	if err != nil {
		b.Fatal(err)
	}
	sioCfg := sio.Config{Key: key, CipherSuites: []byte{sio.AES_256_GCM}}
	a := newAnchor()

	seals := map[string]func(dst io.Writer, src io.Reader) error{
		"creto": func(dst io.Writer, src io.Reader) error {
			s, err := crypto.NewStreamSealer(ckey, salt, prefix, info)
			if err != nil {
				return err
			}
			return sealStream(dst, src, s)
		},
		"tink": func(dst io.Writer, src io.Reader) error {
			w, err := tink.NewEncryptingWriter(dst, info)
			if err != nil {
				return err
			}
			if _, err := io.Copy(w, src); err != nil {
				return err
			}
			return w.Close()
		},
		"sio": func(dst io.Writer, src io.Reader) error { _, err := sio.Encrypt(dst, src, sioCfg); return err },
		"gcm-floor": func(dst io.Writer, src io.Reader) error {
			buf := make([]byte, chunk+16)
			var nonce [12]byte
			for i := uint64(0); ; i++ {
				n, err := io.ReadFull(src, buf[:chunk])
				if n > 0 {
					dst.Write(a.gcm.Seal(buf[:0], a.nonce(&nonce, i), buf[:n], nil))
				}
				if err != nil {
					return nil
				}
			}
		},
	}
	opens := map[string]func(dst io.Writer, src io.Reader) error{
		"creto": func(dst io.Writer, src io.Reader) error {
			o, err := crypto.NewStreamOpener(ckey, salt, prefix, info)
			if err != nil {
				return err
			}
			return openStream(dst, src, o)
		},
		"tink": func(dst io.Writer, src io.Reader) error {
			r, err := tink.NewDecryptingReader(src, info)
			if err != nil {
				return err
			}
			_, err = io.Copy(dst, r)
			return err
		},
		"sio": func(dst io.Writer, src io.Reader) error { _, err := sio.Decrypt(dst, src, sioCfg); return err },
		"gcm-floor": func(dst io.Writer, src io.Reader) error {
			buf := make([]byte, chunk+16)
			var nonce [12]byte
			for i := uint64(0); ; i++ {
				n, err := io.ReadFull(src, buf)
				if n > 0 {
					pt, oerr := a.gcm.Open(buf[:0], a.nonce(&nonce, i), buf[:n], nil)
					if oerr != nil {
						return oerr
					}
					dst.Write(pt)
				}
				if err != nil {
					return nil
				}
			}
		},
	}
	names := []string{"creto", "tink", "sio", "gcm-floor"}
	sealed := map[string][]byte{}
	for _, name := range names {
		var buf bytes.Buffer
		buf.Grow(aeadBytes + aeadBytes/1000)
		if err := seals[name](&buf, newRepeatReader(aeadBytes)); err != nil {
			b.Fatal(err)
		}
		sealed[name] = buf.Bytes()
	}
	// Each iteration runs every library once, so all see the same machine.
	run := func(b *testing.B, op func(name string) error) {
		took := map[string]time.Duration{}
		for b.Loop() {
			for _, name := range names {
				start := time.Now()
				if err := op(name); err != nil {
					b.Fatal(err)
				}
				took[name] += time.Since(start)
			}
		}
		for _, name := range names {
			b.ReportMetric(float64(aeadBytes)*float64(b.N)/took[name].Seconds()/1e6, name+"-MB/s")
		}
		b.ReportMetric(0, "ns/op")
	}
	b.Run("seal", func(b *testing.B) {
		run(b, func(name string) error { return seals[name](io.Discard, newRepeatReader(aeadBytes)) })
		for _, name := range names {
			b.ReportMetric(float64(len(sealed[name])-aeadBytes), name+"-overhead-B")
		}
	})
	b.Run("open", func(b *testing.B) {
		run(b, func(name string) error { return opens[name](io.Discard, bytes.NewReader(sealed[name])) })
	})
}

// sealStream is the storage service's read-ahead loop in miniature: a chunk
// is sealed as final once the next read finds the end.
func sealStream(dst io.Writer, src io.Reader, s *crypto.StreamSealer) error {
	cur, next := make([]byte, chunk+16), make([]byte, chunk+16)
	n, err := io.ReadFull(src, cur[:chunk])
	eof := err != nil
	for !eof {
		m, err := io.ReadFull(src, next[:chunk])
		if m == 0 {
			break
		}
		ct, serr := s.Seal(cur[:0], cur[:n], false)
		if serr != nil {
			return serr
		}
		dst.Write(ct)
		cur, next, n, eof = next, cur, m, err != nil
	}
	ct, err := s.Seal(cur[:0], cur[:n], true)
	if err != nil {
		return err
	}
	_, err = dst.Write(ct)
	return err
}

// openStream is the storage reader's loop in miniature: it reads segments
// of chunk+16 bytes, and one byte past each full one to learn whether it
// was the last.
func openStream(dst io.Writer, src io.Reader, o *crypto.StreamOpener) error {
	buf := make([]byte, chunk+16)
	var peek [1]byte
	peeked := false
	for {
		k := 0
		if peeked {
			buf[0], k = peek[0], 1
		}
		n, err := io.ReadFull(src, buf[k:])
		n += k
		final := err != nil
		if !final {
			m, _ := io.ReadFull(src, peek[:])
			peeked, final = m == 1, m == 0
		}
		pt, oerr := o.Open(buf[:0], buf[:n], final)
		if oerr != nil {
			return oerr
		}
		dst.Write(pt)
		if final {
			return nil
		}
	}
}

// TestStreamTinkInterop checks Creto's segmented AEAD against Tink's
// AES-GCM-HKDF streaming AEAD, an independent implementation of the same
// construction: Creto opens Tink's segments, and Tink reads a stream
// Creto sealed in Tink's framing (a header of length, salt and nonce
// prefix; a first segment shortened by the header).
func TestStreamTinkInterop(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	aad := []byte("associated data")
	const ctSeg = 4096
	tink, err := tinkstream.NewAESGCMHKDF(key, "SHA256", 32, ctSeg, 0)
	if err != nil {
		t.Fatal(err)
	}
	ckey, _ := crypto.NewSymmetricKey(crypto.AES256GCM, key)
	plain := make([]byte, 3*ctSeg+77)
	rand.Read(plain)
	hlen := tink.HeaderLength()
	// Plaintext segment sizes in Tink's framing.
	var sizes []int
	for rest, first := len(plain), true; ; first = false {
		n := ctSeg - 16
		if first {
			n -= hlen
		}
		if rest <= n {
			sizes = append(sizes, rest)
			break
		}
		sizes = append(sizes, n)
		rest -= n
	}

	var sealed bytes.Buffer
	w, err := tink.NewEncryptingWriter(&sealed, aad)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	w.Close()
	ct := sealed.Bytes()
	o, err := crypto.NewStreamOpener(ckey, ct[1:33], ct[33:hlen], aad)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	off := hlen
	for i, n := range sizes {
		pt, err := o.Open(nil, ct[off:off+n+16], i == len(sizes)-1)
		if err != nil {
			t.Fatalf("segment %d of Tink's stream: %v", i, err)
		}
		got = append(got, pt...)
		off += n + 16
	}
	if !bytes.Equal(got, plain) || off != len(ct) || !o.Finished() {
		t.Fatal("Tink's stream opened to other bytes")
	}

	salt, prefix := make([]byte, 32), make([]byte, 7)
	rand.Read(salt)
	rand.Read(prefix)
	s, err := crypto.NewStreamSealer(ckey, salt, prefix, aad)
	if err != nil {
		t.Fatal(err)
	}
	ours := append(append([]byte{byte(hlen)}, salt...), prefix...)
	rest := plain
	for i, n := range sizes {
		seg, err := s.Seal(nil, rest[:n], i == len(sizes)-1)
		if err != nil {
			t.Fatal(err)
		}
		ours = append(ours, seg...)
		rest = rest[n:]
	}
	r, err := tink.NewDecryptingReader(bytes.NewReader(ours), aad)
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(back, plain) {
		t.Fatalf("Tink does not read Creto's stream: %v", err)
	}
}
