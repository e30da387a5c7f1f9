package abi_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/creto-systems/creto/abi"
)

var update = flag.Bool("update", false, "rewrite the golden vectors from the Go codec")

// golden is one vector: a value and its exact encoding. Other SDKs read the
// same files.
type golden struct {
	Name     string        `json:"name"`
	Request  *abi.Request  `json:"request,omitempty"`
	Decision *abi.Decision `json:"decision,omitempty"`
	Hex      string        `json:"hex"`
}

var vectors = []golden{
	{Name: "request-minimal", Request: &abi.Request{
		Principal: abi.Ref{Type: "Agent", ID: "a"}, Action: abi.Ref{Type: "Action", ID: "read"},
		Resource: abi.Ref{Type: "Doc", ID: "d"}, Context: []byte("{}"), Attributes: []byte("{}"), Outcome: abi.KindAllow}},
	{Name: "request-full", Request: &abi.Request{
		Principal: abi.Ref{Type: "Acme::Agent", ID: "ledger-bot"}, Action: abi.Ref{Type: "Action", ID: "transfer_funds"},
		Resource: abi.Ref{Type: "Account", ID: "ops-budget"}, Context: []byte(`{"amount":25000,"currency":"EUR"}`),
		Attributes: []byte(`{"tier":"gold"}`), TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		Delegation: []abi.Ref{{Type: "User", ID: "alice"}, {Type: "Agent", ID: "planner"}, {Type: "Agent", ID: "ledger-bot"}},
		Outcome:    abi.KindRequiresOversight}},
	{Name: "request-omitted-context", Request: &abi.Request{
		Principal: abi.Ref{Type: "Agent", ID: "été-bot"}, Action: abi.Ref{Type: "Action", ID: "read"},
		Resource: abi.Ref{Type: "Doc", ID: ""}, Context: []byte(""), Attributes: []byte("{}"),
		Flags: abi.FlagContextOmitted, Outcome: abi.KindAllow}},
	{Name: "decision-allow", Decision: &abi.Decision{Kind: abi.KindAllow}},
	{Name: "decision-deny", Decision: &abi.Decision{Kind: abi.KindDeny, ID: "no-deletes-after-hours", Text: "deletes are allowed 08:00-18:00 only"}},
	{Name: "decision-oversight", Decision: &abi.Decision{Kind: abi.KindRequiresOversight, ID: "large-transfer", Text: "two-person",
		A: 1_800_000_000_000, Approvers: []string{"cfo", "controller"}}},
	{Name: "decision-quota", Decision: &abi.Decision{Kind: abi.KindQuotaExceeded, ID: "llm-tokens/daily", A: 100000, B: 100001, C: 1_764_201_600_000_000_000}},
	{Name: "decision-ratelimit", Decision: &abi.Decision{Kind: abi.KindRateLimited, A: 250_000_000, B: 0}},
}

func TestGoldenVectors(t *testing.T) {
	dir := filepath.Join("testdata", "golden")
	for _, v := range vectors {
		path := filepath.Join(dir, v.Name+".json")
		var enc []byte
		if v.Request != nil {
			enc = abi.AppendRequest(nil, v.Request)
		} else {
			enc = abi.AppendDecision(nil, v.Decision)
		}
		if *update {
			v.Hex = hex.EncodeToString(enc)
			b, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./abi -update to create the vectors)", err)
		}
		var want golden
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		wantBytes, err := hex.DecodeString(want.Hex)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, wantBytes) {
			t.Errorf("%s: encoding changed:\n got %x\nwant %x", v.Name, enc, wantBytes)
		}
		if v.Request != nil {
			got, err := abi.DecodeRequest(wantBytes)
			if err != nil || !reflect.DeepEqual(normalize(got), normalize(*want.Request)) {
				t.Errorf("%s: decoded %+v (%v), want %+v", v.Name, got, err, *want.Request)
			}
			if got := abi.RequestSize(v.Request); got != len(wantBytes) {
				t.Errorf("%s: RequestSize %d, encoded %d", v.Name, got, len(wantBytes))
			}
		} else {
			got, err := abi.DecodeDecision(wantBytes)
			if err != nil || !reflect.DeepEqual(got, *want.Decision) {
				t.Errorf("%s: decoded %+v (%v), want %+v", v.Name, got, err, *want.Decision)
			}
		}
	}
}

