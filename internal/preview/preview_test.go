package preview

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/agentconn/agenttest"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

func TestMatch(t *testing.T) {
	r := New(nil, nil, ".Preview.Example", slog.New(slog.DiscardHandler))
	tests := []struct {
		host  string
		port  int
		name  string
		token string
		ok    bool
	}{
		{"8000-web-abc123.preview.example", 8000, "web", "abc123", true},
		{"8000-web-abc123.preview.example:8080", 8000, "web", "abc123", true},
		{"8000-WEB-ABC123.PREVIEW.EXAMPLE", 8000, "web", "abc123", true},
		{"3000-my-app-v2-tok.preview.example", 3000, "my-app-v2", "tok", true},
		{"1-a-b.preview.example", 1, "a", "b", true},
		{"65535-a-b.preview.example", 65535, "a", "b", true},
		{"8000-web.preview.example", 0, "", "", false},  // no token
		{"8000--tok.preview.example", 0, "", "", false}, // no name
		{"8000-web-.preview.example", 0, "", "", false}, // empty token
		{"-web-tok.preview.example", 0, "", "", false},  // no port
		{"0-web-tok.preview.example", 0, "", "", false},
		{"65536-web-tok.preview.example", 0, "", "", false},
		{"http-web-tok.preview.example", 0, "", "", false},
		{"+80-web-tok.preview.example", 0, "", "", false},
		{"8_0-web-tok.preview.example", 0, "", "", false},
		{"a.8000-web-tok.preview.example", 0, "", "", false},
		{"8000-web-tok.other.example", 0, "", "", false},
		{"8000-web-tok.preview.example.evil", 0, "", "", false},
		{"preview.example", 0, "", "", false},
		{"localhost:8080", 0, "", "", false},
		{"[::1]:8080", 0, "", "", false},
		{"", 0, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			port, name, token, ok := r.Match(tt.host)
			if ok != tt.ok {
				t.Fatalf("Match(%q) ok = %v, want %v", tt.host, ok, tt.ok)
			}
			if ok && tt.port != 0 && (port != tt.port || name != tt.name || token != tt.token) {
				t.Errorf("Match(%q) = %d %q %q, want %d %q %q", tt.host, port, name, token, tt.port, tt.name, tt.token)
			}
		})
	}
}

// sandboxes is one sandbox, "web", with its agent, exposed ports, and a
// count of MarkBroken calls.
type sandboxes struct {
	mu     sync.Mutex
	conn   *agentconn.Conn
	ports  map[int]string
	broken int
}

var (
	_ Sandboxes           = (*sandboxes)(nil)
	_ agentconn.Sandboxes = (*sandboxes)(nil)
)

func (s *sandboxes) Preview(name string, port int, token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return name == "web" && s.ports[port] == token
}

func (s *sandboxes) Agent(_ context.Context, name string, _ sandbox.Access) (*agentconn.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name != "web" {
		return nil, fmt.Errorf("sandbox %q: %w", name, errdefs.ErrNotFound)
	}
	return s.conn, nil
}

func (s *sandboxes) MarkBroken(string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.broken++
}

// A preview reaches the app through the agent's tunnel. A port nothing
// listens on is the app's business (502, the sandbox is fine); an agent
// that cannot be reached marks the sandbox broken.
func TestServeHTTP(t *testing.T) {
	live, dead := agenttest.Start(t), agenttest.Start(t)
	dead.Stop()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "app at %s%s", r.Host, r.URL.Path)
	}))
	t.Cleanup(app.Close)
	appPort := app.Listener.Addr().(*net.TCPAddr).Port
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	idlePort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	// The proxy keeps tunnels to appPort open: a new port needs a new one.
	const deadPort = 1

	sb := &sandboxes{ports: map[int]string{appPort: "tok", idlePort: "tok", deadPort: "tok"}}
	r := New(sb, agentconn.NewGateway(sb), "preview.test", slog.New(slog.DiscardHandler))
	tests := []struct {
		name       string
		agent      *agenttest.Agent
		host       string
		want       int
		body       string
		wantBroken bool
	}{
		{"reaches the app", live, fmt.Sprintf("%d-web-tok.preview.test", appPort), http.StatusOK, fmt.Sprintf("app at %d-web-tok.preview.test/p", appPort), false},
		{"wrong token", live, fmt.Sprintf("%d-web-nope.preview.test", appPort), http.StatusNotFound, "no such preview URL", false},
		{"port not exposed", live, "9-web-tok.preview.test", http.StatusNotFound, "no such preview URL", false},
		{"nothing listens", live, fmt.Sprintf("%d-web-tok.preview.test", idlePort), http.StatusBadGateway, fmt.Sprintf("nothing listens on port %d", idlePort), false},
		{"agent unreachable", dead, fmt.Sprintf("%d-web-tok.preview.test", deadPort), http.StatusBadGateway, "agent unreachable", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb.mu.Lock()
			sb.conn, sb.broken = agentconn.New(tt.agent.Socket), 0
			sb.mu.Unlock()
			req := httptest.NewRequest(http.MethodGet, "/p", nil)
			req.Host = tt.host
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			body, _ := io.ReadAll(w.Result().Body)
			if w.Code != tt.want || !strings.Contains(string(body), tt.body) {
				t.Fatalf("%d %q, want %d with %q", w.Code, body, tt.want, tt.body)
			}
			sb.mu.Lock()
			defer sb.mu.Unlock()
			if got := sb.broken > 0; got != tt.wantBroken {
				t.Errorf("marked broken = %v, want %v", got, tt.wantBroken)
			}
		})
	}
}
