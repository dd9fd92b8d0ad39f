package mcp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/client"
)

const (
	waitDefaultTimeout = 60 * time.Second
	waitMaxTimeout     = 10 * time.Minute
	logsLimit          = 20_000
)

type startArgs struct {
	Sandbox        string            `json:"sandbox" jsonschema:"Name of the sandbox; created on first use."`
	Command        string            `json:"command" jsonschema:"Shell command line to run in the background, e.g. 'python3 -m http.server 8000' or 'npm run dev'."`
	ID             string            `json:"id,omitempty" jsonschema:"Name for the process ([A-Za-z0-9_.-], e.g. web), used by process_logs and kill_process; generated when empty."`
	Cwd            string            `json:"cwd,omitempty" jsonschema:"Working directory; /workspace when empty."`
	Env            map[string]string `json:"env,omitempty" jsonschema:"Extra environment variables."`
	WaitForPort    int               `json:"wait_for_port,omitempty" jsonschema:"Return once the sandbox accepts TCP connections on this port (e.g. the server is up)."`
	WaitForHTTP    bool              `json:"wait_for_http,omitempty" jsonschema:"With wait_for_port: wait for an HTTP answer (status 200-399 on /) rather than a TCP connect."`
	WaitForLog     string            `json:"wait_for_log,omitempty" jsonschema:"Return once a line of the process's output matches this regular expression (RE2), e.g. 'listening on'."`
	TimeoutSeconds int               `json:"timeout_seconds,omitempty" jsonschema:"How long to wait for wait_for_port or wait_for_log (default 60, at most 600). The process keeps running either way."`
}

type procArgs struct {
	Sandbox string `json:"sandbox" jsonschema:"Name of the sandbox."`
	ID      string `json:"id" jsonschema:"The process's id, as start_process returned it."`
}

func (t *tools) addProcess(s *sdk.Server) {
	sdk.AddTool(s, &sdk.Tool{
		Name: "start_process",
		Description: "Start a long-running command (a web server, a watcher, a build) in the background of a sandbox (created on first use) and return its id at once, " +
			"or, with wait_for_port or wait_for_log, once it is ready. If it exits or does not get ready in time, the error says so and shows its last output. " +
			"Then expose_port gives a server a URL; process_logs shows output; kill_process stops it.",
		Annotations: &sdk.ToolAnnotations{Title: "Start background process", OpenWorldHint: ptr(true)},
	}, t.start)
	sdk.AddTool(s, &sdk.Tool{
		Name:        "process_logs",
		Description: "Show a background process's status and its output so far (the last 20000 bytes of each of stdout and stderr).",
		Annotations: &sdk.ToolAnnotations{Title: "Process logs", ReadOnlyHint: true},
	}, t.logs)
	sdk.AddTool(s, &sdk.Tool{
		Name:        "kill_process",
		Description: "Stop a background process and everything it started (SIGTERM, then SIGKILL after 5 seconds).",
		Annotations: &sdk.ToolAnnotations{Title: "Kill process", IdempotentHint: true},
	}, t.kill)
}

func (t *tools) start(ctx context.Context, _ *sdk.CallToolRequest, in startArgs) (*sdk.CallToolResult, any, error) {
	if strings.TrimSpace(in.Command) == "" {
		return nil, nil, errors.New("command is empty: pass a shell command line, e.g. 'npm run dev'")
	}
	p, err := t.c.StartProcess(ctx, in.Sandbox, nil, client.ProcessOptions{ID: in.ID, Shell: in.Command, Cwd: in.Cwd, Env: in.Env})
	if err != nil {
		if errors.Is(err, client.ErrAlreadyExists) {
			return nil, nil, toolError(err, "a process with this id is running: kill_process it first, or pick another id")
		}
		return nil, nil, toolError(err, "")
	}
	started := fmt.Sprintf("process %s started in sandbox %s (pid %d)", p.Id, in.Sandbox, p.Pid)
	timeout := clampTimeout(in.TimeoutSeconds, waitDefaultTimeout, waitMaxTimeout)
	var ready string
	switch {
	case in.WaitForPort > 0:
		err = t.c.WaitForPort(ctx, in.Sandbox, p.Id, in.WaitForPort, client.PortOptions{HTTP: in.WaitForHTTP}, timeout)
		ready = fmt.Sprintf("; port %d is ready (expose_port gives it a URL)", in.WaitForPort)
	case in.WaitForLog != "":
		var line string
		line, err = t.c.WaitForLog(ctx, in.Sandbox, p.Id, in.WaitForLog, timeout)
		ready = fmt.Sprintf("; its output matched: %s", strings.TrimSpace(line))
	}
	if err != nil {
		// Why it is not ready is usually in its output: show it.
		status, out := t.recent(ctx, in.Sandbox, p.Id)
		if status == stillRunning {
			status += " (process_logs shows its output, kill_process stops it; raise timeout_seconds if it is slow to start)"
		}
		return nil, nil, fmt.Errorf("%s, but it is not ready: %w.\n%s. Its output:\n%s", started, err, capitalize(status), out)
	}
	return text("%s%s", started, ready), nil, nil
}

const stillRunning = "it is still running"

func capitalize(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// recent reports a process's status and its last output, for the model to
// see why something went wrong; best effort.
func (t *tools) recent(ctx context.Context, sandbox, id string) (string, string) {
	stdout, stderr := newCapture(logsLimit), newCapture(logsLimit)
	exit, _, err := t.c.ProcessLogs(ctx, sandbox, id, client.LogOptions{Stdout: stdout, Stderr: stderr})
	if err != nil {
		return "its output could not be read: " + err.Error(), ""
	}
	status := stillRunning
	if exit != nil {
		status = processStatus(exit)
	}
	var b strings.Builder
	writeStreams(&b, stdout.String(), stderr.String())
	if b.Len() == 0 {
		b.WriteString("(no output yet)")
	}
	return status, strings.TrimRight(b.String(), "\n")
}

func processStatus(p *hutchv1.ProcessInfo) string {
	if p.Status == hutchv1.ProcessStatus_PROCESS_STATUS_RUNNING {
		return "it is running"
	}
	s := fmt.Sprintf("it exited with code %d", p.ExitCode)
	if p.Signal != "" {
		s += " (killed by " + p.Signal + ")"
	}
	return s
}

func (t *tools) logs(ctx context.Context, _ *sdk.CallToolRequest, in procArgs) (*sdk.CallToolResult, any, error) {
	p, err := t.c.Process(ctx, in.Sandbox, in.ID)
	if err != nil {
		return nil, nil, toolError(err, notFoundHint(err, "exec 'ps aux' shows what runs in the sandbox"))
	}
	status, out := t.recent(ctx, in.Sandbox, in.ID)
	if p.Status == hutchv1.ProcessStatus_PROCESS_STATUS_RUNNING {
		status = "it is running"
	}
	return text("process %s (pid %d): %s\n%s", p.Id, p.Pid, status, out), nil, nil
}

func (t *tools) kill(ctx context.Context, _ *sdk.CallToolRequest, in procArgs) (*sdk.CallToolResult, any, error) {
	p, err := t.c.KillProcess(ctx, in.Sandbox, in.ID, "", 0)
	if err != nil {
		return nil, nil, toolError(err, notFoundHint(err, "exec 'ps aux' shows what runs in the sandbox"))
	}
	return text("process %s stopped: %s", p.Id, strings.TrimPrefix(processStatus(p), "it ")), nil, nil
}
