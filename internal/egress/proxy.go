// Package egress is the daemon's egress proxy: every TCP connection a
// sandbox opens is redirected to it (nftables, see internal/network), and
// it decides by the sandbox's policy whether and how it goes out. Plain
// HTTP is proxied request by request; TLS is tunnelled untouched by its SNI,
// or intercepted with the daemon's CA when a rule rewrites that host's
// requests, to inject secrets the sandbox never sees. Every decision lands
// in a bounded per-sandbox log.
package egress

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Identity is who a connection comes from.
type Identity struct {
	Name   string
	Policy Policy
}

// Sandboxes tells the proxy which sandbox owns a source address.
type Sandboxes interface {
	Identify(addr netip.Addr) (Identity, bool)
}

// Resolver resolves names for the proxy; the daemon's, never the sandbox's.
type Resolver func(ctx context.Context, host string) ([]netip.Addr, error)

// Config configures a Proxy.
type Config struct {
	Listen    netip.Addr // the sandboxes' gateway
	Sandboxes Sandboxes
	Secrets   *Secrets
	CA        *CA
	// Subnet is the sandboxes' own: never a destination.
	Subnet netip.Prefix
	// Resolve defaults to the host's resolver.
	Resolve Resolver
	// UpstreamRoots verify the servers behind intercepted HTTPS; nil means
	// the host's roots.
	UpstreamRoots *x509.CertPool
	// MaxConns bounds one sandbox's connections through the proxy at a
	// time, so that no sandbox takes all of the daemon's file descriptors.
	MaxConns int
	Log      *slog.Logger
}

// Proxy is a running egress proxy.
type Proxy struct {
	cfg   Config
	log   *slog.Logger
	ln    net.Listener
	srv   *http.Server
	http  *chanListener
	tr    *http.Transport
	logs  logs
	host  hostAddrs
	conns sync.Map // net.Conn handed to srv → *connInfo

	wg     sync.WaitGroup
	mu     sync.Mutex
	active map[net.Conn]struct{} // tunnels, closed by Close
	open   map[string]int        // connections per sandbox
	closed bool
}

// DefaultMaxConns is Config.MaxConns when zero.
const DefaultMaxConns = 1024

// sniffTimeout is how long the proxy waits for a client's first bytes
// before it treats the connection as a protocol where the server speaks
// first.
const sniffTimeout = time.Second

// Start listens on cfg.Listen (a free port) and serves until Close.
func Start(cfg Config) (*Proxy, error) {
	if cfg.Resolve == nil {
		cfg.Resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	ln, err := net.Listen("tcp4", net.JoinHostPort(cfg.Listen.String(), "0"))
	if err != nil {
		return nil, fmt.Errorf("egress proxy on %s: %w", cfg.Listen, err)
	}
	p := &Proxy{cfg: cfg, log: cfg.Log, ln: ln, http: newChanListener(ln.Addr()), active: make(map[net.Conn]struct{}), open: make(map[string]int)}
	p.tr = &http.Transport{
		DialContext:         p.dialTarget,
		TLSClientConfig:     &tls.Config{RootCAs: cfg.UpstreamRoots},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 15 * time.Second,
	}
	p.srv = &http.Server{
		Handler:           http.HandlerFunc(p.serveHTTP),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(cfg.Log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if ci, ok := p.conns.Load(c); ok {
				return context.WithValue(ctx, connKey{}, ci)
			}
			return ctx
		},
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateClosed || s == http.StateHijacked {
				if ci, ok := p.conns.LoadAndDelete(c); ok {
					p.release(ci.(*connInfo).sandbox)
				}
			}
		},
	}
	p.wg.Add(2)
	go func() { defer p.wg.Done(); _ = p.srv.Serve(p.http) }()
	go func() { defer p.wg.Done(); p.accept() }()
	return p, nil
}

// Port is the port the proxy listens on.
func (p *Proxy) Port() uint16 { return uint16(p.ln.Addr().(*net.TCPAddr).Port) }

// Close stops the proxy and cuts every connection through it.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.active {
		c.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	_ = p.srv.Close()
	p.wg.Wait()
	p.tr.CloseIdleConnections()
	return err
}

// Log returns up to n of sandbox's latest log entries, oldest first; all
// that are kept if n is 0.
func (p *Proxy) Log(sandbox string, n int) []Entry { return p.logs.last(sandbox, n) }

// AllowLookup is the DNS forwarder's filter: whether the sandbox at src
// may look name up under its policy. Unknown addresses may not.
func (p *Proxy) AllowLookup(src netip.Addr, name string) bool {
	id, ok := p.cfg.Sandboxes.Identify(src)
	return ok && id.Policy.lookupAllowed(name)
}

