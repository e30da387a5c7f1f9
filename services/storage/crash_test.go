package storage

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/creto-systems/creto/internal/kv"
)

// The crash tests run a writer in a child process — this test binary,
// re-executed with crashModeEnv set — and SIGKILL it at a chosen point:
// the child prints "READY" there and waits to be killed. The parent then
// reopens the node and checks that metadata and data agree.
const (
	crashModeEnv = "CRETO_STORAGE_CRASH_MODE"
	crashDirEnv  = "CRETO_STORAGE_CRASH_DIR"
	crashSize    = 6*minChunkSize + 123
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(crashModeEnv); mode != "" {
		if err := crashChild(mode, os.Getenv(crashDirEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "crash child: finished without being killed")
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// ready tells the parent the child reached its crash point, then waits
// for the SIGKILL.
func ready() {
	os.Stdout.WriteString("READY\n")
	select {}
}

// pausingStore is the node's real store, stopped at the commit a crash
// test targets: once armed, the next Apply reaches ready() before
// committing, or after committing when after is set.
type pausingStore struct {
	kv.Store
	armed atomic.Bool
	after bool
}

func (p *pausingStore) Apply(ctx context.Context, b *kv.Batch) error {
	if !p.armed.Load() {
		return p.Store.Apply(ctx, b)
	}
	if !p.after {
		ready()
	}
	if err := p.Store.Apply(ctx, b); err != nil {
		return err
	}
	ready()
	return nil
}

// stallingReader hands out data and reaches ready() after stallAt bytes.
type stallingReader struct {
	data    []byte
	off     int
	stallAt int
}

func (r *stallingReader) Read(p []byte) (int, error) {
	if r.off >= r.stallAt {
		ready()
	}
	if r.off == len(r.data) {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.stallAt-r.off)], r.data[r.off:])
	r.off += n
	return n, nil
}

// crashChild opens the node in dir and runs the writer for mode until it
// is killed.
func crashChild(mode, dir string) error {
	ctx := context.Background()
	store, sealer, ids, err := openNode(ctx, dir)
	if err != nil {
		return err
	}
	ps := &pausingStore{Store: store, after: strings.HasSuffix(mode, "after-commit")}
	s, err := Open(ctx, dir, ps, ids, sealer, testConfig())
	sealer.Close()
	if err != nil {
		return err
	}
	data := payload(crashSize, 42)
	req := StoreRequest{Bucket: "crash", Key: "obj", Classification: AgentData}
	var body io.Reader = bytes.NewReader(data)
	switch mode {
	case "mid-stream":
		body = &stallingReader{data: data, stallAt: 3 * minChunkSize}
	case "inline-before-commit", "inline-after-commit":
		body = bytes.NewReader(data[:100])
		ps.armed.Store(true)
	case "file-before-commit", "file-after-commit":
		ps.armed.Store(true)
	case "delete-after-commit":
		ps.armed.Store(true)
		return s.Delete(ctx, alice, StorageRef{Bucket: "crash", Key: "obj"})
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	_, err = s.Store(ctx, alice, req, body)
	return err
}

// crash runs the child for mode on e's node (closed meanwhile), kills it
// at its crash point and reopens the node. It returns how many object
// files were on disk between the kill and the restart.
func crash(t *testing.T, e *env, mode string) int {
	t.Helper()
	e.close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashModeEnv+"="+mode, crashDirEnv+"="+e.dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
	}()
	select {
	case l := <-line:
		if l != "READY\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%s: the child ended without reaching its crash point (%q)", mode, l)
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("%s: the child did not reach its crash point", mode)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("%s: the child was not killed: %v", mode, err)
	}
	onDisk := len(e.files())
	e.open()
	return onDisk
}

// consistent checks that after a restart every record's envelope reads
// back whole, no file lacks a record, and usage is the records' sum.
func (e *env) consistent(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var records []*record
	files, sum := 0, int64(0)
	err := e.store.Scan(ctx, []byte(prefixObj), func(k, v []byte) error {
		r, err := decodeRecord(k, v)
		records = append(records, r)
		if err == nil && !r.Inline {
			files++
		}
		sum += r.Size
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		obj, err := e.s.Retrieve(ctx, Caller{Agent: r.Owner}, r.ref())
		if err != nil || int64(len(obj.Data)) != r.Size {
			t.Fatalf("version %v does not read back whole: %v", r.ref(), err)
		}
	}
	if n := len(e.files()); n != files {
		t.Fatalf("%d object files for %d file records", n, files)
	}
	if n := e.count(prefixOwner); n != len(records) {
		t.Fatalf("%d owner index entries for %d records", n, len(records))
	}
	if u, _ := e.s.Usage(ctx, alice, "alice"); u.Used != sum || u.Reserved != 0 {
		t.Fatalf("usage %+v, records hold %d", u, sum)
	}
}

func TestCrashDuringStore(t *testing.T) {
	data := payload(crashSize, 42)
	for _, c := range []struct {
		mode      string
		committed bool
		size      int
		files     int // on disk at the kill
	}{
		{"mid-stream", false, 0, 1},         // a partial envelope file
		{"file-before-commit", false, 0, 1}, // between the envelope's fsync and the record's commit
		{"inline-before-commit", false, 0, 0},
		{"file-after-commit", true, crashSize, 1},
		{"inline-after-commit", true, 100, 0},
	} {
		t.Run(c.mode, func(t *testing.T) {
			e := newEnv(t, testConfig())
			e.agents("alice")
			v1 := e.put(alice, StoreRequest{Bucket: "crash", Key: "obj"}, []byte("version one"))
			if n := crash(t, e, c.mode); n != c.files {
				t.Fatalf("%d object files at the kill, want %d", n, c.files)
			}
			e.consistent(t)
			latest := e.get(alice, StorageRef{Bucket: "crash", Key: "obj"})
			if !c.committed {
				if string(latest) != "version one" {
					t.Fatal("an uncommitted version is visible")
				}
				e.unchanged("after the crash", 1, 0)
			} else if !bytes.Equal(latest, data[:c.size]) {
				t.Fatal("the committed version does not read back")
			}
			if string(e.get(alice, v1.Ref)) != "version one" {
				t.Fatal("the earlier version was damaged")
			}
			// The node works on: a new store commits and reads back.
			md := e.put(alice, StoreRequest{Bucket: "crash", Key: "after"}, data)
			if !bytes.Equal(e.get(alice, md.Ref), data) {
				t.Fatal("store after the crash")
			}
		})
	}
}

// A delete killed between its commit and its file removal leaves an
// orphan file, which the next start deletes.
func TestCrashDuringDelete(t *testing.T) {
	e := newEnv(t, testConfig())
	e.agents("alice")
	md := e.put(alice, StoreRequest{Bucket: "crash", Key: "obj"}, payload(crashSize, 1))
	path := e.fileOf(md.Ref)
	if n := crash(t, e, "delete-after-commit"); n != 1 {
		t.Fatalf("%d files at the kill: the delete did not stop between its commit and the file's removal", n)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the orphaned file survived the restart: %v", err)
	}
	_, err := e.s.Retrieve(context.Background(), alice, md.Ref)
	wantErr(t, "deleted version", err, ErrNotFound)
	e.consistent(t)
	e.unchanged("after the crash", 0, 0)
}
