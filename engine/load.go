package engine

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// ReadPolicyDir reads every .cedar file under dir (recursively, in lexical
// order). Policies without @id are named "<relative path>#<n>".
func ReadPolicyDir(dir string) ([]PolicySource, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".cedar") {
			files = append(files, path)
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
		text, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		rel, _ := filepath.Rel(dir, f)
		srcs, err := ParseFile(filepath.ToSlash(rel), text)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, srcs...)
	}
	return out, errors.Join(errs...)
}

// ReadPolicyPath reads a single .cedar file or a directory of them.
func ReadPolicyPath(path string) ([]PolicySource, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		return ReadPolicyDir(path)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseFile(filepath.Base(path), text)
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
