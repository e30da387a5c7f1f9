package caller

import (
	"context"
	"errors"
	"testing"
)

func TestActing(t *testing.T) {
	bg := context.Background()
	for _, c := range []struct {
		who   *Identity
		agent string
		want  string
		err   error
	}{
		{nil, "a", "", ErrUnauthenticated},
		{&Identity{Kind: Agent, ID: "a"}, "", "a", nil},
		{&Identity{Kind: Agent, ID: "a"}, "a", "a", nil},
		{&Identity{Kind: Agent, ID: "a"}, "b", "", ErrNotAllowed},
		{&Identity{Kind: Operator, ID: "ops"}, "b", "b", nil},
		{&Identity{Kind: Operator, ID: "ops"}, "", "", ErrNoAgent},
		// A node acts for no agent: its certificate proves only that it
		// is a node of the cluster.
		{&Identity{Kind: Node, ID: "n2"}, "b", "", ErrNotAllowed},
		{&Identity{Kind: Node, ID: "n2"}, "", "", ErrNotAllowed},
	} {
		ctx := bg
		if c.who != nil {
			ctx = With(bg, *c.who)
		}
		got, err := Acting(ctx, c.agent)
		if got != c.want || !errors.Is(err, c.err) {
			t.Errorf("%v acting as %q: %q, %v", c.who, c.agent, got, err)
		}
	}
}

func TestIdentityNamesTheCedarEntity(t *testing.T) {
	for id, want := range map[Identity]string{
		{Kind: Operator, ID: "admin"}: `Operator::"admin"`,
		{Kind: Agent, ID: "planner"}:  `Agent::"planner"`,
		{Kind: Node, ID: "n2"}:        `Node::"n2"`,
		{Kind: Node, ID: `a"b`}:       `Node::"a\"b"`,
	} {
		if got := id.String(); got != want {
			t.Errorf("%s, want %s", got, want)
		}
	}
}
