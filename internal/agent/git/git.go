// Package git checks out repositories for the agent with the image's git,
// turning git's complaints into error categories a caller can act on.
package git

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agent/exec"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// gitTimeout bounds a checkout that names no timeout.
const gitTimeout = 5 * time.Minute

// Runner runs a command to its end (package exec).
type Runner interface {
	Run(ctx context.Context, r *hutchv1.ExecRequest, stream exec.Sink) error
}

var _ Runner = (*exec.Service)(nil)

// Service implements GitCheckout of the ProcessService.
type Service struct {
	run     Runner
	workdir string // where relative targets go
}

// New returns a Service that runs git with run; relative targets are
// under workdir.
func New(run Runner, workdir string) *Service { return &Service{run: run, workdir: workdir} }

// GitCheckout clones a repository with the image's git, mapping git's
// failures to error categories a caller can act on.
func (s *Service) GitCheckout(ctx context.Context, req *connect.Request[hutchv1.GitCheckoutRequest]) (*connect.Response[hutchv1.GitCheckoutResponse], error) {
	resp, err := s.gitCheckout(ctx, req.Msg)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(resp), nil
}

func (s *Service) gitCheckout(ctx context.Context, r *hutchv1.GitCheckoutRequest) (*hutchv1.GitCheckoutResponse, error) {
	if r.Url == "" || strings.ContainsAny(r.Url, "\x00\n") || strings.HasPrefix(r.Url, "-") {
		return nil, fmt.Errorf("git checkout: url %q is not a repository URL: %w", r.Url, errdefs.ErrInvalidArgument)
	}
	if r.Depth < 0 || strings.HasPrefix(r.Branch, "-") {
		return nil, fmt.Errorf("git checkout: bad depth or branch: %w", errdefs.ErrInvalidArgument)
	}
	target := r.TargetDir
	if target == "" {
		target = strings.TrimSuffix(path.Base(strings.TrimRight(r.Url, "/")), ".git")
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(s.workdir, target)
	}
	if ents, err := os.ReadDir(target); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("git checkout: %s exists and is not empty: %w", target, errdefs.ErrAlreadyExists)
	}
	timeout := time.Duration(r.TimeoutMs) * time.Millisecond
	if timeout <= 0 {
		timeout = gitTimeout
	}
	argv := []string{"git", "clone", "--quiet"}
	if r.Depth > 0 {
		argv = append(argv, "--depth", strconv.Itoa(int(r.Depth)))
	}
	if r.Branch != "" {
		argv = append(argv, "--branch", r.Branch)
	}
	argv = append(argv, "--", r.Url, target)
	// No prompts: a remote that wants credentials fails at once.
	env := map[string]string{"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false", "SSH_ASKPASS": "/bin/false"}
	out, errOut, code, err := s.collect(ctx, &hutchv1.ExecRequest{Argv: argv, Env: env, TimeoutMs: timeout.Milliseconds()})
	if err != nil {
		if errdefs.Code(err) == connect.CodeDeadlineExceeded {
			_ = os.RemoveAll(target)
			return nil, fmt.Errorf("git checkout of %s did not finish within %s: %w", r.Url, timeout, errdefs.ErrDeadlineExceeded)
		}
		return nil, err
	}
	if code != 0 {
		return nil, gitError(r, errOut+out)
	}
	resp := &hutchv1.GitCheckoutResponse{TargetDir: target}
	if head, _, c, err := s.collect(ctx, &hutchv1.ExecRequest{Argv: []string{"git", "-C", target, "rev-parse", "HEAD"}}); err == nil && c == 0 {
		resp.Commit = strings.TrimSpace(head)
	}
	if br, _, c, err := s.collect(ctx, &hutchv1.ExecRequest{Argv: []string{"git", "-C", target, "rev-parse", "--abbrev-ref", "HEAD"}}); err == nil && c == 0 {
		resp.Branch = strings.TrimSpace(br)
	}
	return resp, nil
}

// gitError turns git's complaint into a category. git speaks only text, so
// its messages are what there is to go on.
func gitError(r *hutchv1.GitCheckoutRequest, msg string) error {
	last := strings.TrimSpace(msg)
	if i := strings.LastIndexByte(last, '\n'); i >= 0 {
		last = strings.TrimSpace(last[i+1:])
	}
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(msg, s) {
				return true
			}
		}
		return false
	}
	switch {
	case r.Branch != "" && has("Remote branch", "not found in upstream"):
		return fmt.Errorf("git checkout: branch %q not found in %s: %w", r.Branch, r.Url, errdefs.ErrNotFound)
	case has("could not read Username", "could not read Password", "Authentication failed", "terminal prompts disabled", "Permission denied (publickey"):
		return fmt.Errorf("git checkout: %s wants credentials (%s): %w", r.Url, last, errdefs.ErrUnauthenticated)
	case has("Repository not found", "does not appear to be a git repository", "repository not exported", "not found", "No such file or directory", "does not exist"):
		return fmt.Errorf("git checkout: repository %s not found (%s): %w", r.Url, last, errdefs.ErrNotFound)
	case has("Could not resolve host", "Connection refused", "Connection timed out", "unable to connect", "Network is unreachable"):
		return fmt.Errorf("git checkout: cannot reach %s (%s): %w", r.Url, last, errdefs.ErrUnavailable)
	}
	return fmt.Errorf("git checkout of %s failed: %s: %w", r.Url, last, errdefs.ErrFailedPrecondition)
}

// collect runs a command to completion and returns (the start of) its output.
func (s *Service) collect(ctx context.Context, r *hutchv1.ExecRequest) (stdout, stderr string, code int, err error) {
	var c exec.Capture
	if err := s.run.Run(ctx, r, &c); err != nil {
		return "", "", 0, err
	}
	if c.Exit != nil {
		code = int(c.Exit.Code)
	}
	return c.Stdout.String(), c.Stderr.String(), code, nil
}
