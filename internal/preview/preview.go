// Package preview routes preview URLs, http://{port}-{name}-{token}.{domain}/,
// to ports inside sandboxes: HTTP with streaming bodies, SSE and WebSocket
// upgrades, through a tunnel in the sandbox's agent.
package preview

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"time"

	"github.com/hutch-sh/hutch/internal/agentapi/tunnel"
	"github.com/hutch-sh/hutch/internal/agentconn"
)

// Sandboxes is what the router needs of the sandbox manager.
type Sandboxes interface {
	Preview(name string, port int, token string) bool
}

// Tunnels opens byte streams to ports inside sandboxes: the agent gateway,
// which marks a sandbox broken when its agent cannot be reached.
type Tunnels interface {
	DialTunnel(ctx context.Context, name string, port int) (net.Conn, error)
}

var _ Tunnels = (*agentconn.Gateway)(nil)

// Router serves preview requests.
type Router struct {
	sb     Sandboxes
	domain string
	log    *slog.Logger
	proxy  *httputil.ReverseProxy
}

// New returns a router for hosts under domain (e.g. "localhost").
func New(sb Sandboxes, tunnels Tunnels, domain string, log *slog.Logger) *Router {
	r := &Router{sb: sb, domain: strings.Trim(strings.ToLower(domain), "."), log: log}
	tr := &http.Transport{
		// The URL host is "name:port": dial that port in that sandbox.
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			name, p, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			port, err := strconv.Atoi(p)
			if err != nil {
				return nil, err
			}
			return tunnels.DialTunnel(ctx, name, port)
		},
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 5 * time.Minute,
	}
	r.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := pr.In.Context().Value(targetKey{}).(target)
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = net.JoinHostPort(t.name, strconv.Itoa(t.port))
			pr.Out.Host = pr.In.Host // apps build their links from it
			pr.SetXForwarded()
		},
		Transport:     tr,
		FlushInterval: -1, // stream: SSE and chunked bodies pass as they come
		ErrorHandler:  r.proxyError,
	}
	return r
}

type targetKey struct{}

type target struct {
	name string
	port int
}

// Owns reports whether host (lower case, no port, no trailing dot) is under
// the preview domain: such a host is a preview or nothing.
func (r *Router) Owns(host string) bool {
	return strings.HasSuffix(host, "."+r.domain)
}

// Match reports whether host is a preview host and parses it.
func (r *Router) Match(host string) (port int, name, token string, ok bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	label, found := strings.CutSuffix(host, "."+r.domain)
	if !found || strings.Contains(label, ".") {
		return 0, "", "", false
	}
	first := strings.IndexByte(label, '-')
	last := strings.LastIndexByte(label, '-')
	if first <= 0 || last <= first+1 || last == len(label)-1 {
		return 0, "", "", false
	}
	port, err := strconv.Atoi(label[:first])
	if err != nil || port < 1 || port > 65535 || strings.Trim(label[:first], "0123456789") != "" {
		return 0, "", "", false
	}
	return port, label[first+1 : last], label[last+1:], true
}

// ServeHTTP proxies a request whose Host is a preview host.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	port, name, token, ok := r.Match(req.Host)
	if !ok || !r.sb.Preview(name, port, token) {
		http.Error(w, "hutch: no such preview URL: the sandbox does not exist, the port is not exposed, or the token is wrong", http.StatusNotFound)
		return
	}
	ctx := context.WithValue(req.Context(), targetKey{}, target{name: name, port: port})
	r.proxy.ServeHTTP(w, req.WithContext(ctx))
}

func (r *Router) proxyError(w http.ResponseWriter, req *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	t, _ := req.Context().Value(targetKey{}).(target)
	msg := fmt.Sprintf("hutch: sandbox %q: %v", t.name, err)
	if tunnel.Refused(err) {
		msg = fmt.Sprintf("hutch: nothing listens on port %d in sandbox %q (yet)", t.port, t.name)
	}
	r.log.Debug("preview proxy", "sandbox", t.name, "port", t.port, "err", err)
	http.Error(w, msg, http.StatusBadGateway)
}
