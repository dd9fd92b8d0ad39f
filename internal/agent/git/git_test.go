package git

import (
	"errors"
	"testing"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// git speaks only text: each complaint maps to the category a caller acts on.
func TestGitError(t *testing.T) {
	repo := &hutchv1.GitCheckoutRequest{Url: "https://example.invalid/r.git"}
	branch := &hutchv1.GitCheckoutRequest{Url: repo.Url, Branch: "nope"}
	tests := []struct {
		name string
		req  *hutchv1.GitCheckoutRequest
		msg  string
		want error
	}{
		{"missing branch", branch, "warning: Could not find remote branch nope to clone.\nfatal: Remote branch nope not found in upstream origin", errdefs.ErrNotFound},
		{"credentials", repo, "fatal: could not read Username for 'https://example.invalid': terminal prompts disabled", errdefs.ErrUnauthenticated},
		{"ssh key", repo, "git@example.invalid: Permission denied (publickey).", errdefs.ErrUnauthenticated},
		{"no repository", repo, "remote: Repository not found.\nfatal: repository 'https://example.invalid/r.git/' not found", errdefs.ErrNotFound},
		{"local path", repo, "fatal: repository '/nope' does not exist", errdefs.ErrNotFound},
		{"dns", repo, "fatal: unable to access 'https://example.invalid/r.git/': Could not resolve host: example.invalid", errdefs.ErrUnavailable},
		{"refused", repo, "fatal: unable to access '...': Failed to connect to example.invalid port 443: Connection refused", errdefs.ErrUnavailable},
		{"anything else", repo, "fatal: early EOF", errdefs.ErrFailedPrecondition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := gitError(tt.req, tt.msg); !errors.Is(err, tt.want) {
				t.Fatalf("gitError = %v, want %v", err, tt.want)
			}
		})
	}
}
