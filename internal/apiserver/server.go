// Package apiserver serves the public API: Connect RPC handlers, plain HTTP
// file contents, auth and error mapping. Business logic lives in manager.
package apiserver

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/manager"
)

// MaxMessageBytes bounds one unary request message.
const MaxMessageBytes = 8 << 20

// Sandboxes is what the API needs of the sandbox manager.
type Sandboxes interface {
	Ensure(ctx context.Context, name string, opts manager.CreateOptions) (manager.Record, *agentconn.Conn, bool, error)
	Conn(ctx context.Context, name string) (*agentconn.Conn, error)
	MarkBroken(name string)
	Get(name string) (manager.Record, error)
	List() []manager.Record
	Delete(ctx context.Context, name string) error
}

var _ Sandboxes = (*manager.Manager)(nil)

// Server is the API's http.Handler.
type Server struct {
	sb   Sandboxes
	keys []string
	mux  *http.ServeMux
}

// New returns the API handler. With keys, every request but /healthz must
// carry "Authorization: Bearer KEY" with one of them.
func New(sb Sandboxes, keys []string) *Server {
	s := &Server{sb: sb, keys: keys, mux: http.NewServeMux()}
	opts := []connect.HandlerOption{connect.WithReadMaxBytes(MaxMessageBytes), connect.WithCompressMinBytes(64 << 10)}
	s.mux.Handle(hutchv1connect.NewSandboxServiceHandler(&sandboxes{s}, opts...))
	s.mux.Handle(hutchv1connect.NewProcessServiceHandler(&processes{s}, opts...))
	s.mux.Handle(hutchv1connect.NewFileServiceHandler(&fileService{s}, opts...))
	s.mux.HandleFunc("/v1/sandboxes/{name}/files", s.fileContent)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(s.keys) > 0 && r.URL.Path != "/healthz" && !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hutch"`)
		writeJSONError(w, http.StatusUnauthorized, "unauthenticated", "missing or wrong API key: set HUTCH_TOKEN")
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	match := 0
	for _, k := range s.keys {
		match |= subtle.ConstantTimeCompare([]byte(tok), []byte(k))
	}
	return match == 1
}

func toProto(r manager.Record) *hutchv1.Sandbox {
	sb := &hutchv1.Sandbox{
		Name:    r.Name,
		Id:      r.ID,
		State:   stateProto(r.State),
		Image:   r.Image,
		Runtime: r.Runtime,
		Reason:  r.Reason,
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

func stateProto(s manager.State) hutchv1.State {
	switch s {
	case manager.StateCreating:
		return hutchv1.State_STATE_CREATING
	case manager.StateRunning:
		return hutchv1.State_STATE_RUNNING
	case manager.StateStopped:
		return hutchv1.State_STATE_STOPPED
	case manager.StateFailed:
		return hutchv1.State_STATE_FAILED
	}
	return hutchv1.State_STATE_UNSPECIFIED
}
