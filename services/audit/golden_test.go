package audit

import (
	"context"
	"encoding/hex"
	"testing"
	"time"
)

// TestStoredLeafBytes pins the leaf the log itself stores (the sequencer
// builds it from the header and the pre-encoded body, not through
// EncodeLeaf) and a field's index key, byte for byte: logs already
// written must keep verifying with standard tools and keep answering
// queries, so a change here is a format change, not a refactoring.
func TestStoredLeafBytes(t *testing.T) {
	e := newEnv(t, Config{})
	r := Record{
		Timestamp:       time.Unix(0, 3),
		Source:          "s",
		Who:             "a",
		DelegationChain: []string{"u", "pq"},
		What:            "b",
		Outcome:         Denied,
		Signature:       []byte{1, 2, 3},
	}
	if _, err := e.svc.Append(context.Background(), []Record{r}); err != nil {
		t.Fatal(err)
	}
	leaf, err := e.store.Get(context.Background(), recordKey(0))
	if err != nil {
		t.Fatal(err)
	}
	want := "01" + // version
		"0000000000000000" + // index
		"1898b5d9b3d68000" + // logged_at: the test clock, 2026-03-01T12:00:00Z
		"0000000000000003" + // timestamp
		"02" + // outcome: denied
		"000173" + "000161" + "000162" + // source "s", who "a", what "b"
		"0000" + "0000" + "0000" + "0000" + // resource, why, policy_id, trace_id
		"02" + "000175" + "00027071" + // delegation chain "u", "pq"
		"00" + // no context
		"0003010203" // signature
	if got := hex.EncodeToString(leaf); got != want {
		t.Fatalf("stored leaf\n got %s\nwant %s", got, want)
	}
	if got, want := string(indexPrefix(indexWho, "a")), "audit/ix/w\x00\x01a"; got != want {
		t.Fatalf("index prefix %q, want %q", got, want)
	}
}
