package nhi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/crypto"
)

// Stored form of a link: one state byte, then the signed encoding.
const (
	stateActive  = 0
	stateRevoked = 1
)

func delegationKey(id DelegationID) []byte { return []byte(prefixDelegations + id.String()) }

func childPrefix(parent DelegationID) []byte {
	return []byte(prefixDelegationKids + parent.String() + "/")
}

// storedLink is a link as the store holds it, with its revocation state.
type storedLink struct {
	d       *Delegation
	revoked bool
}

// loadLink reads one link from the store.
func (s *Service) loadLink(ctx context.Context, id DelegationID) (storedLink, error) {
	rec, err := s.store.Get(ctx, delegationKey(id))
	if errors.Is(err, kv.ErrNotFound) {
		return storedLink{}, detail(ErrNotFound, "delegation %s", id)
	}
	if err != nil {
		return storedLink{}, err
	}
	if len(rec) < 1 || rec[0] > stateRevoked {
		return storedLink{}, detail(ErrDelegationMalformed, "stored delegation %s is corrupt", id)
	}
	d, err := decodeDelegation(rec[1:])
	if err != nil {
		return storedLink{}, fmt.Errorf("%w: stored delegation %s: %w", ErrDelegationMalformed, id, err)
	}
	if d.id != id {
		return storedLink{}, detail(ErrDelegationForged, "stored under %s but names %s", id, d.id)
	}
	return storedLink{d: d, revoked: rec[0] == stateRevoked}, nil
}

// loadChain reads the chain ending at id, root first.
func (s *Service) loadChain(ctx context.Context, id DelegationID) ([]storedLink, error) {
	var links []storedLink
	for cur := id; ; {
		if len(links) == MaxChainLinks {
			return nil, detail(ErrChainTooDeep, "more than %d links above %s", MaxChainLinks, id)
		}
		l, err := s.loadLink(ctx, cur)
		if err != nil {
			if len(links) > 0 && errors.Is(err, ErrNotFound) {
				return nil, fmt.Errorf("%w: parent of %s: %w", ErrChainBroken, links[len(links)-1].d.id, err)
			}
			return nil, err
		}
		links = append(links, l)
		p, ok := l.d.Parent()
		if !ok {
			break
		}
		cur = p
	}
	slices.Reverse(links)
	return links, nil
}

// CreateDelegation records that delegator grants delegatee permissions
// until expiry, signed with the delegator's current hybrid key. A zero
// expiry means Config.DefaultDelegationTTL (or the parent's expiry, if
// sooner). With a parent, the new link extends the parent's chain and may
// only narrow it: its delegator must be the parent's delegatee, its
// permissions a subset of the parent's and its expiry no later; the chain
// may not exceed Config.DelegationChainMaxDepth or name an agent twice.
// The parent chain must verify now.
//
// The service signs with the delegator's key: the caller must already have
// established that it acts for the delegator.
func (s *Service) CreateDelegation(ctx context.Context, delegator, delegatee string, permissions []string, expiry time.Time, parent *DelegationID) (*Delegation, error) {
	const op = "create delegation"
	if err := s.enter(); err != nil {
		return nil, opError(op, delegator, err)
	}
	defer s.life.RUnlock()
	d, err := s.createDelegation(ctx, delegator, delegatee, permissions, expiry, parent)
	if err != nil {
		return nil, opError(op, delegator, err)
	}
	s.emit(ctx, Event{Kind: EventDelegationCreated, AgentID: delegator, DelegateeID: delegatee, DelegationID: d.id.String(),
		Permissions: d.Permissions(), ExpiresAt: d.ExpiresAt(), KeyVersion: d.keyVersion})
	return d, nil
}