// Forget drops a removed sandbox's log.
func (p *Proxy) Forget(sandbox string) { p.logs.forget(sandbox) }

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.active[c] = struct{}{}
	return true
}

func (p *Proxy) admit(sandbox string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open[sandbox] >= p.cfg.MaxConns {
		return false
	}
	p.open[sandbox]++
	return true
}

func (p *Proxy) release(sandbox string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open[sandbox]--; p.open[sandbox] <= 0 {
		delete(p.open, sandbox)
	}
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.active, c)
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close()
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c.(*net.TCPConn))
		}()
	}
}

// connInfo is what the proxy knows of a connection it passes to its HTTP
// server.
type connInfo struct {
	sandbox string
	dst     netip.AddrPort
	sni     string // intercepted TLS only
	tls     bool
}

type connKey struct{}

// handle sorts out one redirected connection.
func (p *Proxy) handle(c *net.TCPConn) {
	handed := false
	defer func() {
		p.untrack(c)
		if !handed {
			c.Close()
		}
	}()
	src, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	dst, err := origDst(c)
	if err != nil {
		p.log.Warn("egress: no original destination", "err", err)
		return
	}
	id, ok := p.cfg.Sandboxes.Identify(src.Addr().Unmap())
	if !ok {
		p.log.Debug("egress: connection from an unknown address", "src", src)
		return
	}
	if !p.admit(id.Name) {
		p.logs.add(Entry{Time: time.Now(), Sandbox: id.Name, Host: dst.Addr().String(), Port: int(dst.Port()),
			Rule: fmt.Sprintf("more than %d connections at once", p.cfg.MaxConns)})
		return
	}
	defer func() {
		if !handed { // the HTTP server releases what it got, when it closes
			p.release(id.Name)
		}
	}()
	br := bufio.NewReaderSize(c, 16<<10+5)
	_ = c.SetReadDeadline(time.Now().Add(sniffTimeout))
	first, err := br.Peek(1)
	if err == nil && first[0] == 0x16 {
		first, err = peekRecord(br)
	} else if err == nil {
		first, err = br.Peek(br.Buffered())
	}
	_ = c.SetReadDeadline(time.Time{})
	pc := &peekedConn{TCPConn: c, r: br}
	switch {
	case err != nil && !isTimeout(err):
		return
	case err == nil && first[0] == 0x16:
		handed = p.handleTLS(pc, id, dst, first)
	case err == nil && looksHTTP(first):
		p.conns.Store(pc, &connInfo{sandbox: id.Name, dst: dst})
		handed = p.http.hand(pc)
	default:
		p.handleRaw(pc, id, dst)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

var httpMethods = []string{"GET ", "POST ", "PUT ", "HEAD ", "DELETE ", "OPTIONS ", "PATCH ", "TRACE ", "CONNECT "}

func looksHTTP(b []byte) bool {
	for _, m := range httpMethods {
		n := min(len(b), len(m))
		if n > 0 && string(b[:n]) == m[:n] {
			return true
		}
	}
	return false
}

// handleTLS tunnels or intercepts a TLS connection by its SNI.
func (p *Proxy) handleTLS(pc *peekedConn, id Identity, dst netip.AddrPort, record []byte) bool {
	hello, err := parseClientHello(record)
	if err != nil {
		p.logs.add(Entry{Time: time.Now(), Sandbox: id.Name, Proto: "tls", Host: dst.Addr().String(), Port: int(dst.Port()), Rule: "malformed TLS ClientHello", Error: err.Error()})
		return false
	}
	host := strings.ToLower(hello.ServerName)
	if host == "" {
		host = dst.Addr().String()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t, reason := p.decide(ctx, id, host, dst.Port())
	cancel()
	e := Entry{Time: time.Now(), Sandbox: id.Name, Proto: "tls", Host: host, Port: int(dst.Port()), Rule: reason}
	if t == nil {
		// The connection is refused; the reason is here and nowhere else,
		// since the sandbox's TLS client would not show a page of ours.
		p.logs.add(e)
		return false
	}
	e.Allowed, e.Addr = true, t.addr.String()
	if t.rule != nil {
		tc := tls.Server(pc, &tls.Config{
			NextProtos: []string{"h2", "http/1.1"},
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return p.cfg.CA.certFor(host)
			},
		})
		p.conns.Store(tc, &connInfo{sandbox: id.Name, dst: dst, sni: host, tls: true})
		return p.http.hand(tc)
	}
	p.tunnel(pc, e, t)
	return false
}

// handleRaw passes a connection that is neither HTTP nor TLS through only
// to an address that allow names.
func (p *Proxy) handleRaw(pc *peekedConn, id Identity, dst netip.AddrPort) {
	host := dst.Addr().String()
	e := Entry{Time: time.Now(), Sandbox: id.Name, Proto: "tcp", Host: host, Port: int(dst.Port())}
	if _, ok := id.Policy.allowsAddr(dst.Addr()); !ok {
		e.Rule = fmt.Sprintf("non-HTTP TCP needs an allow entry naming %s", host)
		p.logs.add(e)
		return
	}
	t, reason := p.decide(context.Background(), id, host, dst.Port())
	e.Rule = reason
	if t == nil {
		p.logs.add(e)
		return
	}
	e.Allowed, e.Addr = true, t.addr.String()
	p.tunnel(pc, e, t)
}

// target is where an allowed connection or request goes.
type target struct {
	host string
	addr netip.Addr
	port uint16
	rule *Rule
}

// decide applies id's policy to host:port and resolves it; nil and the
// reason when refused.
func (p *Proxy) decide(ctx context.Context, id Identity, host string, port uint16) (*target, string) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if v := id.Policy.decide(id.Name, host, netip.Addr{}); !v.allow && strings.HasPrefix(v.rule, "deny") {
		return nil, v.rule // no need to resolve it
	}
	addr, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		addrs, err := p.cfg.Resolve(ctx, host)
		if err != nil || len(addrs) == 0 {
			return nil, fmt.Sprintf("%s does not resolve from the daemon: %v", host, err)
		}
		addr = addrs[0]
		for _, a := range addrs {
			if a.Unmap().Is4() {
				addr = a
				break
			}
		}
	}
	addr = addr.Unmap()
	switch {
	case inAny(never, addr):
		return nil, fmt.Sprintf("always blocked: %s is loopback, link-local (cloud metadata) or multicast", addr)
	case p.cfg.Subnet.Contains(addr):
		return nil, fmt.Sprintf("always blocked: %s is a sandbox address", addr)
	case p.host.has(addr):
		return nil, fmt.Sprintf("always blocked: %s is this host", addr)
	}
	v := id.Policy.decide(id.Name, host, addr)
	if !v.allow {
		return nil, v.rule
	}
	if inAny(special, addr) || p.host.onLink(addr) {
		if _, ok := id.Policy.allowsAddr(addr); !ok {
			return nil, fmt.Sprintf("%s is the private address %s; allow it explicitly with %q", host, addr, addr.String())
		}
	}
	return &target{host: host, addr: addr, port: port, rule: v.apply}, v.rule
}

