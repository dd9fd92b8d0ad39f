package apiserver

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"

	"connectrpc.com/connect"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// Any web page can make a browser send requests to 127.0.0.1, and DNS
// rebinding makes them same-origin: the page's own name resolves to this
// machine, so no CORS rule applies. The Host header still carries the
// page's name, though, so the API answers only hosts it knows; and every
// call a browser makes to change something must come from a page of the
// host it calls (Origin), so no other site can drive it through a
// user's browser either.

// AnyHost, as an allowed host, answers every Host; it needs API keys.
const AnyHost = "*"

var hostName = regexp.MustCompile(`^[a-z0-9_-]+(\.[a-z0-9_-]+)*$`)

// hosts decides which Host headers the API answers.
type hosts struct {
	any   bool
	names map[string]bool
	addrs map[netip.Addr]bool
}

func newHosts(cfg Config) hosts {
	h := hosts{names: make(map[string]bool), addrs: make(map[netip.Addr]bool)}
	for _, a := range cfg.LocalAddrs {
		h.addrs[a.Unmap().WithZone("")] = true
	}
	for _, n := range cfg.AllowedHosts {
		n = normHost(n)
		switch a, err := netip.ParseAddr(n); {
		case n == AnyHost:
			// Without keys, "*" would reopen what the check closes.
			h.any = len(cfg.Keys) > 0
		case err == nil:
			h.addrs[a.Unmap().WithZone("")] = true
		default:
			h.names[n] = true
		}
	}
	return h
}

// allowed reports whether the API answers host (as hostname returns it).
// An address of the daemon's own is not rebinding, which needs a name.
func (h hosts) allowed(host string) bool {
	if h.any || host == "localhost" || h.names[host] {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap().WithZone("")
	return a.IsLoopback() || h.addrs[a]
}

// Check validates the allowed hosts: names or addresses without a port,
// "*" only with keys, none under the preview domain (whose hosts are
// previews or nothing).
func (c Config) Check() error {
	domain := previewDomain(c.PreviewDomain)
	for _, raw := range c.AllowedHosts {
		n := normHost(raw)
		_, err := netip.ParseAddr(n)
		switch {
		case n == AnyHost && len(c.Keys) == 0:
			return fmt.Errorf("allowed host %q answers every host name, which lets any web page drive the API by DNS rebinding; it needs API keys (--api-key): %w", raw, errdefs.ErrInvalidArgument)
		case n == AnyHost || err == nil:
		case !hostName.MatchString(n):
			return fmt.Errorf("allowed host %q: want a host name or an address, without scheme or port: %w", raw, errdefs.ErrInvalidArgument)
		case strings.HasSuffix(n, "."+domain):
			return fmt.Errorf("allowed host %q is under the preview domain %q, whose hosts only ever reach previews: %w", raw, domain, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// normHost lower-cases a host name and drops a trailing dot and an IPv6
// address's brackets.
func normHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	return h
}

// splitHost splits a Host header (or an Origin's host) into its normalized
// name and its port, "" when it has none.
func splitHost(hostport string) (host, port string) {
	host = hostport
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
	}
	return normHost(host), port
}

// hostname is a Host header's normalized name.
func hostname(hostport string) string {
	h, _ := splitHost(hostport)
	return h
}

// changesState reports whether a browser's request r may change
// something: any method but the safe ones, and any upgrade (WebSocket
// terminals), which a page can open to any site.
func changesState(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return r.Header.Get("Upgrade") != ""
	}
	return true
}

// admit decides whether r reaches the API; when not, it returns why, in
// words that say what to do.
func (s *Server) admit(r *http.Request) (string, bool) {
	host := hostname(r.Host)
	if !s.hosts.allowed(host) {
		how := "restart the daemon with `hutch serve --allowed-host " + host + "`"
		if len(s.keys) > 0 {
			how += " (or --allowed-host '*' to answer every host, as API keys are on)"
		}
		return fmt.Sprintf("hutch refuses requests for host %q: it answers only localhost, loopback addresses, its own addresses and the hosts it is told to allow, as any web page can point a name of its own at this machine; if %q is yours, %s", host, host, how), false
	}
	if !changesState(r) {
		return "", true
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return "", true // not a browser: curl, the SDKs
	}
	if u, err := url.Parse(o); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil && sameHost(u.Host, r.Host) {
		return "", true
	}
	return fmt.Sprintf("hutch refuses a %s to %s from a page of origin %q: a browser may change something only from a page of the host it calls (%s), so that no other web site can drive this API through a browser", r.Method, r.URL.Path, o, r.Host), false
}

// sameHost reports whether two host[:port] strings name the same host and
// port.
func sameHost(a, b string) bool {
	ah, ap := splitHost(a)
	bh, bp := splitHost(b)
	return ah == bh && ap == bp
}

// refuse answers a request admit turned away.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, msg string) {
	s.log.Debug("refused request", "host", r.Host, "origin", r.Header.Get("Origin"), "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
	errdefs.WriteHTTPStatus(w, http.StatusForbidden, connect.CodePermissionDenied, msg)
}
