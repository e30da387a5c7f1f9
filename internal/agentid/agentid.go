// Package agentid is the rule every service applies to the agent ids it
// takes: non-empty, bounded, valid UTF-8, without spaces or control
// characters. Such an id is safe in store keys, log lines, error messages
// and Cedar entity ids alike. The bound is each service's (NHI and
// storage 128 bytes, the vault and memory 256); the characters are the
// same everywhere.
package agentid

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Check returns nil when id is a valid id of at most max bytes, or an
// error saying what is wrong, phrased to follow the id's name: "is empty".
// The error never repeats the id, which is the caller's to quote.
func Check(id string, max int) error {
	switch {
	case id == "":
		return errors.New("is empty")
	case len(id) > max:
		return fmt.Errorf("is %d bytes, limit %d", len(id), max)
	case !utf8.ValidString(id):
		return errors.New("is not valid UTF-8")
	}
	for _, r := range id {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return errors.New("contains a space or control character")
		}
	}
	return nil
}
