package apiserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/manager"
)

// Connect streaming envelope flags.
const (
	flagCompressed = 1
	flagEndStream  = 2
)

// execRelay serves Exec for Connect clients using the binary codec (the Go
// SDK and the CLI) by relaying the agent's response envelopes unchanged:
// output is never decoded and re-encoded on its way through the daemon.
// Other protocols and codecs go to the generic handler.
func (s *Server) execRelay(generic http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		enc := r.Header.Get("Connect-Content-Encoding")
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/connect+proto" || (enc != "" && enc != "identity") {
			generic.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/connect+proto")
		if !s.authorized(r.Header) {
			endStream(w, connect.NewError(connect.CodeUnauthenticated, errors.New(unauthenticatedMsg)))
			return
		}
		env, req, err := readRequest(r.Body)
		if err != nil {
			endStream(w, err)
			return
		}
		_, conn, _, err := s.sb.Ensure(r.Context(), req.Sandbox, manager.CreateOptions{})
		if err != nil {
			endStream(w, errdefs.ToConnect(err))
			return
		}
		s.relayExec(w, r, conn, req.Sandbox, env)
	}
}

// readRequest reads the one enveloped ExecRequest of a Connect stream call.
func readRequest(body io.Reader) ([]byte, *hutchv1.ExecRequest, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(body, hdr[:]); err != nil {
		return nil, nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("read request: %w", err))
	}
	if hdr[0]&flagCompressed != 0 {
		return nil, nil, connect.NewError(connect.CodeInvalidArgument, errors.New("compressed message without a content encoding"))
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxMessageBytes {
		return nil, nil, connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("request of %d bytes is over the limit of %d", n, MaxMessageBytes))
	}
	env := make([]byte, 5+n)
	copy(env, hdr[:])
	if _, err := io.ReadFull(body, env[5:]); err != nil {
		return nil, nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("read request: %w", err))
	}
	req := &hutchv1.ExecRequest{}
	if err := proto.Unmarshal(env[5:], req); err != nil {
		return nil, nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("decode request: %w", err))
	}
	return env, req, nil
}

func (s *Server) relayExec(w http.ResponseWriter, r *http.Request, conn *agentconn.Conn, name string, env []byte) {
	areq, err := http.NewRequestWithContext(r.Context(), http.MethodPost, agentconn.BaseURL+"/hutch.v1.ProcessService/Exec", bytes.NewReader(env))
	if err != nil {
		endStream(w, err)
		return
	}
	areq.Header.Set("Content-Type", "application/connect+proto")
	areq.Header.Set("Connect-Protocol-Version", "1")
	if t := r.Header.Get("Connect-Timeout-Ms"); t != "" {
		areq.Header.Set("Connect-Timeout-Ms", t)
	}
	resp, err := conn.HTTP.Do(areq)
	if err != nil {
		endStream(w, s.agentError(name, connect.NewError(connect.CodeUnavailable, err)))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		endStream(w, connect.NewError(connect.CodeUnavailable, fmt.Errorf("sandbox %q: agent answered %s", name, resp.Status)))
		return
	}
	w.WriteHeader(http.StatusOK)
	ended, err := copyEnvelopes(w, resp.Body)
	if ended || r.Context().Err() != nil {
		return
	}
	// The agent's stream broke off: say so explicitly, and check the sandbox
	// on its next use.
	s.sb.MarkBroken(name)
	endStream(w, connect.NewError(connect.CodeUnavailable, fmt.Errorf("sandbox %q: the agent's stream ended without an exit status: %v", name, err)))
}

// copyEnvelopes copies Connect envelopes from src to w, flushing each one,
// and reports whether the end-of-stream envelope went through.
func copyEnvelopes(w http.ResponseWriter, src io.Reader) (bool, error) {
	rc := http.NewResponseController(w)
	buf := make([]byte, 1<<20)
	var hdr [5]byte
	for {
		if _, err := io.ReadFull(src, hdr[:]); err != nil {
			return false, err
		}
		if _, err := w.Write(hdr[:]); err != nil {
			return false, err
		}
		n := int64(binary.BigEndian.Uint32(hdr[1:]))
		if _, err := io.CopyBuffer(w, io.LimitReader(src, n), buf); err != nil {
			return false, err
		}
		if err := rc.Flush(); err != nil {
			return false, err
		}
		if hdr[0]&flagEndStream != 0 {
			return true, nil
		}
	}
}

// endStream writes err as a Connect end-of-stream envelope.
func endStream(w http.ResponseWriter, err error) {
	var end struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	end.Error.Code = errdefs.Code(err).String()
	end.Error.Message = errdefs.Message(err)
	if errors.Is(err, context.Canceled) {
		end.Error.Code = connect.CodeCanceled.String()
	}
	body, _ := json.Marshal(end)
	env := make([]byte, 5, 5+len(body))
	env[0] = flagEndStream
	binary.BigEndian.PutUint32(env[1:], uint32(len(body)))
	_, _ = w.Write(append(env, body...))
}
