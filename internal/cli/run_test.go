package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/cli"
)

// fakeDaemon knows no sandbox, and runs commands by their first word:
// "exit N" exits N, "killed" dies by SIGKILL, "fail CODE" fails the call
// with that wire code (as the agent does for a command it cannot run).
type fakeDaemon struct {
	hutchv1connect.UnimplementedSandboxServiceHandler
	hutchv1connect.UnimplementedProcessServiceHandler
}

var (
	_ hutchv1connect.SandboxServiceHandler = fakeDaemon{}
	_ hutchv1connect.ProcessServiceHandler = fakeDaemon{}
)

func (fakeDaemon) Get(_ context.Context, req *connect.Request[hutchv1.GetRequest]) (*connect.Response[hutchv1.GetResponse], error) {
	return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("sandbox %q not found", req.Msg.Name))
}

func (fakeDaemon) Exec(_ context.Context, req *connect.Request[hutchv1.ExecRequest], s *connect.ServerStream[hutchv1.ExecEvent]) error {
	argv := req.Msg.Argv
	if argv[0] == "fail" {
		var code connect.Code
		if err := code.UnmarshalText([]byte(argv[1])); err != nil {
			return err
		}
		return connect.NewError(code, fmt.Errorf("%s %q", argv[1], strings.Join(argv[2:], " ")))
	}
	exit := &hutchv1.ExecExit{}
	switch argv[0] {
	case "exit":
		_, _ = fmt.Sscan(argv[1], &exit.Code)
	case "killed":
		exit.Code, exit.Signal = 137, "SIGKILL"
	}
	if err := s.Send(&hutchv1.ExecEvent{Event: &hutchv1.ExecEvent_Started{Started: &hutchv1.ExecStarted{Id: "x1"}}}); err != nil {
		return err
	}
	return s.Send(&hutchv1.ExecEvent{Event: &hutchv1.ExecEvent_Exit{Exit: exit}})
}

func (fakeDaemon) WriteStdin(context.Context, *connect.Request[hutchv1.WriteStdinRequest]) (*connect.Response[hutchv1.WriteStdinResponse], error) {
	return connect.NewResponse(&hutchv1.WriteStdinResponse{}), nil
}

// closedURL is a loopback address nothing listens on.
func closedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	return url
}

// The exit code tells usage errors (2) from hutch's own failures (1), and
// passes exec's command status through.
func TestExitCodes(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle(hutchv1connect.NewSandboxServiceHandler(fakeDaemon{}))
	mux.Handle(hutchv1connect.NewProcessServiceHandler(fakeDaemon{}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	down := closedURL(t)

	for _, tc := range []struct {
		name   string
		url    string
		args   []string
		code   int
		stderr string // a part of it; "" for none at all
	}{
		{"unknown command", srv.URL, []string{"nosuch"}, 2, `unknown command "nosuch" for "hutch"`},
		{"unknown command, suggested", srv.URL, []string{"exce"}, 2, `did you mean exec?`},
		{"unknown subcommand", srv.URL, []string{"image", "nosuch"}, 2, `unknown command "nosuch" for "hutch image"`},
		{"unknown flag", srv.URL, []string{"ls", "--bogus"}, 2, "unknown flag: --bogus"},
		{"bad flag value", srv.URL, []string{"exec", "box", "--timeout", "soon", "--", "true"}, 2, "invalid argument"},
		{"too few arguments", srv.URL, []string{"exec", "box"}, 2, "requires at least 2 arg(s)"},
		{"too many arguments", srv.URL, []string{"status", "a", "b"}, 2, "accepts 1 arg(s)"},
		{"two names before --", srv.URL, []string{"exec", "a", "b", "--", "true"}, 2, "exec takes one sandbox name"},
		{"conflicting flags", srv.URL, []string{"backup", "--list", "--rm"}, 2, "--list and --rm cannot be used together"},
		{"help", srv.URL, []string{"--help"}, 0, ""},
		{"no arguments", srv.URL, []string{}, 0, ""},

		{"daemon down", down, []string{"ls"}, 1, "no hutch daemon answers at " + down},
		{"daemon down, exec", down, []string{"exec", "box", "--", "true"}, 1, "no hutch daemon answers at " + down},
		{"not found", srv.URL, []string{"status", "nosuch"}, 1, `sandbox "nosuch" not found`},

		{"exec passes the exit code", srv.URL, []string{"exec", "box", "--", "exit", "7"}, 7, ""},
		{"exec success", srv.URL, []string{"exec", "box", "--", "exit", "0"}, 0, ""},
		{"exec killed by a signal", srv.URL, []string{"exec", "box", "--", "killed"}, 137, "command killed by SIGKILL"},
		{"exec of a missing command", srv.URL, []string{"exec", "box", "--", "fail", "not_found", "no-such-tool"}, 127, "no-such-tool"},
		{"exec of a non-executable", srv.URL, []string{"exec", "box", "--", "fail", "permission_denied", "/etc/hostname"}, 126, "/etc/hostname"},
		{"exec timeout", srv.URL, []string{"exec", "box", "--", "fail", "deadline_exceeded", "timed out"}, 124, "timed out"},
		{"exec in a missing session", srv.URL, []string{"exec", "--session", "s1", "box", "--", "fail", "not_found", "session s1"}, 1, "session s1"},
		{"exec in a session, denied", srv.URL, []string{"exec", "--session", "s1", "box", "--", "fail", "permission_denied", "x"}, 1, "permission_denied"},
		{"exec, daemon failure", srv.URL, []string{"exec", "box", "--", "fail", "unavailable", "agent gone"}, 1, "agent gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HUTCH_URL", tc.url)
			t.Setenv("HUTCH_TOKEN", "")
			var stdout, stderr bytes.Buffer
			code := cli.Run(tc.args, strings.NewReader(""), &stdout, &stderr)
			if code != tc.code {
				t.Errorf("hutch %s: exit %d, want %d; stderr %q", strings.Join(tc.args, " "), code, tc.code, stderr.String())
			}
			if tc.stderr == "" && stderr.Len() > 0 || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("hutch %s: stderr %q, want %q in it", strings.Join(tc.args, " "), stderr.String(), tc.stderr)
			}
		})
	}
}
