package engine

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/bits-and-blooms/bloom/v3"
	"github.com/tetratelabs/wazero/api"

	"github.com/creto-systems/creto/abi"
)

// prefilter decides natively, before any guest call, whether an extension
// wants a request: the manifest's selectors, then the guest's bloom filter.
type prefilter struct {
	actions        []string // `Type::"id"`
	principalTypes []string
	resourceTypes  []string
	bloomKind      string // "", "principal" or "principal_action"

	filter  atomic.Pointer[bloom.BloomFilter] // committed; nil = none yet
	mu      sync.Mutex
	pending *bloom.BloomFilter
}

// bloomCapacity sizes a guest's filter: 1 % false positives at 100,000
// keys takes about 120 KB.
const bloomCapacity, bloomFalsePositives = 100_000, 0.01

func (p *prefilter) init(m abi.Prefilter) {
	p.actions, p.principalTypes, p.resourceTypes, p.bloomKind = m.Actions, m.PrincipalTypes, m.ResourceTypes, m.Bloom
}

// applies reports whether the extension must see req. It allocates
// nothing: the bloom key is built on the stack.
func (x *extension) applies(req *Request) bool {
	p := &x.prefilter
	if len(p.principalTypes) > 0 && !slices.Contains(p.principalTypes, req.Principal.Type) {
		return false
	}
	if len(p.resourceTypes) > 0 && !slices.Contains(p.resourceTypes, req.Resource.Type) {
		return false
	}
	a := req.actionRef()
	if len(p.actions) > 0 && !slices.ContainsFunc(p.actions, func(s string) bool { return isRef(s, a.Type, a.ID) }) {
		return false
	}
	if p.bloomKind == "" {
		return true
	}
	f := p.filter.Load()
	if f == nil {
		return true // nothing committed yet: no grounds to skip
	}
	var buf [256]byte
	key := appendBloomKey(buf[:0], p.bloomKind, req.Principal.Type, req.Principal.ID, a.ID)
	return f.Test(key)
}

// isRef reports whether s is `typ::"id"`, without building that string.
func isRef(s, typ, id string) bool {
	return len(s) == len(typ)+len(id)+4 && s[:len(typ)] == typ && s[len(typ):len(typ)+3] == `::"` &&
		s[len(typ)+3:len(s)-1] == id && s[len(s)-1] == '"'
}

// appendBloomKey builds the key SPEC.md §6.5 defines.
func appendBloomKey(b []byte, kind, ptype, pid, action string) []byte {
	b = append(b, ptype...)
	b = append(b, `::"`...)
	b = append(b, pid...)
	b = append(b, '"')
	if kind == "principal_action" {
		b = append(b, '|')
		b = append(b, action...)
	}
	return b
}

// functions are creto:prefilter/v1, bound to this extension's filter.
func (p *prefilter) functions() []HostFunction {
	ok := func(stack []uint64) { stack[0] = 0 }
	return []HostFunction{
		{Name: "add", Params: []api.ValueType{i32, i32}, Results: []api.ValueType{i32},
			Func: func(ctx context.Context, m api.Module, stack []uint64) {
				key, found := GuestBytes(m, uint32(stack[0]), uint32(stack[1]))
				if !found || len(key) > 1024 {
					stack[0] = errno(abi.EInvalid)
					return
				}
				p.mu.Lock()
				if p.pending == nil {
					p.pending = bloom.NewWithEstimates(bloomCapacity, bloomFalsePositives)
				}
				p.pending.Add(key)
				p.mu.Unlock()
				ok(stack)
			}},
		{Name: "reset", Results: []api.ValueType{i32},
			Func: func(ctx context.Context, m api.Module, stack []uint64) {
				p.mu.Lock()
				p.pending = bloom.NewWithEstimates(bloomCapacity, bloomFalsePositives)
				p.mu.Unlock()
				ok(stack)
			}},
		{Name: "commit", Results: []api.ValueType{i32},
			Func: func(ctx context.Context, m api.Module, stack []uint64) {
				p.mu.Lock()
				if p.pending != nil {
					p.filter.Store(p.pending)
					p.pending = p.pending.Copy()
				}
				p.mu.Unlock()
				ok(stack)
			}},
	}
}
