package mcp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"unicode/utf8"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/client"
)

// Bounds of the file tools.
const (
	readDefaultBytes = 100_000
	readMaxBytes     = 1 << 20
	imageMaxBytes    = 5 << 20 // images go back whole, as image content
	listMaxEntries   = 500
)

type readArgs struct {
	Sandbox  string `json:"sandbox" jsonschema:"Name of the sandbox."`
	Path     string `json:"path" jsonschema:"Path of the file; relative paths are under /workspace."`
	Offset   int64  `json:"offset,omitempty" jsonschema:"Byte offset to start reading at (to page through a big file)."`
	MaxBytes int    `json:"max_bytes,omitempty" jsonschema:"Most bytes to return (default 100000, at most 1048576)."`
}

type writeArgs struct {
	Sandbox  string `json:"sandbox" jsonschema:"Name of the sandbox; created on first use."`
	Path     string `json:"path" jsonschema:"Path of the file; relative paths are under /workspace. Missing parent directories are created."`
	Content  string `json:"content" jsonschema:"The file's new content."`
	Encoding string `json:"encoding,omitempty" jsonschema:"utf-8 (the default) or base64, for binary content."`
	Append   bool   `json:"append,omitempty" jsonschema:"Append to the file instead of replacing it."`
	Mode     string `json:"mode,omitempty" jsonschema:"Permission bits in octal, e.g. 755 for a script; 644 when empty."`
}

type listArgs struct {
	Sandbox   string `json:"sandbox" jsonschema:"Name of the sandbox."`
	Path      string `json:"path,omitempty" jsonschema:"Directory to list; /workspace when empty."`
	Recursive bool   `json:"recursive,omitempty" jsonschema:"List the whole tree below path, not just its entries."`
}

func (t *tools) addFiles(s *sdk.Server) {
	sdk.AddTool(s, &sdk.Tool{
		Name: "read_file",
		Description: "Read a file from a sandbox. Text comes back as text (up to max_bytes, with a note telling the offset to continue from); " +
			"PNG, JPEG, GIF and WebP images come back as images; other binary files are described, not dumped.",
		Annotations: &sdk.ToolAnnotations{Title: "Read file", ReadOnlyHint: true},
	}, t.read)
	sdk.AddTool(s, &sdk.Tool{
		Name:        "write_file",
		Description: "Write a file in a sandbox (created on first use), replacing it atomically, or appending to it. Creates missing parent directories.",
		Annotations: &sdk.ToolAnnotations{Title: "Write file", IdempotentHint: true},
	}, t.write)
	sdk.AddTool(s, &sdk.Tool{
		Name:        "list_files",
		Description: "List a directory of a sandbox: one line per entry with its type, size, permissions and path.",
		Annotations: &sdk.ToolAnnotations{Title: "List files", ReadOnlyHint: true},
	}, t.list)
}

// absPath resolves p the way exec's cwd does: relative to /workspace.
func absPath(p string) string {
	if p == "" {
		return "/workspace"
	}
	if !strings.HasPrefix(p, "/") {
		return path.Join("/workspace", p)
	}
	return p
}

func (t *tools) read(ctx context.Context, _ *sdk.CallToolRequest, in readArgs) (*sdk.CallToolResult, any, error) {
	p := absPath(in.Path)
	rc, size, err := t.c.ReadFile(ctx, in.Sandbox, p)
	if errors.Is(err, client.ErrFailedPrecondition) {
		return nil, nil, toolError(err, "list_files lists a directory")
	}
	if err != nil {
		return nil, nil, toolError(err, notFoundHint(err, "list_files shows what is in the directory"))
	}
	defer rc.Close()
	if in.Offset > 0 {
		if _, err := io.CopyN(io.Discard, rc, in.Offset); err != nil && !errors.Is(err, io.EOF) {
			return nil, nil, toolError(fmt.Errorf("read %s: %w", p, err), "")
		}
	}
	limit := in.MaxBytes
	if limit <= 0 {
		limit = readDefaultBytes
	}
	limit = min(limit, readMaxBytes)
	br := bufio.NewReaderSize(rc, 512)
	head, _ := br.Peek(512)
	if mime := imageType(head); mime != "" && in.Offset == 0 {
		return readImage(br, p, mime)
	}
	// One byte more than shown tells whether there is more.
	buf, err := io.ReadAll(io.LimitReader(br, int64(limit)+1))
	if err != nil {
		return nil, nil, toolError(fmt.Errorf("read %s: %w", p, err), "")
	}
	more := len(buf) > limit
	if more {
		buf = buf[:limit]
	}
	if !isText(buf) {
		return text("%s is a binary file (%d bytes; %s); read it with exec, e.g. 'xxd %s | head' or 'file %s'",
			p, size, http.DetectContentType(buf), p, p), nil, nil
	}
	if more {
		// Do not cut a character in two.
		for k := 0; k < utf8.UTFMax && len(buf) > 0 && !utf8.Valid(buf); k++ {
			buf = buf[:len(buf)-1]
		}
		next := in.Offset + int64(len(buf))
		return text("%s\n[... the file goes on: this is bytes %d to %d of %d; call read_file with offset %d for more ...]", buf, in.Offset, next, size, next), nil, nil
	}
	return text("%s", buf), nil, nil
}

