package client

import (
	"context"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
)

// ExposePort gives a port of the named sandbox (created on demand) a preview
// URL and returns it; exposing it again returns the same URL.
func (c *Client) ExposePort(ctx context.Context, name string, port int) (string, error) {
	resp, err := c.sandboxes.ExposePort(ctx, connect.NewRequest(&hutchv1.ExposePortRequest{Name: name, Port: int32(port)}))
	if err != nil {
		return "", wrap(err)
	}
	return resp.Msg.Url, nil
}

// UnexposePort withdraws a port's preview URL for good.
func (c *Client) UnexposePort(ctx context.Context, name string, port int) error {
	_, err := c.sandboxes.UnexposePort(ctx, connect.NewRequest(&hutchv1.UnexposePortRequest{Name: name, Port: int32(port)}))
	return wrap(err)
}

// ExposedPorts lists a sandbox's preview URLs.
func (c *Client) ExposedPorts(ctx context.Context, name string) ([]*hutchv1.ExposedPort, error) {
	resp, err := c.sandboxes.ListExposedPorts(ctx, connect.NewRequest(&hutchv1.ListExposedPortsRequest{Name: name}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg.Ports, nil
}
