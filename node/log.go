package node

import (
	"fmt"
	"io"
	"log/slog"
)

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("config: log.level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// NewLogger builds the structured logger the [log] section describes,
// writing to w.
func NewLogger(c LogConfig, w io.Writer) (*slog.Logger, error) {
	if c.Level == "" {
		c.Level = "info"
	}
	level, err := parseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
