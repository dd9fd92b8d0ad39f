package apiserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agentconn/agenttest"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// execOutput runs argv through c and returns its stdout and exit code; err
// is the stream's error.
func execOutput(ctx context.Context, c hutchv1connect.ProcessServiceClient, name string, header http.Header, argv ...string) (string, bool, error) {
	req := connect.NewRequest(&hutchv1.ExecRequest{Sandbox: name, Argv: argv})
	for k, vs := range header {
		req.Header()[k] = vs
	}
	st, err := c.Exec(ctx, req)
	if err != nil {
		return "", false, err
	}
	defer st.Close()
	var out strings.Builder
	exited := false
	for st.Receive() {
		out.Write(st.Msg().GetStdout())
		exited = exited || st.Msg().GetExit() != nil
	}
	return out.String(), exited, st.Err()
}

var execPaths = []struct {
	name   string
	client func(*apiEnv) hutchv1connect.ProcessServiceClient
}{
	{"zero-copy", func(e *apiEnv) hutchv1connect.ProcessServiceClient { return e.proc }},
	{"connect", func(e *apiEnv) hutchv1connect.ProcessServiceClient { return e.json }},
}

// Handlers return category errors; the chain gives every call, unary or
// streamed, on either exec path, the wire code of its category and its
// message.
func TestErrorMapping(t *testing.T) {
	e := newAPI(t, Config{})
	ctx := context.Background()
	cases := []struct {
		err  error
		code connect.Code
	}{
		{errdefs.ErrInvalidArgument, connect.CodeInvalidArgument},
		{errdefs.ErrNotFound, connect.CodeNotFound},
		{errdefs.ErrAlreadyExists, connect.CodeAlreadyExists},
		{errdefs.ErrFailedPrecondition, connect.CodeFailedPrecondition},
		{errdefs.ErrResourceExhausted, connect.CodeResourceExhausted},
		{errdefs.ErrPermissionDenied, connect.CodePermissionDenied},
		{errdefs.ErrUnauthenticated, connect.CodeUnauthenticated},
		{errdefs.ErrDeadlineExceeded, connect.CodeDeadlineExceeded},
		{errdefs.ErrUnavailable, connect.CodeUnavailable},
		{errdefs.ErrInternal, connect.CodeInternal},
		{errors.New("no category"), connect.CodeInternal},
	}
	calls := []struct {
		name string
		call func(name string) error
	}{
		{"unary", func(name string) error {
			_, err := e.sbc.Get(ctx, connect.NewRequest(&hutchv1.GetRequest{Name: name}))
			return err
		}},
		{"unary through the gateway", func(name string) error {
			_, err := e.file.Stat(ctx, connect.NewRequest(&hutchv1.StatRequest{Sandbox: name, Path: "/x"}))
			return err
		}},
		{"stream zero-copy", func(name string) error { _, _, err := execOutput(ctx, e.proc, name, nil, "echo"); return err }},
		{"stream connect", func(name string) error { _, _, err := execOutput(ctx, e.json, name, nil, "echo"); return err }},
		{"plain http", func(name string) error {
			return errdefs.FromConnect(errdefs.FromHTTP(e.get(t, "/v1/sandboxes/"+name+"/files?path=/x", nil)))
		}},
	}
	for _, c := range cases {
		for _, call := range calls {
			t.Run(c.code.String()+"/"+call.name, func(t *testing.T) {
				name := fmt.Sprintf("fail-%d", c.code) // no category word in it
				e.sb.mu.Lock()
				e.sb.fail[name] = fmt.Errorf("sandbox %q: %w", name, c.err)
				e.sb.mu.Unlock()
				err := call.call(name)
				if got := connect.CodeOf(err); call.name != "plain http" && got != c.code {
					t.Fatalf("code %v (%v), want %v", got, err, c.code)
				}
				if got := errdefs.Code(err); got != c.code {
					t.Fatalf("category %v (%v), want %v", got, err, c.code)
				}
				if want := fmt.Sprintf("sandbox %q: %s", name, c.err); !strings.Contains(err.Error(), want) {
					t.Errorf("message %q, want it to say %q", err, want)
				}
			})
		}
	}
}

