package vault

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// summary renders an event without its time.
func summary(ev AccessEvent) string {
	s := fmt.Sprintf("%s %s %s", ev.Agent, ev.Operation, ev.Outcome)
	if ev.Reason != "" {
		s += " " + ev.Reason
	}
	if ev.Version != 0 {
		s += fmt.Sprintf(" v%d", ev.Version)
	}
	if ev.SandboxID != "" {
		s += " " + ev.SandboxID
	}
	return s
}

func TestEveryAccessIsRecorded(t *testing.T) {
	f := newFixture(t, Config{})
	r := ref("agents/a", "K")
	f.create("a", r, "value-1")
	f.get("a", r)
	f.get("b", r)
	f.svc.UpdateSecret(bg, "a", UpdateSecretRequest{Ref: r, Value: val("value-2"), CAS: ptr[uint32](7)})
	f.svc.UpdateSecret(bg, "a", UpdateSecretRequest{Ref: r, Value: val("value-2")})
	f.svc.GetSecret(bg, "a", GetSecretRequest{Ref: r, Version: 5})
	f.svc.GetSecretMetadata(bg, "b", r)
	d, err := f.svc.CreateDelegation(bg, "a", CreateDelegationRequest{Delegatee: "c", Secrets: []SecretRef{r}, Restrictions: DelegationRestrictions{SingleUse: true}})
	must(t, err)
	f.fetch("c", GetDelegatedSecretsRequest{SandboxID: "sb-1", Refs: []SecretRef{r}})
	f.fetch("c", GetDelegatedSecretsRequest{SandboxID: "sb-1", Refs: []SecretRef{r}})
	must(t, f.svc.RevokeDelegation(bg, "a", d.ID))
	f.svc.DeleteSecret(bg, "a", DeleteSecretRequest{Ref: r})

	want := []string{
		"a create allowed v1",
		"a get allowed v1",
		"b get denied access_denied",
		"a update failed cas_mismatch",
		"a update allowed v2",
		"a get failed not_found v5",
		"b metadata denied access_denied",
		"a create_delegation allowed",
		"c delegated_get allowed v2 sb-1",
		"c delegated_get failed delegation_exhausted sb-1",
		"a revoke_delegation allowed",
		"a delete allowed v2",
	}
	evs := f.events("a", r)
	var got []string
	for _, ev := range evs {
		got = append(got, summary(ev))
		if ev.Ref != r || ev.Time.IsZero() {
			t.Fatalf("event %+v", ev)
		}
		if strings.Contains(fmt.Sprintf("%+v", ev), "value-") {
			t.Fatalf("an event carries a value: %+v", ev)
		}
		if (ev.Operation == OpCreateDelegation || ev.Operation == OpDelegatedGet || ev.Operation == OpRevokeDelegation) && ev.DelegationID != d.ID {
			t.Fatalf("delegation id missing: %+v", ev)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Time.Before(evs[i-1].Time) {
			t.Fatal("events out of order")
		}
	}
	// The log outlives restarts.
	f.restart()
	if n := len(f.events("a", r)); n != len(want)+1 { // + the read above
		t.Fatalf("%d events after restart", n)
	}
}

func TestAccessLogRangeAndPages(t *testing.T) {
	f := newFixture(t, Config{})
	r := ref("agents/a", "K")
	f.create("a", r, "v")
	start := f.clock.now()
	for day := range 3 {
		for range 10 {
			f.get("a", r)
		}
		if day < 2 {
			f.clock.advance(24 * time.Hour)
		}
	}
	all, err := f.svc.GetAccessLog(bg, "a", GetAccessLogRequest{Ref: r, Since: start, Until: f.clock.now(), Limit: 1000})
	must(t, err)
	if len(all.Events) != 30 || all.NextPageToken != "" {
		t.Fatalf("%d events, token %q", len(all.Events), all.NextPageToken)
	}
	// Pages of 7 cover the same events once each, in order.
	var paged []AccessEvent
	token := ""
	for range 10 {
		page, err := f.svc.GetAccessLog(bg, "a", GetAccessLogRequest{Ref: r, Since: start, Until: all.Events[29].Time, Limit: 7, PageToken: token})
		must(t, err)
		paged = append(paged, page.Events...)
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	if len(paged) != 30 {
		t.Fatalf("%d events over the pages", len(paged))
	}
	for i := range paged {
		if paged[i] != all.Events[i] {
			t.Fatalf("page event %d differs", i)
		}
	}
	// The default window is the last 24 hours: the third day's reads, and
	// the six reads of the log above, which are recorded too.
	last, err := f.svc.GetAccessLog(bg, "a", GetAccessLogRequest{Ref: r, Limit: 1000})
	must(t, err)
	logReads := 0
	for _, ev := range last.Events {
		if ev.Operation == OpReadAccessLog {
			logReads++
		}
	}
	if len(last.Events) != 16 || logReads != 6 {
		t.Fatalf("%d events in the last 24h, %d of them log reads", len(last.Events), logReads)
	}
	mid, err := f.svc.GetAccessLog(bg, "a", GetAccessLogRequest{Ref: r, Since: all.Events[10].Time, Until: all.Events[19].Time})
	must(t, err)
	if len(mid.Events) != 10 || mid.Events[0] != all.Events[10] {
		t.Fatalf("%d events in the middle day", len(mid.Events))
	}
	_, err = f.svc.GetAccessLog(bg, "a", GetAccessLogRequest{Ref: r, Since: start.Add(-400 * 24 * time.Hour), Until: start})
	wantErr(t, err, ErrInvalidArgument)
}

func TestAuditAllAccessOff(t *testing.T) {
	no := false
	f := newFixture(t, Config{AuditAllAccess: &no})
	r := ref("agents/a", "K")
	f.create("a", r, "v")
	f.get("a", r)
	f.svc.GetSecretMetadata(bg, "a", r)
	f.get("b", r)
	f.fetch("a", GetDelegatedSecretsRequest{SandboxID: "sb", Refs: []SecretRef{r}})
	var got []string
	for _, ev := range f.events("a", r) {
		got = append(got, summary(ev))
	}
	want := "a create allowed v1|b get denied access_denied|a delegated_get allowed v1 sb"
	if strings.Join(got, "|") != want {
		t.Fatalf("recorded %q, want %q", strings.Join(got, "|"), want)
	}
}

// memoryRecorder is an external recorder that can be told to fail.
type memoryRecorder struct {
	mu     sync.Mutex
	events []AccessEvent
	fail   atomic.Bool
}

func (m *memoryRecorder) RecordAccess(_ context.Context, ev AccessEvent) error {
	if m.fail.Load() {
		return errors.New("audit log unreachable")
	}
	m.mu.Lock()
	m.events = append(m.events, ev)
	m.mu.Unlock()
	return nil
}

func (m *memoryRecorder) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.events)
}

