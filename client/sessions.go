package client

import (
	"context"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
)

// SessionOptions shape a new session.
type SessionOptions struct {
	ID  string // optional; generated when empty
	Cwd string
	Env map[string]string
}

// CreateSession starts a shell session in the named sandbox (created on
// demand). Execs with Command.Session run in it, keeping cwd, exports and
// functions between them.
func (c *Client) CreateSession(ctx context.Context, name string, o SessionOptions) (*hutchv1.SessionInfo, error) {
	resp, err := c.process.CreateSession(ctx, connect.NewRequest(&hutchv1.CreateSessionRequest{Sandbox: name, Id: o.ID, Cwd: o.Cwd, Env: o.Env}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg, nil
}

// Sessions lists a sandbox's sessions.
func (c *Client) Sessions(ctx context.Context, name string) ([]*hutchv1.SessionInfo, error) {
	resp, err := c.process.ListSessions(ctx, connect.NewRequest(&hutchv1.ListSessionsRequest{Sandbox: name}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg.Sessions, nil
}

// DeleteSession ends a session and everything it runs.
func (c *Client) DeleteSession(ctx context.Context, name, id string) error {
	_, err := c.process.DeleteSession(ctx, connect.NewRequest(&hutchv1.DeleteSessionRequest{Sandbox: name, Id: id}))
	return wrap(err)
}

// SetEnv sets and unsets environment variables of a session, or of the
// whole sandbox when session is empty (seen by every later command).
func (c *Client) SetEnv(ctx context.Context, name, session string, set map[string]string, unset []string) error {
	_, err := c.process.SetEnv(ctx, connect.NewRequest(&hutchv1.SetEnvRequest{Sandbox: name, Session: session, Set: set, Unset: unset}))
	return wrap(err)
}