// A key is required on every call but the health check and preview hosts:
// as a Bearer header, or as ?token= on the terminal WebSocket only.
func TestAuth(t *testing.T) {
	e := newAPI(t, Config{Keys: []string{"old-key", "new-key"}})
	ctx := context.Background()
	e.ensure(t, "box")
	bearer := func(k string) http.Header { return http.Header{"Authorization": {"Bearer " + k}} }
	headers := []struct {
		name   string
		header http.Header
		ok     bool
	}{
		{"no key", nil, false},
		{"wrong key", bearer("nope"), false},
		{"key without Bearer", http.Header{"Authorization": {"new-key"}}, false},
		{"prefix of a key", bearer("new"), false},
		{"first key", bearer("old-key"), true},
		{"second key", bearer("new-key"), true},
	}
	for _, h := range headers {
		t.Run(h.name, func(t *testing.T) {
			check := func(what string, err error) {
				t.Helper()
				if h.ok && err != nil {
					t.Errorf("%s: %v, want success", what, err)
				}
				if !h.ok && connect.CodeOf(err) != connect.CodeUnauthenticated {
					t.Errorf("%s: %v, want unauthenticated", what, err)
				}
			}
			req := connect.NewRequest(&hutchv1.ListRequest{})
			for k, vs := range h.header {
				req.Header()[k] = vs
			}
			_, err := e.sbc.List(ctx, req)
			check("unary", err)
			for _, p := range execPaths {
				_, _, err := execOutput(ctx, p.client(e), "box", h.header, "echo")
				check("exec "+p.name, err)
			}
			resp := e.get(t, "/v1/sandboxes/box/files?path=/missing", h.header)
			if want := map[bool]int{true: http.StatusNotFound, false: http.StatusUnauthorized}[h.ok]; resp.StatusCode != want {
				t.Errorf("files: status %d, want %d", resp.StatusCode, want)
			}
			if !h.ok && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("files: 401 without WWW-Authenticate")
			}
		})
	}
	t.Run("?token= is for the terminal socket only", func(t *testing.T) {
		if resp := e.get(t, "/v1/sandboxes/box/files?path=/missing&token=new-key", nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("files with ?token=: %d, want 401", resp.StatusCode)
		}
	})
	t.Run("health check needs no key", func(t *testing.T) {
		if resp := e.get(t, "/healthz", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("healthz: %d", resp.StatusCode)
		}
	})
	t.Run("preview host needs no key", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/", nil)
		req.Host = "8000-box-tok8000.preview.test"
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound { // not exposed: the preview router's answer
			t.Errorf("preview: %d, want 404 from the router", resp.StatusCode)
		}
	})
	for _, tc := range []struct {
		name   string
		query  string
		header http.Header
		want   int
	}{
		{"terminal with ?token=", "?token=new-key", nil, http.StatusUpgradeRequired},
		{"terminal with a wrong ?token=", "?token=nope", nil, http.StatusUnauthorized},
		{"terminal with a header", "", bearer("old-key"), http.StatusUpgradeRequired},
		{"terminal without a key", "", nil, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.get(t, "/v1/sandboxes/box/terminals/t1"+tc.query, tc.header)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == http.StatusUpgradeRequired {
				if h := e.sb.live.TerminalHeader(); h.Get("Authorization") != "" {
					t.Errorf("the API key reached the agent: %v", h)
				}
			}
		})
	}
}

// recorder is an interceptor that notes every call it sees.
type recorder struct {
	mu    sync.Mutex
	calls []string
	raw   int
}

func (r *recorder) note(procedure string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, procedure)
}

func (r *recorder) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		r.note(req.Spec().Procedure)
		return next(ctx, req)
	}
}

func (r *recorder) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (r *recorder) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		r.note(conn.Spec().Procedure)
		if _, ok := conn.(*rawConn); ok {
			r.mu.Lock()
			r.raw++
			r.mu.Unlock()
		}
		// See the request as any interceptor would.
		return next(ctx, &peek{StreamingHandlerConn: conn, r: r})
	}
}

