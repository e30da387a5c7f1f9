//go:build wasip1

// Command egress is the Go example extension: agents may open network
// connections (action "network_egress", resource Host::"<name>") only to
// hosts on the configured allow-list; "*.example.com" allows every
// subdomain. Everything else continues untouched.
//
//	{"allow": ["api.openai.com", "*.internal.example.com"]}
package main

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/creto-systems/creto/sdk/go/creto"
)

var exact, suffixes []string

func main() {}

func init() {
	creto.OnInit(func(config []byte) error {
		var cfg struct {
			Allow []string `json:"allow"`
		}
		if err := json.Unmarshal(config, &cfg); err != nil || len(cfg.Allow) == 0 {
			return errors.New(`egress: the configuration needs an allow-list: {"allow": ["host", "*.domain", ...]}`)
		}
		for _, h := range cfg.Allow {
			if rest, ok := strings.CutPrefix(h, "*"); ok {
				suffixes = append(suffixes, rest) // ".domain"
			} else {
				exact = append(exact, h)
			}
		}
		return nil
	})
	creto.Handle(func(r creto.Request) creto.Result {
		if string(r.ActionID()) != "network_egress" || string(r.PrincipalType()) != "Agent" {
			return creto.Continue()
		}
		host := string(r.ResourceID())
		for _, h := range exact {
			if host == h {
				return creto.Continue()
			}
		}
		for _, s := range suffixes {
			if strings.HasSuffix(host, s) {
				return creto.Continue()
			}
		}
		return creto.Deny("egress-allowlist", "egress to "+host+" is not on the allow-list")
	})
}