func (s *Service) createDelegation(ctx context.Context, delegator, delegatee string, permissions []string, expiry time.Time, parent *DelegationID) (*Delegation, error) {
	if err := validateID("delegator", delegator); err != nil {
		return nil, err
	}
	if err := validateID("delegatee", delegatee); err != nil {
		return nil, err
	}
	if delegator == delegatee {
		return nil, detail(ErrDelegationCycle, "an agent cannot delegate to itself")
	}
	perms, err := normalizePermissions(permissions)
	if err != nil {
		return nil, err
	}
	// Holding the write lock from the parent's verification to the commit
	// orders this against RevokeDelegation: a child is never written under
	// a parent revoked in between.
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	nowMS := s.nowMS()
	d := &Delegation{depth: 1, createdAt: nowMS, delegator: delegator, delegatee: delegatee, permissions: perms}
	maxExpiry := nowMS + s.cfg.MaxDelegationTTL.Milliseconds()
	root := delegator
	if parent != nil {
		links, err := s.loadChain(ctx, *parent)
		if err != nil {
			return nil, fmt.Errorf("parent: %w", err)
		}
		if err := s.verifyLinks(ctx, links, nowMS); err != nil {
			return nil, fmt.Errorf("parent: %w", err)
		}
		p := links[len(links)-1].d
		switch {
		case p.delegatee != delegator:
			return nil, detail(ErrChainBroken, "the parent delegates to %s, not to the delegator", quote(p.delegatee))
		case p.depth+1 > s.cfg.DelegationChainMaxDepth:
			return nil, detail(ErrChainTooDeep, "the chain would have %d links, the limit is %d", p.depth+1, s.cfg.DelegationChainMaxDepth)
		case !subset(perms, p.permissions):
			return nil, detail(ErrWidened, "permissions are not a subset of the parent's")
		}
		for _, l := range links {
			if l.d.delegator == delegatee || l.d.delegatee == delegatee {
				return nil, detail(ErrDelegationCycle, "%s is already on the chain", quote(delegatee))
			}
		}
		d.parent, d.hasParent, d.depth = p.id, true, p.depth+1
		root = links[0].d.delegator
		if expiry.IsZero() {
			maxExpiry = min(maxExpiry, p.expiresAt)
		} else if expiry.UnixMilli() > p.expiresAt {
			return nil, detail(ErrWidened, "the expiry is after the parent's")
		}
	}
	if expiry.IsZero() {
		d.expiresAt = min(nowMS+s.cfg.DefaultDelegationTTL.Milliseconds(), maxExpiry)
	} else {
		d.expiresAt = expiry.UnixMilli()
		if d.expiresAt <= nowMS || d.expiresAt > maxExpiry {
			return nil, detail(ErrInvalidArgument, "expiry must be in the future and within %v", s.cfg.MaxDelegationTTL)
		}
	}
	if d.expiresAt <= nowMS {
		return nil, detail(ErrDelegationExpired, "the parent expires now")
	}
	b, ok := s.agent(delegatee)
	if !ok {
		return nil, detail(ErrNotFound, "delegatee %s", quote(delegatee))
	}
	if err := b.usableAt(nowMS); err != nil {
		return nil, fmt.Errorf("delegatee %s: %w", quote(delegatee), err)
	}
	signer, version, err := s.currentSigner(ctx, delegator, nowMS)
	if err != nil {
		return nil, fmt.Errorf("delegator: %w", err)
	}
	d.keyVersion = version
	id, err := s.p.RandomBytes(len(d.id))
	if err != nil {
		return nil, err
	}
	copy(d.id[:], id)
	body := d.appendBody(nil)
	sig, err := s.p.Sign(signer, body, contextDelegation)
	if err != nil {
		return nil, err
	}
	d.enc = append(body, sig...)

	var batch kv.Batch
	batch.Set(delegationKey(d.id), append([]byte{stateActive}, d.enc...))
	if d.hasParent {
		batch.Set(append(childPrefix(d.parent), d.id.String()...), nil)
	}
	if err := s.indexGrant(ctx, &batch, d, root, nowMS); err != nil {
		return nil, err
	}
	if err := s.store.Apply(ctx, &batch); err != nil {
		return nil, err
	}
	s.ents.bump()
	return d, nil
}

// GetDelegationChain returns the chain ending at id, root first, as stored
// and without verifying it.
func (s *Service) GetDelegationChain(ctx context.Context, id DelegationID) (*DelegationChain, error) {
	const op = "get delegation chain"
	if err := s.enter(); err != nil {
		return nil, opError(op, id.String(), err)
	}
	defer s.life.RUnlock()
	links, err := s.loadChain(ctx, id)
	if err != nil {
		return nil, opError(op, id.String(), err)
	}
	c := &DelegationChain{entityType: s.cfg.EntityType}
	for _, l := range links {
		c.links = append(c.links, l.d)
	}
	return c, nil
}

// VerifyDelegation verifies the chain ending at id and returns it. It
// checks every link's signature against its delegator's key, every expiry,
// every revocation (links and agents), the depth, that permissions and
// expiries only narrow, that each link's delegator is the previous link's
// delegatee, and that no agent appears twice.
func (s *Service) VerifyDelegation(ctx context.Context, id DelegationID) (*DelegationChain, error) {
	const op = "verify delegation"
	if err := s.enter(); err != nil {
		return nil, opError(op, id.String(), err)
	}
	defer s.life.RUnlock()
	links, err := s.loadChain(ctx, id)
	if err != nil {
		return nil, opError(op, id.String(), err)
	}
	if err := s.verifyLinks(ctx, links, s.nowMS()); err != nil {
		return nil, opError(op, id.String(), err)
	}
	return s.verifiedChain(links), nil
}