// readImage returns an image whole, as image content the model can see.
func readImage(r io.Reader, p, mime string) (*sdk.CallToolResult, any, error) {
	buf, err := io.ReadAll(io.LimitReader(r, imageMaxBytes+1))
	if err != nil {
		return nil, nil, toolError(fmt.Errorf("read %s: %w", p, err), "")
	}
	if len(buf) > imageMaxBytes {
		return nil, nil, fmt.Errorf("%s is a %s image of over %d bytes, too big to return; make a smaller copy first (e.g. with python3 and PIL or matplotlib) and read that", p, mime, imageMaxBytes)
	}
	return &sdk.CallToolResult{Content: []sdk.Content{
		&sdk.TextContent{Text: fmt.Sprintf("%s: %s image, %d bytes", p, mime, len(buf))},
		&sdk.ImageContent{Data: buf, MIMEType: mime},
	}}, nil, nil
}

// imageType is the MIME type of an image the model can see, or "".
func imageType(b []byte) string {
	switch m := http.DetectContentType(b); m {
	case "image/png", "image/jpeg", "image/gif", "image/webp":
		return m
	}
	return ""
}

// isText reports whether b looks like text: no NUL, valid UTF-8 but for a
// character cut at the end.
func isText(b []byte) bool {
	if bytes.IndexByte(b, 0) >= 0 {
		return false
	}
	for k := 0; k < utf8.UTFMax && len(b) > 0; k++ {
		if utf8.Valid(b) {
			return true
		}
		b = b[:len(b)-1]
	}
	return utf8.Valid(b)
}

func notFoundHint(err error, hint string) string {
	if errors.Is(err, client.ErrNotFound) {
		return hint
	}
	return ""
}

func (t *tools) write(ctx context.Context, _ *sdk.CallToolRequest, in writeArgs) (*sdk.CallToolResult, any, error) {
	p := absPath(in.Path)
	data := []byte(in.Content)
	switch strings.ToLower(in.Encoding) {
	case "", "utf-8", "utf8", "text":
	case "base64":
		var err error
		if data, err = base64.StdEncoding.DecodeString(strings.TrimSpace(in.Content)); err != nil {
			return nil, nil, fmt.Errorf("content is not valid base64: %w", err)
		}
	default:
		return nil, nil, fmt.Errorf("encoding %q: use utf-8 or base64", in.Encoding)
	}
	o := client.WriteOptions{Parents: true, Append: in.Append}
	if in.Mode != "" {
		var mode uint32
		if _, err := fmt.Sscanf(in.Mode, "%o", &mode); err != nil || mode > 0o7777 {
			return nil, nil, fmt.Errorf("mode %q: want octal permission bits such as 644 or 755", in.Mode)
		}
		o.Mode = mode
	}
	if err := t.c.WriteFile(ctx, in.Sandbox, p, bytes.NewReader(data), o); err != nil {
		return nil, nil, toolError(err, "")
	}
	verb := "wrote"
	if in.Append {
		verb = "appended"
	}
	return text("%s %d bytes to %s", verb, len(data), p), nil, nil
}

func (t *tools) list(ctx context.Context, _ *sdk.CallToolRequest, in listArgs) (*sdk.CallToolResult, any, error) {
	p := absPath(in.Path)
	entries, err := t.c.ListDir(ctx, in.Sandbox, p, in.Recursive)
	if err != nil {
		return nil, nil, toolError(err, notFoundHint(err, "list its parent directory to see what exists"))
	}
	if len(entries) == 0 {
		return text("%s is empty", p), nil, nil
	}
	var b strings.Builder
	for i, e := range entries {
		if i == listMaxEntries {
			fmt.Fprintf(&b, "[... %d more entries; list a subdirectory, or use exec with find and a filter ...]\n", len(entries)-i)
			break
		}
		fmt.Fprintf(&b, "%-5s %04o %10d %s", fileType(e.Type), e.Mode, e.Size, e.Path)
		if e.Target != "" {
			b.WriteString(" -> " + e.Target)
		}
		b.WriteByte('\n')
	}
	return text("%s", b.String()), nil, nil
}

func fileType(t hutchv1.FileType) string {
	switch t {
	case hutchv1.FileType_FILE_TYPE_DIRECTORY:
		return "dir"
	case hutchv1.FileType_FILE_TYPE_SYMLINK:
		return "link"
	case hutchv1.FileType_FILE_TYPE_FILE:
		return "file"
	}
	return "other"
}
