package bench_test

import (
	"context"
	"os"
	"testing"

	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/hosts"
	"github.com/creto-systems/creto/internal/guestbuild"
)

// BenchmarkRegister times registering each example extension: cold (a new
// engine, nothing compiled) and from the on-disk compilation cache (what a
// restart costs). Needs `make wasm` for the non-Go examples.
func BenchmarkRegister(b *testing.B) {
	ctx := context.Background()
	examples := []struct {
		name, file string
		config     string
		grants     []string
	}{
		{"c", "../examples/wasm/c/build/business_hours.wasm", "", []string{"time"}},
		{"assemblyscript", "../examples/wasm/assemblyscript/build/two_person.wasm", `{"threshold": 10000}`, nil},
		{"rust", "../examples/wasm/rust/build/prod_guard.wasm", `{"prefix": "prod/"}`, nil},
		{"wat", "../examples/wasm/wat/build/agent_no_approve.wasm", "", nil},
		{"go-quota", "", `{"quotas": []}`, []string{"state", "time", "prefilter"}},
	}
	hostMods := engine.WithHostModules(hosts.State{Store: hosts.NewMemoryState()}, hosts.Clock{})
	for _, ex := range examples {
		var module []byte
		var err error
		if ex.file == "" {
			module, err = guestbuild.Go("../extensions/quota")
		} else {
			module, err = os.ReadFile(ex.file)
		}
		if err != nil {
			b.Fatalf("%v (run make wasm)", err)
		}
		cfg := engine.ExtensionConfig{Config: []byte(ex.config), Grants: ex.grants}
		b.Run(ex.name+"/cold", func(b *testing.B) {
			for b.Loop() {
				e := engine.New(hostMods)
				if _, err := e.RegisterExtension(ctx, module, cfg); err != nil {
					b.Fatal(err)
				}
				e.Close()
			}
		})
		b.Run(ex.name+"/cached", func(b *testing.B) {
			dir := b.TempDir()
			warm := engine.New(hostMods, engine.WithExtensionCacheDir(dir))
			if _, err := warm.RegisterExtension(ctx, module, cfg); err != nil {
				b.Fatal(err)
			}
			warm.Close()
			for b.Loop() {
				e := engine.New(hostMods, engine.WithExtensionCacheDir(dir))
				if _, err := e.RegisterExtension(ctx, module, cfg); err != nil {
					b.Fatal(err)
				}
				e.Close()
			}
		})
	}
}
