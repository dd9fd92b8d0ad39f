// Package agenttest runs a stand-in for a sandbox's agent on a unix socket,
// for tests of the daemon's side: it answers the calls the daemon relays
// (exec, files, watch, terminals, tunnels) as the agent does, keeps files
// in memory, and can be told to break a stream or stop answering.
package agenttest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agentapi"
	"github.com/hutch-sh/hutch/internal/agentapi/tunnel"
)

// Exec commands (argv[0]) with scripted behaviour; any other command
// echoes its arguments to stdout and exits 0.
const (
	// CmdCut writes to stdout and drops the connection, as an agent that
	// dies mid-stream does.
	CmdCut = "hutch-test-cut"
	// CmdNoExit writes to stdout and ends the stream cleanly but without
	// an exit status, which the agent never does.
	CmdNoExit = "hutch-test-no-exit"
	// CmdFail is refused by the agent itself: invalid_argument.
	CmdFail = "hutch-test-fail"
)

// WatchCut is a watched path whose stream ends without a stopped event.
const WatchCut = "/hutch-test-cut"

// Agent is a running stand-in agent.
type Agent struct {
	// Socket is the unix socket it serves on.
	Socket string

	srv *http.Server

	mu    sync.Mutex
	files map[string][]byte // path → contents; a nil slice is a directory
	// Terminal holds the headers of the last terminal request.
	terminal http.Header
}

// Start serves a stand-in agent until the test ends.
func Start(t testing.TB) *Agent {
	t.Helper()
	// Short: a socket path must fit in sun_path.
	dir, err := os.MkdirTemp("", "agt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	a := &Agent{Socket: filepath.Join(dir, "a.sock"), files: map[string][]byte{}}
	ln, err := net.Listen("unix", a.Socket)
	if err != nil {
		t.Fatal(err)
	}
	// Compress whatever the caller accepts compressed: a client's headers
	// forwarded by the daemon would show as a body the daemon cannot read.
	opt := connect.WithCompressMinBytes(0)
	mux := http.NewServeMux()
	mux.Handle(hutchv1connect.NewProcessServiceHandler(processes{}, opt))
	mux.Handle(hutchv1connect.NewFileServiceHandler(fileService{a}, opt))
	mux.Handle(hutchv1connect.NewWatchServiceHandler(watches{}, opt))
	mux.Handle(hutchv1connect.NewCodeServiceHandler(codeService{}, opt))
	mux.HandleFunc(agentapi.FilesPath, a.content)
	mux.HandleFunc(agentapi.TerminalPath+"{id}", a.terminalSocket)
	mux.Handle(agentapi.TunnelPath, tunnel.Handler{Host: "127.0.0.1", Log: slog.New(slog.DiscardHandler)})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	a.srv = &http.Server{Handler: mux}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		a.Stop()
		<-done
	})
	return a
}

// Stop stops answering, as a dead agent does: its socket goes away.
func (a *Agent) Stop() {
	_ = a.srv.Close()
	_ = os.Remove(a.Socket)
}

// File returns a file's contents and whether it exists.
func (a *Agent) File(path string) ([]byte, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b, ok := a.files[path]
	return b, ok
}

// TerminalHeader returns the headers of the last terminal request.
func (a *Agent) TerminalHeader() http.Header {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.terminal
}

type processes struct {
	hutchv1connect.UnimplementedProcessServiceHandler
}

func (processes) Exec(_ context.Context, req *connect.Request[hutchv1.ExecRequest], out *connect.ServerStream[hutchv1.ExecEvent]) error {
	argv := req.Msg.Argv
	if len(argv) == 0 {
		return connect.NewError(connect.CodeInvalidArgument, errors.New("argv is empty"))
	}
	switch argv[0] {
	case CmdFail:
		return connect.NewError(connect.CodeInvalidArgument, errors.New("refused by the agent"))
	case CmdCut:
		if err := out.Send(&hutchv1.ExecEvent{Event: &hutchv1.ExecEvent_Stdout{Stdout: []byte("partial")}}); err != nil {
			return err
		}
		panic(http.ErrAbortHandler)
	case CmdNoExit:
		return out.Send(&hutchv1.ExecEvent{Event: &hutchv1.ExecEvent_Stdout{Stdout: []byte("partial")}})
	}
	if err := out.Send(&hutchv1.ExecEvent{Event: &hutchv1.ExecEvent_Stdout{Stdout: []byte(strings.Join(argv[1:], " "))}}); err != nil {
		return err
	}
	return out.Send(&hutchv1.ExecEvent{Event: &hutchv1.ExecEvent_Exit{Exit: &hutchv1.ExecExit{}}})
}

