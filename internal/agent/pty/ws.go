package pty

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/coder/websocket"

	"github.com/hutch-sh/hutch/internal/agentapi"
	"github.com/hutch-sh/hutch/internal/agentapi/termwire"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// termPingInterval is how often an attached client is pinged: it keeps
// quiet connections open through proxies and finds dead clients.
const termPingInterval = 15 * time.Second

// termReadLimit bounds one frame from a client.
const termReadLimit = 1 << 20

// TerminalHandler serves terminal WebSockets (the protocol is in package
// termwire). Origins are not checked: only the daemon reaches the agent,
// and it checks them.
func (s *Service) TerminalHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := s.terms.Get(strings.TrimPrefix(r.URL.Path, agentapi.TerminalPath))
		if err != nil {
			errdefs.WriteHTTP(w, err)
			return
		}
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			w.Header().Set("Upgrade", "websocket")
			errdefs.WriteHTTPStatus(w, http.StatusUpgradeRequired, connect.CodeFailedPrecondition,
				fmt.Sprintf("terminal %q: connect with a WebSocket (Upgrade: websocket)", t.id))
			return
		}
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(termReadLimit)
		serveClient(r.Context(), t, c)
	})
}

// serveClient sends a client the kept output, then live output and the
// exit, while applying what it sends.
func serveClient(ctx context.Context, t *terminal, c *websocket.Conn) {
	cl := t.attach()
	defer t.detach(cl)
	ctx, cancel := context.WithCancel(ctx)
	inputDone := make(chan struct{})
	pingDone := make(chan struct{})
	defer func() {
		cancel()
		c.CloseNow()
		<-inputDone
		<-pingDone
	}()
	go func() {
		defer close(inputDone)
		defer cancel()
		readClient(ctx, t, c)
	}()
	go func() {
		defer close(pingDone)
		ping(ctx, c, cancel)
	}()
	if err := c.Write(ctx, websocket.MessageText, termwire.Ready()); err != nil {
		return
	}
	for {
		data, code, err := t.next(ctx, cl)
		if err != nil {
			return
		}
		if code != nil {
			if c.Write(ctx, websocket.MessageText, termwire.Exit(*code)) == nil {
				_ = c.Close(websocket.StatusNormalClosure, "the shell exited")
			}
			return
		}
		if err := c.Write(ctx, websocket.MessageBinary, data); err != nil {
			return
		}
	}
}

// readClient applies a client's input and resizes until it goes away.
// Anything malformed is answered with an error frame and otherwise ignored.
func readClient(ctx context.Context, t *terminal, c *websocket.Conn) {
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		if typ == websocket.MessageBinary {
			err = t.input(b)
		} else {
			err = control(t, b)
		}
		if err != nil && c.Write(ctx, websocket.MessageText, termwire.Error(err.Error())) != nil {
			return
		}
	}
}

func control(t *terminal, b []byte) error {
	m, err := termwire.Parse(b)
	if err != nil {
		return err
	}
	if m.Type != termwire.TypeResize {
		return fmt.Errorf("control frame type %q: clients send only resize: %w", m.Type, errdefs.ErrInvalidArgument)
	}
	return t.resize(m.Cols, m.Rows)
}

// ping pings the client until ctx ends, and cancels when it stops answering.
func ping(ctx context.Context, c *websocket.Conn, cancel context.CancelFunc) {
	tick := time.NewTicker(termPingInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pctx, pcancel := context.WithTimeout(ctx, 2*termPingInterval)
		err := c.Ping(pctx)
		pcancel()
		if err != nil {
			cancel()
			return
		}
	}
}
