package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Option configures clients beyond their TOML configuration.
type Option func(*options)

type options struct {
	log   *slog.Logger
	token func(context.Context) (string, error)
	dial  []grpc.DialOption
}

// WithLogger sets where clients log fallbacks and circuit changes
// (slog.Default() otherwise). Logs never carry secrets, tokens or request
// contents.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithBearerToken makes every call an agent's: the node authenticates it
// by this NHI token ("authorization: Bearer <token>"). It needs TLS.
func WithBearerToken(token string) Option {
	return WithTokenSource(func(context.Context) (string, error) { return token, nil })
}

// WithTokenSource is WithBearerToken for tokens that are renewed: source
// is asked for the token before every call. An error from it fails the
// call as unauthenticated.
func WithTokenSource(source func(context.Context) (string, error)) Option {
	return func(o *options) { o.token = source }
}

// WithDialOptions adds gRPC dial options to every connection the clients
// open, after their own: interceptors for tracing or metrics, for example.
// Options that replace the transport credentials or the dialer break the
// [transport] configuration and the connection health the clients watch.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
}

func newOptions(opts []Option) options {
	o := options{log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}

// ownedConn is part of every client: the dialer of a client built alone
// (NewAuthzClient …), which closes with it; nil for the clients of New,
// whose dialer Clients.Close closes.
type ownedConn struct{ dialer *dialer }

func (o *ownedConn) own(d *dialer) { o.dialer = d }

func (o *ownedConn) closeConn() error {
	if o.dialer == nil {
		return nil
	}
	return o.dialer.close()
}

// standalone builds one section's client on a dialer of its own, which
// the client then owns.
func standalone[S any, C interface{ own(*dialer) }](cfg S, opts []Option, build func(*dialer, Transport, S) (C, error)) (C, error) {
	d := newDialer(opts)
	c, err := build(d, Transport{}, cfg)
	if err != nil {
		var none C
		return none, errors.Join(err, d.close())
	}
	c.own(d)
	return c, nil
}

// dialer opens and shares connections: clients whose services are at one
// endpoint with the same TLS settings share one HTTP/2 connection.
type dialer struct {
	opts  options
	mu    sync.Mutex
	conns map[connKey]*conn
}

// conn is a connection and the watch on its dials.
type conn struct {
	*grpc.ClientConn
	dials *dialWatch
}

// dialWatch tells waiters when a TCP dial fails. A connection in transient
// failure does not show it — its state stays TRANSIENT_FAILURE while it
// redials — so without the watch a call would wait out
// connect_timeout_ms against a port nothing listens on, where it can fail
// at once.
type dialWatch struct {
	mu     sync.Mutex
	failed chan struct{} // closed at the next failed dial
}

// next returns a channel closed when a dial fails from now on.
func (w *dialWatch) next() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed == nil {
		w.failed = make(chan struct{})
	}
	return w.failed
}

func (w *dialWatch) dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		w.mu.Lock()
		if w.failed != nil {
			close(w.failed)
			w.failed = nil
		}
		w.mu.Unlock()
	}
	return c, err
}

// connKey identifies a connection by value: TLSEnabled's pointer is
// replaced by the resolved flag.
type connKey struct {
	trans Transport
	tls   bool
}

func newDialer(opts []Option) *dialer {
	return &dialer{opts: newOptions(opts), conns: map[connKey]*conn{}}
}

// dial returns the connection for p, opening it on first use. It never
// waits for the node: a client can be built while its service is down.
func (d *dialer) dial(section string, p policy) (*conn, error) {
	key := connKey{trans: p.trans, tls: p.tls}
	key.trans.TLSEnabled = nil
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.conns[key]; c != nil {
		return c, nil
	}
	creds, err := transportCredentials(section, p)
	if err != nil {
		return nil, err
	}
	watch := &dialWatch{}
	dialOpts := []grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithContextDialer(watch.dial)}
	if d.opts.token != nil {
		switch {
		case !p.tls:
			return nil, fmt.Errorf("%w: %s: a bearer token is never sent without TLS", ErrConfig, section)
		case p.trans.TLSCert != "":
			// The node takes a client certificate over a token: the calls
			// would be the operator's, not the agent's.
			return nil, fmt.Errorf("%w: %s: a client certificate (tls_cert) and a bearer token: use one", ErrConfig, section)
		}
		dialOpts = append(dialOpts, grpc.WithPerRPCCredentials(tokenCredentials(d.opts.token)))
	}
	c, err := grpc.NewClient(p.target, append(dialOpts, d.opts.dial...)...)
	if err != nil {
		return nil, fmt.Errorf("%w: %s.endpoint: %v", ErrConfig, section, err)
	}
	d.conns[key] = &conn{ClientConn: c, dials: watch}
	return d.conns[key], nil
}

func (d *dialer) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for k, c := range d.conns {
		errs = append(errs, c.Close())
		delete(d.conns, k)
	}
	return errors.Join(errs...)
}

// transportCredentials builds TLS 1.3 (the node accepts nothing older)
// from the section's files, or plaintext when TLS is off.
func transportCredentials(section string, p policy) (credentials.TransportCredentials, error) {
	if !p.tls {
		return insecure.NewCredentials(), nil
	}
	t := p.trans
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, ServerName: t.TLSServerName}
	if cfg.ServerName == "" {
		host, _, _ := net.SplitHostPort(p.target)
		cfg.ServerName = host
	}
	if t.TLSCA != "" {
		pem, err := os.ReadFile(t.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("%w: %s.tls_ca: %v", ErrConfig, section, err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: %s.tls_ca %s holds no PEM certificate", ErrConfig, section, strconv.Quote(t.TLSCA))
		}
	}
	if t.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(t.TLSCert, t.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("%w: %s.tls_cert/tls_key: %v", ErrConfig, section, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(cfg), nil
}

// tokenCredentials sends an NHI token with every call.
type tokenCredentials func(context.Context) (string, error)

func (f tokenCredentials) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	token, err := f(ctx)
	if err != nil {
		// Unauthenticated, not the Unavailable gRPC would make of it: a
		// token source's trouble is not the service's.
		return nil, status.Errorf(codes.Unauthenticated, "token source: %v", err)
	}
	return map[string]string{"authorization": "Bearer " + token}, nil
}

func (tokenCredentials) RequireTransportSecurity() bool { return true }
