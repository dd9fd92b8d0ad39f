package proc

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agentapi/envelope"
)

// sink is where an exec's events go.
type sink interface {
	send(*hutchv1.ExecEvent) error
	// sendOutput sends the n output bytes that follow
	// envelope.OutputHeadroom bytes of buf.
	sendOutput(buf []byte, n int, stdout bool) error
}

// connectSink sends through a Connect stream, in whatever protocol and codec
// the caller chose.
type connectSink struct {
	stream *connect.ServerStream[hutchv1.ExecEvent]
}

func (c connectSink) send(ev *hutchv1.ExecEvent) error { return c.stream.Send(ev) }

func (c connectSink) sendOutput(buf []byte, n int, stdout bool) error {
	b := buf[envelope.OutputHeadroom : envelope.OutputHeadroom+n]
	if stdout {
		return c.send(&hutchv1.ExecEvent{Event: &hutchv1.ExecEvent_Stdout{Stdout: b}})
	}
	return c.send(&hutchv1.ExecEvent{Event: &hutchv1.ExecEvent_Stderr{Stderr: b}})
}

// rawSink writes Connect binary envelopes itself: output is framed in place
// in the buffer it was read into, so it is never copied in user space.
type rawSink struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (r rawSink) send(ev *hutchv1.ExecEvent) error {
	if err := envelope.WriteMessage(r.w, ev); err != nil {
		return err
	}
	return r.rc.Flush()
}

func (r rawSink) sendOutput(buf []byte, n int, stdout bool) error {
	field := byte(3)
	if stdout {
		field = 2
	}
	if _, err := r.w.Write(envelope.FrameOutput(buf, n, field)); err != nil {
		return err
	}
	return r.rc.Flush()
}

// ExecHandler serves Exec for Connect binary-codec callers (the daemon) with
// rawSink, and hands every other call to generic.
func (s *Service) ExecHandler(generic http.Handler, maxRequest uint32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !envelope.Raw(r) {
			generic.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", envelope.ContentType)
		var req hutchv1.ExecRequest
		if _, err := envelope.ReadRequest(r.Body, maxRequest, &req); err != nil {
			_ = envelope.WriteEnd(w, err)
			return
		}
		ctx := r.Context()
		if ms, err := strconv.ParseInt(r.Header.Get("Connect-Timeout-Ms"), 10, 64); err == nil && ms > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
			defer cancel()
		}
		err := s.exec(ctx, &req, rawSink{w: w, rc: http.NewResponseController(w)})
		_ = envelope.WriteEnd(w, err)
	})
}