type peek struct {
	connect.StreamingHandlerConn
	r *recorder
}

func (p *peek) Receive(msg any) error {
	err := p.StreamingHandlerConn.Receive(msg)
	if m, ok := msg.(*hutchv1.ExecRequest); ok && err == nil {
		p.r.note("argv:" + strings.Join(m.Argv, " "))
	}
	return err
}

// An interceptor in the chain sees every call: unary, streamed, and exec
// on the zero-copy path, where it can read the request too; and it sees
// calls that auth refuses.
func TestInterceptorsSeeEveryCall(t *testing.T) {
	rec := &recorder{}
	e := newAPI(t, Config{Keys: []string{"k"}, Interceptors: []connect.Interceptor{rec}})
	ctx := context.Background()
	key := http.Header{"Authorization": {"Bearer k"}}
	for _, p := range execPaths {
		out, exited, err := execOutput(ctx, p.client(e), "box", key, "echo", p.name)
		if err != nil || !exited || out != p.name {
			t.Fatalf("exec %s = %q, %v, %v", p.name, out, exited, err)
		}
	}
	if _, _, err := execOutput(ctx, e.proc, "box", nil, "echo", "refused"); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("exec without a key = %v", err)
	}
	if _, err := e.sbc.List(ctx, connect.NewRequest(&hutchv1.ListRequest{})); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("list without a key = %v", err)
	}
	exec := hutchv1connect.ProcessServiceExecProcedure
	want := []string{exec, "argv:echo zero-copy", exec, "argv:echo connect", exec, hutchv1connect.SandboxServiceListProcedure}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if fmt.Sprint(rec.calls) != fmt.Sprint(want) {
		t.Errorf("interceptor saw %v, want %v", rec.calls, want)
	}
	if rec.raw != 2 {
		t.Errorf("interceptor saw %d calls on the zero-copy path, want 2", rec.raw)
	}
}

// Exec creates its sandbox, relays output and exit on both paths, passes
// the agent's own errors, and marks the sandbox broken when the agent's
// stream breaks or the agent cannot be reached.
func TestExec(t *testing.T) {
	for _, p := range execPaths {
		t.Run(p.name, func(t *testing.T) {
			e := newAPI(t, Config{})
			ctx := context.Background()
			c := p.client(e)
			tests := []struct {
				name       string
				sandbox    string
				argv       []string
				kill       bool
				want       string
				code       connect.Code
				wantBroken bool
			}{
				{"creates the sandbox", "new", []string{"echo", "a", "b"}, false, "a b", 0, false},
				{"bad name", "Bad_Name", []string{"echo"}, false, "", connect.CodeInvalidArgument, false},
				{"refused by the agent", "new", []string{agenttest.CmdFail}, false, "", connect.CodeInvalidArgument, false},
				{"stream cut", "new", []string{agenttest.CmdCut}, false, "partial", connect.CodeUnavailable, true},
				{"agent unreachable", "new", []string{"echo"}, true, "", connect.CodeUnavailable, true},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					if tt.kill {
						e.sb.kill(t, tt.sandbox)
					}
					before := e.sb.brokenCount(tt.sandbox)
					out, exited, err := execOutput(ctx, c, tt.sandbox, nil, tt.argv...)
					if connect.CodeOf(err) != tt.code && !(tt.code == 0 && err == nil) {
						t.Fatalf("err = %v, want code %v", err, tt.code)
					}
					if out != tt.want || exited != (tt.code == 0) {
						t.Errorf("output %q exited=%v, want %q", out, exited, tt.want)
					}
					if got := e.sb.brokenCount(tt.sandbox) > before; got != tt.wantBroken {
						t.Errorf("marked broken = %v, want %v", got, tt.wantBroken)
					}
				})
			}
		})
	}
}

