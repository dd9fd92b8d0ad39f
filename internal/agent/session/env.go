package session

import (
	"context"
	"sort"
	"strings"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agent/spawn"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// SetEnv sets and unsets variables in one session's shell, or, with no
// session, in the base environment of every later exec, process and session.
func (s *Service) SetEnv(ctx context.Context, req *connect.Request[hutchv1.SetEnvRequest]) (*connect.Response[hutchv1.SetEnvResponse], error) {
	if err := s.setEnv(ctx, req.Msg); err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(&hutchv1.SetEnvResponse{}), nil
}

func (s *Service) setEnv(ctx context.Context, r *hutchv1.SetEnvRequest) error {
	if err := spawn.CheckEnvChange(r.Set, r.Unset); err != nil {
		return err
	}
	if r.Session == "" {
		s.spawner.SetEnv(r.Set, r.Unset)
		return nil
	}
	return s.sessionSetEnv(ctx, r.Session, r.Set, r.Unset)
}

// envScript is the shell command that makes the same change as spawn.ApplyEnv.
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
