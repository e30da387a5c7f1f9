package consensus

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/creto-systems/creto/internal/kv"
)

// Client addresses. Raft knows each member by its raft address, which
// clients cannot use; a follower that refuses a write must tell the client
// where the leader's API is. So every member's client address (in creto
// serve, its gRPC address) is replicated state, the way etcd publishes
// each member's client URLs through its log: the leader records its own
// when it starts leading (and whenever it changes), and records a joining
// node's from its AddServer request. Every node can then name the leader's
// client address in a NotLeaderError and in GetClusterStatus.

// membersType is the internal command that records a member's client
// address: payload 0x01 | string id | string address, an empty address
// deleting the record.
const membersType = reservedPrefix + "members"

const membersVersion = 1

type membersHandler struct{}

type memberRecord struct{ id, address string }

func encodeMemberRecord(id, address string) []byte {
	return appendString(appendString([]byte{membersVersion}, id), address)
}

func decodeMemberRecord(p []byte) (memberRecord, error) {
	r := reader{b: p}
	if v := r.byte(); v != membersVersion {
		r.fail("member record version %d", v)
	}
	m := memberRecord{id: r.string(maxIDBytes), address: r.string(maxIDBytes)}
	r.done()
	if r.err != nil {
		return m, invalid(nil, "member record: %v", r.err)
	}
	if err := checkID("server id", m.id); err != nil {
		return m, err
	}
	if m.address != "" {
		if err := checkClientAddress(m.address); err != nil {
			return m, err
		}
	}
	return m, nil
}

func (membersHandler) Validate(payload []byte) error {
	_, err := decodeMemberRecord(payload)
	return err
}

func (membersHandler) Apply(tx *Tx, payload []byte) ([]byte, error) {
	m, err := decodeMemberRecord(payload)
	if err != nil {
		return nil, err
	}
	if m.address == "" {
		return nil, tx.Delete([]byte(m.id))
	}
	return nil, tx.Set([]byte(m.id), []byte(m.address))
}

// checkClientAddress accepts a host:port a client can dial.
func checkClientAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "0" || port == "" {
		return invalid(nil, "client address %s must be a dialable host:port", quote(addr))
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return invalid(nil, "client address %s must be a dialable host:port, not a wildcard", quote(addr))
	}
	return nil
}

// SetClientAddress sets the address clients reach this node's API at (in
// creto serve, its gRPC address). The node publishes it to the cluster —
// itself when it leads, through the leader when it joins — so that every
// node can redirect clients to the leader (NotLeaderError) and list it
// (GetClusterStatus). A node that changes its address after joining
// publishes the new one by joining again.
func (n *Node) SetClientAddress(addr string) error {
	if err := checkClientAddress(addr); err != nil {
		return err
	}
	n.clientAddr.Store(&addr)
	return nil
}

// clientAddress is the address set by SetClientAddress, or "".
func (n *Node) clientAddress() string {
	if p := n.clientAddr.Load(); p != nil {
		return *p
	}
	return ""
}

// memberClientAddress reads a member's published client address from this
// node's applied state; "" when none is known.
func (n *Node) memberClientAddress(ctx context.Context, id string) (string, error) {
	v, err := n.store.Get(ctx, []byte(handlerPrefix(membersType)+id))
	switch {
	case errors.Is(err, kv.ErrNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("consensus: member %s: %w", quote(id), err)
	}
	return string(v), nil
}

// recordClientAddress commits a member's client address ("" forgets the
// member) through raft; the leader only.
func (n *Node) recordClientAddress(ctx context.Context, caller, id, address string) error {
	env := envelope{typ: membersType, caller: caller, payload: encodeMemberRecord(id, address)}
	res, err := n.apply(ctx, env.encode())
	if err != nil {
		return err
	}
	return res.err
}

// publishClientAddress records this node's client address if the applied
// state does not hold it yet. The leader's session calls it; published is
// what it last knew to be recorded.
func (n *Node) publishClientAddress(ctx context.Context, published *string) {
	addr := n.clientAddress()
	if addr == "" || addr == *published {
		return
	}
	stored, err := n.memberClientAddress(ctx, n.id)
	if err == nil && stored != addr {
		err = n.recordClientAddress(ctx, n.id, n.id, addr)
	}
	if err != nil {
		n.log.Warn("consensus: publishing this node's client address", "address", addr, "error", err)
		return
	}
	*published = addr
}
