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
	codeDefaultTimeout = 120 * time.Second
	codeMaxTimeout     = time.Hour
	codeOutputLimit    = 30_000
	htmlLimit          = 10_000
)

type codeArgs struct {
	Sandbox        string `json:"sandbox" jsonschema:"Name of the sandbox; created on first use."`
	Code           string `json:"code" jsonschema:"The code to run, like a notebook cell: the value of the last expression is returned, print() output is captured, and matplotlib figures come back as PNG images."`
	Language       string `json:"language,omitempty" jsonschema:"python (the default), javascript or typescript."`
	Context        string `json:"context,omitempty" jsonschema:"Name of a code context (a kernel of its own, created on first use); empty for the sandbox's default context of the language. Variables and imports persist within a context across calls."`
	TimeoutSeconds int    `json:"timeout_seconds,omitempty" jsonschema:"Interrupt the code after this many seconds (default 120); the context's state is kept."`
}

func (t *tools) addCode(s *sdk.Server) {
	sdk.AddTool(s, &sdk.Tool{
		Name: "run_code",
		Description: "Run Python, JavaScript or TypeScript in a sandbox's notebook-style kernel (the sandbox is created on first use). " +
			"State persists between calls in the same context, like cells of a Jupyter notebook; numpy, pandas and matplotlib are installed. " +
			"Returns printed output, the value of the last expression (text, or HTML for tables), charts as PNG images, and the traceback if the code raised.",
		Annotations: &sdk.ToolAnnotations{Title: "Run code", OpenWorldHint: ptr(true)},
	}, t.runCode)
}

func (t *tools) runCode(ctx context.Context, _ *sdk.CallToolRequest, in codeArgs) (*sdk.CallToolResult, any, error) {
	lang := strings.ToLower(in.Language)
	if lang == "" {
		lang = client.Python
	}
	stdout, stderr := newCapture(codeOutputLimit), newCapture(codeOutputLimit)
	ex, err := t.c.RunCode(ctx, in.Sandbox, in.Code, client.CodeOptions{
		Context: in.Context, Language: lang, Create: in.Context != "",
		Timeout: clampTimeout(in.TimeoutSeconds, codeDefaultTimeout, codeMaxTimeout),
		Stdout:  stdout, Stderr: stderr,
	})
	if err != nil {
		if errors.Is(err, client.ErrInvalidArgument) {
			return nil, nil, toolError(err, "language must be python, javascript or typescript, and a context keeps the language it was created with")
		}
		return nil, nil, toolError(err, "")
	}
	var b strings.Builder
	var images []sdk.Content
	writeStreams(&b, stdout.String(), stderr.String())
	for _, r := range ex.Results {
		images = append(images, resultContent(&b, r)...)
	}
	if e := ex.Error; e != nil {
		fmt.Fprintf(&b, "--- error ---\n%s: %s\n%s\n", e.Name, e.Value, strings.Join(e.Traceback, "\n"))
	}
	if ex.StateLost {
		b.WriteString("note: the context's kernel had died and was restarted for this call; variables from earlier calls are gone\n")
	}
	res := &sdk.CallToolResult{}
	switch ex.Status {
	case hutchv1.CodeStatus_CODE_STATUS_OK:
		if b.Len() == 0 {
			b.WriteString("ran without output or value")
		}
	case hutchv1.CodeStatus_CODE_STATUS_ERROR:
		// The code raised: that is the code's result, which the model
		// reads like a failing exit code, not a failure of the tool.
	default:
		fmt.Fprintf(&b, "--- %s ---\n%s\n", strings.ToLower(strings.TrimPrefix(ex.Status.String(), "CODE_STATUS_")), ex.Message)
		res.IsError = true
	}
	res.Content = append([]sdk.Content{&sdk.TextContent{Text: strings.TrimRight(b.String(), "\n")}}, images...)
	return res, nil, nil
}

// resultContent writes a result's text to b and returns its images.
func resultContent(b *strings.Builder, r *hutchv1.CodeResult) []sdk.Content {
	var images []sdk.Content
	for _, mime := range []string{"image/png", "image/jpeg"} {
		if _, ok := r.Data[mime]; !ok {
			continue
		}
		if data, err := client.Decode(r, mime); err == nil {
			images = append(images, &sdk.ImageContent{Data: data, MIMEType: mime})
		}
	}
	label := "result"
	if r.Display {
		label = "display"
	}
	switch {
	case r.Data["text/markdown"] != "":
		fmt.Fprintf(b, "--- %s ---\n%s\n", label, r.Data["text/markdown"])
	case r.Data["text/plain"] != "" && (len(images) == 0 || !strings.HasPrefix(r.Data["text/plain"], "<Figure")):
		fmt.Fprintf(b, "--- %s ---\n%s\n", label, r.Data["text/plain"])
	case r.Data["text/html"] != "":
		h := r.Data["text/html"]
		if len(h) > htmlLimit {
			h = validUTF8(h[:htmlLimit]) + "\n[... HTML cut; print() a smaller part of it ...]"
		}
		fmt.Fprintf(b, "--- %s (html) ---\n%s\n", label, h)
	}
	if len(images) > 0 {
		fmt.Fprintf(b, "--- %s: %d image(s), attached ---\n", label, len(images))
	}
	return images
}
