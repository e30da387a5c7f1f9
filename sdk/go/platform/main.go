//go:build wasip1

// Command platform is the Go SDK's platform guest: examples/wasm's
// platform suite drives it, and the other SDKs' platform guests, through
// the engine against the real host modules. Each action calls one binding
// of creto:nhi, vault, vault-reveal, audit, storage or consensus on the
// request's principal id (p) and resource id (r), and reports what it got
// as a quota decision: ID the text, limit the number (a negative ABI code
// on an error), used and reset_at two more numbers.
package main

import (
	"encoding/hex"
	"errors"
	"time"

	"github.com/creto-systems/creto/sdk/go/creto"
)

// bucket holds the guest's objects; secret names the vault secret.
const (
	bucket = "platform"
	secret = "SIGNING"
)

func main() {}

func init() {
	creto.Handle(func(r creto.Request) creto.Result {
		p, res := string(r.PrincipalID()), string(r.ResourceID())
		switch string(r.ActionID()) {
		case "is_registered":
			ok, err := creto.AgentRegistered(p)
			return report("", bit(ok), err)
		case "is_revoked":
			ok, err := creto.AgentIsRevoked(p)
			return report("", bit(ok), err)
		case "status":
			s, err := creto.AgentStatusOf(p)
			return report("", int64(s), err)
		case "owner":
			s, err := creto.AgentOwner(p)
			return report(s, 0, err)
		case "agent_type":
			s, err := creto.AgentType(p)
			return report(s, 0, err)
		case "attribute":
			s, err := creto.AgentAttribute(p, res)
			return report(s, 0, err)
		case "mac":
			mac, err := creto.VaultMAC(res, secret, []byte(p))
			return report(hex.EncodeToString(mac[:]), creto.MACSize, err)
		case "reveal":
			v, err := creto.VaultReveal(res, secret)
			return report(string(v), int64(len(v)), err)
		case "emit":
			err := creto.AuditEmit(creto.AuditEvent{What: res, Resource: p, Why: "checked", Outcome: creto.OutcomeDenied,
				Context: map[string]string{"via": "platform"}})
			return report("", 0, err)
		case "put":
			err := creto.StoragePut(bucket, res, r.Context(), creto.ClassArtifact, time.Hour)
			return report("", 0, err)
		case "put_lapsed":
			// A lifetime already over is refused, not stored forever.
			err := creto.StoragePut(bucket, res, r.Context(), creto.ClassArtifact, -time.Second)
			return report("", 0, err)
		case "get":
			b, err := creto.StorageGet(bucket, res)
			return report(string(b), int64(len(b)), err)
		case "stat":
			info, err := creto.StorageStat(bucket, res)
			if err != nil {
				return report("", 0, err)
			}
			var expires int64
			if !info.Expires.IsZero() {
				expires = info.Expires.UnixNano()
			}
			return creto.QuotaExceeded(classFlags(int(info.Class), info.Retained), int64(info.Size), expires, info.Created)
		case "delete":
			return report("", 0, creto.StorageDelete(bucket, res))
		case "timestamp":
			ts, err := creto.Timestamp()
			if err != nil {
				return report("", 0, err)
			}
			return creto.QuotaExceeded(ts.NodeID, int64(ts.Logical), bit(ts.Consensus), time.Unix(0, ts.Physical))
		}
		return creto.Continue()
	})
}

// report answers text and n, or the error's code.
func report(text string, n int64, err error) creto.Result {
	if err != nil {
		var h creto.ErrHost
		if !errors.As(err, &h) {
			return creto.Fail(err.Error())
		}
		return creto.QuotaExceeded("", h.Code, 0, time.Time{})
	}
	return creto.QuotaExceeded(text, n, 0, time.Time{})
}

// classFlags is stat's class and retention as "<class>/<retained>".
func classFlags(class int, retained bool) string {
	return string(rune('0'+class)) + "/" + string(rune('0'+bit(retained)))
}

func bit(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
