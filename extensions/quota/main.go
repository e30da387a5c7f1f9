//go:build wasip1

// Command quota is the QuotaEnforcer of seed §2.2.3 as a Wasm extension:
// per-principal, per-action quotas with a limit and a window. Counters live
// on the host (creto:state/v1), so every instance of the extension counts
// together; principals without a quota never reach the guest, because the
// extension fills the host's bloom pre-filter with the principals it
// meters (creto:prefilter/v1).
//
// Configuration (JSON, given at registration):
//
//	{"quotas": [
//	  {"id": "tokens-daily", "principal": "Agent::\"ledger-bot\"", "action": "consume_quota",
//	   "limit": 100000, "window": "24h", "cost": "tokens"}
//	]}
//
// principal is a Cedar entity reference; action an action id. cost, when
// set, names a context field holding an integer cost (default 1). A request
// that would exceed the limit is refused with QuotaExceeded and not
// counted; the counter restarts when its window does.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/creto-systems/creto/sdk/go/creto"
)

type quota struct {
	ID        string `json:"id"`
	Principal string `json:"principal"`
	Action    string `json:"action"`
	Limit     int64  `json:"limit"`
	Window    string `json:"window"`
	Cost      string `json:"cost"`
	window    time.Duration
	counter   string // the host counter's key, built once
}

// quotas maps `principal|action` to its quota.
var quotas map[string]*quota

func main() {}

func init() {
	creto.OnInit(configure)
	creto.Handle(enforce)
}

func configure(config []byte) error {
	var cfg struct {
		Quotas []*quota `json:"quotas"`
	}
	if err := json.Unmarshal(config, &cfg); err != nil {
		return fmt.Errorf("quota configuration: %v", err)
	}
	quotas = make(map[string]*quota, len(cfg.Quotas))
	var filter creto.Prefilter
	if err := filter.Reset(); err != nil {
		return err
	}
	for _, q := range cfg.Quotas {
		switch {
		case q.ID == "" || q.Principal == "" || q.Action == "":
			return errors.New("every quota needs an id, a principal and an action")
		case q.Limit < 0:
			return fmt.Errorf("quota %s: negative limit", q.ID)
		}
		if q.Window != "" {
			d, err := time.ParseDuration(q.Window)
			if err != nil || d <= 0 {
				return fmt.Errorf("quota %s: window %q is not a positive duration", q.ID, q.Window)
			}
			q.window = d
		}
		key := q.Principal + "|" + q.Action
		if _, dup := quotas[key]; dup {
			return fmt.Errorf("two quotas for %s", key)
		}
		q.counter = q.ID + "/" + key
		quotas[key] = q
		if err := filter.Add(key); err != nil {
			return err
		}
	}
	return filter.Commit()
}

func enforce(r creto.Request) creto.Result {
	var keyBuf [256]byte
	key := append(keyBuf[:0], r.PrincipalType()...)
	key = append(key, `::"`...)
	key = append(key, r.PrincipalID()...)
	key = append(key, `"|`...)
	key = append(key, r.ActionID()...)
	q := quotas[string(key)] // no allocation: the compiler looks up by bytes
	if q == nil {
		return creto.Continue()
	}
	cost := int64(1)
	if q.Cost != "" {
		c, err := costFrom(r.Context(), q.Cost)
		if err != nil {
			return creto.Fail(err.Error())
		}
		cost = c
	}
	used, err := creto.StateAdd(q.counter, cost, q.window)
	if err != nil {
		return creto.Fail("counting: " + err.Error())
	}
	if used <= q.Limit {
		return creto.Continue()
	}
	// Refused requests are not counted.
	if _, err := creto.StateAdd(q.counter, -cost, q.window); err != nil {
		return creto.Fail("uncounting: " + err.Error())
	}
	var reset time.Time
	if q.window > 0 {
		now := creto.Now()
		reset = now.Truncate(q.window).Add(q.window)
	}
	return creto.QuotaExceeded(q.ID, q.Limit, used-cost, reset)
}

// costFrom reads an integer context field.
func costFrom(context []byte, field string) (int64, error) {
	var ctx map[string]json.RawMessage
	if err := json.Unmarshal(context, &ctx); err != nil {
		return 0, fmt.Errorf("context: %v", err)
	}
	raw, ok := ctx[field]
	if !ok {
		return 1, nil
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("context.%s must be a non-negative integer", field)
	}
	return n, nil
}
