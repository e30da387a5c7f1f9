package storage

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
)

// The service holds the node secret's derived keys, and a reader holds
// decrypted data; a presigned URL is a bearer credential. None of them
// prints its contents through any fmt verb or slog. (fmt prints
// unexported fields by reflection, without calling their methods, so the
// containing types must format themselves.)

// Format prints a placeholder for every verb.
func (s *Service) Format(f fmt.State, _ rune) { io.WriteString(f, "storage.Service") }

// Format prints the version being read, never its data.
func (r *ObjectReader) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "storage.ObjectReader(%v)", r.rec.ref())
}

// redacted returns the URL with its signature replaced, safe to log.
func (u PresignedURL) redacted() string {
	path, query, _ := strings.Cut(u.URL, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return path + "?(unparsable)"
	}
	if q.Has("sig") {
		q.Set("sig", "REDACTED")
	}
	return path + "?" + q.Encode()
}

// Format prints the URL with its signature redacted, for every verb:
// whoever reads a log must not be able to use the URL.
func (u PresignedURL) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "storage.PresignedURL{%s %s expires %s}", u.Method, u.redacted(), u.ExpiresAt.Format("2006-01-02T15:04:05Z07:00"))
}

// LogValue logs the URL with its signature redacted.
func (u PresignedURL) LogValue() slog.Value {
	return slog.GroupValue(slog.String("method", u.Method), slog.String("url", u.redacted()), slog.Time("expires", u.ExpiresAt))
}