// normalize treats nil and empty byte slices alike.
func normalize(r abi.Request) abi.Request {
	if len(r.Context) == 0 {
		r.Context = nil
	}
	if len(r.Attributes) == 0 {
		r.Attributes = nil
	}
	return r
}

func TestRequestView(t *testing.T) {
	r := vectors[1].Request
	v, err := abi.ParseRequest(abi.AppendRequest(nil, r))
	if err != nil {
		t.Fatal(err)
	}
	if string(v.ActionID()) != "transfer_funds" || string(v.PrincipalType()) != "Acme::Agent" || v.DelegationLen() != 3 ||
		v.Outcome() != abi.KindRequiresOversight || string(v.Context()) != string(r.Context) {
		t.Fatalf("view disagrees with the request")
	}
	if typ, id := v.Delegation(0); string(typ) != "User" || string(id) != "alice" {
		t.Fatalf("origin: %s %s", typ, id)
	}
}

func TestMalformedRecords(t *testing.T) {
	req := abi.AppendRequest(nil, vectors[1].Request)
	dec := abi.AppendDecision(nil, vectors[5].Decision)
	// Every truncation of a valid record is refused.
	for n := range len(req) {
		if _, err := abi.ParseRequest(req[:n]); err == nil && n < abi.RequestHeaderSize {
			t.Fatalf("a %d-byte request prefix parsed", n)
		}
	}
	for n := range len(dec) - 1 {
		if _, err := abi.DecodeDecision(dec[:n]); err == nil {
			t.Fatalf("a %d-byte decision prefix decoded", n)
		}
	}
	bad := func(b []byte, at int, v uint32) []byte {
		c := bytes.Clone(b)
		c[at], c[at+1], c[at+2], c[at+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		return c
	}
	for name, b := range map[string][]byte{
		"bad magic":              bad(dec, 0, 0x12345678),
		"unknown kind":           bad(dec, 4, 9),
		"zero kind":              bad(dec, 4, 0),
		"id offset out of range": bad(dec, 8, 1<<31),
		"id length overflows":    bad(dec, 12, 0xffffffff),
		"too many approvers":     bad(dec, 48, 1000),
		"approver table outside": bad(dec, 52, 0xfffffff0),
	} {
		if _, err := abi.DecodeDecision(b); !errors.Is(err, abi.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	long := abi.AppendDecision(nil, &abi.Decision{Kind: abi.KindDeny, Text: string(make([]byte, abi.MaxDecisionString+1))})
	if _, err := abi.DecodeDecision(long); !errors.Is(err, abi.ErrMalformed) {
		t.Errorf("an oversize reason: %v", err)
	}
	for name, b := range map[string][]byte{
		"bad magic":             bad(req, 0, 0),
		"field out of range":    bad(req, 32, 1<<30),
		"delegation count huge": bad(req, 80, 1<<30),
		"delegation table far":  bad(req, 84, 1<<30),
	} {
		if _, err := abi.ParseRequest(b); !errors.Is(err, abi.ErrMalformed) {
			t.Errorf("request %s: %v", name, err)
		}
	}
}

func FuzzDecodeDecision(f *testing.F) {
	for _, v := range vectors {
		if v.Decision != nil {
			f.Add(abi.AppendDecision(nil, v.Decision))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := abi.DecodeDecision(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to something that decodes the same.
		again, err := abi.DecodeDecision(abi.AppendDecision(nil, &d))
		if err != nil || !reflect.DeepEqual(again, d) {
			t.Fatalf("round trip: %+v → %+v (%v)", d, again, err)
		}
	})
}

func FuzzParseRequest(f *testing.F) {
	for _, v := range vectors {
		if v.Request != nil {
			f.Add(abi.AppendRequest(nil, v.Request))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := abi.ParseRequest(b)
		if err != nil {
			return
		}
		// Every accessor stays in bounds once parsing succeeded.
		_ = v.PrincipalID()
		_ = v.Context()
		for i := range v.DelegationLen() {
			v.Delegation(i)
		}
		if _, err := abi.DecodeRequest(b); err != nil {
			t.Fatal(err)
		}
	})
}

func BenchmarkAppendRequest(b *testing.B) {
	r := vectors[1].Request
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = abi.AppendRequest(buf[:0], r)
	}
}