// File calls that add something create the sandbox; reads, removes and
// stats of a sandbox that does not exist are not_found and create nothing.
func TestFilesCreateOnlyWhenAdding(t *testing.T) {
	e := newAPI(t, Config{})
	ctx := context.Background()
	body := "hello"
	tests := []struct {
		name    string
		sandbox string
		call    func(name string) error
		code    connect.Code
		created bool
	}{
		{"stat", "s1", func(n string) error {
			_, err := e.file.Stat(ctx, connect.NewRequest(&hutchv1.StatRequest{Sandbox: n, Path: "/x"}))
			return err
		}, connect.CodeNotFound, false},
		{"remove", "s2", func(n string) error {
			_, err := e.file.Remove(ctx, connect.NewRequest(&hutchv1.RemoveRequest{Sandbox: n, Path: "/x"}))
			return err
		}, connect.CodeNotFound, false},
		{"read contents", "s3", func(n string) error {
			return errdefs.FromHTTP(e.get(t, "/v1/sandboxes/"+n+"/files?path=/x", nil))
		}, connect.CodeNotFound, false},
		{"make a directory", "s4", func(n string) error {
			_, err := e.file.MakeDir(ctx, connect.NewRequest(&hutchv1.MakeDirRequest{Sandbox: n, Path: "/d"}))
			return err
		}, 0, true},
		{"write contents", "s5", func(n string) error {
			return errdefs.FromHTTP(e.do(t, http.MethodPut, "/v1/sandboxes/"+n+"/files?path=/f", nil, &body))
		}, 0, true},
		{"wrong method", "s6", func(n string) error {
			return errdefs.FromHTTP(e.do(t, http.MethodPost, "/v1/sandboxes/"+n+"/files?path=/f", nil, &body))
		}, connect.CodeUnimplemented, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(tt.sandbox)
			if tt.code == 0 && err != nil || tt.code != 0 && errdefs.Code(err) != tt.code {
				t.Fatalf("err = %v (%v), want code %v", err, errdefs.Code(err), tt.code)
			}
			if got := e.sb.exists(tt.sandbox); got != tt.created {
				t.Errorf("sandbox exists = %v, want %v", got, tt.created)
			}
		})
	}
	t.Run("contents round trip", func(t *testing.T) {
		resp := e.get(t, "/v1/sandboxes/s5/files?path=/f", nil)
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(got) != body {
			t.Errorf("GET = %d %q, want %q", resp.StatusCode, got, body)
		}
	})
	t.Run("agent unreachable", func(t *testing.T) {
		e.sb.kill(t, "s5")
		resp := e.get(t, "/v1/sandboxes/s5/files?path=/f", nil)
		if resp.StatusCode != http.StatusServiceUnavailable || e.sb.brokenCount("s5") != 1 {
			t.Errorf("status %d, broken %d; want 503 and marked broken", resp.StatusCode, e.sb.brokenCount("s5"))
		}
	})
}

// Watch relays until the agent's stopped event; a stream that ends
// without one is unavailable and marks the sandbox broken.
func TestWatch(t *testing.T) {
	e := newAPI(t, Config{})
	ctx := context.Background()
	e.ensure(t, "w")
	tests := []struct {
		name       string
		sandbox    string
		path       string
		code       connect.Code
		wantBroken bool
	}{
		{"missing sandbox", "none", "/workspace", connect.CodeNotFound, false},
		{"ends with stopped", "w", "/workspace", 0, false},
		{"agent's stream cut", "w", agenttest.WatchCut, connect.CodeUnavailable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.sb.brokenCount(tt.sandbox)
			st, err := e.wat.Watch(ctx, connect.NewRequest(&hutchv1.WatchRequest{Sandbox: tt.sandbox, Path: tt.path}))
			if err != nil {
				t.Fatal(err)
			}
			stopped := false
			for st.Receive() {
				for _, ev := range st.Msg().Events {
					stopped = stopped || ev.Type == hutchv1.WatchEventType_WATCH_EVENT_TYPE_STOPPED
				}
			}
			err = st.Err()
			st.Close()
			if connect.CodeOf(err) != tt.code && !(tt.code == 0 && err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.code)
			}
			if stopped != (tt.code == 0) {
				t.Errorf("stopped event = %v", stopped)
			}
			if got := e.sb.brokenCount(tt.sandbox) > before; got != tt.wantBroken {
				t.Errorf("marked broken = %v, want %v", got, tt.wantBroken)
			}
		})
	}
}

