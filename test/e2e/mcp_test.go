package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hutch-sh/hutch/internal/testutil"
)

// mcpTools are the tools an MCP client must find, whatever the transport.
var mcpTools = []string{
	"create_sandbox", "get_sandbox", "exec", "read_file", "write_file", "list_files", "run_code",
	"start_process", "process_logs", "kill_process", "expose_port", "snapshot_sandbox", "fork_sandbox",
	"sleep_sandbox", "destroy_sandbox",
}

const mcpKey = "mcp-test-key"

// mcpStdio connects to `hutch mcp` as a stdio client would.
func mcpStdio(t *testing.T, d *daemon, token string) *sdk.ClientSession {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "hutch"), "mcp")
	cmd.Env = append(os.Environ(), "HUTCH_URL="+d.url, "HUTCH_TOKEN="+token)
	cmd.Stderr = d.out
	return mcpConnect(t, &sdk.CommandTransport{Command: cmd})
}

// mcpHTTP connects to the daemon's /mcp endpoint, sending token.
func mcpHTTP(t *testing.T, d *daemon, token string) *sdk.ClientSession {
	t.Helper()
	hc := &http.Client{Transport: bearerTransport{token}}
	return mcpConnect(t, &sdk.StreamableClientTransport{Endpoint: d.url + "/mcp", HTTPClient: hc})
}

func mcpConnect(t *testing.T, tr sdk.Transport) *sdk.ClientSession {
	t.Helper()
	c := sdk.NewClient(&sdk.Implementation{Name: "hutch-e2e", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, tr, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// call calls a tool and returns its text; isError must be as wanted.
func call(t *testing.T, cs *sdk.ClientSession, wantErr bool, name string, args map[string]any) (string, *sdk.CallToolResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s(%v): protocol error: %v", name, args, err)
	}
	var texts []string
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			texts = append(texts, tc.Text)
		}
	}
	text := strings.Join(texts, "\n")
	if res.IsError != wantErr {
		t.Fatalf("%s(%v): isError %v, want %v: %s", name, args, res.IsError, wantErr, text)
	}
	return text, res
}

func mustContain(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Fatalf("%s: want %q in:\n%s", what, w, got)
		}
	}
}

// The MCP server works the same on stdio (`hutch mcp`) and on the
// daemon's /mcp, with API keys on: tools list, exec, files, code, errors.
func TestMCP(t *testing.T) {
	d := newDaemonArgs(t, mcpKey, "--api-key", mcpKey)
	for _, tc := range []struct {
		name    string
		connect func(*testing.T, *daemon, string) *sdk.ClientSession
	}{
		{"stdio", mcpStdio},
		{"http", mcpHTTP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := tc.connect(t, d, mcpKey)
			testMCPTools(t, cs, "mcp-"+tc.name)
		})
	}
}

