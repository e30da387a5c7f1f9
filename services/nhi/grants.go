package nhi

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/internal/wire"
)

// The grant index finds the delegations an agent holds without reading
// every delegation of the node. It has one entry per live link, keyed by
// the link's delegatee:
//
//	nhi/dlg-to/<delegatee>\x00<delegation id, hex>  →  expiry (unix ms, 8 bytes big-endian),
//	                                                   root delegator id (length-prefixed),
//	                                                   the link's permissions (each length-prefixed)
//
// An entry is written in the same commit as its link and deleted in the
// same commit as the link's revocation, so the index never disagrees with
// the links. Entries of expired links are pruned when their delegatee next
// receives a delegation. The chain's origin and the link's permissions are
// in the value so FindGrant skips links from other origins, or granting
// other permissions, without reading them. The index is only a way to find
// candidates: every chain it yields is loaded and verified in full before
// it counts.
const (
	prefixGrantIndex = "nhi/dlg-to/"
	// keyGrantIndex marks a store whose grant index is complete. A store
	// written by a build without the index lacks it, and the index is
	// rebuilt from the links at start.
	keyGrantIndex = "nhi/meta/grant-index"
)

// grantPrefix is the index prefix of one delegatee. Agent ids cannot hold
// a NUL, so one agent's prefix never covers another's entries.
func grantPrefix(delegatee string) []byte {
	return append([]byte(prefixGrantIndex+delegatee), 0)
}

func grantKey(delegatee string, id DelegationID) []byte {
	return append(grantPrefix(delegatee), id.String()...)
}

func grantValue(d *Delegation, root string) []byte {
	var e wire.Encoder
	e.I64(d.expiresAt)
	e.Str8(root)
	for _, p := range d.permissions {
		e.Str8(p)
	}
	return e
}

// grantEntry is one decoded index entry.
type grantEntry struct {
	id          DelegationID
	expiresAt   int64
	root        string
	permissions []string
}

// decodeGrantEntry decodes an index entry whose chain starts at root;
// ok is false, and nothing more is decoded, for an entry of another root.
func decodeGrantEntry(prefix, key, val []byte, root string) (g grantEntry, ok bool, err error) {
	corrupt := func() error {
		return detail(ErrDelegationMalformed, "grant index entry %s is corrupt", quote(string(key)))
	}
	r := wire.NewDecoder(val)
	g.expiresAt = r.I64()
	if rb := r.Bytes8(math.MaxUint8); r.Err() == nil && string(rb) != root {
		return g, false, nil
	}
	g.root = root
	id, err := ParseDelegationID(string(key[len(prefix):]))
	if err != nil {
		return g, false, corrupt()
	}
	for r.Len() > 0 && r.Err() == nil {
		g.permissions = append(g.permissions, r.Str8(MaxPermissionLength))
	}
	if r.Finish() != nil {
		return g, false, corrupt()
	}
	g.id = id
	return g, true, nil
}

