// Package tunnel lets the daemon reach TCP ports inside the sandbox through
// the agent: an HTTP upgrade on the agent's socket becomes a byte stream to
// 127.0.0.1:PORT in the sandbox, so servers bound only to loopback are
// reachable too.
package tunnel

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hutch-sh/hutch/internal/agentapi"
)

// Protocol is the Upgrade token of a tunnel request.
const Protocol = "hutch-tunnel"

// Path is where the agent serves tunnels: GET Path?port=N with
// "Connection: Upgrade" and "Upgrade: hutch-tunnel".
const Path = agentapi.TunnelPath

// Handler serves tunnels to ports on host (127.0.0.1 in a sandbox).
type Handler struct {
	Host string
	Log  *slog.Logger
}

func (h Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	port, err := strconv.Atoi(r.URL.Query().Get("port"))
	if err != nil || port < 1 || port > 65535 {
		http.Error(w, "port must be 1-65535", http.StatusBadRequest)
		return
	}
	if r.Header.Get("Upgrade") != Protocol {
		http.Error(w, "upgrade to "+Protocol+" required", http.StatusUpgradeRequired)
		return
	}
	var d net.Dialer
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	backend, err := d.DialContext(ctx, "tcp", net.JoinHostPort(h.Host, strconv.Itoa(port)))
	cancel()
	if err != nil {
		http.Error(w, fmt.Sprintf("nothing listens on port %d in the sandbox: %v", port, err), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		backend.Close()
		http.Error(w, "connection cannot be hijacked", http.StatusInternalServerError)
		return
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		backend.Close()
		return
	}
	defer conn.Close()
	defer backend.Close()
	if _, err := rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + Protocol + "\r\n\r\n"); err != nil {
		return
	}
	if err := rw.Flush(); err != nil {
		return
	}
	Splice(conn, rw.Reader, backend)
}

// Splice copies both ways between a (whose already-buffered bytes are in
// ar) and b until both directions are done, half-closing as each ends.
func Splice(a net.Conn, ar io.Reader, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(b, ar)
		closeWrite(b)
	}()
	go func() {
		defer wg.Done()
		_, _ = io.Copy(a, b)
		closeWrite(a)
	}()
	wg.Wait()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}

// Dial opens a tunnel to port through an agent reached by dial, and returns
// the byte stream.
func Dial(ctx context.Context, dial func(context.Context) (net.Conn, error), port int) (net.Conn, error) {
	c, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	req := fmt.Sprintf("GET %s?port=%d HTTP/1.1\r\nHost: agent\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", Path, port, Protocol)
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		c.Close()
		return nil, &Error{Status: resp.StatusCode, Message: string(body)}
	}
	_ = c.SetDeadline(time.Time{})
	return &bufferedConn{Conn: c, r: br}, nil
}

// Error is a tunnel the agent refused.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("tunnel: %d %s", e.Status, e.Message) }

// Refused reports whether err means nothing listens on the port.
func Refused(err error) bool {
	var te *Error
	return errors.As(err, &te) && te.Status == http.StatusBadGateway
}

// bufferedConn reads what the response reader had buffered first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite half-closes the underlying connection when it can.
func (c *bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
