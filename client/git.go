package client

import (
	"context"
	"time"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
)

// GitOptions shape GitCheckout.
type GitOptions struct {
	Branch    string // default: the remote's default branch
	Depth     int    // 0: full history
	TargetDir string // default: /workspace/<repository name>
	Timeout   time.Duration
}

// GitCheckout clones url into the named sandbox (created on demand). Errors
// match ErrNotFound (repository or branch), ErrUnauthenticated,
// ErrAlreadyExists (target not empty) and ErrDeadlineExceeded.
func (c *Client) GitCheckout(ctx context.Context, name, url string, o GitOptions) (*hutchv1.GitCheckoutResponse, error) {
	resp, err := c.process.GitCheckout(ctx, connect.NewRequest(&hutchv1.GitCheckoutRequest{
		Sandbox: name, Url: url, Branch: o.Branch, Depth: int32(o.Depth), TargetDir: o.TargetDir, TimeoutMs: o.Timeout.Milliseconds(),
	}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg, nil
}