// indexGrant adds d's index entry to b, whose chain starts at root, and
// deletes the entries of d's delegatee whose links have expired by nowMS.
func (s *Service) indexGrant(ctx context.Context, b *kv.Batch, d *Delegation, root string, nowMS int64) error {
	prefix := grantPrefix(d.delegatee)
	err := s.store.Scan(ctx, prefix, func(key, val []byte) error {
		if len(val) >= 8 && nowMS >= int64(binary.BigEndian.Uint64(val)) {
			b.Delete(key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.Set(grantKey(d.delegatee, d.id), grantValue(d, root))
	return nil
}

// unindexGrant adds to b the deletion of the index entry of a stored link
// (its state byte, then its encoding). A record that does not decode has
// nothing to delete: such a link never verifies, and its revocation must
// not fail on it.
func unindexGrant(b *kv.Batch, id DelegationID, rec []byte) {
	if len(rec) < 1 {
		return
	}
	if d, err := decodeDelegation(rec[1:]); err == nil {
		b.Delete(grantKey(d.delegatee, id))
	}
}

// FindGrant returns a chain through which delegatee holds permission from
// delegator: its root link was granted by delegator, its last link to
// delegatee, its permissions include permission, and it verifies now (see
// VerifyDelegation). Of several such chains it returns the one that stays
// valid longest. It fails with ErrNotFound when none verifies, which a
// caller deciding access must treat as "deny".
func (s *Service) FindGrant(ctx context.Context, delegatee, delegator, permission string) (*DelegationChain, error) {
	const op = "find grant"
	if err := s.enter(); err != nil {
		return nil, opError(op, delegatee, err)
	}
	defer s.life.RUnlock()
	c, err := s.findGrant(ctx, delegatee, delegator, permission)
	if err != nil {
		return nil, opError(op, delegatee, err)
	}
	return c, nil
}

func (s *Service) findGrant(ctx context.Context, delegatee, delegator, permission string) (*DelegationChain, error) {
	if err := validateID("delegatee", delegatee); err != nil {
		return nil, err
	}
	if err := validateID("delegator", delegator); err != nil {
		return nil, err
	}
	if err := validatePermission(permission); err != nil {
		return nil, err
	}
	nowMS := s.nowMS()
	prefix := grantPrefix(delegatee)
	var candidates []grantEntry
	err := s.store.Scan(ctx, prefix, func(key, val []byte) error {
		g, ok, err := decodeGrantEntry(prefix, key, val, delegator)
		if err != nil {
			return err
		}
		if ok && nowMS < g.expiresAt && slices.Contains(g.permissions, permission) {
			candidates = append(candidates, g)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(candidates, func(a, b grantEntry) int { return cmp.Compare(b.expiresAt, a.expiresAt) })
	for _, g := range candidates {
		links, err := s.loadChain(ctx, g.id)
		if err != nil {
			if rejected(err) {
				continue
			}
			return nil, err
		}
		last := links[len(links)-1].d
		if links[0].d.delegator != delegator || last.delegatee != delegatee || !slices.Contains(last.permissions, permission) {
			continue
		}
		if err := s.verifyLinks(ctx, links, nowMS); err != nil {
			if rejected(err) {
				continue
			}
			return nil, err
		}
		return s.verifiedChain(links), nil
	}
	return nil, detail(ErrNotFound, "no live delegation from %s grants %s", quote(delegator), quote(permission))
}

// verdicts are the errors by which a chain fails verification, as opposed
// to a failure to read it (a closed store, a cancelled context), which
// FindGrant reports rather than skips.
var verdicts = []error{
	ErrNotFound, ErrDelegationMalformed, ErrDelegationForged, ErrDelegationExpired,
	ErrDelegationRevoked, ErrWidened, ErrDelegationCycle, ErrChainTooDeep, ErrChainBroken,
}

func rejected(err error) bool {
	return slices.ContainsFunc(verdicts, func(v error) bool { return errors.Is(err, v) })
}

// grantIndexBatch bounds the writes of one commit while the index is
// rebuilt.
const grantIndexBatch = 1000

// ensureGrantIndex rebuilds the grant index of a store written before the
// index existed: one entry per link that is neither revoked nor expired,
// the marker last, so an interrupted rebuild starts over at the next
// start.
func (s *Service) ensureGrantIndex(ctx context.Context) error {
	_, err := s.store.Get(ctx, []byte(keyGrantIndex))
	if err == nil || !errors.Is(err, kv.ErrNotFound) {
		return err
	}
	type link struct {
		d    *Delegation
		live bool
	}
	links := map[DelegationID]link{}
	err = s.store.Scan(ctx, []byte(prefixDelegations), func(key, val []byte) error {
		id, err := ParseDelegationID(string(key[len(prefixDelegations):]))
		if err != nil || len(val) < 1 {
			return detail(ErrDelegationMalformed, "delegation record %s is corrupt", quote(string(key)))
		}
		d, err := decodeDelegation(val[1:])
		if err != nil {
			return fmt.Errorf("%w: stored delegation %s: %w", ErrDelegationMalformed, id, err)
		}
		// Only what the index needs is kept: not the signed encoding.
		d.enc = nil
		links[id] = link{d: d, live: val[0] == stateActive}
		return nil
	})
	if err != nil {
		return fmt.Errorf("grant index: %w", err)
	}
	nowMS := s.nowMS()
	var b kv.Batch
	for id, l := range links {
		if !l.live || nowMS >= l.d.expiresAt {
			continue
		}
		root := l.d
		// A chain whose parent is missing or loops has no root; it can
		// never verify, so it needs no entry.
		for hops := 0; root != nil && root.hasParent && hops < MaxChainLinks; hops++ {
			root = links[root.parent].d
		}
		if root == nil || root.hasParent {
			continue
		}
		b.Set(grantKey(l.d.delegatee, id), grantValue(l.d, root.delegator))
		if b.Len() == grantIndexBatch {
			if err := s.store.Apply(ctx, &b); err != nil {
				return fmt.Errorf("grant index: %w", err)
			}
			b.Reset()
		}
	}
	b.Set([]byte(keyGrantIndex), []byte{1})
	if err := s.store.Apply(ctx, &b); err != nil {
		return fmt.Errorf("grant index: %w", err)
	}
	return nil
}
