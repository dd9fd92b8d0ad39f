// Package apiserver serves the public API: Connect RPC handlers, plain HTTP
// file contents, auth and error mapping. Handlers only translate between
// the wire and the packages that own the rules (manager, egress, backup);
// every call to an agent goes through the agentconn gateway.
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

// Sandboxes is what the API needs of the sandbox manager: the gateway's
// Agent and MarkBroken, and the sandboxes' records and ports.
type Sandboxes interface {
	agentconn.Sandboxes
	Ensure(ctx context.Context, name string, opts sandbox.CreateOptions) (sandbox.Record, *agentconn.Conn, bool, error)
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
	// AllowedHosts are the Host names (or addresses) the API answers besides
	// localhost and loopback addresses; AnyHost answers every one, with
	// Keys only. Config.Check validates them.
	AllowedHosts []string
	// LocalAddrs are the daemon's own addresses, which the API answers as
	// Host too: the listener's, or every interface's for a wildcard one.
	LocalAddrs []netip.Addr
	// PreviewDomain and PreviewPort make preview URLs:
	// http://{port}-{name}-{token}.{PreviewDomain}:{PreviewPort}/.
	PreviewDomain string
	PreviewPort   string
	// Egress serves secrets, policies and egress logs; nil leaves the
	// EgressService out.
	Egress Egress
	// Backups, when set, serves directory backups.
	Backups *backup.Store
	// Interceptors see every RPC, the zero-copy exec path included, outside
	// error mapping and auth: where metrics and audit hook in.
	Interceptors []connect.Interceptor
	// Images, when set, serves the image store (images.go).
	Images Images
	// MCP, when set, serves the MCP endpoint at /mcp, behind the same
	// host, origin and key checks as the rest of the API.
	MCP http.Handler
}

// Server is the API's http.Handler.
type Server struct {
	sb      Sandboxes
	gw      *agentconn.Gateway
	keys    []string
	cfg     Config
	hosts   hosts
	log     *slog.Logger
	mux     *http.ServeMux
	preview *preview.Router
	// chain wraps every call, outermost first (see interceptors.go).
	chain []connect.Interceptor
}

// New returns the API handler.
func New(sb Sandboxes, cfg Config, log *slog.Logger) *Server {
	cfg.PreviewDomain = previewDomain(cfg.PreviewDomain)
	gw := agentconn.NewGateway(sb)
	s := &Server{sb: sb, gw: gw, keys: cfg.Keys, cfg: cfg, hosts: newHosts(cfg), log: log, mux: http.NewServeMux(), preview: preview.New(sb, gw, cfg.PreviewDomain, log)}
	s.chain = append(append(s.chain, cfg.Interceptors...), errorInterceptor{}, authInterceptor{s})
	opts := []connect.HandlerOption{
		connect.WithReadMaxBytes(MaxMessageBytes),
		connect.WithCompressMinBytes(64 << 10),
		// RPC errors go out in each protocol's own format, streams included.
		connect.WithInterceptors(s.chain...),
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
	if roots, ok := sb.(backup.Roots); ok && cfg.Backups != nil {
		s.mux.Handle(hutchv1connect.NewBackupServiceHandler(&backups{svc: backup.NewService(cfg.Backups, roots)}, opts...))
	}
	s.handleImages(cfg.Images, opts)
	if cfg.MCP != nil {
		s.mux.HandleFunc("/mcp", s.requireKey(cfg.MCP.ServeHTTP))
	}
	s.mux.Handle("GET /terminal/{name}", terminal.Page())
	s.mux.Handle("GET "+terminal.AssetsPath, terminal.Assets())
	return s
}

// ServeHTTP is the one gateway of every request: hosts under the preview
// domain go to previews (a wrong one is the router's 404, never the API),
// /healthz answers any host (load balancers; it tells nothing), and the
// rest reaches the API only if admit lets it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.preview.Owns(hostname(r.Host)) {
		s.preview.ServeHTTP(w, r)
		return
	}
	if r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		_, _ = w.Write([]byte("ok\n"))
		return
	}
	if msg, ok := s.admit(r); !ok {
		s.refuse(w, r, msg)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// previewDomain is the preview domain as the router matches it.
func previewDomain(d string) string {
	d = strings.Trim(strings.ToLower(d), ".")
	if d == "" {
		return "localhost"
	}
	return d
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
