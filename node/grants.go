package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/creto-systems/creto/services/memory"
	"github.com/creto-systems/creto/services/nhi"
)

// The NHI permissions that open one agent's memories to another.
const (
	permissionMemoryRead  = "memory:read"
	permissionMemoryWrite = "memory:write"
)

// memoryGrants is the node's memory.Authorizer: an agent may read (write)
// another agent's memories while it holds a live NHI delegation chain
// that starts at that agent and grants "memory:read" ("memory:write"),
// verified on every call, so a revocation or an expiry takes effect at
// the next one. Write does not imply read.
type memoryGrants struct{ nhi *nhi.Service }

// Authorize implements memory.Authorizer.
func (g memoryGrants) Authorize(ctx context.Context, caller, owner string, access memory.Access) error {
	perm := permissionMemoryRead
	if access == memory.AccessWrite {
		perm = permissionMemoryWrite
	}
	_, err := g.nhi.FindGrant(ctx, caller, owner, perm)
	if errors.Is(err, nhi.ErrNotFound) {
		return fmt.Errorf("%w: no live delegation from the owner grants %s", memory.ErrAccessDenied, perm)
	}
	return err
}
