package engine

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// ReadPolicyFS reads policies from fsys: root is a .cedar file (read
// whatever its name) or a directory searched recursively for *.cedar files,
// in lexical order. Policies without @id are named "<file>#<n>", where file
// is the path relative to root (or the file's base name). Every file is
// read; the parse errors of all of them are returned together.
func ReadPolicyFS(fsys fs.FS, root string) ([]PolicySource, error) {
	info, err := fs.Stat(fsys, root)
	if err != nil {
		return nil, err
	}
	base := root
	if !info.IsDir() {
		base = path.Dir(root)
	}
	var files []string
	err = fs.WalkDir(fsys, root, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (name == root || strings.HasSuffix(name, ".cedar")) {
			files = append(files, name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	var out []PolicySource
	var errs []error
	for _, f := range files {
		text, err := fs.ReadFile(fsys, f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rel := f
		if base != "." {
			rel = strings.TrimPrefix(f, base+"/")
		}
		srcs, err := ParseFile(rel, text)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, srcs...)
	}
	return out, errors.Join(errs...)
}

// ReadPolicyPath reads a .cedar file or a directory of them from disk, as
// ReadPolicyFS does.
func ReadPolicyPath(p string) ([]PolicySource, error) {
	info, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		return ReadPolicyFS(os.DirFS(p), ".")
	}
	return ReadPolicyFS(os.DirFS(filepath.Dir(p)), filepath.Base(p))
}

// LoadPolicyDir makes the .cedar files under dir the engine's whole policy
// set, atomically: on any error nothing changes.
func (e *Engine) LoadPolicyDir(ctx context.Context, dir string) error {
	srcs, err := ReadPolicyPath(dir)
	if err != nil {
		return err
	}
	return e.ReplacePolicies(ctx, srcs)
}

// WatchPolicyDir reloads dir whenever a file under it changes, until ctx is
// done or the engine closes. A reload that fails leaves the previous
// policies in force and is reported to onError (which may be nil).
func (e *Engine) WatchPolicyDir(ctx context.Context, dir string, onError func(error)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			err = w.Add(path)
		}
		return err
	})
	if err != nil {
		w.Close()
		return err
	}
	report := func(err error) {
		if err == nil {
			return
		}
		e.cfg.logger.Warn("policy reload failed; previous policies stay in force", "dir", dir, "error", err)
		if onError != nil {
			onError(err)
		}
	}
	go func() {
		defer w.Close()
		// Editors write a file in several steps; wait for the burst to end.
		const settle = 100 * time.Millisecond
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-e.stop:
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Has(fsnotify.Create) {
					if info, err := os.Stat(ev.Name); err == nil && info.IsDir() {
						report(w.Add(ev.Name))
					}
				}
				timer.Reset(settle)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				report(err)
			case <-timer.C:
				report(e.LoadPolicyDir(ctx, dir))
			}
		}
	}()
	return nil
}
