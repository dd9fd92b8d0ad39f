package exec

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"time"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agentapi/envelope"
)

// Sink is where an exec's events go.
type Sink interface {
	Send(*hutchv1.ExecEvent) error
	// SendOutput sends the n output bytes that follow
	// envelope.OutputHeadroom bytes of buf.
	SendOutput(buf []byte, n int, stdout bool) error
}

// connectSink sends through a Connect stream, in whatever protocol and codec
// the caller chose.
var (
	_ Sink = connectSink{}
	_ Sink = rawSink{}
)

type connectSink struct {
	stream *connect.ServerStream[hutchv1.ExecEvent]
}

func (c connectSink) Send(ev *hutchv1.ExecEvent) error { return c.stream.Send(ev) }

func (c connectSink) SendOutput(buf []byte, n int, stdout bool) error {
	b := buf[envelope.OutputHeadroom : envelope.OutputHeadroom+n]
	if stdout {
		return c.Send(&hutchv1.ExecEvent{Event: &hutchv1.ExecEvent_Stdout{Stdout: b}})
	}
	return c.Send(&hutchv1.ExecEvent{Event: &hutchv1.ExecEvent_Stderr{Stderr: b}})
}

// rawSink writes Connect binary envelopes itself: output is framed in place
// in the buffer it was read into, so it is never copied in user space.
type rawSink struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (r rawSink) Send(ev *hutchv1.ExecEvent) error {
	if err := envelope.WriteMessage(r.w, ev); err != nil {
		return err
	}
	return r.rc.Flush()
}

func (r rawSink) SendOutput(buf []byte, n int, stdout bool) error {
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
		err := s.Run(ctx, &req, rawSink{w: w, rc: http.NewResponseController(w)})
		_ = envelope.WriteEnd(w, err)
	})
}

// Capture is a Sink that keeps the start of a command's output, and its exit,
// for commands the agent runs for itself.
type Capture struct {
	Stdout, Stderr bytes.Buffer
	Exit           *hutchv1.ExecExit
}

// captureLimit bounds what Capture keeps of each stream.
const captureLimit = 64 << 10

var _ Sink = (*Capture)(nil)

// Send keeps the exit.
func (c *Capture) Send(ev *hutchv1.ExecEvent) error {
	if e, ok := ev.Event.(*hutchv1.ExecEvent_Exit); ok {
		c.Exit = e.Exit
	}
	return nil
}

// SendOutput keeps output up to captureLimit per stream.
func (c *Capture) SendOutput(buf []byte, n int, stdout bool) error {
	b := &c.Stderr
	if stdout {
		b = &c.Stdout
	}
	if b.Len() < captureLimit {
		b.Write(buf[envelope.OutputHeadroom : envelope.OutputHeadroom+n])
	}
	return nil
}
