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

type sandboxArgs struct {
	Sandbox string `json:"sandbox" jsonschema:"Name of the sandbox: lower-case letters, digits and dashes, e.g. agent-1."`
}

type createArgs struct {
	Sandbox      string `json:"sandbox" jsonschema:"Name of the sandbox: lower-case letters, digits and dashes, e.g. agent-1."`
	Image        string `json:"image,omitempty" jsonschema:"Image to create it from; leave empty for the default image (Debian with Python, Node.js, git and common tools)."`
	InstanceType string `json:"instance_type,omitempty" jsonschema:"Size: lite, basic (the default) or standard."`
}

type forkArgs struct {
	Sandbox  string   `json:"sandbox,omitempty" jsonschema:"Sandbox to copy; its disk is snapshotted now. Leave empty when snapshot is set."`
	NewNames []string `json:"new_names" jsonschema:"Names of the new sandboxes, one per copy."`
	Snapshot string   `json:"snapshot,omitempty" jsonschema:"Snapshot id to start the copies from (from snapshot_sandbox) instead of the sandbox's current disk."`
}

type snapshotArgs struct {
	Sandbox    string `json:"sandbox" jsonschema:"Name of the sandbox to snapshot."`
	TTLSeconds int    `json:"ttl_seconds,omitempty" jsonschema:"Delete the snapshot after this many seconds once nothing uses it; 0 keeps it until deleted."`
}

type portArgs struct {
	Sandbox string `json:"sandbox" jsonschema:"Name of the sandbox."`
	Port    int    `json:"port" jsonschema:"TCP port a server in the sandbox listens on, e.g. 3000."`
}

func (t *tools) addSandbox(s *sdk.Server) {
	sdk.AddTool(s, &sdk.Tool{
		Name:        "create_sandbox",
		Description: "Create a sandbox (a Linux computer, ready in about a second) or get it if it already exists. Optional: exec, write_file, run_code and start_process create the sandbox on first use too; call this to choose an image or size, or to check a name is free.",
		Annotations: &sdk.ToolAnnotations{Title: "Create sandbox", IdempotentHint: true, DestructiveHint: ptr(false)},
	}, t.create)
	sdk.AddTool(s, &sdk.Tool{
		Name:        "get_sandbox",
		Description: "Report a sandbox's state (running, sleeping, failed), image, address and size. Fails if it does not exist; leave sandbox empty to list every sandbox.",
		Annotations: &sdk.ToolAnnotations{Title: "Get sandbox", ReadOnlyHint: true},
	}, t.get)
	sdk.AddTool(s, &sdk.Tool{
		Name:        "sleep_sandbox",
		Description: "Put a sandbox to sleep now: its processes stop, its files and exposed ports stay, and the next call on it wakes it. Idle sandboxes also sleep on their own.",
		Annotations: &sdk.ToolAnnotations{Title: "Sleep sandbox", IdempotentHint: true, DestructiveHint: ptr(false)},
	}, t.sleep)
	sdk.AddTool(s, &sdk.Tool{
		Name:        "destroy_sandbox",
		Description: "Delete a sandbox for good: its processes, files and preview URLs are gone. Snapshots taken of it stay.",
		Annotations: &sdk.ToolAnnotations{Title: "Destroy sandbox", IdempotentHint: true},
	}, t.destroy)
	sdk.AddTool(s, &sdk.Tool{
		Name:        "snapshot_sandbox",
		Description: "Capture a sandbox's disk as a snapshot (its processes pause for the moment it takes; it keeps running). Returns the snapshot id, for fork_sandbox.",
		Annotations: &sdk.ToolAnnotations{Title: "Snapshot sandbox", DestructiveHint: ptr(false)},
	}, t.snapshot)
	sdk.AddTool(s, &sdk.Tool{
		Name:        "fork_sandbox",
		Description: "Create new sandboxes with a copy of a sandbox's disk (taken now) or of a snapshot, e.g. to try several approaches in parallel. Files are copied; running processes are not.",
		Annotations: &sdk.ToolAnnotations{Title: "Fork sandbox", DestructiveHint: ptr(false)},
	}, t.fork)
	sdk.AddTool(s, &sdk.Tool{
		Name:        "expose_port",
		Description: "Give a port of a sandbox a preview URL that reaches the server listening there (start it first with start_process). Returns the URL; exposing the same port again returns the same URL.",
		Annotations: &sdk.ToolAnnotations{Title: "Expose port", IdempotentHint: true, DestructiveHint: ptr(false), OpenWorldHint: ptr(true)},
	}, t.expose)
}

func ptr[T any](v T) *T { return &v }

// text is a result of one text block.
func text(format string, a ...any) *sdk.CallToolResult {
	return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: fmt.Sprintf(format, a...)}}}
}

func (t *tools) create(ctx context.Context, _ *sdk.CallToolRequest, in createArgs) (*sdk.CallToolResult, any, error) {
	sb, err := t.c.Create(ctx, in.Sandbox, client.CreateOptions{Image: in.Image, InstanceType: in.InstanceType})
	if err != nil {
		return nil, nil, toolError(err, "")
	}
	if in.Image != "" && sb.Image != in.Image {
		return nil, nil, fmt.Errorf("sandbox %q already exists with image %q, not %q: destroy_sandbox it first, or pick another name", in.Sandbox, sb.Image, in.Image)
	}
	return text("%s", describe(sb)), nil, nil
}

