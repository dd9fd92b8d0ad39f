package apiserver

import (
	"context"
	"net/http"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agentapi/envelope"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// execSpec describes Exec to interceptors on the zero-copy path.
var execSpec = connect.Spec{
	StreamType: connect.StreamTypeServer,
	Schema:     hutchv1.File_hutch_v1_hutch_proto.Services().ByName("ProcessService").Methods().ByName("Exec"),
	Procedure:  hutchv1connect.ProcessServiceExecProcedure,
}

// execRelay serves Exec for Connect clients using the binary codec (the Go
// SDK and the CLI) by relaying the agent's response envelopes unchanged:
// output is never decoded and re-encoded on its way through the daemon.
// The call still goes through the interceptor chain (auth, errors and
// whatever else sees every call). Other protocols and codecs go to the
// generic handler.
func (s *Server) execRelay(generic http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !envelope.Raw(r) {
			generic.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", envelope.ContentType)
		conn := &rawConn{w: w, r: r, spec: execSpec}
		call := s.wrapStream(func(ctx context.Context, sc connect.StreamingHandlerConn) error {
			var req hutchv1.ExecRequest
			if err := sc.Receive(&req); err != nil {
				return err
			}
			c, err := s.gw.Agent(ctx, req.Sandbox, sandbox.Adding)
			if err != nil {
				return err
			}
			return s.gw.Envelopes(w, r.WithContext(ctx), c, req.Sandbox, hutchv1connect.ProcessServiceExecProcedure, conn.env)
		})
		if err := call(r.Context(), conn); err != nil {
			_ = envelope.WriteEnd(w, err)
		}
	}
}
