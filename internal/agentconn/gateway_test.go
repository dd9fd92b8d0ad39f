package agentconn_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"sync"
	"testing"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agentapi"
	"github.com/hutch-sh/hutch/internal/agentapi/tunnel"
	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/agentconn/agenttest"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// sandboxes maps names to agents and counts MarkBroken calls.
type sandboxes struct {
	mu     sync.Mutex
	conns  map[string]*agentconn.Conn
	broken map[string]int
}

var _ agentconn.Sandboxes = (*sandboxes)(nil)

func (s *sandboxes) Agent(_ context.Context, name string, _ sandbox.Access) (*agentconn.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[name]
	if !ok {
		return nil, fmt.Errorf("sandbox %q: %w", name, errdefs.ErrNotFound)
	}
	return c, nil
}

func (s *sandboxes) MarkBroken(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.broken[name]++
}

func (s *sandboxes) brokenCount(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.broken[name]
}

// setup returns a gateway to two sandboxes: "up", whose agent answers, and
// "down", whose agent has stopped.
func setup(t *testing.T) (*agentconn.Gateway, *sandboxes) {
	up, down := agenttest.Start(t), agenttest.Start(t)
	down.Stop()
	sb := &sandboxes{
		conns:  map[string]*agentconn.Conn{"up": agentconn.New(up.Socket), "down": agentconn.New(down.Socket)},
		broken: map[string]int{},
	}
	t.Cleanup(func() {
		for _, c := range sb.conns {
			c.Close()
		}
	})
	return agentconn.NewGateway(sb), sb
}

func execReq(argv ...string) *connect.Request[hutchv1.ExecRequest] {
	return connect.NewRequest(&hutchv1.ExecRequest{Argv: argv})
}

func execCall(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.ExecRequest]) (*connect.ServerStreamForClient[hutchv1.ExecEvent], error) {
	return c.Process.Exec
}

func exited(ev *hutchv1.ExecEvent) bool { _, ok := ev.Event.(*hutchv1.ExecEvent_Exit); return ok }

func statCall(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.StatRequest]) (*connect.Response[hutchv1.StatResponse], error) {
	return c.Files.Stat
}

// Every way to an agent applies one policy: an agent that cannot be
// reached marks the sandbox broken and is unavailable; what the agent
// itself answers (an error, a refused port) passes and marks nothing.
func TestGatewayBrokenPolicy(t *testing.T) {
	gw, sb := setup(t)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name       string
		sandbox    string
		call       func(ctx context.Context, name string) error
		ctx        context.Context
		wantCode   connect.Code // 0: success
		wantBroken bool
	}{
		{"unary ok", "up", unary(gw), nil, 0, false},
		{"unary unreachable", "down", unary(gw), nil, connect.CodeUnavailable, true},
		{"unary missing sandbox", "none", unary(gw), nil, connect.CodeNotFound, false},
		{"stream ok", "up", stream(gw, "echo", "hi"), nil, 0, false},
		{"stream refused by the agent", "up", stream(gw, agenttest.CmdFail), nil, connect.CodeInvalidArgument, false},
		{"stream cut", "up", stream(gw, agenttest.CmdCut), nil, connect.CodeUnavailable, true},
		{"stream ends without its last event", "up", stream(gw, agenttest.CmdNoExit), nil, connect.CodeUnavailable, true},
		{"stream unreachable", "down", stream(gw, "echo"), nil, connect.CodeUnavailable, true},
		{"stream canceled by the caller", "down", stream(gw, "echo"), canceled, connect.CodeCanceled, false},
		{"http ok", "up", plain(gw), nil, 0, false},
		{"http unreachable", "down", plain(gw), nil, connect.CodeUnavailable, true},
		{"http canceled by the caller", "down", plain(gw), canceled, connect.CodeCanceled, false},
		{"proxy ok", "up", proxied(gw), nil, 0, false},
		{"proxy unreachable", "down", proxied(gw), nil, connect.CodeUnavailable, true},
		{"tunnel refused port", "up", dial(gw), nil, connect.CodeInternal, false},
		{"tunnel unreachable", "down", dial(gw), nil, connect.CodeUnavailable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			before := sb.brokenCount(tt.sandbox)
			err := tt.call(ctx, tt.sandbox)
			if tt.wantCode == 0 && err != nil {
				t.Fatalf("err = %v, want success", err)
			}
			if tt.wantCode != 0 && (err == nil || errdefs.Code(err) != tt.wantCode) {
				t.Fatalf("err = %v (code %v), want %v", err, errdefs.Code(err), tt.wantCode)
			}
			if got := sb.brokenCount(tt.sandbox) > before; got != tt.wantBroken {
				t.Errorf("marked broken = %v, want %v", got, tt.wantBroken)
			}
		})
	}
}

func unary(gw *agentconn.Gateway) func(context.Context, string) error {
	return func(ctx context.Context, name string) error {
		_, err := agentconn.Unary(ctx, gw, name, sandbox.Existing, connect.NewRequest(&hutchv1.StatRequest{Path: "/x"}), statCall)
		return err
	}
}

func stream(gw *agentconn.Gateway, argv ...string) func(context.Context, string) error {
	return func(ctx context.Context, name string) error {
		return agentconn.Stream(ctx, gw, name, sandbox.Adding, execReq(argv...), execCall,
			func(*hutchv1.ExecEvent) error { return nil }, exited, "without an exit status")
	}
}

func plain(gw *agentconn.Gateway) func(context.Context, string) error {
	return func(ctx context.Context, name string) error {
		c, err := gw.Agent(ctx, name, sandbox.Existing)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, agentconn.BaseURL+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := gw.Do(ctx, c, name, req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return errdefs.FromHTTP(resp)
	}
}

// proxied sends a request through the reverse proxy to the agent's
// terminal path, which answers a plain request 426 as a live agent does.
func proxied(gw *agentconn.Gateway) func(context.Context, string) error {
	return func(ctx context.Context, name string) error {
		c, err := gw.Agent(ctx, name, sandbox.Existing)
		if err != nil {
			return err
		}
		p := gw.Proxy(c, name, func(pr *httputil.ProxyRequest) { pr.Out.URL.Path = agentapi.TerminalPath + "t1" })
		w := httptest.NewRecorder()
		p.ServeHTTP(w, httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil))
		if w.Code == http.StatusUpgradeRequired {
			return nil
		}
		return errdefs.FromHTTP(w.Result())
	}
}

// dial opens a tunnel to a port nothing listens on.
func dial(gw *agentconn.Gateway) func(context.Context, string) error {
	return func(ctx context.Context, name string) error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		nc, err := gw.DialTunnel(ctx, name, port)
		if err == nil {
			nc.Close()
			return errors.New("tunnel to a closed port opened")
		}
		if name == "up" && !tunnel.Refused(err) {
			return fmt.Errorf("a refused port must say so: %w", err)
		}
		return err
	}
}
