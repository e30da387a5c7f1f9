package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExtAnnotateInspectValidate(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "manifest.json")
	if err := os.WriteFile(manifest, []byte(`{"name": "no-deletes", "version": "0.1.0", "priority": 5}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "ext.wasm")
	src := filepath.Join("..", "..", "engine", "testdata", "ext", "deny_delete.wasm")

	if code, _, stderr := creto(t, nil, "ext", "validate", src); code != exitBadInput || !strings.Contains(stderr, "no creto.manifest") {
		t.Fatalf("validate before annotate: %d %s", code, stderr)
	}
	if code, _, stderr := creto(t, nil, "ext", "annotate", src, "--manifest", manifest, "-o", out); code != exitOK {
		t.Fatalf("annotate: %d %s", code, stderr)
	}
	code, stdout, stderr := creto(t, nil, "ext", "inspect", out)
	if code != exitOK {
		t.Fatalf("inspect: %d %s", code, stderr)
	}
	var r extReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	if r.ABIVersion != 1 || r.Manifest == nil || r.Manifest.Name != "no-deletes" || *r.Manifest.Priority != 5 || len(r.SHA256) != 64 {
		t.Fatalf("inspect: %s", stdout)
	}
	if code, stdout, stderr := creto(t, nil, "ext", "validate", out); code != exitOK || !strings.Contains(stdout, `"no-deletes"`) {
		t.Fatalf("validate: %d %s %s", code, stdout, stderr)
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"name": "x", "prioritee": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := creto(t, nil, "ext", "annotate", src, "--manifest", bad, "-o", out); code != exitBadInput || !strings.Contains(stderr, "prioritee") {
		t.Fatalf("a manifest typo: %d %s", code, stderr)
	}
	notWasm := filepath.Join(dir, "x.wasm")
	if err := os.WriteFile(notWasm, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := creto(t, nil, "ext", "inspect", notWasm); code != exitBadInput || !strings.Contains(stderr, "not a usable WebAssembly module") {
		t.Fatalf("inspect garbage: %d %s", code, stderr)
	}
}

func TestExtValidateChecksGrants(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "m.json")
	if err := os.WriteFile(manifest, []byte(`{"name": "pre", "capabilities": ["prefilter"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "ext.wasm")
	src := filepath.Join("..", "..", "engine", "testdata", "ext", "ungranted_import.wasm")
	if code, _, stderr := creto(t, nil, "ext", "annotate", src, "--manifest", manifest, "-o", out); code != exitOK {
		t.Fatal(stderr)
	}
	if code, _, stderr := creto(t, nil, "ext", "validate", out); code != exitBadInput || !strings.Contains(stderr, "not grant") {
		t.Fatalf("without the grant: %d %s", code, stderr)
	}
	if code, _, stderr := creto(t, nil, "ext", "validate", out, "--grant", "prefilter"); code != exitOK {
		t.Fatalf("with the grant: %d %s", code, stderr)
	}
}
