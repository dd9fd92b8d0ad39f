// Package apiserver serves the public API: Connect RPC handlers, plain HTTP
// file contents, auth and error mapping. Business logic lives in manager.
package apiserver

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/backup"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/manager"
	"github.com/hutch-sh/hutch/internal/preview"
	"github.com/hutch-sh/hutch/internal/sandbox"
	"github.com/hutch-sh/hutch/web/terminal"
)

// MaxMessageBytes bounds one unary request message.
const MaxMessageBytes = 8 << 20

// Sandboxes is what the API needs of the sandbox manager.
type Sandboxes interface {
	Ensure(ctx context.Context, name string, opts sandbox.CreateOptions) (sandbox.Record, *agentconn.Conn, bool, error)
	Conn(ctx context.Context, name string) (*agentconn.Conn, error)
	MarkBroken(name string)
	Get(name string) (sandbox.Record, error)
	List() []sandbox.Record
	Delete(ctx context.Context, name string) error
	Expose(ctx context.Context, name string, port int) (string, error)
	Unexpose(ctx context.Context, name string, port int) error
	Exposed(name string) ([]int, map[int]string, error)
	Preview(name string, port int, token string) bool
}

var _ Sandboxes = (*manager.Manager)(nil)

// Config shapes the API.
type Config struct {
	// Keys, when set, are required ("Authorization: Bearer KEY") on every
	// request but /healthz and preview URLs, which carry their own token.
	Keys []string
	// PreviewDomain and PreviewPort make preview URLs:
	// http://{port}-{name}-{token}.{PreviewDomain}:{PreviewPort}/.
	PreviewDomain string
	PreviewPort   string
	// Egress serves secrets, policies and egress logs; nil leaves the
	// EgressService out.
	Egress Egress
	// Backups, when set, serves directory backups.
	Backups *backup.Store
}

// Server is the API's http.Handler.
type Server struct {
	sb      Sandboxes
	keys    []string
	cfg     Config
	mux     *http.ServeMux
	preview *preview.Router
}

// New returns the API handler.
func New(sb Sandboxes, cfg Config, log *slog.Logger) *Server {
	if cfg.PreviewDomain == "" {
		cfg.PreviewDomain = "localhost"
	}
	s := &Server{sb: sb, keys: cfg.Keys, cfg: cfg, mux: http.NewServeMux(), preview: preview.New(sb, cfg.PreviewDomain, log)}
	opts := []connect.HandlerOption{
		connect.WithReadMaxBytes(MaxMessageBytes),
		connect.WithCompressMinBytes(64 << 10),
		// RPC errors go out in each protocol's own format, streams included.
		connect.WithInterceptors(authInterceptor{s}),
	}
	s.mux.Handle(hutchv1connect.NewSandboxServiceHandler(&sandboxes{s}, opts...))
	procPath, procHandler := hutchv1connect.NewProcessServiceHandler(&processes{s}, opts...)
	s.mux.Handle(procPath, procHandler)
	s.mux.Handle(hutchv1connect.ProcessServiceExecProcedure, s.execRelay(procHandler))
	s.mux.Handle(hutchv1connect.NewFileServiceHandler(&fileService{s}, opts...))
	s.mux.Handle(hutchv1connect.NewWatchServiceHandler(&watches{s}, opts...))
	s.mux.Handle(hutchv1connect.NewCodeServiceHandler(&codeService{s}, opts...))
	s.mux.HandleFunc("/v1/sandboxes/{name}/files", s.requireKey(s.fileContent))
	s.mux.Handle(hutchv1connect.NewTerminalServiceHandler(&terminals{s}, opts...))
	s.mux.HandleFunc("/v1/sandboxes/{name}/terminals/{id}", s.terminalSocket)
	if cfg.Egress != nil {
		s.mux.Handle(hutchv1connect.NewEgressServiceHandler(&egressService{s}, opts...))
	}
	if lc, ok := sb.(Lifecycle); ok {
		s.mux.Handle(hutchv1connect.NewSnapshotServiceHandler(&snapshots{s: s, lc: lc}, opts...))
	}
	if roots, ok := sb.(Roots); ok && cfg.Backups != nil {
		s.mux.Handle(hutchv1connect.NewBackupServiceHandler(&backups{roots: roots, st: cfg.Backups}, opts...))
	}
	s.mux.Handle("GET /terminal/{name}", terminal.Page())
	s.mux.Handle("GET "+terminal.AssetsPath, terminal.Assets())
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, _, _, ok := s.preview.Match(r.Host); ok {
		s.preview.ServeHTTP(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// previewURL is the public URL of an exposed port.
func (s *Server) previewURL(name string, port int, token string) string {
	host := fmt.Sprintf("%d-%s-%s.%s", port, name, token, s.cfg.PreviewDomain)
	if s.cfg.PreviewPort != "" && s.cfg.PreviewPort != "80" {
		host += ":" + s.cfg.PreviewPort
	}
	return "http://" + host + "/"
}

const unauthenticatedMsg = "missing or wrong API key: set HUTCH_TOKEN"

// requireKey guards the plain-HTTP endpoints.
func (s *Server) requireKey(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r.Header) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hutch"`)
			errdefs.WriteHTTPStatus(w, http.StatusUnauthorized, connect.CodeUnauthenticated, unauthenticatedMsg)
			return
		}
		h(w, r)
	}
}

func (s *Server) authorized(h http.Header) bool {
	if len(s.keys) == 0 {
		return true
	}
	tok, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	match := 0
	for _, k := range s.keys {
		match |= subtle.ConstantTimeCompare([]byte(tok), []byte(k))
	}
	return match == 1
}

func toProto(r sandbox.Record) *hutchv1.Sandbox {
	sb := &hutchv1.Sandbox{
		Name:    r.Name,
		Id:      r.ID,
		State:   stateProto(r.State),
		Image:   r.Image,
		Runtime: r.Runtime,
		Reason:  r.Reason,
		Address: addrString(r.Addr),
		Limits:  &hutchv1.Limits{CpuMillis: r.Limits.CPUMillis, MemoryBytes: r.Limits.MemoryBytes, Pids: r.Limits.Pids},
	}
	if !r.CreatedAt.IsZero() {
		sb.CreatedAt = timestamppb.New(r.CreatedAt)
	}
	if !r.StartedAt.IsZero() {
		sb.StartedAt = timestamppb.New(r.StartedAt)
	}
	return sb
}

func stateProto(s sandbox.State) hutchv1.State {
	switch s {
	case sandbox.StateCreating:
		return hutchv1.State_STATE_CREATING
	case sandbox.StateRunning:
		return hutchv1.State_STATE_RUNNING
	case sandbox.StateStopped:
		return hutchv1.State_STATE_STOPPED
	case sandbox.StateSleeping:
		return hutchv1.State_STATE_SLEEPING
	case sandbox.StateFailed:
		return hutchv1.State_STATE_FAILED
	}
	return hutchv1.State_STATE_UNSPECIFIED
}

// authInterceptor checks API keys on every RPC.
type authInterceptor struct{ s *Server }

func (a authInterceptor) check(h http.Header) error {
	if a.s.authorized(h) {
		return nil
	}
	return connect.NewError(connect.CodeUnauthenticated, errors.New(unauthenticatedMsg))
}

func (a authInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if err := a.check(req.Header()); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (a authInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (a authInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if err := a.check(conn.RequestHeader()); err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