// VerifyChain verifies a chain received from elsewhere (decoded with
// DecodeDelegationChain) as VerifyDelegation does, and additionally
// requires every link to be one this service recorded, byte for byte. It
// returns a verified copy; c itself is not changed.
func (s *Service) VerifyChain(ctx context.Context, c *DelegationChain) (*DelegationChain, error) {
	const op = "verify delegation chain"
	if err := s.enter(); err != nil {
		return nil, opError(op, "", err)
	}
	defer s.life.RUnlock()
	if c == nil || len(c.links) == 0 {
		return nil, opError(op, "", detail(ErrDelegationMalformed, "empty chain"))
	}
	if len(c.links) > s.cfg.DelegationChainMaxDepth {
		return nil, opError(op, "", detail(ErrChainTooDeep, "%d links, the limit is %d", len(c.links), s.cfg.DelegationChainMaxDepth))
	}
	links := make([]storedLink, len(c.links))
	for i, d := range c.links {
		l, err := s.loadLink(ctx, d.id)
		if err != nil {
			return nil, opError(op, "", fmt.Errorf("link %d: %w", i+1, err))
		}
		if !bytes.Equal(l.d.enc, d.enc) {
			return nil, opError(op, "", fmt.Errorf("link %d (%s): %w", i+1, d.id, detail(ErrDelegationForged, "differs from the recorded link")))
		}
		links[i] = l
	}
	if err := s.verifyLinks(ctx, links, s.nowMS()); err != nil {
		return nil, opError(op, "", err)
	}
	return s.verifiedChain(links), nil
}

func (s *Service) verifiedChain(links []storedLink) *DelegationChain {
	c := &DelegationChain{verified: true, entityType: s.cfg.EntityType}
	for _, l := range links {
		c.links = append(c.links, l.d)
	}
	return c
}

// verifyLinks checks a chain, root first: first everything that needs no
// signature verification, so a bad chain is rejected cheaply, then every
// signature.
func (s *Service) verifyLinks(ctx context.Context, links []storedLink, nowMS int64) error {
	if len(links) > s.cfg.DelegationChainMaxDepth {
		return detail(ErrChainTooDeep, "%d links, the limit is %d", len(links), s.cfg.DelegationChainMaxDepth)
	}
	agents := make([]string, 0, len(links)+1)
	for i, l := range links {
		if err := s.checkLink(links, i, nowMS, &agents); err != nil {
			return fmt.Errorf("link %d (%s): %w", i+1, l.d.id, err)
		}
	}
	errs := make([]error, len(links))
	parallel(len(links), func(i int) { errs[i] = s.checkSignature(ctx, links[i].d, nowMS) })
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("link %d (%s): %w", i+1, links[i].d.id, err)
		}
	}
	return nil
}

// parallel runs f(0..n-1) on up to GOMAXPROCS goroutines. A chain's
// signatures are independent, so verifying them side by side divides the
// latency of a long chain by the number of cores.
func parallel(n int, f func(i int)) {
	workers := min(n, runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(i)
			}
		})
	}
	wg.Wait()
}

// checkLink makes the checks on link i that need no signature: its place
// in the chain, narrowing, cycles, expiry and revocation. agents collects
// the agents seen so far.
func (s *Service) checkLink(links []storedLink, i int, nowMS int64, agents *[]string) error {
	d := links[i].d
	if d.depth != i+1 {
		return detail(ErrChainBroken, "depth %d at position %d", d.depth, i+1)
	}
	if i == 0 {
		*agents = append(*agents, d.delegator)
	} else {
		p := links[i-1].d
		switch {
		case !d.hasParent || d.parent != p.id:
			return detail(ErrChainBroken, "the parent is not the previous link")
		case d.delegator != p.delegatee:
			return detail(ErrChainBroken, "the delegator is not the previous link's delegatee")
		case !subset(d.permissions, p.permissions):
			return detail(ErrWidened, "permissions are not a subset of the parent's")
		case d.expiresAt > p.expiresAt:
			return detail(ErrWidened, "expires after the parent")
		}
	}
	if slices.Contains(*agents, d.delegatee) {
		return detail(ErrDelegationCycle, "%s appears twice", quote(d.delegatee))
	}
	*agents = append(*agents, d.delegatee)
	if nowMS >= d.expiresAt {
		return ErrDelegationExpired
	}
	if links[i].revoked {
		return ErrDelegationRevoked
	}
	for _, id := range [2]string{d.delegator, d.delegatee} {
		a, ok := s.agent(id)
		if !ok {
			return fmt.Errorf("%w: agent %s: %w", ErrDelegationRevoked, quote(id), ErrNotFound)
		}
		if err := a.usableAt(nowMS); errors.Is(err, ErrExpired) {
			return fmt.Errorf("%w: agent %s: %w", ErrDelegationExpired, quote(id), err)
		} else if err != nil {
			return fmt.Errorf("%w: agent %s: %w", ErrDelegationRevoked, quote(id), err)
		}
	}
	return nil
}