func (processes) ProcessLogs(_ context.Context, req *connect.Request[hutchv1.ProcessLogsRequest], out *connect.ServerStream[hutchv1.ProcessLogEvent]) error {
	return out.Send(&hutchv1.ProcessLogEvent{Event: &hutchv1.ProcessLogEvent_Stdout{Stdout: &hutchv1.LogChunk{Data: []byte(req.Msg.Id)}}})
}

type fileService struct {
	a *Agent
}

func (fileService) unimplemented() error {
	return connect.NewError(connect.CodeUnimplemented, errors.New("not in the stand-in agent"))
}

func (f fileService) Stat(_ context.Context, req *connect.Request[hutchv1.StatRequest]) (*connect.Response[hutchv1.StatResponse], error) {
	b, ok := f.a.File(req.Msg.Path)
	if !ok {
		return connect.NewResponse(&hutchv1.StatResponse{}), nil
	}
	typ := hutchv1.FileType_FILE_TYPE_FILE
	if b == nil {
		typ = hutchv1.FileType_FILE_TYPE_DIRECTORY
	}
	return connect.NewResponse(&hutchv1.StatResponse{Exists: true, Info: &hutchv1.FileInfo{Path: req.Msg.Path, Name: filepath.Base(req.Msg.Path), Type: typ, Size: int64(len(b))}}), nil
}

func (f fileService) ListDir(context.Context, *connect.Request[hutchv1.ListDirRequest]) (*connect.Response[hutchv1.ListDirResponse], error) {
	return nil, f.unimplemented()
}

func (f fileService) MakeDir(_ context.Context, req *connect.Request[hutchv1.MakeDirRequest]) (*connect.Response[hutchv1.MakeDirResponse], error) {
	f.a.mu.Lock()
	defer f.a.mu.Unlock()
	if _, ok := f.a.files[req.Msg.Path]; ok {
		return nil, connect.NewError(connect.CodeAlreadyExists, errors.New(req.Msg.Path+": exists"))
	}
	f.a.files[req.Msg.Path] = nil
	return connect.NewResponse(&hutchv1.MakeDirResponse{}), nil
}

func (f fileService) Remove(_ context.Context, req *connect.Request[hutchv1.RemoveRequest]) (*connect.Response[hutchv1.RemoveResponse], error) {
	f.a.mu.Lock()
	defer f.a.mu.Unlock()
	if _, ok := f.a.files[req.Msg.Path]; !ok {
		return nil, connect.NewError(connect.CodeNotFound, errors.New(req.Msg.Path+": no such file"))
	}
	delete(f.a.files, req.Msg.Path)
	return connect.NewResponse(&hutchv1.RemoveResponse{}), nil
}

func (f fileService) Rename(context.Context, *connect.Request[hutchv1.RenameRequest]) (*connect.Response[hutchv1.RenameResponse], error) {
	return nil, f.unimplemented()
}

// content serves file contents: GET and HEAD read, PUT writes.
func (a *Agent) content(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Query().Get("path")
	switch r.Method {
	case http.MethodPut:
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		a.files[path] = b
		a.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		b, ok := a.File(path)
		if !ok || b == nil {
			http.Error(w, path+": no such file", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(b)
	}
}

// terminalSocket answers as the agent does for a request that is not a
// WebSocket upgrade, after noting its headers.
func (a *Agent) terminalSocket(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.terminal = r.Header.Clone()
	a.mu.Unlock()
	http.Error(w, "terminal "+r.PathValue("id")+": upgrade to websocket", http.StatusUpgradeRequired)
}

type watches struct {
	hutchv1connect.UnimplementedWatchServiceHandler
}

func (watches) Watch(_ context.Context, req *connect.Request[hutchv1.WatchRequest], out *connect.ServerStream[hutchv1.WatchResponse]) error {
	ev := &hutchv1.WatchEvent{Type: hutchv1.WatchEventType_WATCH_EVENT_TYPE_CREATE, Path: req.Msg.Path + "/new"}
	if err := out.Send(&hutchv1.WatchResponse{Events: []*hutchv1.WatchEvent{ev}}); err != nil || req.Msg.Path == WatchCut {
		return err
	}
	return out.Send(&hutchv1.WatchResponse{Events: []*hutchv1.WatchEvent{{Type: hutchv1.WatchEventType_WATCH_EVENT_TYPE_STOPPED, Path: req.Msg.Path}}})
}

type codeService struct {
	hutchv1connect.UnimplementedCodeServiceHandler
}

func (codeService) RunCode(_ context.Context, req *connect.Request[hutchv1.RunCodeRequest], out *connect.ServerStream[hutchv1.CodeEvent]) error {
	return out.Send(&hutchv1.CodeEvent{Event: &hutchv1.CodeEvent_Done{Done: &hutchv1.CodeDone{}}})
}