func (t *tools) get(ctx context.Context, _ *sdk.CallToolRequest, in struct {
	Sandbox string `json:"sandbox,omitempty" jsonschema:"Name of the sandbox; empty lists every sandbox."`
}) (*sdk.CallToolResult, any, error) {
	if in.Sandbox == "" {
		sbs, err := t.c.List(ctx)
		if err != nil {
			return nil, nil, toolError(err, "")
		}
		if len(sbs) == 0 {
			return text("no sandboxes yet; create_sandbox (or exec, write_file, run_code) creates one"), nil, nil
		}
		lines := make([]string, len(sbs))
		for i, sb := range sbs {
			lines[i] = describe(sb)
		}
		return text("%s", strings.Join(lines, "\n")), nil, nil
	}
	sb, err := t.c.Get(ctx, in.Sandbox)
	if errors.Is(err, client.ErrNotFound) {
		return nil, nil, toolError(err, "create_sandbox creates it, or call get_sandbox with an empty sandbox to list the ones that exist")
	}
	if err != nil {
		return nil, nil, toolError(err, "")
	}
	return text("%s", describe(sb)), nil, nil
}

// describe is a sandbox in one line.
func describe(sb *hutchv1.Sandbox) string {
	state := strings.ToLower(strings.TrimPrefix(sb.State.String(), "STATE_"))
	image := sb.Image
	if image == "" {
		image = "default"
	}
	s := fmt.Sprintf("sandbox %s: %s, image %s", sb.Name, state, image)
	if sb.Address != "" {
		s += ", address " + sb.Address
	}
	if l := sb.Limits; l != nil && l.CpuMillis > 0 {
		s += fmt.Sprintf(", %.1f CPU, %d MiB memory", float64(l.CpuMillis)/1000, l.MemoryBytes>>20)
	}
	if sb.Reason != "" {
		s += ", reason: " + sb.Reason
	}
	return s
}

func (t *tools) sleep(ctx context.Context, _ *sdk.CallToolRequest, in sandboxArgs) (*sdk.CallToolResult, any, error) {
	if _, err := t.c.Sleep(ctx, in.Sandbox); err != nil {
		return nil, nil, toolError(err, "")
	}
	return text("sandbox %s is asleep; its files and exposed ports are kept, and the next call on it wakes it", in.Sandbox), nil, nil
}

func (t *tools) destroy(ctx context.Context, _ *sdk.CallToolRequest, in sandboxArgs) (*sdk.CallToolResult, any, error) {
	if err := t.c.Delete(ctx, in.Sandbox); err != nil {
		if errors.Is(err, client.ErrNotFound) {
			return text("sandbox %s does not exist (nothing to destroy)", in.Sandbox), nil, nil
		}
		return nil, nil, toolError(err, "")
	}
	return text("sandbox %s destroyed", in.Sandbox), nil, nil
}

func (t *tools) snapshot(ctx context.Context, _ *sdk.CallToolRequest, in snapshotArgs) (*sdk.CallToolResult, any, error) {
	snap, err := t.c.Snapshot(ctx, in.Sandbox, time.Duration(in.TTLSeconds)*time.Second)
	if err != nil {
		return nil, nil, toolError(err, "")
	}
	return text("snapshot %s of sandbox %s (%d bytes); fork_sandbox with snapshot %q starts new sandboxes from it", snap.Id, in.Sandbox, snap.Size, snap.Id), nil, nil
}

func (t *tools) fork(ctx context.Context, _ *sdk.CallToolRequest, in forkArgs) (*sdk.CallToolResult, any, error) {
	if in.Sandbox == "" && in.Snapshot == "" {
		return nil, nil, errors.New("fork_sandbox needs sandbox (to copy its disk now) or snapshot (an id from snapshot_sandbox)")
	}
	if len(in.NewNames) == 0 {
		return nil, nil, errors.New("fork_sandbox needs at least one name in new_names")
	}
	snap, sbs, err := t.c.Fork(ctx, in.Sandbox, in.NewNames, client.ForkOptions{Snapshot: in.Snapshot})
	if err != nil {
		return nil, nil, toolError(err, "")
	}
	lines := []string{fmt.Sprintf("forked from snapshot %s:", snap)}
	for _, sb := range sbs {
		lines = append(lines, describe(sb))
	}
	return text("%s", strings.Join(lines, "\n")), nil, nil
}

func (t *tools) expose(ctx context.Context, _ *sdk.CallToolRequest, in portArgs) (*sdk.CallToolResult, any, error) {
	url, err := t.c.ExposePort(ctx, in.Sandbox, in.Port)
	if err != nil {
		return nil, nil, toolError(err, "")
	}
	return text("port %d of sandbox %s is at %s", in.Port, in.Sandbox, url), nil, nil
}
