package proc

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

var validEnvName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// env is the base environment of a new command: the sandbox's, as changed
// by SetEnv, plus HOSTNAME.
func (s *Service) env() []string {
	s.envMu.Lock()
	base := slices.Clone(s.baseEnv)
	s.envMu.Unlock()
	if h, err := os.Hostname(); err == nil {
		base = append(base, "HOSTNAME="+h)
	}
	return base
}

// SetEnv sets and unsets variables in one session's shell, or, with no
// session, in the base environment of every later exec, process and session.
func (s *Service) SetEnv(ctx context.Context, req *connect.Request[hutchv1.SetEnvRequest]) (*connect.Response[hutchv1.SetEnvResponse], error) {
	if err := s.setEnv(ctx, req.Msg); err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(&hutchv1.SetEnvResponse{}), nil
}

func (s *Service) setEnv(ctx context.Context, r *hutchv1.SetEnvRequest) error {
	if err := checkEnvChange(r.Set, r.Unset); err != nil {
		return err
	}
	if r.Session == "" {
		s.envMu.Lock()
		s.baseEnv = applyEnv(s.baseEnv, r.Set, r.Unset)
		s.envMu.Unlock()
		return nil
	}
	return s.sessionSetEnv(ctx, r.Session, r.Set, r.Unset)
}

func checkEnvChange(set map[string]string, unset []string) error {
	for k, v := range set {
		if !validEnvName.MatchString(k) {
			return fmt.Errorf("set env: %q is not a valid variable name: %w", k, errdefs.ErrInvalidArgument)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("set env: value of %s contains a NUL byte: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	for _, k := range unset {
		if !validEnvName.MatchString(k) {
			return fmt.Errorf("unset env: %q is not a valid variable name: %w", k, errdefs.ErrInvalidArgument)
		}
		if _, ok := set[k]; ok {
			return fmt.Errorf("set env: %s is both set and unset: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// applyEnv returns base (KEY=VALUE) with set overlaid and unset removed.
func applyEnv(base []string, set map[string]string, unset []string) []string {
	env := mergeEnv(base, set)
	return slices.DeleteFunc(env, func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains(unset, k)
	})
}

// envScript is the shell command that makes the same change as applyEnv.
func envScript(set map[string]string, unset []string, builtin string) string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var cmds []string
	for _, k := range keys {
		cmds = append(cmds, builtin+"export "+k+"="+shQuote(set[k]))
	}
	if len(unset) > 0 {
		cmds = append(cmds, builtin+"unset "+strings.Join(unset, " "))
	}
	return strings.Join(cmds, " && ")
}

// shQuote quotes s as one word for any POSIX shell.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
