package client

import (
	"context"
	"testing"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
