package apiserver

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/agentconn/agenttest"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// fakeSandboxes behaves as the manager does for the API, over stand-in
// agents: names are validated, calls that add create, others need the
// sandbox, ports are exposed with tokens. fail makes every call on a name
// fail; kill makes its agent unreachable.
type fakeSandboxes struct {
	live, dead *agenttest.Agent

	mu     sync.Mutex
	boxes  map[string]*fakeBox
	broken map[string]int
	fail   map[string]error
}

type fakeBox struct {
	rec  sandbox.Record
	conn *agentconn.Conn
}

var _ Sandboxes = (*fakeSandboxes)(nil)

func newFake(t *testing.T) *fakeSandboxes {
	f := &fakeSandboxes{live: agenttest.Start(t), dead: agenttest.Start(t),
		boxes: map[string]*fakeBox{}, broken: map[string]int{}, fail: map[string]error{}}
	f.dead.Stop()
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, b := range f.boxes {
			b.conn.Close()
		}
	})
	return f
}

func (f *fakeSandboxes) Ensure(_ context.Context, name string, opts sandbox.CreateOptions) (sandbox.Record, *agentconn.Conn, bool, error) {
	if err := sandbox.ValidateName(name); err != nil {
		return sandbox.Record{}, nil, false, err
	}
	if opts.Image != "" && opts.Image != "default" {
		return sandbox.Record{}, nil, false, fmt.Errorf("image %q: %w", opts.Image, errdefs.ErrNotFound)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[name]; err != nil {
		return sandbox.Record{}, nil, false, err
	}
	if b, ok := f.boxes[name]; ok {
		return b.rec, b.conn, false, nil
	}
	now := time.Now().UTC()
	b := &fakeBox{
		rec:  sandbox.Record{Name: name, ID: "id-" + name, State: sandbox.StateRunning, Image: "default", CreatedAt: now, StartedAt: now, Ports: map[int]string{}},
		conn: agentconn.New(f.live.Socket),
	}
	f.boxes[name] = b
	return b.rec, b.conn, true, nil
}

func (f *fakeSandboxes) box(name string) (*fakeBox, error) {
	if err := f.fail[name]; err != nil {
		return nil, err
	}
	b, ok := f.boxes[name]
	if !ok {
		return nil, fmt.Errorf("sandbox %q: %w", name, errdefs.ErrNotFound)
	}
	return b, nil
}

func (f *fakeSandboxes) Agent(ctx context.Context, name string, a sandbox.Access) (*agentconn.Conn, error) {
	if a == sandbox.Adding {
		_, c, _, err := f.Ensure(ctx, name, sandbox.CreateOptions{})
		return c, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.box(name)
	if err != nil {
		return nil, err
	}
	return b.conn, nil
}

func (f *fakeSandboxes) MarkBroken(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.broken[name]++
}

func (f *fakeSandboxes) Get(name string) (sandbox.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.box(name)
	if err != nil {
		return sandbox.Record{}, err
	}
	return b.rec, nil
}

func (f *fakeSandboxes) List() []sandbox.Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []sandbox.Record{}
	for _, b := range f.boxes {
		out = append(out, b.rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (f *fakeSandboxes) Delete(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.box(name)
	if err != nil {
		return err
	}
	b.conn.Close()
	delete(f.boxes, name)
	return nil
}

func (f *fakeSandboxes) Expose(_ context.Context, name string, port int) (string, error) {
	if port < 1 || port > 65535 {
		return "", fmt.Errorf("port %d: %w", port, errdefs.ErrInvalidArgument)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.box(name)
	if err != nil {
		return "", err
	}
	if tok, ok := b.rec.Ports[port]; ok {
		return tok, nil
	}
	tok := fmt.Sprintf("tok%d", port)
	b.rec.Ports[port] = tok
	return tok, nil
}

func (f *fakeSandboxes) Unexpose(_ context.Context, name string, port int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.box(name)
	if err != nil {
		return err
	}
	delete(b.rec.Ports, port)
	return nil
}

func (f *fakeSandboxes) Exposed(name string) ([]int, map[int]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.box(name)
	if err != nil {
		return nil, nil, err
	}
	var ports []int
	for p := range b.rec.Ports {
		ports = append(ports, p)
	}
	sort.Ints(ports)
	return ports, b.rec.Ports, nil
}

func (f *fakeSandboxes) Preview(name string, port int, token string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.boxes[name]
	return ok && b.rec.Ports[port] == token
}

// kill makes name's agent unreachable, as a crashed agent is.
func (f *fakeSandboxes) kill(t *testing.T, name string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.boxes[name]
	if !ok {
		t.Fatalf("kill %s: no such sandbox", name)
	}
	b.conn.Close()
	b.conn = agentconn.New(f.dead.Socket)
}

func (f *fakeSandboxes) brokenCount(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.broken[name]
}

func (f *fakeSandboxes) exists(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.boxes[name]
	return ok
}

// apiEnv is an API server over a fake manager, with clients for both
// exec paths: binary (zero-copy relay) and JSON (Connect's handler).
type apiEnv struct {
	sb   *fakeSandboxes
	srv  *httptest.Server
	sbc  hutchv1connect.SandboxServiceClient
	proc hutchv1connect.ProcessServiceClient // binary: the zero-copy path
	json hutchv1connect.ProcessServiceClient // JSON: Connect's own handler
	file hutchv1connect.FileServiceClient
	wat  hutchv1connect.WatchServiceClient
}

func newAPI(t *testing.T, cfg Config) *apiEnv {
	t.Helper()
	sb := newFake(t)
	if cfg.PreviewDomain == "" {
		cfg.PreviewDomain = "preview.test"
	}
	srv := httptest.NewServer(New(sb, cfg, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	hc := srv.Client()
	return &apiEnv{
		sb: sb, srv: srv,
		sbc:  hutchv1connect.NewSandboxServiceClient(hc, srv.URL),
		proc: hutchv1connect.NewProcessServiceClient(hc, srv.URL),
		json: hutchv1connect.NewProcessServiceClient(hc, srv.URL, connect.WithProtoJSON()),
		file: hutchv1connect.NewFileServiceClient(hc, srv.URL),
		wat:  hutchv1connect.NewWatchServiceClient(hc, srv.URL),
	}
}

// get sends a plain HTTP GET with these headers.
func (e *apiEnv) get(t *testing.T, path string, header http.Header) *http.Response {
	t.Helper()
	return e.do(t, http.MethodGet, path, header, nil)
}

func (e *apiEnv) do(t *testing.T, method, path string, header http.Header, body *string) *http.Response {
	t.Helper()
	var req *http.Request
	var err error
	if body != nil {
		req, err = http.NewRequest(method, e.srv.URL+path, strings.NewReader(*body))
	} else {
		req, err = http.NewRequest(method, e.srv.URL+path, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// ensure creates sandbox name.
func (e *apiEnv) ensure(t *testing.T, name string) {
	t.Helper()
	if _, _, _, err := e.sb.Ensure(context.Background(), name, sandbox.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}
