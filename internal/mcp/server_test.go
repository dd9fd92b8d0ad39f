package mcp

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hutch-sh/hutch/client"
)

// connect returns a client session of a server whose daemon is at url.
func connect(t *testing.T, url string) *sdk.ClientSession {
	t.Helper()
	ctx := context.Background()
	st, ct := sdk.NewInMemoryTransports()
	ss, err := NewServer(client.New(url), nil).Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// Every tool tells a model what it does and takes named arguments, the
// sandbox always in "sandbox".
func TestToolsDescribeThemselves(t *testing.T) {
	cs := connect(t, "http://127.0.0.1:1")
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tools) < 15 {
		t.Fatalf("%d tools", len(res.Tools))
	}
	for _, tool := range res.Tools {
		t.Run(tool.Name, func(t *testing.T) {
			var schema struct {
				Type       string                     `json:"type"`
				Properties map[string]json.RawMessage `json:"properties"`
			}
			b, _ := json.Marshal(tool.InputSchema)
			if err := json.Unmarshal(b, &schema); err != nil || schema.Type != "object" {
				t.Fatalf("input schema %s", b)
			}
			if _, ok := schema.Properties["sandbox"]; !ok {
				t.Errorf("no sandbox argument in %s", b)
			}
			for name, p := range schema.Properties {
				if !strings.Contains(string(p), `"description"`) {
					t.Errorf("argument %s has no description", name)
				}
			}
			if len(tool.Description) < 60 || tool.Annotations == nil || tool.Annotations.Title == "" {
				t.Errorf("description %q, annotations %+v", tool.Description, tool.Annotations)
			}
		})
	}
}

// Failures are tool results a model can read and act on, not protocol
// errors.
func TestErrorsAreToolResults(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing answers there now
	cs := connect(t, url)
	for _, tc := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"exec", map[string]any{"sandbox": "a", "command": "true"}, "no hutch daemon answers"},
		{"exec", map[string]any{"sandbox": "a", "command": "  "}, "command is empty"},
		{"exec", map[string]any{"sandbox": "a"}, "command"},
		{"read_file", map[string]any{"sandbox": "a", "path": "x"}, "hutch serve"},
		{"get_sandbox", map[string]any{}, "no hutch daemon answers"},
		{"write_file", map[string]any{"sandbox": "a", "path": "x", "content": "!", "encoding": "base64"}, "not valid base64"},
		{"write_file", map[string]any{"sandbox": "a", "path": "x", "content": "", "mode": "rwx"}, "octal"},
		{"fork_sandbox", map[string]any{"new_names": []string{"b"}}, "needs sandbox"},
		{"start_process", map[string]any{"sandbox": "a", "command": ""}, "command is empty"},
	} {
		t.Run(tc.tool, func(t *testing.T) {
			res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: tc.tool, Arguments: tc.args})
			if err != nil {
				t.Fatalf("protocol error: %v", err)
			}
			b, _ := json.Marshal(res.Content)
			if !res.IsError || !strings.Contains(string(b), tc.want) {
				t.Fatalf("isError %v, want %q in %s", res.IsError, tc.want, b)
			}
		})
	}
}
