// Package client is the Go SDK for the hutch daemon.
package client

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// DefaultURL is where a local daemon listens.
const DefaultURL = "http://127.0.0.1:7777"

// Error categories of returned errors; test them with errors.Is.
var (
	ErrInvalidArgument    = errdefs.ErrInvalidArgument
	ErrNotFound           = errdefs.ErrNotFound
	ErrAlreadyExists      = errdefs.ErrAlreadyExists
	ErrFailedPrecondition = errdefs.ErrFailedPrecondition
	ErrPermissionDenied   = errdefs.ErrPermissionDenied
	ErrUnauthenticated    = errdefs.ErrUnauthenticated
	ErrDeadlineExceeded   = errdefs.ErrDeadlineExceeded
	ErrUnavailable        = errdefs.ErrUnavailable
	ErrResourceExhausted  = errdefs.ErrResourceExhausted
	ErrInternal           = errdefs.ErrInternal
)

// Client talks to one daemon. It is safe for concurrent use.
type Client struct {
	base      string
	hc        *http.Client
	sandboxes hutchv1connect.SandboxServiceClient
	process   hutchv1connect.ProcessServiceClient
	files     hutchv1connect.FileServiceClient
	terminals hutchv1connect.TerminalServiceClient
	watch     hutchv1connect.WatchServiceClient
	egress    hutchv1connect.EgressServiceClient
	code      hutchv1connect.CodeServiceClient
	snapshots hutchv1connect.SnapshotServiceClient
	backups   hutchv1connect.BackupServiceClient
	images    hutchv1connect.ImageServiceClient
}

// Option configures a Client.
type Option func(*options)

type options struct {
	token string
	hc    *http.Client
}

// WithToken sends an API key with every request.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithHTTPClient replaces the HTTP client.
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.hc = hc } }

// New returns a client of the daemon at baseURL (e.g. http://127.0.0.1:7777).
func New(baseURL string, opts ...Option) *Client {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	hc := o.hc
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		tr.DisableCompression = true
		hc = &http.Client{Transport: tr}
	}
	if o.token != "" {
		hc = &http.Client{Transport: bearer{token: o.token, next: transport(hc)}, Timeout: hc.Timeout}
	}
	base := strings.TrimRight(baseURL, "/")
	copts := []connect.ClientOption{connect.WithAcceptCompression("gzip", nil, nil)}
	return &Client{
		base:      base,
		hc:        hc,
		sandboxes: hutchv1connect.NewSandboxServiceClient(hc, base, copts...),
		process:   hutchv1connect.NewProcessServiceClient(hc, base, copts...),
		files:     hutchv1connect.NewFileServiceClient(hc, base, copts...),
		terminals: hutchv1connect.NewTerminalServiceClient(hc, base, copts...),
		watch:     hutchv1connect.NewWatchServiceClient(hc, base, copts...),
		egress:    hutchv1connect.NewEgressServiceClient(hc, base, copts...),
		code:      hutchv1connect.NewCodeServiceClient(hc, base, copts...),
		snapshots: hutchv1connect.NewSnapshotServiceClient(hc, base, copts...),
		backups:   hutchv1connect.NewBackupServiceClient(hc, base, copts...),
		images:    hutchv1connect.NewImageServiceClient(hc, base, copts...),
	}
}

// FromEnv returns a client configured by HUTCH_URL and HUTCH_TOKEN.
func FromEnv() *Client {
	url := os.Getenv("HUTCH_URL")
	if url == "" {
		url = DefaultURL
	}
	var opts []Option
	if t := os.Getenv("HUTCH_TOKEN"); t != "" {
		opts = append(opts, WithToken(t))
	}
	return New(url, opts...)
}

func transport(hc *http.Client) http.RoundTripper {
	if hc.Transport != nil {
		return hc.Transport
	}
	return http.DefaultTransport
}

type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// wrap turns wire errors into category errors.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	return errdefs.FromConnect(err)
}

// CreateOptions shape a new sandbox; ignored when it exists.
type CreateOptions struct {
	Image        string
	InstanceType string
}

// Create returns the named sandbox, starting it if it does not exist.
func (c *Client) Create(ctx context.Context, name string, o CreateOptions) (*hutchv1.Sandbox, error) {
	resp, err := c.sandboxes.Create(ctx, connect.NewRequest(&hutchv1.CreateRequest{Name: name, Image: o.Image, InstanceType: o.InstanceType}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg.Sandbox, nil
}

// Get reports a sandbox; ErrNotFound if it does not exist.
func (c *Client) Get(ctx context.Context, name string) (*hutchv1.Sandbox, error) {
	resp, err := c.sandboxes.Get(ctx, connect.NewRequest(&hutchv1.GetRequest{Name: name}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg.Sandbox, nil
}

// List returns every sandbox.
func (c *Client) List(ctx context.Context) ([]*hutchv1.Sandbox, error) {
	resp, err := c.sandboxes.List(ctx, connect.NewRequest(&hutchv1.ListRequest{}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg.Sandboxes, nil
}

// Delete removes a sandbox and everything it had.
func (c *Client) Delete(ctx context.Context, name string) error {
	_, err := c.sandboxes.Delete(ctx, connect.NewRequest(&hutchv1.DeleteRequest{Name: name}))
	return wrap(err)
}

// Healthy reports whether the daemon answers /healthz.
func (c *Client) Healthy(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("daemon not healthy: " + resp.Status)
	}
	return nil
}
