package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/client"
)

// binaryMIME are result types written to files with --out rather than printed.
var binaryMIME = map[string]string{"image/png": ".png", "image/jpeg": ".jpg", "image/svg+xml": ".svg"}

func newRunCmd(e *env) *cobra.Command {
	var (
		lang, ctxID, out string
		timeout          time.Duration
		asJSON           bool
	)
	cmd := &cobra.Command{
		Use:   "run NAME --lang python|javascript|typescript [--context ID]",
		Short: "Run code from stdin in a persistent code context",
		Long: "Run code read from stdin in a persistent code context of a sandbox (created on first use).\n" +
			"Variables persist between runs of one context. Without --context, the language's default\n" +
			"context is used; --context names a context, created on first use. Output streams live;\n" +
			"the value of the last expression is printed; images are written to --out DIR.\n" +
			"Exits 1 when the code raised, 124 on --timeout, 130 when interrupted.",
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if lang == "" && ctxID == "" {
				return usageError{errors.New("run needs --lang (or --context of an existing context)")}
			}
			code, err := io.ReadAll(e.stdin)
			if err != nil {
				return fmt.Errorf("read code from stdin: %w", err)
			}
			o := client.CodeOptions{Context: ctxID, Language: lang, Create: ctxID != "" && lang != "", Timeout: timeout}
			p := &cellPrinter{w: e.stdout, errw: e.stderr, out: out}
			if asJSON {
				o.OnEvent = func(ev *hutchv1.CodeEvent) {
					b, _ := protojson.Marshal(ev)
					fmt.Fprintln(e.stdout, string(b))
				}
			} else {
				o.Stdout, o.Stderr = e.stdout, e.stderr
				o.OnEvent = p.event
			}
			ex, err := e.client().RunCode(cmd.Context(), a[0], string(code), o)
			if err != nil {
				if cmd.Context().Err() != nil {
					return &exitError{code: exitInterrupted, err: errors.New("interrupted; the context keeps its state")}
				}
				return err
			}
			if p.err != nil {
				return p.err
			}
			return runStatus(ex, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&lang, "lang", "l", "", "language: python, javascript or typescript")
	f.StringVar(&ctxID, "context", "", "code context to run in, created on first use (default: the language's default context)")
	f.DurationVar(&timeout, "timeout", 0, "interrupt the code after this long (the context keeps its state)")
	f.StringVar(&out, "out", "", "write images (PNG, JPEG, SVG) to files in this directory")
	f.BoolVar(&asJSON, "json", false, "print every event as one JSON object per line")
	return cmd
}

// runStatus turns how a cell ended into the CLI's exit.
func runStatus(ex *client.Execution, quiet bool) error {
	msg := func() error {
		if quiet || ex.Message == "" {
			return nil
		}
		return errors.New(ex.Message)
	}
	switch ex.Status {
	case hutchv1.CodeStatus_CODE_STATUS_OK:
		if ex.StateLost && !quiet {
			return &exitError{code: 0, err: errors.New(ex.Message)}
		}
		return nil
	case hutchv1.CodeStatus_CODE_STATUS_TIMEOUT:
		return &exitError{code: exitTimeout, err: msg()}
	case hutchv1.CodeStatus_CODE_STATUS_INTERRUPTED:
		return &exitError{code: exitInterrupted, err: msg()}
	}
	return &exitError{code: ExitFailure, err: msg()}
}

// cellPrinter prints a cell's results and errors for a person.
type cellPrinter struct {
	w, errw io.Writer
	out     string // directory for images; "" to only mention them
	n       int    // files written
	err     error  // the first failure to write a file
}

func (p *cellPrinter) event(ev *hutchv1.CodeEvent) {
	switch e := ev.Event.(type) {
	case *hutchv1.CodeEvent_Result:
		p.result(e.Result)
	case *hutchv1.CodeEvent_Error:
		fmt.Fprintln(p.errw, strings.Join(e.Error.Traceback, "\n"))
		if len(e.Error.Traceback) == 0 || !strings.Contains(e.Error.Traceback[len(e.Error.Traceback)-1], e.Error.Name) {
			fmt.Fprintf(p.errw, "%s: %s\n", e.Error.Name, e.Error.Value)
		}
	}
}

func (p *cellPrinter) result(r *hutchv1.CodeResult) {
	mimes := make([]string, 0, len(r.Data))
	for m := range r.Data {
		mimes = append(mimes, m)
	}
	sort.Strings(mimes)
	printed := false
	for _, m := range mimes {
		ext, ok := binaryMIME[m]
		if !ok {
			continue
		}
		if p.out == "" {
			fmt.Fprintf(p.errw, "[%s result: use --out DIR to save it]\n", m)
			printed = true
			continue
		}
		data := []byte(r.Data[m])
		if m != "image/svg+xml" {
			var err error
			if data, err = client.Decode(r, m); err != nil {
				p.fail(fmt.Errorf("decode %s result: %w", m, err))
				continue
			}
		}
		p.n++
		path := filepath.Join(p.out, fmt.Sprintf("output-%d%s", p.n, ext))
		if err := os.MkdirAll(p.out, 0o755); err != nil {
			p.fail(err)
			continue
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			p.fail(err)
			continue
		}
		fmt.Fprintf(p.errw, "[%s written to %s]\n", m, path)
		printed = true
	}
	if printed {
		return
	}
	for _, m := range []string{"text/plain", "text/markdown", "text/latex", "application/json", "text/html"} {
		if s, ok := r.Data[m]; ok {
			fmt.Fprintln(p.w, strings.TrimRight(s, "\n"))
			return
		}
	}
}

func (p *cellPrinter) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}
