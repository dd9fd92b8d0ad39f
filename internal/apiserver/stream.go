package apiserver

import (
	"fmt"

	"connectrpc.com/connect"
)

// relayStream forwards an agent's server stream to the client. final tells
// the event that ends a stream that did not break: a stream from the agent
// that ends without one is reported as unavailable, never as success, and
// the sandbox is checked on its next use.
func relayStream[Ev any](s *Server, name string, in *connect.ServerStreamForClient[Ev], send func(*Ev) error, final func(*Ev) bool, missing string) error {
	defer in.Close()
	ended := false
	for in.Receive() {
		ev := in.Msg()
		ended = ended || final(ev)
		if err := send(ev); err != nil {
			return err
		}
	}
	if err := in.Err(); err != nil {
		return s.agentError(name, err)
	}
	if !ended {
		s.sb.MarkBroken(name)
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("sandbox %q: the agent's stream ended %s", name, missing))
	}
	return nil
}
