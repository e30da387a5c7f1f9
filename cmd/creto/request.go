package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/creto-systems/creto/engine"
)

// readRequest reads a request file, or standard input when name is "-".
// It reads at most one byte past the engine's request limit, so an
// oversized request is refused without being read into memory.
func readRequest(stdin io.Reader, name string) (engine.Request, error) {
	r, label := stdin, "standard input"
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return engine.Request{}, err
		}
		defer f.Close()
		r, label = f, name
	}
	limit := engine.DefaultLimits.MaxRequestBytes
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return engine.Request{}, fmt.Errorf("reading request %s: %w", label, err)
	}
	if len(b) > limit {
		return engine.Request{}, fmt.Errorf("request %s: larger than the %d-byte limit", label, limit)
	}
	req, err := decodeRequest(b)
	if err != nil {
		return engine.Request{}, fmt.Errorf("request %s: %w", label, err)
	}
	return req, nil
}

// decodeRequest parses a request in the Cedar CLI's JSON shape, plus
// Creto's delegation and principal attributes. Unknown fields are errors:
// a misspelt "resouce" must not silently become an empty resource.
func decodeRequest(b []byte) (engine.Request, error) {
	var req engine.Request
	if b = bytes.TrimSpace(b); len(b) == 0 || b[0] != '{' {
		return req, errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, errors.New("unexpected data after the JSON object")
	}
	return req, nil
}