// tunnel connects to t and copies both ways until both sides are done.
func (p *Proxy) tunnel(pc *peekedConn, e Entry, t *target) {
	d := net.Dialer{Timeout: 15 * time.Second}
	up, err := d.Dial("tcp", netip.AddrPortFrom(t.addr, t.port).String())
	if err != nil {
		e.Error = err.Error()
		p.logs.add(e)
		return
	}
	if !p.track(up) {
		up.Close()
		return
	}
	defer p.untrack(up)
	defer up.Close()
	logged := p.logs.add(e)
	var out, in int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		out, _ = io.Copy(up, pc)
		_ = up.(*net.TCPConn).CloseWrite()
	}()
	in, _ = io.Copy(pc, up)
	_ = pc.CloseWrite()
	wg.Wait()
	p.logs.done(logged, func(e *Entry) { e.BytesOut, e.BytesIn = out, in })
}

// peekRecord returns the first TLS record, which holds the ClientHello.
func peekRecord(br *bufio.Reader) ([]byte, error) {
	h, err := br.Peek(5)
	if err != nil {
		return nil, err
	}
	n := int(h[3])<<8 | int(h[4])
	if n > 16<<10 {
		return nil, fmt.Errorf("TLS record of %d bytes", n)
	}
	return br.Peek(5 + n)
}

var errHello = errors.New("hello read")

// parseClientHello reads the ClientHello in record with crypto/tls itself.
func parseClientHello(record []byte) (*tls.ClientHelloInfo, error) {
	var hello *tls.ClientHelloInfo
	err := tls.Server(&readOnlyConn{r: strings.NewReader(string(record))}, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			c := *h
			hello = &c
			return nil, errHello
		},
	}).Handshake()
	if hello == nil {
		return nil, err
	}
	return hello, nil
}
