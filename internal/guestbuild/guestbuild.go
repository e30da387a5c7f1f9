// Package guestbuild builds Go extensions for tests and benchmarks: it
// compiles a package for wasip1 and writes the manifest.json beside it into
// the module, once per package per process.
package guestbuild

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/creto-systems/creto/abi"
)

var built sync.Map // absolute dir → *result

type result struct {
	once   sync.Once
	module []byte
	err    error
}

// Go returns the annotated module of the Go extension in dir.
func Go(dir string) ([]byte, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	v, _ := built.LoadOrStore(abs, &result{})
	r := v.(*result)
	r.once.Do(func() { r.module, r.err = build(abs) })
	return r.module, r.err
}

func build(dir string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "creto-guest")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "ext.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building %s for wasip1: %v\n%s", dir, err, msg)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	text, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, err
	}
	m, err := abi.ParseManifest(text)
	if err != nil {
		return nil, fmt.Errorf("%s/manifest.json: %v", dir, err)
	}
	return abi.WriteManifest(raw, m)
}
