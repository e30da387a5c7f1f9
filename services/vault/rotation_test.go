package vault

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRotateSecret(t *testing.T) {
	var calls atomic.Int32
	var fail atomic.Bool
	certGen := GeneratorFunc(func(ctx context.Context, r SecretRef, m SecretMetadata) (SecretValue, error) {
		calls.Add(1)
		if fail.Load() {
			return SecretValue{}, errors.New("CA unreachable")
		}
		return val("-----BEGIN CERTIFICATE----- " + m.Description), nil
	})
	f := newFixture(t, Config{Generators: map[SecretType]Generator{TypeCertificate: certGen}})
	tok := ref("agents/a", "TOKEN")
	_, err := f.svc.CreateSecret(bg, "a", CreateSecretRequest{Ref: tok, Value: val("t1"), Metadata: SecretMetadata{Type: TypeToken}})
	must(t, err)

	out, err := f.svc.RotateSecret(bg, "a", RotateSecretRequest{Ref: tok, Value: val("t2")})
	must(t, err)
	if out.Version != 2 || out.PreviousVersion != 1 || !out.NextRotationAt.IsZero() {
		t.Fatalf("%+v", out)
	}
	out, err = f.svc.RotateSecret(bg, "a", RotateSecretRequest{Ref: tok})
	must(t, err)
	v, _ := f.get("a", tok)
	if raw, err := base64.RawURLEncoding.DecodeString(v); err != nil || len(raw) != 32 || out.Version != 3 {
		t.Fatalf("generated token %q (%v), version %d", v, err, out.Version)
	}
	_, err = f.svc.RotateSecret(bg, "a", RotateSecretRequest{Ref: tok, CAS: ptr[uint32](2)})
	wantErr(t, err, ErrCASMismatch)

	// Types without a built-in generator need a value or a configured one.
	conn := ref("agents/a", "DB_URL")
	_, err = f.svc.CreateSecret(bg, "a", CreateSecretRequest{Ref: conn, Value: val("postgres://u:p@h/db"), Metadata: SecretMetadata{Type: TypeConnectionString}})
	must(t, err)
	_, err = f.svc.RotateSecret(bg, "a", RotateSecretRequest{Ref: conn})
	wantErr(t, err, ErrInvalidArgument, ErrNoGenerator)
	cert := ref("agents/a", "CERT")
	_, err = f.svc.CreateSecret(bg, "a", CreateSecretRequest{Ref: cert, Value: val("c1"), Metadata: SecretMetadata{Type: TypeCertificate, Description: "api.example"}})
	must(t, err)
	_, err = f.svc.RotateSecret(bg, "a", RotateSecretRequest{Ref: cert})
	must(t, err)
	if v, _ := f.get("a", cert); v != "-----BEGIN CERTIFICATE----- api.example" {
		t.Fatalf("%q", v)
	}
	// A failing generator writes nothing.
	fail.Store(true)
	_, err = f.svc.RotateSecret(bg, "a", RotateSecretRequest{Ref: cert})
	if err == nil || !strings.Contains(err.Error(), "CA unreachable") {
		t.Fatal(err)
	}
	info, _ := f.svc.GetSecretMetadata(bg, "a", cert)
	if info.CurrentVersion != 2 {
		t.Fatalf("version %d after a failed rotation", info.CurrentVersion)
	}
	// Denied callers never reach the generator.
	before := calls.Load()
	_, err = f.svc.RotateSecret(bg, "b", RotateSecretRequest{Ref: cert})
	wantErr(t, err, ErrAccessDenied)
	if calls.Load() != before {
		t.Fatal("the generator ran for a denied caller")
	}
}

// A write that lands while the generator runs wins: the rotation fails
// with a check-and-set mismatch instead of overwriting it.
func TestRotationLosesToConcurrentWrite(t *testing.T) {
	var f *fixture
	r := ref("agents/a", "K")
	racer := GeneratorFunc(func(ctx context.Context, _ SecretRef, _ SecretMetadata) (SecretValue, error) {
		// The service holds no write lock while generating, so this write
		// goes through.
		_, err := f.svc.UpdateSecret(ctx, "a", UpdateSecretRequest{Ref: r, Value: val("manual")})
		return val("generated"), err
	})
	f = newFixture(t, Config{Generators: map[SecretType]Generator{TypeGeneric: racer}})
	f.create("a", r, "v1")
	_, err := f.svc.RotateSecret(bg, "a", RotateSecretRequest{Ref: r})
	wantErr(t, err, ErrCASMismatch)
	if v, _ := f.get("a", r); v != "manual" {
		t.Fatalf("%q", v)
	}
}