// An external recorder replaces the local log; when it cannot record,
// the vault refuses: no value out, no change in.
func TestRecorderFailsClosed(t *testing.T) {
	rec := &memoryRecorder{}
	f := newFixture(t, Config{Recorder: rec})
	r := ref("agents/a", "K")
	f.create("a", r, "v1")
	d := f.delegate(CreateDelegationRequest{Delegatee: "c", Secrets: []SecretRef{r}, Restrictions: DelegationRestrictions{SingleUse: true}})
	if rec.count() != 2 || len(f.dump(prefixLog)) != 0 {
		t.Fatalf("%d events recorded externally, %d locally", rec.count(), len(f.dump(prefixLog)))
	}
	_, err := f.svc.GetAccessLog(bg, "a", GetAccessLogRequest{Ref: r})
	wantErr(t, err, ErrUnavailable)

	rec.fail.Store(true)
	before := f.dump("vault/")
	s, err := f.svc.GetSecret(bg, "a", GetSecretRequest{Ref: r})
	if s != nil {
		t.Fatal("a value was returned unrecorded")
	}
	wantErr(t, err, ErrAuditFailed)
	resp, err := f.svc.GetSecrets(bg, "a", GetSecretsRequest{Refs: []SecretRef{r}})
	if resp != nil {
		t.Fatal("values were returned unrecorded")
	}
	wantErr(t, err, ErrAuditFailed)
	_, err = f.svc.UpdateSecret(bg, "a", UpdateSecretRequest{Ref: r, Value: val("v2")})
	wantErr(t, err, ErrAuditFailed)
	_, err = f.svc.GetDelegatedSecrets(bg, "c", GetDelegatedSecretsRequest{SandboxID: "sb", Refs: []SecretRef{r}})
	wantErr(t, err, ErrAuditFailed)
	_, err = f.svc.GetSecret(bg, "b", GetSecretRequest{Ref: r})
	wantErr(t, err, ErrAccessDenied, ErrAuditFailed)
	_, err = f.svc.RotateSecret(bg, "a", RotateSecretRequest{Ref: r, Value: val("v3")})
	wantErr(t, err, ErrAuditFailed)
	_, err = f.svc.CreateDelegation(bg, "a", CreateDelegationRequest{Delegatee: "c", Secrets: []SecretRef{r}})
	wantErr(t, err, ErrAuditFailed)
	wantErr(t, f.svc.RevokeDelegation(bg, "a", d.ID), ErrAuditFailed)
	after := f.dump("vault/")
	if len(after) != len(before) {
		t.Fatal("a refused call changed the store")
	}
	for k, v := range before {
		if string(after[k]) != string(v) {
			t.Fatalf("a refused call changed %q", k)
		}
	}

	rec.fail.Store(false)
	if v, err := f.get("a", r); err != nil || v != "v1" {
		t.Fatalf("%q %v", v, err)
	}
	// The single use was not spent by the refused fetch.
	if _, err := f.fetch("c", GetDelegatedSecretsRequest{SandboxID: "sb", Refs: []SecretRef{r}}); err != nil {
		t.Fatal(err)
	}
}

// A recorder that can be queried answers GetAccessLog.
type queryableRecorder struct{ memoryRecorder }

func (q *queryableRecorder) ReadAccessLog(_ context.Context, req GetAccessLogRequest) (*AccessLogResponse, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	resp := &AccessLogResponse{}
	for _, ev := range q.events {
		if ev.Ref == req.Ref {
			resp.Events = append(resp.Events, ev)
		}
	}
	return resp, nil
}

func TestQueryableRecorder(t *testing.T) {
	rec := &queryableRecorder{}
	f := newFixture(t, Config{Recorder: rec})
	r := ref("agents/a", "K")
	f.create("a", r, "v1")
	f.get("a", r)
	evs := f.events("a", r)
	if len(evs) != 2 || evs[1].Operation != OpGet {
		t.Fatalf("%+v", evs)
	}
}

func TestErrorCodes(t *testing.T) {
	for err, code := range map[error]string{
		nil: "", ErrNotFound: "not_found", fmt.Errorf("x: %w: %w", ErrNotFound, ErrSecretDeleted): "deleted",
		&AccessDeniedError{}: "access_denied", &CASMismatchError{}: "cas_mismatch", ErrDelegationExhausted: "delegation_exhausted",
		context.DeadlineExceeded: "timeout", errors.New("disk on fire"): "internal",
	} {
		if got := ErrorCode(err); got != code {
			t.Errorf("ErrorCode(%v) = %q, want %q", err, got, code)
		}
	}
}
