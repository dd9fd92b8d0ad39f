package agentconn

import (
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// activity counts what is in flight to one agent (requests until their
// response body is closed, tunnels until they close) and when the last of
// it ended, so that the daemon never puts a sandbox to sleep under an open
// stream, however quiet.
type activity struct {
	open atomic.Int64
	last atomic.Int64 // unix nanoseconds
}

func (a *activity) begin() { a.open.Add(1); a.last.Store(time.Now().UnixNano()) }
func (a *activity) end()   { a.last.Store(time.Now().UnixNano()); a.open.Add(-1) }

// Active returns how many requests and tunnels are open now.
func (c *Conn) Active() int64 { return c.act.open.Load() }

// LastActive is when a request or tunnel last began or ended; zero if none.
func (c *Conn) LastActive() time.Time {
	n := c.act.last.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// counting wraps a transport so that each request counts as activity until
// its response body is closed.
type counting struct {
	act  *activity
	next http.RoundTripper
}

func (t counting) RoundTrip(r *http.Request) (*http.Response, error) {
	t.act.begin()
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		t.act.end()
		return nil, err
	}
	once := &sync.Once{}
	done := func() { once.Do(t.act.end) }
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok {
		// A protocol upgrade (terminal WebSocket): the proxy needs to write.
		resp.Body = countedRWC{ReadWriteCloser: rwc, done: done}
	} else {
		resp.Body = countedBody{ReadCloser: resp.Body, done: done}
	}
	return resp, nil
}

type countedBody struct {
	io.ReadCloser
	done func()
}

func (b countedBody) Close() error { defer b.done(); return b.ReadCloser.Close() }

type countedRWC struct {
	io.ReadWriteCloser
	done func()
}

func (b countedRWC) Close() error { defer b.done(); return b.ReadWriteCloser.Close() }

// countedConn is a tunnel that counts as activity until it is closed.
type countedConn struct {
	net.Conn
	once sync.Once
	act  *activity
}

func (c *countedConn) Close() error {
	c.once.Do(c.act.end)
	return c.Conn.Close()
}

func (t counting) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
