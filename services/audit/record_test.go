package audit

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func fullRecord() Record {
	return Record{
		Index:           7,
		LoggedAt:        time.Unix(0, 1_700_000_000_000_000_123).UTC(),
		Timestamp:       time.Unix(0, 1_700_000_000_000_000_000).UTC(),
		Source:          "authz",
		Who:             "mailer",
		DelegationChain: []string{`User::"alice"`, "planner"},
		What:            "send_email",
		Resource:        `Mailbox::"outbound"`,
		Why:             "matched permit",
		Outcome:         Denied,
		PolicyID:        "mail-for-alice",
		TraceID:         "trace-1",
		Context:         map[string]string{"decision": "deny", "cached": "false"},
		Signature:       []byte{1, 2, 3},
	}
}

// TestLeafEncodingBytes pins the version-1 layout that docs/audit.md
// documents, built here field by field rather than by the encoder.
func TestLeafEncodingBytes(t *testing.T) {
	r := Record{
		Index:     1,
		LoggedAt:  time.Unix(0, 2).UTC(),
		Timestamp: time.Unix(0, 3).UTC(),
		Who:       "a",
		What:      "b",
		Outcome:   Timeout,
		Context:   map[string]string{"z": "1", "k": ""},
	}
	want := "01" + // version
		"0000000000000001" + // index
		"0000000000000002" + // logged_at, ns
		"0000000000000003" + // timestamp, ns
		"03" + // outcome: timeout
		"0000" + // source ""
		"000161" + // who "a"
		"000162" + // what "b"
		"0000" + "0000" + "0000" + "0000" + // resource, why, policy_id, trace_id
		"00" + // no delegation links
		"02" + "00016b" + "0000" + "00017a" + "000131" + // context, keys ascending: k="", z="1"
		"0000" // no signature
	got, err := EncodeLeaf(&r)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(got) != want {
		t.Fatalf("encoding\n got %x\nwant %s", got, want)
	}
}

func TestLeafRoundTrip(t *testing.T) {
	r := fullRecord()
	leaf, err := EncodeLeaf(&r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeLeaf(leaf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, r) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, r)
	}
	if who, err := leafWho(leaf); err != nil || who != r.Who {
		t.Fatalf("leafWho: %q %v", who, err)
	}
	again, _ := EncodeLeaf(&back)
	if !bytes.Equal(again, leaf) {
		t.Fatal("re-encoding differs")
	}
	// A decoded signature must not alias the input buffer.
	leaf[len(leaf)-1] ^= 0xff
	if back.Signature[2] != 3 {
		t.Fatal("decoded signature aliases the leaf bytes")
	}
}

func TestSigningPayloadExcludesPositionAndSignature(t *testing.T) {
	a := fullRecord()
	b := a
	b.Index, b.LoggedAt, b.Signature = 99, time.Unix(5, 0), []byte{9}
	pa, err := a.SigningPayload()
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := b.SigningPayload()
	if !bytes.Equal(pa, pb) || !bytes.HasPrefix(pa, []byte(signingDomain)) {
		t.Fatal("payload depends on index, logged_at or signature, or lacks its domain")
	}
	b.Why = "other"
	if pc, _ := b.SigningPayload(); bytes.Equal(pa, pc) {
		t.Fatal("payload does not cover why")
	}
}

