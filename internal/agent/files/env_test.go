package files

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// env is a Service over a temp root, served like the agent serves it, next
// to a host directory ("outside") that no request may change.
type env struct {
	t       *testing.T
	root    string
	outside string
	svc     *Service
	srv     *httptest.Server
	rpc     hutchv1connect.FileServiceClient
}

func newEnv(t *testing.T) *env {
	t.Helper()
	base := t.TempDir()
	e := &env{t: t, root: filepath.Join(base, "root"), outside: filepath.Join(base, "outside")}
	mustDo(t, os.MkdirAll(filepath.Join(e.root, "workspace"), 0o755))
	mustDo(t, os.MkdirAll(e.outside, 0o755))
	mustDo(t, os.WriteFile(filepath.Join(e.outside, "sentinel"), []byte("host secret"), 0o644))
	e.svc = New(e.root, slog.New(slog.NewTextHandler(t.Output(), nil)))
	mux := http.NewServeMux()
	mux.Handle(hutchv1connect.NewFileServiceHandler(e.svc))
	mux.Handle("/v1/files", e.svc.ContentHandler())
	e.srv = httptest.NewServer(mux)
	e.rpc = hutchv1connect.NewFileServiceClient(e.srv.Client(), e.srv.URL)

	before := snapshot(t, base, e.root)
	t.Cleanup(func() {
		e.srv.Close()
		after := snapshot(t, base, e.root)
		for k, v := range after {
			if before[k] != v {
				t.Errorf("outside root: %s changed or appeared (%q)", k, v)
			}
		}
		for k := range before {
			if _, ok := after[k]; !ok {
				t.Errorf("outside root: %s disappeared", k)
			}
		}
		e.assertNoTempFiles()
	})
	return e
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// snapshot describes every file under base except skip.
func snapshot(t *testing.T, base, skip string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[p] = "link:" + target
		case d.IsDir():
			out[p] = "dir"
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			out[p] = "file:" + hex.EncodeToString(sum[:])
		}
		return nil
	})
	mustDo(t, err)
	return out
}

func (e *env) assertNoTempFiles() {
	e.t.Helper()
	filepath.WalkDir(e.root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tempPrefix) {
			e.t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

// host is the host path of sandbox path p.
func (e *env) host(p string) string { return filepath.Join(e.root, p) }

func (e *env) writeHost(p, content string) {
	e.t.Helper()
	mustDo(e.t, os.MkdirAll(filepath.Dir(e.host(p)), 0o755))
	mustDo(e.t, os.WriteFile(e.host(p), []byte(content), 0o644))
}

func (e *env) readHost(p string) string {
	e.t.Helper()
	b, err := os.ReadFile(e.host(p))
	mustDo(e.t, err)
	return string(b)
}

func (e *env) symlink(target, p string) {
	e.t.Helper()
	mustDo(e.t, os.Symlink(target, e.host(p)))
}

func (e *env) contentURL(p string, kv ...string) string {
	q := url.Values{"path": {p}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return e.srv.URL + "/v1/files?" + q.Encode()
}

// do sends a content request and returns the response with its body read.
func (e *env) do(method, u string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, u, body)
	mustDo(e.t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	mustDo(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	mustDo(e.t, err)
	return resp, b
}

func (e *env) put(p, content string, kv ...string) (*http.Response, []byte) {
	e.t.Helper()
	return e.do(http.MethodPut, e.contentURL(p, kv...), strings.NewReader(content))
}

func (e *env) get(p string) (*http.Response, []byte) {
	e.t.Helper()
	return e.do(http.MethodGet, e.contentURL(p), nil)
}

// wantHTTPError checks an error response: status, Connect-shaped JSON body,
// the category errdefs.FromHTTP derives, and no host path in the message.
func (e *env) wantHTTPError(resp *http.Response, body []byte, status int, code connect.Code) {
	e.t.Helper()
	if resp.StatusCode != status {
		e.t.Fatalf("status = %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Errorf("error Content-Type = %q", ct)
	}
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	err := errdefs.FromHTTP(resp)
	if got := errdefs.Code(err); got != code {
		e.t.Errorf("code = %v, want %v (body %s)", got, code, body)
	}
	e.noHostPath(string(body))
}

// wantCode checks an RPC error's code and that it names no host path.
func (e *env) wantCode(err error, code connect.Code) {
	e.t.Helper()
	if err == nil {
		e.t.Fatalf("err = nil, want %v", code)
	}
	if got := connect.CodeOf(err); got != code {
		e.t.Fatalf("code = %v, want %v: %v", got, code, err)
	}
	e.noHostPath(err.Error())
	if !errors.Is(errdefs.FromConnect(err), categoryOf(code)) {
		e.t.Errorf("FromConnect(%v) lost its category", err)
	}
}

func (e *env) noHostPath(msg string) {
	e.t.Helper()
	if strings.Contains(msg, e.root) {
		e.t.Errorf("message names a host path: %s", msg)
	}
}

func categoryOf(code connect.Code) error {
	switch code {
	case connect.CodeInvalidArgument:
		return errdefs.ErrInvalidArgument
	case connect.CodeNotFound:
		return errdefs.ErrNotFound
	case connect.CodeAlreadyExists:
		return errdefs.ErrAlreadyExists
	case connect.CodeFailedPrecondition:
		return errdefs.ErrFailedPrecondition
	case connect.CodePermissionDenied:
		return errdefs.ErrPermissionDenied
	case connect.CodeResourceExhausted:
		return errdefs.ErrResourceExhausted
	}
	return errdefs.ErrInternal
}
