// Package agent is the in-sandbox server: PID 1 of every sandbox, serving
// the daemon over a unix socket with exec, terminal, file, watch and code
// services, reaping every process in the sandbox.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect"

	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agent/files"
	"github.com/hutch-sh/hutch/internal/agent/kernel"
	"github.com/hutch-sh/hutch/internal/agent/pty"
	"github.com/hutch-sh/hutch/internal/agent/spawn"
	"github.com/hutch-sh/hutch/internal/agent/watch"
	"github.com/hutch-sh/hutch/internal/agentapi"
	"github.com/hutch-sh/hutch/internal/agentapi/tunnel"
)

// Options configure an agent.
type Options struct {
	Socket string // unix socket path to listen on
	// ListenFD, when positive, is an inherited listening socket to serve
	// instead of binding Socket (the daemon binds it, so it is ready early).
	ListenFD int
	Root     string // filesystem root the file service works in ("/" in a sandbox)
	Workdir  string // default cwd for commands, created if missing
}

// MaxMessageBytes bounds one RPC request message.
const MaxMessageBytes = 8 << 20

// Run serves until ctx ends or the agent is told to stop by a signal.
func Run(ctx context.Context, log *slog.Logger, o Options) error {
	// Reap before anything forks so no exit is missed.
	reaper := spawn.NewReaper()
	defer reaper.Stop()

	if err := os.MkdirAll(filepath.Join(o.Root, o.Workdir), 0o755); err != nil {
		log.Warn("create workdir", "path", o.Workdir, "err", err)
	}
	var ln net.Listener
	var err error
	if o.ListenFD > 0 {
		ln, err = net.FileListener(os.NewFile(uintptr(o.ListenFD), o.Socket))
	} else {
		ln, err = listen(o.Socket)
	}
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}

	opts := []connect.HandlerOption{connect.WithReadMaxBytes(MaxMessageBytes), connect.WithCompressMinBytes(64 << 10)}
	mux := http.NewServeMux()
	sp := spawn.New(reaper, childEnv(), o.Workdir)
	procs := newProcessService(log, sp)
	procPath, procHandler := hutchv1connect.NewProcessServiceHandler(procs, opts...)
	mux.Handle(procPath, procHandler)
	mux.Handle(hutchv1connect.ProcessServiceExecProcedure, procs.ExecHandler(procHandler, MaxMessageBytes))
	terms := pty.New(log, sp)
	mux.Handle(hutchv1connect.NewTerminalServiceHandler(terms, opts...))
	mux.Handle(agentapi.TerminalPath, terms.TerminalHandler())
	fs := files.New(o.Root, log)
	mux.Handle(hutchv1connect.NewFileServiceHandler(fs, opts...))
	mux.Handle(agentapi.FilesPath, fs.ContentHandler())
	watches := watch.New(log, fs, watch.Options{})
	mux.Handle(hutchv1connect.NewWatchServiceHandler(watches, opts...))
	kernels := kernel.New(log, sp, o.Workdir, filepath.Join(os.TempDir(), "hutch-kernels"), spawn.KeepAliveInterval)
	mux.Handle(hutchv1connect.NewCodeServiceHandler(kernels, opts...))
	mux.Handle(tunnel.Path, tunnel.Handler{Host: "127.0.0.1", Log: log})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })

	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("agent ready", "socket", o.Socket, "pid", os.Getpid())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	watches.Close() // streams end with a stopped event before the server shuts down
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	kernels.Close()
	procs.Close()
	terms.Close()
	if os.Getpid() == 1 {
		stopAll()
	}
	return nil
}

// listen binds the socket, replacing a stale one left by an earlier agent.
func listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("socket dir: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// childEnv is the agent's environment without its own settings.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HUTCH_AGENT_") || strings.HasPrefix(kv, "GOMAXPROCS=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// stopAll asks every process in the sandbox to stop, then kills what is left.
func stopAll() {
	_ = syscall.Kill(-1, syscall.SIGTERM)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(-1, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(-1, syscall.SIGKILL)
}
