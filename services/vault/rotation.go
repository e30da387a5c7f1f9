package vault

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/creto-systems/creto/secret"
	"github.com/creto-systems/creto/services/crypto"
)

// SchedulerAgent is the identity scheduled rotations are made and
// recorded as (VersionInfo.CreatedBy, AccessEvent.Agent). It contains a
// space, which agent ids cannot, so no caller can act as it.
const SchedulerAgent = "vault scheduler"

// Generator makes a new value for a secret being rotated. Generators for
// credentials another system issues (a database password, a cloud API
// key) must also change the credential there, and return only once the
// new value works; Infisical's two-credential scheme (alternate between
// two users) avoids downtime while the old value is still in use.
type Generator interface {
	Generate(ctx context.Context, ref SecretRef, meta SecretMetadata) (SecretValue, error)
}

// GeneratorFunc adapts a function to Generator.
type GeneratorFunc func(ctx context.Context, ref SecretRef, meta SecretMetadata) (SecretValue, error)

// Generate calls f.
func (f GeneratorFunc) Generate(ctx context.Context, ref SecretRef, meta SecretMetadata) (SecretValue, error) {
	return f(ctx, ref, meta)
}

// DefaultGenerators returns the built-in generators: 256 random bits as
// unpadded base64url (43 characters) for API_KEY, TOKEN and GENERIC
// secrets — right for credentials this platform issues and checks itself —
// and a 32-character password with upper and lower case letters, digits
// and symbols for PASSWORD. CERTIFICATE, PRIVATE_KEY and
// CONNECTION_STRING have none: they need an issuer (a CA, a key service,
// a database), so a deployment supplies those through Config.Generators.
func DefaultGenerators() map[SecretType]Generator {
	random := GeneratorFunc(randomToken)
	return map[SecretType]Generator{
		TypeAPIKey:   random,
		TypeToken:    random,
		TypeGeneric:  random,
		TypePassword: GeneratorFunc(randomPassword),
	}
}

func randomToken(context.Context, SecretRef, SecretMetadata) (SecretValue, error) {
	b, err := crypto.New().RandomBytes(32)
	if err != nil {
		return SecretValue{}, err
	}
	defer clear(b)
	out := make([]byte, base64.RawURLEncoding.EncodedLen(len(b)))
	base64.RawURLEncoding.Encode(out, b)
	return secret.Wrap(out), nil
}

// Password characters: no quotes, backslash, space or other characters
// that shells, URLs and connection strings treat specially.
const (
	pwLower   = "abcdefghijklmnopqrstuvwxyz"
	pwUpper   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	pwDigits  = "0123456789"
	pwSymbols = "!#%+-.:=?@^_~"
	pwChars   = pwLower + pwUpper + pwDigits + pwSymbols
	pwLength  = 32
)

// randomPassword draws characters uniformly (rejection sampling, no
// modulo bias) and redraws the rare password that lacks a class, so every
// password passes the usual composition rules and all such passwords are
// equally likely.
func randomPassword(context.Context, SecretRef, SecretMetadata) (SecretValue, error) {
	p := crypto.New()
	limit := byte(256 - 256%len(pwChars))
	for {
		out := make([]byte, 0, pwLength)
		for len(out) < pwLength {
			b, err := p.RandomBytes(2 * pwLength)
			if err != nil {
				return SecretValue{}, err
			}
			for _, c := range b {
				if c < limit && len(out) < pwLength {
					out = append(out, pwChars[int(c)%len(pwChars)])
				}
			}
			clear(b)
		}
		s := string(out)
		if strings.ContainsAny(s, pwLower) && strings.ContainsAny(s, pwUpper) &&
			strings.ContainsAny(s, pwDigits) && strings.ContainsAny(s, pwSymbols) {
			return secret.Wrap(out), nil
		}
		clear(out)
	}
}

