package files

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

func TestWriteErrorRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
		cat    error
	}{
		{"invalid", fmt.Errorf("path is empty: %w", errdefs.ErrInvalidArgument), 400, "invalid_argument", errdefs.ErrInvalidArgument},
		{"not found", fmt.Errorf("read %q: %w", "/x", errnoError(unix.ENOENT)), 404, "not_found", errdefs.ErrNotFound},
		{"exists", errnoError(unix.EEXIST), 409, "already_exists", errdefs.ErrAlreadyExists},
		{"precondition", errnoError(unix.ENOTEMPTY), 412, "failed_precondition", errdefs.ErrFailedPrecondition},
		{"permission", errnoError(unix.EROFS), 403, "permission_denied", errdefs.ErrPermissionDenied},
		{"disk full", fmt.Errorf("write: %w", errnoError(unix.ENOSPC)), 507, "resource_exhausted", errdefs.ErrResourceExhausted},
		{"quota", errnoError(unix.EDQUOT), 507, "resource_exhausted", errdefs.ErrResourceExhausted},
		{"too many", fmt.Errorf("list: %w", errdefs.ErrResourceExhausted), 429, "resource_exhausted", errdefs.ErrResourceExhausted},
		{"internal", errors.New("boom"), 500, "internal", errdefs.ErrInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			errdefs.WriteHTTP(rec, tt.err)
			resp := rec.Result()
			body, _ := io.ReadAll(resp.Body)
			want := fmt.Sprintf(`{"code":%q,"message":%q}`, tt.code, tt.err.Error())
			if resp.StatusCode != tt.status || string(body) != want {
				t.Errorf("got %d %s, want %d %s", resp.StatusCode, body, tt.status, want)
			}
			resp.Body = io.NopCloser(strings.NewReader(string(body)))
			err := errdefs.FromHTTP(resp)
			if !errors.Is(err, tt.cat) || err.Error() != tt.err.Error() {
				t.Errorf("FromHTTP = %v, want %v with %v", err, tt.err, tt.cat)
			}
		})
	}
}

func TestFromHTTPForeign(t *testing.T) {
	tests := []struct {
		status int
		body   string
		cat    error
	}{
		{404, "404 page not found", errdefs.ErrNotFound},
		{416, "invalid range", errdefs.ErrInvalidArgument},
		{502, "<html>bad gateway</html>", errdefs.ErrUnavailable},
		{500, `{"code":"bogus","message":"x"}`, errdefs.ErrInternal},
		{200, "", nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.status, Body: io.NopCloser(strings.NewReader(tt.body))}
			err := errdefs.FromHTTP(resp)
			if tt.cat == nil {
				if err != nil {
					t.Errorf("err = %v", err)
				}
				return
			}
			if !errors.Is(err, tt.cat) {
				t.Errorf("err = %v, want %v", err, tt.cat)
			}
		})
	}
}
