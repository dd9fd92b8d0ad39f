package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

func (c *Client) fileURL(name, path string, q url.Values) string {
	if q == nil {
		q = url.Values{}
	}
	q.Set("path", path)
	return c.base + "/v1/sandboxes/" + url.PathEscape(name) + "/files?" + q.Encode()
}

// ReadFile streams a file out of a sandbox. Close the reader when done.
func (c *Client) ReadFile(ctx context.Context, name, path string) (io.ReadCloser, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.fileURL(name, path, nil), nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s:%s: %w: %w", name, path, err, ErrUnavailable)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, 0, errdefs.FromHTTP(resp)
	}
	return resp.Body, resp.ContentLength, nil
}

// WriteOptions shape WriteFile.
type WriteOptions struct {
	Mode    uint32 // permission bits; 0644 when zero
	Parents bool   // create missing parent directories
	Append  bool
}

// WriteFile streams r into a file in a sandbox (created on demand). The file
// is replaced atomically: readers see the old or the new content, never half.
func (c *Client) WriteFile(ctx context.Context, name, path string, r io.Reader, o WriteOptions) error {
	q := url.Values{}
	if o.Mode != 0 {
		q.Set("mode", strconv.FormatUint(uint64(o.Mode), 8))
	}
	if o.Parents {
		q.Set("parents", "1")
	}
	if o.Append {
		q.Set("append", "1")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.fileURL(name, path, q), r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("write %s:%s: %w: %w", name, path, err, ErrUnavailable)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errdefs.FromHTTP(resp)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// Stat describes a path; exists is false when there is nothing there.
func (c *Client) Stat(ctx context.Context, name, path string) (info *hutchv1.FileInfo, exists bool, err error) {
	resp, err := c.files.Stat(ctx, connect.NewRequest(&hutchv1.StatRequest{Sandbox: name, Path: path}))
	if err != nil {
		return nil, false, wrap(err)
	}
	return resp.Msg.Info, resp.Msg.Exists, nil
}

// ListDir lists a directory, optionally its whole tree.
func (c *Client) ListDir(ctx context.Context, name, path string, recursive bool) ([]*hutchv1.FileInfo, error) {
	resp, err := c.files.ListDir(ctx, connect.NewRequest(&hutchv1.ListDirRequest{Sandbox: name, Path: path, Recursive: recursive}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg.Entries, nil
}

// MakeDir creates a directory; parents makes it mkdir -p.
func (c *Client) MakeDir(ctx context.Context, name, path string, parents bool) error {
	_, err := c.files.MakeDir(ctx, connect.NewRequest(&hutchv1.MakeDirRequest{Sandbox: name, Path: path, Parents: parents}))
	return wrap(err)
}

// Remove deletes a path; recursive removes a directory tree.
func (c *Client) Remove(ctx context.Context, name, path string, recursive bool) error {
	_, err := c.files.Remove(ctx, connect.NewRequest(&hutchv1.RemoveRequest{Sandbox: name, Path: path, Recursive: recursive}))
	return wrap(err)
}

// Rename moves a file or directory within a sandbox.
func (c *Client) Rename(ctx context.Context, name, from, to string, overwrite bool) error {
	_, err := c.files.Rename(ctx, connect.NewRequest(&hutchv1.RenameRequest{Sandbox: name, From: from, To: to, Overwrite: overwrite}))
	return wrap(err)
}
