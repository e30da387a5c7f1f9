package client

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/creto-systems/creto/internal/frames"
)

// FuzzParseConfig: any file is a Config or an ErrConfig, and a Config is
// either built into clients or refused with ErrConfig — never a panic.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(seedSections))
	f.Add([]byte("endpoint = \"127.0.0.1:1\"\n[authz]\nmax_retries = 0\n"))
	f.Add([]byte("[memory]\ndefault_relevance_threshold = nan\n"))
	f.Add([]byte("[vault]\ntls_enabled = false\ntls_ca = \"x\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			return
		}
		c, err := New(cfg)
		if err != nil {
			return
		}
		c.Close()
	})
}

// FuzzDecode: whatever status a node sends, the client makes an *Error
// with a kind, a bounded message and its reason, and never panics.
func FuzzDecode(f *testing.F) {
	f.Add(uint32(codes.FailedPrecondition), "DELEGATION_EXPIRED", "delegation expired")
	f.Add(uint32(codes.Unavailable), "SEALED", "")
	f.Add(uint32(99), "", "\xff\xfe")
	f.Fuzz(func(t *testing.T, code uint32, reason, msg string) {
		st := status.New(codes.Code(code), msg)
		if withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason}); err == nil {
			st = withInfo
		}
		e := decode(context.Background(), "vault", "GetSecret", st.Err())
		if st.Code() == codes.OK { // no error at all
			if e != nil {
				t.Fatalf("OK decoded as %+v", e)
			}
			return
		}
		if e == nil || e.Kind == nil || len(e.Message) > maxMessage+len("…") {
			t.Fatalf("%+v", e)
		}
		if utf8.ValidString(msg) && !utf8.ValidString(e.Message) {
			t.Fatalf("bounding broke a rune: %q", e.Message)
		}
		_ = e.Error()
		_, _ = e.Retryable(), e.SecurityCritical()
	})
}

// FuzzSpool: whatever bytes a spool file holds — torn, damaged, hostile —
// reading it never panics and keeps only whole events, which written
// back as openSpool writes them read back the same.
func FuzzSpool(f *testing.F) {
	var whole []byte
	for i := range 3 {
		body, _ := proto.Marshal(spoolEvent(i).rec)
		whole = appendSpoolFrame(whole, frameEvent, uint64(i), body)
	}
	f.Add(whole)
	f.Add(appendSpoolFrame(append([]byte(nil), whole...), frameSettle, 2, nil))
	f.Add(whole[:len(whole)-3])
	f.Add([]byte{0, 0, 0, 9, 1, 2, 3, 4, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "audit.spool")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		left, err := readSpool(path, quiet)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) > len(data)/frames.HeaderSize {
			t.Fatalf("%d events from %d bytes", len(left), len(data))
		}
		var compact []byte
		for i, p := range left {
			body, err := proto.Marshal(p.rec)
			if err != nil {
				t.Fatal(err)
			}
			compact = appendSpoolFrame(compact, frameEvent, uint64(i), body)
		}
		if err := os.WriteFile(path, compact, 0o600); err != nil {
			t.Fatal(err)
		}
		again, err := readSpool(path, quiet)
		if err != nil || len(again) != len(left) {
			t.Fatalf("written back: %d events, then %d: %v", len(left), len(again), err)
		}
		for i := range left {
			if again[i].seq != uint64(i) || !proto.Equal(again[i].rec, left[i].rec) {
				t.Fatalf("event %d changed when written back", i)
			}
		}
	})
}