func TestScheduledRotation(t *testing.T) {
	f := newFixture(t, Config{MinRotationInterval: time.Minute})
	r := ref("agents/a", "PW")
	_, err := f.svc.CreateSecret(bg, "a", CreateSecretRequest{Ref: r, Value: val("initial"),
		Metadata: SecretMetadata{Type: TypePassword, Rotation: RotationPolicy{Interval: time.Hour}}})
	must(t, err)
	sched, err := f.svc.GetRotationSchedule(bg, "a", r)
	must(t, err)
	if !sched.Automatic || sched.Interval != time.Hour || !sched.NextRotationAt.Equal(sched.LastRotatedAt.Add(time.Hour)) {
		t.Fatalf("%+v", sched)
	}
	version := func() uint32 {
		info, err := f.svc.GetSecretMetadata(bg, "a", r)
		must(t, err)
		return info.CurrentVersion
	}
	f.clock.advance(59 * time.Minute)
	f.clock.runScheduler()
	if version() != 1 {
		t.Fatal("rotated early")
	}
	f.clock.advance(2 * time.Minute)
	f.clock.runScheduler()
	if version() != 2 {
		t.Fatal("not rotated when due")
	}
	s, err := f.svc.GetSecret(bg, "a", GetSecretRequest{Ref: r})
	must(t, err)
	if s.CreatedBy != SchedulerAgent || s.Value.Len() != pwLength || string(s.Value.Expose()) == "initial" {
		t.Fatalf("rotated version by %q, %d bytes", s.CreatedBy, s.Value.Len())
	}
	s.Destroy()
	rotated := false
	for _, ev := range f.events("a", r) {
		rotated = rotated || (ev.Operation == OpRotate && ev.Agent == SchedulerAgent && ev.Outcome == OutcomeAllowed && ev.Version == 2)
	}
	if !rotated {
		t.Fatal("the scheduled rotation is not in the access log")
	}

	// A manual write resets the clock.
	f.clock.advance(50 * time.Minute)
	_, err = f.svc.UpdateSecret(bg, "a", UpdateSecretRequest{Ref: r, Value: val("manual")})
	must(t, err)
	f.clock.advance(50 * time.Minute)
	f.clock.runScheduler()
	if version() != 3 {
		t.Fatal("rotated although a manual write reset the schedule")
	}

	// Sealed, the scheduler does nothing; the schedule survives a restart.
	must(t, f.svc.Seal(bg))
	f.clock.advance(time.Hour)
	f.clock.runScheduler()
	f.restart()
	if version() != 3 {
		t.Fatal("rotated while sealed")
	}
	f.clock.runScheduler()
	if version() != 4 {
		t.Fatal("the schedule did not survive the restart")
	}

	// Turning rotation off removes the schedule.
	_, err = f.svc.UpdateSecret(bg, "a", UpdateSecretRequest{Ref: r, Value: val("x"), Metadata: &SecretMetadata{Type: TypePassword}})
	must(t, err)
	f.clock.advance(48 * time.Hour)
	f.clock.runScheduler()
	if version() != 5 {
		t.Fatal("rotated with rotation off")
	}
}

func TestGeneratedPasswords(t *testing.T) {
	for range 200 {
		v, err := randomPassword(bg, SecretRef{}, SecretMetadata{})
		must(t, err)
		p := string(v.Expose())
		if len(p) != pwLength || strings.Trim(p, pwChars) != "" {
			t.Fatalf("password %q", p)
		}
		for _, class := range []string{pwLower, pwUpper, pwDigits, pwSymbols} {
			if !strings.ContainsAny(p, class) {
				t.Fatalf("password %q lacks one of %q", p, class)
			}
		}
	}
}
