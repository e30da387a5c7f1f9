package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"

	"github.com/creto-systems/creto/services/nhi"
	"github.com/creto-systems/creto/services/storage"
)

// openStorage opens object storage on the node's store, after NHI (owners'
// keys) and while the node's sealer is open (storage seals its node
// secret with it): object files under <data_dir>/objects. Its sweeper
// stops when it closes.
func (n *Node) openStorage(ctx context.Context, sealer storage.Sealer) error {
	s, err := storage.Open(ctx, n.cfg.Server.DataDir, n.store, n.nhi, sealer, n.cfg.Storage)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	n.storage = s
	n.closers = append(n.closers, s.Close)
	if n.cfg.Server.PublicHTTPURL == "" && unspecifiedHost(n.cfg.Server.HTTPAddr) {
		n.log.Warn("presigned storage URLs will name localhost: the HTTP listener has no host name; set [server] public_http_url",
			"http_addr", n.cfg.Server.HTTPAddr)
	}
	return nil
}

// presignPath is where the node's HTTP listener serves presigned URLs.
func (c Config) presignPath() string {
	if p := c.Storage.PresignPath; p != "" {
		return p
	}
	return storage.DefaultConfig().PresignPath
}

// checkHTTP rejects a presign path the HTTP listener cannot mount as an
// exact path — one the mux would read as a pattern, or one /metrics or
// /healthz already holds — and a public URL that is not an absolute
// http(s) URL without query or fragment.
func (c Config) checkHTTP() error {
	p := c.presignPath()
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._~-", r)) {
			return fmt.Errorf("config: storage.presign_path %q: use letters, digits and / . _ ~ - only", p)
		}
	}
	if !strings.HasPrefix(p, "/") || p == "/" || p == "/metrics" || p == "/healthz" {
		return fmt.Errorf("config: storage.presign_path %q must be an absolute path other than /, /metrics and /healthz", p)
	}
	if raw := c.Server.PublicHTTPURL; raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(raw, "?") {
			return fmt.Errorf("config: server.public_http_url %q: want http(s)://host[:port][/path], without user, query or fragment", raw)
		}
	}
	return nil
}

// httpBaseURL is what presigned URLs start with: [server] public_http_url
// for a node behind a proxy, or else the HTTP listener's scheme (https
// unless the node serves plaintext), host and port. It is called only
// while serving, once Start has bound the listener.
func (n *Node) httpBaseURL() string {
	if u := n.cfg.Server.PublicHTTPURL; u != "" {
		return strings.TrimSuffix(u, "/")
	}
	scheme := "https"
	if n.tls == nil {
		scheme = "http"
	}
	host, port, _ := net.SplitHostPort(n.cfg.Server.HTTPAddr)
	if n.httpLis != nil {
		_, port, _ = net.SplitHostPort(n.httpLis.Addr().String()) // the port a ":0" address got
	}
	if unspecifiedHost(n.cfg.Server.HTTPAddr) {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// unspecifiedHost reports whether addr listens on every interface, which
// names no host a URL could use.
func unspecifiedHost(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "" || ip != nil && ip.IsUnspecified()
}

// extensionObjects is the object store of the storage host module: the
// storage service, with an extension's identity ("extension:<name>")
// registered in NHI before the extension stores its first object. Objects
// are encrypted to their owner's NHI key, and granting an extension the
// storage capability is the operator's consent to its having one. The
// identity is an ordinary NHI agent from then on: suspending it stops the
// extension's storage, revoking it crypto-shreds its objects.
type extensionObjects struct {
	*storage.Service
	nhi *nhi.Service
}

// Store implements hosts.ObjectStore.
func (o extensionObjects) Store(ctx context.Context, c storage.Caller, req storage.StoreRequest, body io.Reader) (storage.ObjectMetadata, error) {
	if err := o.provision(ctx, c.Agent); err != nil {
		return storage.ObjectMetadata{}, fmt.Errorf("storage: the extension identity %q is not in NHI: %w", c.Agent, err)
	}
	return o.Service.Store(ctx, c, req, body)
}

func (o extensionObjects) provision(ctx context.Context, agent string) error {
	if ok, err := o.nhi.IsRegistered(ctx, agent); err != nil || ok {
		return err
	}
	_, err := o.nhi.RegisterExtension(ctx, strings.TrimPrefix(agent, storage.ExtensionAgentPrefix))
	if errors.Is(err, nhi.ErrAlreadyExists) {
		return nil // another instance of the extension registered it first
	}
	return err
}
