package apiserver

import (
	"context"
	"errors"
	"io"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/hutch-sh/hutch/internal/agentapi/envelope"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// errorInterceptor maps every handler's errors to wire codes by their
// errdefs category: handlers return plain errors.
type errorInterceptor struct{}

var _ connect.Interceptor = errorInterceptor{}

func (errorInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		resp, err := next(ctx, req)
		return resp, errdefs.ToConnect(err)
	}
}

func (errorInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (errorInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return errdefs.ToConnect(next(ctx, conn))
	}
}

// wrapStream runs h inside the server's chain, as Connect does for its own
// handlers: the first interceptor is the outermost.
func (s *Server) wrapStream(h connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	for i := len(s.chain) - 1; i >= 0; i-- {
		h = s.chain[i].WrapStreamingHandler(h)
	}
	return h
}

// rawConn is a server-stream call on the zero-copy path, seen by the
// interceptors as any other stream. Receive decodes the one request
// envelope (kept whole, to forward as it is); Send writes an envelope.
// The end of the stream is written by the relay.
type rawConn struct {
	w        http.ResponseWriter
	r        *http.Request
	spec     connect.Spec
	env      []byte
	received bool
	trailer  http.Header // not sent: the end envelope carries no metadata
}

var _ connect.StreamingHandlerConn = (*rawConn)(nil)

func (c *rawConn) Spec() connect.Spec { return c.spec }

func (c *rawConn) Peer() connect.Peer {
	return connect.Peer{Addr: c.r.RemoteAddr, Protocol: connect.ProtocolConnect, Query: c.r.URL.Query()}
}

func (c *rawConn) Receive(msg any) error {
	if c.received {
		return io.EOF
	}
	m, ok := msg.(proto.Message)
	if !ok {
		return connect.NewError(connect.CodeInternal, errors.New("raw stream: not a protobuf message"))
	}
	c.received = true
	env, err := envelope.ReadRequest(c.r.Body, MaxMessageBytes, m)
	c.env = env
	return err
}

func (c *rawConn) RequestHeader() http.Header { return c.r.Header }

func (c *rawConn) Send(msg any) error {
	m, ok := msg.(proto.Message)
	if !ok {
		return connect.NewError(connect.CodeInternal, errors.New("raw stream: not a protobuf message"))
	}
	return envelope.WriteMessage(c.w, m)
}

func (c *rawConn) ResponseHeader() http.Header { return c.w.Header() }

func (c *rawConn) ResponseTrailer() http.Header {
	if c.trailer == nil {
		c.trailer = http.Header{}
	}
	return c.trailer
}