func TestRecordValidation(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	cases := []struct {
		name string
		mod  func(r *Record)
		want error
	}{
		{"empty who", func(r *Record) { r.Who = "" }, ErrInvalidArgument},
		{"empty what", func(r *Record) { r.What = "" }, ErrInvalidArgument},
		{"long who", func(r *Record) { r.Who = long(MaxIDLen + 1) }, ErrTooLarge},
		{"long resource", func(r *Record) { r.Resource = long(MaxResourceLen + 1) }, ErrTooLarge},
		{"long why", func(r *Record) { r.Why = long(MaxWhyLen + 1) }, ErrTooLarge},
		{"control in who", func(r *Record) { r.Who = "a\nb" }, ErrInvalidArgument},
		{"C1 control in what", func(r *Record) { r.What = "a\u0085b" }, ErrInvalidArgument},
		{"bad utf8", func(r *Record) { r.Resource = "\xff" }, ErrInvalidArgument},
		{"bad outcome", func(r *Record) { r.Outcome = 4 }, ErrInvalidArgument},
		{"before 1970", func(r *Record) { r.Timestamp = time.Unix(-1, 0) }, ErrInvalidArgument},
		{"empty link", func(r *Record) { r.DelegationChain = []string{""} }, ErrInvalidArgument},
		{"long chain", func(r *Record) { r.DelegationChain = make([]string, MaxChainLinks+1) }, ErrTooLarge},
		{"empty context key", func(r *Record) { r.Context = map[string]string{"": "v"} }, ErrInvalidArgument},
		{"long context value", func(r *Record) { r.Context = map[string]string{"k": long(MaxContextValueLen + 1)} }, ErrTooLarge},
		{"long signature", func(r *Record) { r.Signature = make([]byte, MaxSignatureLen+1) }, ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := fullRecord()
			c.mod(&r)
			_, err := EncodeLeaf(&r)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	many := fullRecord()
	many.Context = map[string]string{}
	for i := range MaxContextEntries + 1 {
		many.Context[long(i+1)] = ""
	}
	if _, err := EncodeLeaf(&many); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("too many context entries: %v", err)
	}
}

func TestDecodeLeafRejects(t *testing.T) {
	r := fullRecord()
	good, _ := EncodeLeaf(&r)
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	ctxKeys := Record{Timestamp: time.Unix(1, 0), LoggedAt: time.Unix(1, 0), Who: "a", What: "b", Context: map[string]string{"k": "1", "z": "2"}}
	ordered, err := EncodeLeaf(&ctxKeys)
	if err != nil {
		t.Fatal(err)
	}
	// Swap the two context entries ("k","1") and ("z","2"): same bytes,
	// wrong order.
	swapped := bytes.Clone(ordered)
	i := bytes.Index(swapped, []byte("\x00\x01k"))
	copy(swapped[i:], "\x00\x01z\x00\x012\x00\x01k\x00\x011")
	cases := map[string][]byte{
		"empty":            nil,
		"bad version":      mutate(func(b []byte) []byte { b[0] = 2; return b }),
		"trailing byte":    append(bytes.Clone(good), 0),
		"truncated":        good[:len(good)-1],
		"header only":      good[:leafHeaderSize],
		"bad outcome":      mutate(func(b []byte) []byte { b[25] = 9; return b }),
		"negative time":    mutate(func(b []byte) []byte { b[17] = 0x80; return b }),
		"unsorted context": swapped,
		"oversize field":   mutate(func(b []byte) []byte { b[26], b[27] = 0xff, 0xff; return b }),
	}
	for name, b := range cases {
		if _, err := DecodeLeaf(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	if _, err := DecodeLeaf(ordered); err != nil {
		t.Fatalf("ordered context: %v", err)
	}
}

func TestOutcomeText(t *testing.T) {
	for _, o := range []Outcome{Success, Failure, Denied, Timeout} {
		b, err := o.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Outcome
		if err := back.UnmarshalText(b); err != nil || back != o {
			t.Fatalf("%v: %v %v", o, back, err)
		}
	}
	if _, err := ParseOutcome("ok"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatal(err)
	}
}

// Validate applies Log's rules, a zero timestamp standing for now, and
// leaves the record as it was.
func TestRecordValidate(t *testing.T) {
	r := Record{Who: "a", What: "b"}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if !r.Timestamp.IsZero() {
		t.Fatal("Validate changed the record")
	}
	for name, bad := range map[string]Record{
		"no what":    {Who: "a"},
		"control":    {Who: "a\x00", What: "b"},
		"outcome":    {Who: "a", What: "b", Outcome: 9},
		"long who":   {Who: strings.Repeat("a", MaxIDLen+1), What: "b"},
		"before1970": {Who: "a", What: "b", Timestamp: time.Unix(-1, 0)},
	} {
		err := bad.Validate()
		if !errors.Is(err, ErrInvalidArgument) && !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
