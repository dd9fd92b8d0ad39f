package mcp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hutch-sh/hutch/client"
)

// Bounds of exec.
const (
	execOutputLimit    = 30_000 // bytes kept of each of stdout and stderr
	execDefaultTimeout = 60 * time.Second
	execMaxTimeout     = time.Hour
)

type execArgs struct {
	Sandbox        string            `json:"sandbox" jsonschema:"Name of the sandbox; created on first use."`
	Command        string            `json:"command" jsonschema:"Shell command line, run with sh -c (pipes, &&, redirections and globs work), e.g. 'pip install requests && python3 main.py'."`
	Cwd            string            `json:"cwd,omitempty" jsonschema:"Working directory; /workspace when empty."`
	Env            map[string]string `json:"env,omitempty" jsonschema:"Extra environment variables."`
	Stdin          string            `json:"stdin,omitempty" jsonschema:"Text fed to the command's standard input (none when empty)."`
	TimeoutSeconds int               `json:"timeout_seconds,omitempty" jsonschema:"Kill the command's whole process tree after this many seconds (default 60, at most 3600). Use start_process for servers and anything that runs longer."`
}

// ExecResult is exec's structured output.
type ExecResult struct {
	ExitCode  int    `json:"exit_code" jsonschema:"The command's exit status (128+N when killed by signal N, -1 when it timed out)."`
	Stdout    string `json:"stdout"`
	Stderr    string `json:"stderr"`
	TimedOut  bool   `json:"timed_out,omitempty"`
	Truncated bool   `json:"truncated,omitempty" jsonschema:"Some output was left out (see the note in it)."`
}

func (t *tools) addExec(s *sdk.Server) {
	sdk.AddTool(s, &sdk.Tool{
		Name: "exec",
		Description: "Run a shell command in a sandbox (created on first use) and wait for it to finish. Returns its exit code, stdout and stderr. " +
			"A non-zero exit code is reported, not treated as a failure of the tool. Output past 30000 bytes per stream is cut in the middle, with a note. " +
			"Each call is a fresh shell: cd and exports do not carry over, so chain them (cd app && npm test) or pass cwd and env. " +
			"For servers or anything that outlives the call, use start_process.",
		Annotations: &sdk.ToolAnnotations{Title: "Run command", OpenWorldHint: ptr(true)},
	}, t.exec)
}

func (t *tools) exec(ctx context.Context, _ *sdk.CallToolRequest, in execArgs) (*sdk.CallToolResult, *ExecResult, error) {
	if strings.TrimSpace(in.Command) == "" {
		return nil, nil, errors.New("command is empty: pass a shell command line, e.g. 'ls -la'")
	}
	timeout := clampTimeout(in.TimeoutSeconds, execDefaultTimeout, execMaxTimeout)
	stdout, stderr := newCapture(execOutputLimit), newCapture(execOutputLimit)
	cmd := client.Command{Shell: in.Command, Cwd: in.Cwd, Env: in.Env, Timeout: timeout, Stdout: stdout, Stderr: stderr}
	if in.Stdin != "" {
		cmd.Stdin = strings.NewReader(in.Stdin)
	}
	st, err := t.c.Exec(ctx, in.Sandbox, cmd)
	res := &ExecResult{Stdout: stdout.String(), Stderr: stderr.String(), Truncated: stdout.truncated() || stderr.truncated()}
	switch {
	case errors.Is(err, client.ErrDeadlineExceeded):
		res.ExitCode, res.TimedOut = -1, true
		r := execText(res, fmt.Sprintf("timed out after %s; its process tree was killed. Raise timeout_seconds, or run it with start_process and poll process_logs.", timeout))
		r.IsError = true
		return r, res, nil
	case errors.Is(err, client.ErrNotFound) && in.Cwd != "":
		return nil, nil, toolError(err, "does the directory "+in.Cwd+" exist? list_files shows what is there")
	case err != nil:
		return nil, nil, toolError(err, "")
	}
	res.ExitCode = st.Code
	status := fmt.Sprintf("exit code %d", st.Code)
	if st.Signal != "" {
		status += " (killed by " + st.Signal + ")"
	}
	return execText(res, status), res, nil
}

// execText renders an exec for the model: the status first, then each
// stream that printed something.
func execText(r *ExecResult, status string) *sdk.CallToolResult {
	var b strings.Builder
	b.WriteString(status + "\n")
	writeStreams(&b, r.Stdout, r.Stderr)
	if r.Stdout == "" && r.Stderr == "" {
		b.WriteString("(no output)")
	}
	return text("%s", strings.TrimSuffix(b.String(), "\n"))
}

// clampTimeout turns a timeout_seconds argument into a duration: def when
// unset, at most max.
func clampTimeout(seconds int, def, max time.Duration) time.Duration {
	if seconds <= 0 {
		return def
	}
	return min(time.Duration(seconds)*time.Second, max)
}