// checkSignature verifies a link's signature under its delegator's key,
// unless this exact encoding has been verified under that key before.
// Whether the key is still valid is checked every time.
func (s *Service) checkSignature(ctx context.Context, d *Delegation, nowMS int64) error {
	ring, err := s.agentRing(ctx, d.delegator)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: delegator has no keys", ErrDelegationForged)
	}
	if err != nil {
		return err
	}
	v := ring.version(d.keyVersion)
	if v == nil {
		return detail(ErrDelegationForged, "the delegator has no key version %d", d.keyVersion)
	}
	if v.signing == nil || !v.rec.validAt(nowMS) {
		return detail(ErrDelegationRevoked, "the delegator's key version %d was retired", d.keyVersion)
	}
	// The cache key covers the whole encoding, key version included, and
	// the signing key itself, so a hit means exactly this verification
	// succeeded before.
	h, err := s.p.NewHash(crypto.SHA256)
	if err != nil {
		return err
	}
	h.Write(v.rec.SigningPublic)
	h.Write(d.enc)
	key := [32]byte(h.Sum(nil))
	if _, ok := s.verifiedLinks.get(key); ok {
		return nil
	}
	if err := s.p.Verify(v.signing, d.body(), contextDelegation, d.signature()); err != nil {
		return fmt.Errorf("%w: %w", ErrDelegationForged, err)
	}
	s.verifiedLinks.put(key, struct{}{})
	return nil
}

// RevokeDelegation revokes a link and, in the same commit, every link
// delegated below it, however deep. Revoking a revoked link is a no-op
// for it but still reaches children created before it was revoked.
func (s *Service) RevokeDelegation(ctx context.Context, id DelegationID) error {
	const op = "revoke delegation"
	if err := s.enter(); err != nil {
		return opError(op, id.String(), err)
	}
	defer s.life.RUnlock()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	link, err := s.loadLink(ctx, id)
	if err != nil {
		return opError(op, id.String(), err)
	}
	var b kv.Batch
	revoked := 0 // links this call revoked; b also holds grant-index deletions
	// seen guards against a corrupt child index that loops back up.
	seen := map[DelegationID]bool{id: true}
	for todo := []DelegationID{id}; len(todo) > 0; {
		cur := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		rec, err := s.store.Get(ctx, delegationKey(cur))
		if err != nil {
			return opError(op, id.String(), err)
		}
		if len(rec) > 0 && rec[0] == stateActive {
			rec[0] = stateRevoked
			b.Set(delegationKey(cur), rec)
			revoked++
		}
		unindexGrant(&b, cur, rec)
		prefix := childPrefix(cur)
		err = s.store.Scan(ctx, prefix, func(key, _ []byte) error {
			child, err := ParseDelegationID(string(key[len(prefix):]))
			if err != nil {
				return fmt.Errorf("%w: child index %s", ErrDelegationMalformed, quote(string(key)))
			}
			if !seen[child] {
				seen[child] = true
				todo = append(todo, child)
			}
			return nil
		})
		if err != nil {
			return opError(op, id.String(), err)
		}
	}
	if err := s.store.Apply(ctx, &b); err != nil {
		return opError(op, id.String(), err)
	}
	s.ents.bump()
	if revoked > 0 {
		s.emit(ctx, Event{Kind: EventDelegationRevoked, AgentID: link.d.delegator, DelegateeID: link.d.delegatee, DelegationID: id.String(), Revoked: revoked})
	}
	return nil
}

// IsDelegationRevoked reports whether a link was revoked, directly or
// through an ancestor.
func (s *Service) IsDelegationRevoked(ctx context.Context, id DelegationID) (bool, error) {
	const op = "is delegation revoked"
	if err := s.enter(); err != nil {
		return false, opError(op, id.String(), err)
	}
	defer s.life.RUnlock()
	l, err := s.loadLink(ctx, id)
	if err != nil {
		return false, opError(op, id.String(), err)
	}
	return l.revoked, nil
}
