package nhi

import "testing"

func TestLRU(t *testing.T) {
	c := newLRU[int, string](2)
	c.put(1, "a")
	c.put(2, "b")
	c.get(1) // 2 is now the least recently used
	c.put(3, "c")
	if _, ok := c.get(2); ok {
		t.Fatal("the least recently used entry was not evicted")
	}
	for k, want := range map[int]string{1: "a", 3: "c"} {
		if got, ok := c.get(k); !ok || got != want {
			t.Fatalf("get(%d) = %q, %v", k, got, ok)
		}
	}
	c.put(3, "C")
	if got, _ := c.get(3); got != "C" {
		t.Fatalf("update: %q", got)
	}
	c.putIf(4, "d", func() bool { return false })
	if _, ok := c.get(4); ok {
		t.Fatal("putIf stored although keep said no")
	}
	c.remove(1)
	if _, ok := c.get(1); ok {
		t.Fatal("remove left the entry")
	}
	var drained []string
	c.drain(func(v string) { drained = append(drained, v) })
	if len(drained) != 1 || drained[0] != "C" {
		t.Fatalf("drained %q", drained)
	}
	if _, ok := c.get(3); ok {
		t.Fatal("drain left an entry")
	}
	c.put(5, "e")
	if got, ok := c.get(5); !ok || got != "e" {
		t.Fatal("cache unusable after drain")
	}
	off := newLRU[int, string](0)
	off.put(1, "a")
	if _, ok := off.get(1); ok {
		t.Fatal("a zero-sized cache stored an entry")
	}
}
