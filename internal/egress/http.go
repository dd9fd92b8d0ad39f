package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"
)

type targetKey struct{}

// serveHTTP decides and forwards one request of a plain HTTP or
// intercepted HTTPS connection. The policy is looked up per request, so a
// change applies to open keep-alive connections too.
func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	ci, _ := r.Context().Value(connKey{}).(*connInfo)
	src, _ := netip.ParseAddrPort(r.RemoteAddr)
	id, ok := p.cfg.Sandboxes.Identify(src.Addr().Unmap())
	if ci == nil || !ok {
		http.Error(w, "hutch egress: connection from an unknown sandbox\n", http.StatusForbidden)
		return
	}
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	e := Entry{Time: time.Now(), Sandbox: id.Name, Proto: "http", Host: host, Port: int(ci.dst.Port()), Method: r.Method, Path: r.URL.Path}
	if ci.tls {
		e.Proto = "https"
	}
	var logged *Entry // once the request is on its way
	defer func() {
		if logged == nil {
			p.logs.add(e)
		}
	}()
	if host == "" {
		host = ci.dst.Addr().String()
		e.Host = host
	}
	if ci.tls && host != ci.sni {
		e.Rule = fmt.Sprintf("Host %q does not match the TLS server name %q", host, ci.sni)
		p.refuse(w, r, &e, http.StatusForbidden)
		return
	}
	t, reason := p.decide(r.Context(), id, host, ci.dst.Port())
	e.Rule = reason
	if t == nil {
		p.refuse(w, r, &e, http.StatusForbidden)
		return
	}
	e.Allowed, e.Addr = true, t.addr.String()
	if t.rule != nil {
		if err := t.rule.rewrite(r.Header, p.cfg.Secrets.forSandbox(id.Name)); err != nil {
			e.Allowed, e.Rule = false, err.Error()
			p.refuse(w, r, &e, http.StatusBadGateway)
			return
		}
	}
	var in counter
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &countingBody{ReadCloser: r.Body, n: &in}
	}
	cw := &countingWriter{ResponseWriter: w}
	scheme := "http"
	if ci.tls {
		scheme = "https"
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = scheme
			pr.Out.URL.Host = net.JoinHostPort(t.host, fmt.Sprint(t.port))
			pr.Out.Host = r.Host
		},
		Transport:     p.tr,
		FlushInterval: -1,
		ErrorLog:      nil,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			e.Error = err.Error()
			if errors.Is(err, context.Canceled) {
				return
			}
			e.Status = http.StatusBadGateway
			http.Error(w, fmt.Sprintf("hutch egress: %s %s://%s:%d%s: the upstream failed: %v\n", r.Method, scheme, t.host, t.port, r.URL.Path, err), http.StatusBadGateway)
		},
	}
	ctx := context.WithValue(r.Context(), targetKey{}, t)
	logged = p.logs.add(e)
	rp.ServeHTTP(cw, r.WithContext(ctx))
	if e.Status == 0 {
		e.Status = cw.status
	}
	e.BytesOut, e.BytesIn = in.Load(), cw.n
	p.logs.done(logged, func(l *Entry) { *l = e })
}

// refuse answers a blocked request with a body that says what blocked it.
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, e *Entry, status int) {
	e.Status = status
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Hutch-Egress", "blocked")
	w.WriteHeader(status)
	fmt.Fprintf(w, "hutch egress: %s %s://%s:%d%s from sandbox %s is blocked: %s\n", r.Method, e.Proto, e.Host, e.Port, r.URL.Path, e.Sandbox, e.Rule)
}

// dialTarget dials the address the proxy resolved and checked for this
// request, never one the sandbox chose.
func (p *Proxy) dialTarget(ctx context.Context, network, _ string) (net.Conn, error) {
	t, ok := ctx.Value(targetKey{}).(*target)
	if !ok {
		return nil, errNoTarget
	}
	d := net.Dialer{Timeout: 15 * time.Second}
	return d.DialContext(ctx, network, netip.AddrPortFrom(t.addr, t.port).String())
}

type counter = atomic.Int64

type countingBody struct {
	io.ReadCloser
	n *counter
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// countingWriter counts the response bytes; Unwrap lets
// http.ResponseController flush and hijack (WebSocket) through it.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