// Sandbox calls map records and ports to the wire, with preview URLs.
func TestSandboxes(t *testing.T) {
	e := newAPI(t, Config{PreviewDomain: "preview.test", PreviewPort: "8080"})
	ctx := context.Background()
	cr, err := e.sbc.Create(ctx, connect.NewRequest(&hutchv1.CreateRequest{Name: "web"}))
	if err != nil || !cr.Msg.Created || cr.Msg.Sandbox.State != hutchv1.State_STATE_RUNNING || cr.Msg.Sandbox.CreatedAt == nil {
		t.Fatalf("Create = %v, %v", cr, err)
	}
	if cr, err := e.sbc.Create(ctx, connect.NewRequest(&hutchv1.CreateRequest{Name: "web"})); err != nil || cr.Msg.Created {
		t.Fatalf("second Create = %v, %v; want created=false", cr, err)
	}
	if _, err := e.sbc.Create(ctx, connect.NewRequest(&hutchv1.CreateRequest{Name: "other", Image: "nope"})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("Create with a missing image = %v", err)
	}
	ep, err := e.sbc.ExposePort(ctx, connect.NewRequest(&hutchv1.ExposePortRequest{Name: "web", Port: 3000}))
	if err != nil || ep.Msg.Url != "http://3000-web-tok3000.preview.test:8080/" {
		t.Fatalf("ExposePort = %v, %v", ep, err)
	}
	if _, err := e.sbc.ExposePort(ctx, connect.NewRequest(&hutchv1.ExposePortRequest{Name: "web", Port: 70000})); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("ExposePort 70000 = %v", err)
	}
	lp, err := e.sbc.ListExposedPorts(ctx, connect.NewRequest(&hutchv1.ListExposedPortsRequest{Name: "web"}))
	if err != nil || len(lp.Msg.Ports) != 1 || lp.Msg.Ports[0].Url != ep.Msg.Url {
		t.Fatalf("ListExposedPorts = %v, %v", lp, err)
	}
	if _, err := e.sbc.Delete(ctx, connect.NewRequest(&hutchv1.DeleteRequest{Name: "web"})); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sbc.Get(ctx, connect.NewRequest(&hutchv1.GetRequest{Name: "web"})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("Get after Delete = %v", err)
	}
	if l, err := e.sbc.List(ctx, connect.NewRequest(&hutchv1.ListRequest{})); err != nil || len(l.Msg.Sandboxes) != 0 {
		t.Fatalf("List = %v, %v", l, err)
	}
}

// A terminal socket from another origin is refused; an unreachable agent
// marks the sandbox broken.
func TestTerminalSocket(t *testing.T) {
	e := newAPI(t, Config{})
	e.ensure(t, "term")
	host := strings.TrimPrefix(e.srv.URL, "http://")
	tests := []struct {
		name       string
		sandbox    string
		origin     string
		kill       bool
		want       int
		wantBroken bool
	}{
		{"same origin", "term", "http://" + host, false, http.StatusUpgradeRequired, false},
		{"no origin", "term", "", false, http.StatusUpgradeRequired, false},
		{"other origin", "term", "http://evil.example", false, http.StatusForbidden, false},
		{"missing sandbox", "none", "", false, http.StatusNotFound, false},
		{"agent unreachable", "term", "", true, http.StatusServiceUnavailable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.kill {
				e.sb.kill(t, tt.sandbox)
			}
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			if tt.want == http.StatusForbidden {
				// The origin check guards upgrades (hosts.go): a plain GET
				// changes nothing.
				h.Set("Connection", "Upgrade")
				h.Set("Upgrade", "websocket")
			}
			resp := e.get(t, "/v1/sandboxes/"+tt.sandbox+"/terminals/t1", h)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusUpgradeRequired && e.sb.live.TerminalHeader().Get("Origin") != "" {
				t.Error("the Origin reached the agent")
			}
			if got := e.sb.brokenCount(tt.sandbox) > 0; got != tt.wantBroken {
				t.Errorf("marked broken = %v, want %v", got, tt.wantBroken)
			}
		})
	}
}