func testMCPTools(t *testing.T, cs *sdk.ClientSession, sb string) {
	t.Run("list tools", func(t *testing.T) {
		res, err := cs.ListTools(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]*sdk.Tool{}
		for _, tool := range res.Tools {
			have[tool.Name] = tool
		}
		for _, name := range mcpTools {
			tool := have[name]
			if tool == nil {
				t.Fatalf("no tool %s in %v", name, res.Tools)
			}
			schema, _ := json.Marshal(tool.InputSchema)
			if len(tool.Description) < 40 || !strings.Contains(string(schema), `"type":"object"`) {
				t.Errorf("tool %s: description %q, schema %s", name, tool.Description, schema)
			}
		}
	})
	t.Run("exec", func(t *testing.T) {
		text, res := call(t, cs, false, "exec", map[string]any{"sandbox": sb, "command": "echo hi; echo oops >&2; exit 3"})
		mustContain(t, "exec", text, "exit code 3", "hi", "oops")
		out, _ := json.Marshal(res.StructuredContent)
		mustContain(t, "structured exec", string(out), `"exit_code":3`, `"stdout":"hi\n"`)

		text, _ = call(t, cs, false, "exec", map[string]any{"sandbox": sb, "command": "cat; pwd; echo $GREETING", "stdin": "from stdin\n", "env": map[string]string{"GREETING": "hello"}})
		mustContain(t, "exec with stdin and env", text, "exit code 0", "from stdin", "/workspace", "hello")
	})
	t.Run("exec output is cut with a note", func(t *testing.T) {
		text, res := call(t, cs, false, "exec", map[string]any{"sandbox": sb, "command": "seq 1 200000"})
		mustContain(t, "long output", text, "exit code 0", "\n1\n2\n", "bytes omitted", "199999\n200000")
		if len(text) > 40_000 {
			t.Fatalf("output of %d bytes was not cut", len(text))
		}
		out, _ := json.Marshal(res.StructuredContent)
		mustContain(t, "structured", string(out), `"truncated":true`)
	})
	t.Run("exec timeout", func(t *testing.T) {
		start := time.Now()
		text, _ := call(t, cs, true, "exec", map[string]any{"sandbox": sb, "command": "echo started; sleep 60", "timeout_seconds": 1})
		mustContain(t, "timeout", text, "timed out after 1s", "started", "timeout_seconds")
		if time.Since(start) > 20*time.Second {
			t.Fatalf("a 1 s timeout took %v", time.Since(start))
		}
	})
	t.Run("write and read files", func(t *testing.T) {
		content := "héllo\nwörld\n"
		text, _ := call(t, cs, false, "write_file", map[string]any{"sandbox": sb, "path": "notes/a.txt", "content": content})
		mustContain(t, "write", text, "wrote 14 bytes to /workspace/notes/a.txt")
		text, _ = call(t, cs, false, "read_file", map[string]any{"sandbox": sb, "path": "/workspace/notes/a.txt"})
		if text != content {
			t.Fatalf("read %q, wrote %q", text, content)
		}
		text, _ = call(t, cs, false, "read_file", map[string]any{"sandbox": sb, "path": "notes/a.txt", "offset": 7, "max_bytes": 4})
		mustContain(t, "paged read", text, "wör", "offset 11")
		text, _ = call(t, cs, false, "list_files", map[string]any{"sandbox": sb, "path": "/workspace", "recursive": true})
		mustContain(t, "list", text, "/workspace/notes/a.txt", "dir")
		text, _ = call(t, cs, false, "exec", map[string]any{"sandbox": sb, "command": "cat notes/a.txt"})
		mustContain(t, "exec sees the file", text, "wörld")
	})
	t.Run("run code", func(t *testing.T) {
		text, _ := call(t, cs, false, "run_code", map[string]any{"sandbox": sb, "code": "x = 6\nprint('printed', x*7)\nx*7"})
		mustContain(t, "python", text, "printed 42", "--- result ---\n42")
		text, _ = call(t, cs, false, "run_code", map[string]any{"sandbox": sb, "code": "x + 1"})
		mustContain(t, "state is kept", text, "7")
		text, _ = call(t, cs, false, "run_code", map[string]any{"sandbox": sb, "code": "1/0"})
		mustContain(t, "exception", text, "ZeroDivisionError")
		text, res := call(t, cs, false, "run_code", map[string]any{"sandbox": sb, "code": "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()"})
		var imgs int
		for _, c := range res.Content {
			if ic, ok := c.(*sdk.ImageContent); ok {
				imgs++
				if ic.MIMEType != "image/png" {
					t.Fatalf("image of type %s", ic.MIMEType)
				}
				if _, err := png.Decode(bytes.NewReader(ic.Data)); err != nil {
					t.Fatalf("not a PNG: %v", err)
				}
			}
		}
		if imgs != 1 {
			t.Fatalf("%d images from a chart: %s", imgs, text)
		}
		text, _ = call(t, cs, false, "run_code", map[string]any{"sandbox": sb, "code": "const n: number = 6 * 7; n", "language": "typescript"})
		mustContain(t, "typescript", text, "42")
	})
	t.Run("errors are tool errors", func(t *testing.T) {
		text, _ := call(t, cs, true, "get_sandbox", map[string]any{"sandbox": sb + "-missing"})
		mustContain(t, "missing sandbox", text, "not found", "create_sandbox")
		text, _ = call(t, cs, true, "read_file", map[string]any{"sandbox": sb, "path": "/no/such/file"})
		mustContain(t, "missing file", text, "/no/such/file", "list_files")
		text, _ = call(t, cs, true, "exec", map[string]any{"sandbox": sb})
		mustContain(t, "missing argument", text, "command")
		text, _ = call(t, cs, true, "run_code", map[string]any{"sandbox": sb, "code": "1", "language": "cobol"})
		mustContain(t, "bad language", text, "python, javascript or typescript")
	})
}

