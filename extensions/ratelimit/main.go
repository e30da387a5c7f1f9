//go:build wasip1

// Command ratelimit is a token-bucket rate limiter as a Wasm extension: per
// principal and action, each bucket refills at a rate up to a burst, and a
// request that finds it empty gets RateLimited{retry_after,
// requests_remaining}. Buckets live on the host (creto:state/v1 take), so
// every instance of the extension draws from the same ones.
//
// Configuration (JSON, given at registration):
//
//	{"limits": [
//	  {"id": "messages", "principal_type": "Agent", "action": "send_message",
//	   "rate": 10, "per": "1s", "burst": 20}
//	]}
//
// Each principal of principal_type gets its own bucket for action.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/creto-systems/creto/sdk/go/creto"
)

type limit struct {
	ID            string  `json:"id"`
	PrincipalType string  `json:"principal_type"`
	Action        string  `json:"action"`
	Rate          float64 `json:"rate"`
	Per           string  `json:"per"`
	Burst         int64   `json:"burst"`
	perSecond     float64
}

// limits maps `principal_type|action` to its limit.
var limits map[string]*limit

func main() {}

func init() {
	creto.OnInit(configure)
	creto.Handle(throttle)
}

func configure(config []byte) error {
	var cfg struct {
		Limits []*limit `json:"limits"`
	}
	if err := json.Unmarshal(config, &cfg); err != nil {
		return fmt.Errorf("rate limit configuration: %v", err)
	}
	limits = make(map[string]*limit, len(cfg.Limits))
	for _, l := range cfg.Limits {
		if l.ID == "" || l.PrincipalType == "" || l.Action == "" {
			return errors.New("every limit needs an id, a principal_type and an action")
		}
		per := time.Second
		if l.Per != "" {
			d, err := time.ParseDuration(l.Per)
			if err != nil || d <= 0 {
				return fmt.Errorf("limit %s: per %q is not a positive duration", l.ID, l.Per)
			}
			per = d
		}
		if l.Rate <= 0 || l.Burst <= 0 {
			return fmt.Errorf("limit %s: rate and burst must be positive", l.ID)
		}
		l.perSecond = l.Rate / per.Seconds()
		key := l.PrincipalType + "|" + l.Action
		if _, dup := limits[key]; dup {
			return fmt.Errorf("two limits for %s", key)
		}
		limits[key] = l
	}
	return nil
}

func throttle(r creto.Request) creto.Result {
	var buf [256]byte
	key := append(buf[:0], r.PrincipalType()...)
	key = append(key, '|')
	key = append(key, r.ActionID()...)
	l := limits[string(key)]
	if l == nil {
		return creto.Continue()
	}
	bucket := l.ID + "/" + string(r.PrincipalID())
	taken, remaining, retryAfter, err := creto.Take(bucket, l.perSecond, l.Burst)
	if err != nil {
		return creto.Fail("rate limit: " + err.Error())
	}
	if taken {
		return creto.Continue()
	}
	return creto.RateLimited(retryAfter, int(remaining))
}
