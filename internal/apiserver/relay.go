package apiserver

import (
	"bytes"
	"fmt"
	"net/http"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/agentapi/envelope"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// execRelay serves Exec for Connect clients using the binary codec (the Go
// SDK and the CLI) by relaying the agent's response envelopes unchanged:
// output is never decoded and re-encoded on its way through the daemon.
// Other protocols and codecs go to the generic handler.
func (s *Server) execRelay(generic http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !envelope.Raw(r) {
			generic.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", envelope.ContentType)
		if !s.authorized(r.Header) {
			_ = envelope.WriteEnd(w, connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("%s", unauthenticatedMsg)))
			return
		}
		var req hutchv1.ExecRequest
		env, err := envelope.ReadRequest(r.Body, MaxMessageBytes, &req)
		if err != nil {
			_ = envelope.WriteEnd(w, err)
			return
		}
		_, conn, _, err := s.sb.Ensure(r.Context(), req.Sandbox, sandbox.CreateOptions{})
		if err != nil {
			_ = envelope.WriteEnd(w, err)
			return
		}
		s.relayExec(w, r, conn, req.Sandbox, env)
	}
}

func (s *Server) relayExec(w http.ResponseWriter, r *http.Request, conn *agentconn.Conn, name string, env []byte) {
	areq, err := http.NewRequestWithContext(r.Context(), http.MethodPost, agentconn.BaseURL+"/hutch.v1.ProcessService/Exec", bytes.NewReader(env))
	if err != nil {
		_ = envelope.WriteEnd(w, err)
		return
	}
	areq.Header.Set("Content-Type", envelope.ContentType)
	areq.Header.Set("Connect-Protocol-Version", "1")
	if t := r.Header.Get("Connect-Timeout-Ms"); t != "" {
		areq.Header.Set("Connect-Timeout-Ms", t)
	}
	resp, err := conn.HTTP.Do(areq)
	if err != nil {
		_ = envelope.WriteEnd(w, s.agentError(name, connect.NewError(connect.CodeUnavailable, err)))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_ = envelope.WriteEnd(w, connect.NewError(connect.CodeUnavailable, fmt.Errorf("sandbox %q: agent answered %s", name, resp.Status)))
		return
	}
	w.WriteHeader(http.StatusOK)
	ended, err := envelope.Copy(w, resp.Body)
	if ended || r.Context().Err() != nil {
		return
	}
	// The agent's stream broke off: say so explicitly, and check the sandbox
	// on its next use.
	s.sb.MarkBroken(name)
	_ = envelope.WriteEnd(w, connect.NewError(connect.CodeUnavailable, fmt.Errorf("sandbox %q: the agent's stream ended without an exit status: %v", name, err)))
}