// Background processes, ports, snapshots, forks, sleep and destroy, over
// the daemon's /mcp without keys.
func TestMCPLifecycle(t *testing.T) {
	d := newDaemon(t)
	cs := mcpHTTP(t, d, "")
	const sb = "mcp-life"
	text, _ := call(t, cs, false, "create_sandbox", map[string]any{"sandbox": sb})
	mustContain(t, "create", text, "sandbox mcp-life: running")

	text, _ = call(t, cs, false, "start_process", map[string]any{"sandbox": sb, "id": "web", "command": "echo hello > index.html && exec python3 -m http.server 8000", "wait_for_port": 8000, "wait_for_http": true})
	mustContain(t, "start", text, "process web started", "port 8000 is ready")
	text, _ = call(t, cs, false, "expose_port", map[string]any{"sandbox": sb, "port": 8000})
	u := regexp.MustCompile(`http://\S+/`).FindString(text)
	if u == "" {
		t.Fatalf("no URL in %q", text)
	}
	if code, body := previewGet(t, d, u, "/index.html"); code != 200 || body != "hello\n" {
		t.Fatalf("preview: %d %q", code, body)
	}
	text, _ = call(t, cs, false, "process_logs", map[string]any{"sandbox": sb, "id": "web"})
	mustContain(t, "logs", text, "running", "GET /index.html")
	text, _ = call(t, cs, false, "kill_process", map[string]any{"sandbox": sb, "id": "web"})
	mustContain(t, "kill", text, "process web stopped")

	text, _ = call(t, cs, false, "start_process", map[string]any{"sandbox": sb, "command": "python3 -c 'print(\"ready at 1234\", flush=True); import time; time.sleep(60)'", "wait_for_log": `ready at \d+`})
	mustContain(t, "wait for log", text, "matched: ready at 1234")
	text, _ = call(t, cs, true, "start_process", map[string]any{"sandbox": sb, "command": "echo cannot bind >&2; exit 4", "wait_for_port": 9000, "timeout_seconds": 10})
	mustContain(t, "a server that dies", text, "not ready", "exited with code 4", "cannot bind")

	call(t, cs, false, "write_file", map[string]any{"sandbox": sb, "path": "state.txt", "content": "before"})
	text, _ = call(t, cs, false, "snapshot_sandbox", map[string]any{"sandbox": sb})
	snap := regexp.MustCompile(`snapshot (\S+) of`).FindStringSubmatch(text)
	if snap == nil {
		t.Fatalf("no snapshot id in %q", text)
	}
	call(t, cs, false, "write_file", map[string]any{"sandbox": sb, "path": "state.txt", "content": "after"})
	text, _ = call(t, cs, false, "fork_sandbox", map[string]any{"snapshot": snap[1], "new_names": []string{sb + "-a"}})
	mustContain(t, "fork from snapshot", text, "sandbox mcp-life-a: running")
	text, _ = call(t, cs, false, "read_file", map[string]any{"sandbox": sb + "-a", "path": "state.txt"})
	if text != "before" {
		t.Fatalf("fork of the snapshot reads %q", text)
	}
	text, _ = call(t, cs, false, "fork_sandbox", map[string]any{"sandbox": sb, "new_names": []string{sb + "-b"}})
	mustContain(t, "fork now", text, "sandbox mcp-life-b")
	text, _ = call(t, cs, false, "read_file", map[string]any{"sandbox": sb + "-b", "path": "state.txt"})
	if text != "after" {
		t.Fatalf("fork of the sandbox reads %q", text)
	}

	text, _ = call(t, cs, false, "sleep_sandbox", map[string]any{"sandbox": sb})
	mustContain(t, "sleep", text, "asleep")
	text, _ = call(t, cs, false, "get_sandbox", map[string]any{"sandbox": sb})
	mustContain(t, "get", text, "sleeping")
	text, _ = call(t, cs, false, "get_sandbox", map[string]any{})
	mustContain(t, "list", text, "sandbox mcp-life:", "sandbox mcp-life-a:", "sandbox mcp-life-b:")
	for _, name := range []string{sb + "-a", sb + "-b", sb} {
		text, _ = call(t, cs, false, "destroy_sandbox", map[string]any{"sandbox": name})
		mustContain(t, "destroy", text, "destroyed")
	}
	call(t, cs, true, "get_sandbox", map[string]any{"sandbox": sb})
}

// /mcp is behind the API's key and origin checks.
func TestMCPAdmission(t *testing.T) {
	d := newDaemonArgs(t, mcpKey, "--api-key", mcpKey)
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"no key", nil, http.StatusUnauthorized},
		{"wrong key", map[string]string{"Authorization": "Bearer nope"}, http.StatusUnauthorized},
		{"foreign origin", map[string]string{"Authorization": "Bearer " + mcpKey, "Origin": "http://evil.example"}, http.StatusForbidden},
		{"key", map[string]string{"Authorization": "Bearer " + mcpKey}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, d.url+"/mcp", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	// A stdio server without the key says what to do.
	cs := mcpStdio(t, d, "")
	text, _ := call(t, cs, true, "exec", map[string]any{"sandbox": "mcp-nokey", "command": "true"})
	mustContain(t, "no key", text, "HUTCH_TOKEN")
}

// A client nobody here wrote, the official TypeScript MCP client, lists
// the tools and calls exec, files and run code over both transports
// (test/mcp-node), with API keys on.
func TestMCPNodeClient(t *testing.T) {
	npm := testutil.RequiresTool(t, "npm")
	dir, err := filepath.Abs("../mcp-node")
	if err != nil {
		t.Fatal(err)
	}
	install := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
	bin, err := filepath.Abs(binDir)
	if err != nil {
		t.Fatal(err)
	}
	d := newDaemonArgs(t, mcpKey, "--api-key", mcpKey)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	node := exec.CommandContext(ctx, "node", "--test", "mcp.test.mjs")
	node.Dir = dir
	node.Env = append(os.Environ(), "HUTCH_URL="+d.url, "HUTCH_TOKEN="+mcpKey, "HUTCH_BIN="+bin)
	if out, err := node.CombinedOutput(); err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
}