// RotateSecretRequest rotates a secret.
type RotateSecretRequest struct {
	Ref SecretRef
	// Value is the new value; empty means "generate one" with the
	// generator for the secret's type.
	Value SecretValue
	// CAS is as in UpdateSecretRequest. A generated value is always
	// written with an implicit check-and-set on the version it replaces,
	// so a write racing the generator fails the rotation instead of being
	// overwritten.
	CAS *uint32
}

// RotateSecretResponse reports a rotation (seed RotateSecretResponse).
type RotateSecretResponse struct {
	Ref             SecretRef
	Version         uint32
	PreviousVersion uint32
	RotatedAt       time.Time
	// NextRotationAt is zero when rotation is manual only.
	NextRotationAt time.Time
}

// RotateSecret writes a new version from req.Value or, if it is empty,
// from the generator for the secret's type (seed RotateSecret). It needs
// AccessWrite. The old version stays readable by number until
// max_versions pushes it out.
func (s *Service) RotateSecret(ctx context.Context, caller string, req RotateSecretRequest) (*RotateSecretResponse, error) {
	const op = "rotate secret"
	if err := validateCall(caller, req.Ref); err != nil {
		return nil, opError(op, "", err)
	}
	generate := req.Value.Len() == 0
	if !generate {
		if err := s.validateValue(req.Value); err != nil {
			return nil, opError(op, "", err)
		}
	}
	if err := s.enter(ctx); err != nil {
		return nil, opError(op, req.Ref.String(), err)
	}
	defer s.life.RUnlock()
	w := writeRequest{op: OpRotate, caller: caller, ref: req.Ref, value: req.Value, cas: req.CAS}
	if generate {
		ev := s.event(caller, OpRotate, req.Ref)
		m, err := s.readAuthorized(ctx, caller, req.Ref, AccessWrite)
		if err == nil {
			w.value, err = s.generate(ctx, m)
		}
		if err != nil {
			return nil, opError(op, req.Ref.String(), s.refused(ctx, ev, err))
		}
		defer w.value.Destroy()
		if w.cas == nil {
			w.cas = &m.current
		}
	}
	out, err := s.write(ctx, w)
	if err != nil {
		return nil, opError(op, req.Ref.String(), err)
	}
	return &RotateSecretResponse{
		Ref: req.Ref, Version: out.Version, PreviousVersion: out.Version - 1, RotatedAt: out.CreatedAt,
		NextRotationAt: nextRotation(out.Metadata.Rotation, out.CreatedAt),
	}, nil
}

// generate makes a value for the secret m describes.
func (s *Service) generate(ctx context.Context, m *metaRecord) (SecretValue, error) {
	g := s.cfg.generators[m.meta.Type]
	if g == nil {
		return SecretValue{}, fmt.Errorf("%w: %w: %v secrets need a value", ErrInvalidArgument, ErrNoGenerator, m.meta.Type)
	}
	v, err := g.Generate(ctx, m.ref, m.meta.clone())
	if err != nil {
		return SecretValue{}, fmt.Errorf("generator for %v: %w", m.meta.Type, err)
	}
	if err := s.validateValue(v); err != nil {
		v.Destroy()
		return SecretValue{}, fmt.Errorf("generator for %v: %w", m.meta.Type, err)
	}
	return v, nil
}

func nextRotation(p RotationPolicy, last time.Time) time.Time {
	if p.Interval == 0 {
		return time.Time{}
	}
	return last.Add(p.Interval)
}

// RotationSchedule is a secret's rotation state (seed RotationSchedule).
type RotationSchedule struct {
	Ref      SecretRef
	Interval time.Duration
	// LastRotatedAt is when the current version was written.
	LastRotatedAt time.Time
	// NextRotationAt is zero when rotation is manual only.
	NextRotationAt time.Time
	// Automatic reports whether the node will rotate the secret itself.
	Automatic bool
}

