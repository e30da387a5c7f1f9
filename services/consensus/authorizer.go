package consensus

import (
	"context"
	"fmt"
)

// Operation is what a caller asks of the node, for the Authorizer.
type Operation uint8

// Operations. OpMembership covers AddServer, RemoveServer and
// TransferLeadership: the admin surface.
const (
	OpTimestamp Operation = iota + 1
	OpOrderEvents
	OpReadEvents
	OpPropose
	OpRead
	OpStatus
	OpMembership
)

var opNames = [...]string{"", "timestamp", "order_events", "read_events", "propose", "read", "status", "membership"}

// String returns the operation's name ("timestamp", "membership" …).
func (o Operation) String() string {
	if int(o) < len(opNames) && o != 0 {
		return opNames[o]
	}
	return fmt.Sprintf("operation(%d)", uint8(o))
}

// Authorizer decides whether a caller (the authenticated agent or node id
// the gRPC adapter or host function passes in) may perform an operation.
// subject is the command type for OpPropose and OpRead, and the server id
// for OpMembership; it is empty otherwise.
type Authorizer interface {
	// Authorize returns nil to allow. Any error denies; the node reports
	// ErrAccessDenied, keeping the cause.
	Authorize(ctx context.Context, caller string, op Operation, subject string) error
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(ctx context.Context, caller string, op Operation, subject string) error

// Authorize calls f.
func (f AuthorizerFunc) Authorize(ctx context.Context, caller string, op Operation, subject string) error {
	return f(ctx, caller, op, subject)
}

// AdminList is the default Authorizer: every caller may take timestamps,
// order and read events, propose and read commands and see the cluster's
// status; only the listed callers may change membership or move
// leadership. With no admins, membership changes are refused to everyone,
// so a node left at its defaults cannot be taken over from the network.
func AdminList(admins ...string) Authorizer {
	set := make(map[string]struct{}, len(admins))
	for _, a := range admins {
		set[a] = struct{}{}
	}
	return adminList(set)
}

type adminList map[string]struct{}

func (a adminList) Authorize(_ context.Context, caller string, op Operation, _ string) error {
	if op != OpMembership {
		return nil
	}
	if _, ok := a[caller]; ok {
		return nil
	}
	return fmt.Errorf("%w: %s is not a consensus admin", ErrAccessDenied, quote(caller))
}

// authorize validates the caller and asks the Authorizer.
func (n *Node) authorize(ctx context.Context, caller string, op Operation, subject string) error {
	if err := checkID("caller", caller); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := n.cfg.Authorizer.Authorize(ctx, caller, op, subject); err != nil {
		return fmt.Errorf("%w: %s may not %s: %w", ErrAccessDenied, quote(caller), op, err)
	}
	return nil
}