// GetRotationSchedule returns a secret's rotation state (seed
// GetRotationSchedule). It needs AccessMetadata and reads no value.
func (s *Service) GetRotationSchedule(ctx context.Context, caller string, ref SecretRef) (*RotationSchedule, error) {
	const op = "get rotation schedule"
	if err := validateCall(caller, ref); err != nil {
		return nil, opError(op, "", err)
	}
	if err := s.enter(ctx); err != nil {
		return nil, opError(op, ref.String(), err)
	}
	defer s.life.RUnlock()
	ev := s.event(caller, OpRotationSchedule, ref)
	m, err := s.readAuthorized(ctx, caller, ref, AccessMetadata)
	if err != nil {
		return nil, opError(op, ref.String(), s.refused(ctx, ev, err))
	}
	if err := s.auditRead(ctx, withOutcome(ev, nil)); err != nil {
		return nil, opError(op, ref.String(), err)
	}
	last := unixTime(m.versions[len(m.versions)-1].created)
	iv := m.meta.Rotation.Interval
	return &RotationSchedule{
		Ref: ref, Interval: iv, LastRotatedAt: last, NextRotationAt: nextRotation(m.meta.Rotation, last),
		Automatic: iv > 0 && s.cfg.generators[m.meta.Type] != nil,
	}, nil
}

// rotationSchedule holds when each secret with a rotation interval is
// next due, so the scheduler never scans the store.
type rotationSchedule struct {
	mu  sync.Mutex
	due map[SecretRef]int64 // unix ns
}

func (r *rotationSchedule) reset() {
	r.mu.Lock()
	r.due = map[SecretRef]int64{}
	r.mu.Unlock()
}

// update records when m is next due, from its current version's creation.
func (r *rotationSchedule) update(m *metaRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.due == nil {
		return // sealed
	}
	if iv := m.meta.Rotation.Interval; iv > 0 {
		r.due[m.ref] = m.versions[len(m.versions)-1].created + int64(iv)
	} else {
		delete(r.due, m.ref)
	}
}

func (r *rotationSchedule) remove(ref SecretRef) {
	r.mu.Lock()
	delete(r.due, ref)
	r.mu.Unlock()
}

func (r *rotationSchedule) dueAt(now time.Time) []SecretRef {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []SecretRef
	for ref, t := range r.due {
		if t <= now.UnixNano() {
			out = append(out, ref)
		}
	}
	return out
}

// schedulerLoop runs due rotations and prunes old delegations every
// scheduler_interval while the vault is unsealed.
func (s *Service) schedulerLoop() {
	defer close(s.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tick, stopTicker := s.clock.ticker(s.cfg.SchedulerInterval)
	defer stopTicker()
	go func() {
		<-s.stop
		cancel()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			s.runScheduler(ctx)
		}
	}
}

// runScheduler is one scheduler pass. Failures are logged and retried at
// the next pass; they never stop the loop.
func (s *Service) runScheduler(ctx context.Context) {
	if s.enter(ctx) != nil {
		return // sealed or closed: nothing to do
	}
	defer s.life.RUnlock()
	now := s.clock.now()
	for _, ref := range s.schedule.dueAt(now) {
		if err := s.rotateScheduled(ctx, ref); err != nil && !errors.Is(err, ErrCASMismatch) {
			s.cfg.Log.Error("vault: scheduled rotation failed", "component", "vault", "secret", ref.String(), "err", err)
		}
	}
	if err := s.pruneDelegations(ctx, now); err != nil {
		s.cfg.Log.Error("vault: pruning delegations failed", "component", "vault", "err", err)
	}
}

// rotateScheduled rotates one due secret as SchedulerAgent. A write that
// lands while the generator runs wins (check-and-set), and resets the
// schedule.
func (s *Service) rotateScheduled(ctx context.Context, ref SecretRef) error {
	m, err := s.readMeta(ctx, ref)
	if errors.Is(err, ErrNotFound) {
		s.schedule.remove(ref)
		return nil
	}
	if err != nil {
		return err
	}
	v, err := s.generate(ctx, m)
	if err != nil {
		return err
	}
	defer v.Destroy()
	_, err = s.write(ctx, writeRequest{op: OpRotate, caller: SchedulerAgent, ref: ref, value: v, cas: &m.current, system: true})
	return err
}
