package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/client"
)

// How much the code interpreter is measured.
const (
	codeStartRuns = 10
	codeWarmup    = 20
	codeRuns      = 200
	codeStreamMB  = 32
)

var codeLanguages = []string{client.Python, client.JavaScript, client.TypeScript}

// codeFigures are the code interpreter's figures, per language.
type codeFigures struct {
	Start      map[string]latency // new context → first "1+1" done (kernel start included)
	RoundTrip  map[string]latency // "1+1" on a warm context
	StreamMBps map[string]float64 // printed output through RunCode
}

func benchCode(ctx context.Context, c *client.Client, name string) (codeFigures, error) {
	f := codeFigures{Start: map[string]latency{}, RoundTrip: map[string]latency{}, StreamMBps: map[string]float64{}}
	for _, lang := range codeLanguages {
		var err error
		if f.Start[lang], err = benchCodeStart(ctx, c, name, lang); err != nil {
			return f, fmt.Errorf("%s start: %w", lang, err)
		}
		if f.RoundTrip[lang], err = benchCodeRoundTrip(ctx, c, name, lang); err != nil {
			return f, fmt.Errorf("%s round trip: %w", lang, err)
		}
		if f.StreamMBps[lang], err = benchCodeStream(ctx, c, name, lang); err != nil {
			return f, fmt.Errorf("%s output: %w", lang, err)
		}
	}
	return f, nil
}

// runOK runs a cell and fails unless it ran to the end without error.
func runOK(ctx context.Context, c *client.Client, name, code string, o client.CodeOptions) (*client.Execution, error) {
	ex, err := c.RunCode(ctx, name, code, o)
	if err != nil {
		return nil, err
	}
	if ex.Status != hutchv1.CodeStatus_CODE_STATUS_OK {
		return nil, fmt.Errorf("cell %q: %v %s %+v", code, ex.Status, ex.Message, ex.Error)
	}
	return ex, nil
}

// benchCodeStart times a new context's first cell, which starts its
// kernel; the context is deleted (its kernel stopped) between runs, untimed.
func benchCodeStart(ctx context.Context, c *client.Client, name, lang string) (latency, error) {
	var ds []time.Duration
	for i := -1; i < codeStartRuns; i++ {
		id := fmt.Sprintf("bench-start-%s-%d", lang, i+1)
		t0 := time.Now()
		if _, err := c.CreateCodeContext(ctx, name, client.CodeContextOptions{ID: id, Language: lang}); err != nil {
			return latency{}, err
		}
		if _, err := runOK(ctx, c, name, "1+1", client.CodeOptions{Context: id}); err != nil {
			return latency{}, err
		}
		d := time.Since(t0)
		if err := c.DeleteCodeContext(ctx, name, id); err != nil {
			return latency{}, err
		}
		if i >= 0 {
			ds = append(ds, d)
		}
	}
	return summarize(ds), nil
}

// benchCodeRoundTrip times "1+1" on the language's warm default context.
func benchCodeRoundTrip(ctx context.Context, c *client.Client, name, lang string) (latency, error) {
	ds := make([]time.Duration, 0, codeRuns)
	for i := 0; i < codeWarmup+codeRuns; i++ {
		t0 := time.Now()
		ex, err := runOK(ctx, c, name, "1+1", client.CodeOptions{Language: lang})
		if err != nil {
			return latency{}, err
		}
		if ex.Text() != "2" {
			return latency{}, fmt.Errorf("1+1 gave %q", ex.Text())
		}
		if i >= codeWarmup {
			ds = append(ds, time.Since(t0))
		}
	}
	return summarize(ds), nil
}

// benchCodeStream measures how fast a cell's printed output reaches the
// client: codeStreamMB of 1 KiB lines, median of streamRuns.
func benchCodeStream(ctx context.Context, c *client.Client, name, lang string) (float64, error) {
	code := fmt.Sprintf("import sys\nline = 'x' * 1023 + '\\n'\nfor _ in range(%d):\n    sys.stdout.write(line)\n", codeStreamMB<<10)
	if lang != client.Python {
		code = fmt.Sprintf("const line = 'x'.repeat(1023) + '\\n'; for (let i = 0; i < %d; i++) process.stdout.write(line)", codeStreamMB<<10)
	}
	var rates []float64
	for range streamRuns {
		var n int
		t0 := time.Now()
		_, err := runOK(ctx, c, name, code, client.CodeOptions{Language: lang, OnEvent: func(ev *hutchv1.CodeEvent) {
			if o, ok := ev.Event.(*hutchv1.CodeEvent_Stdout); ok {
				n += len(o.Stdout)
			}
		}})
		if err != nil {
			return 0, err
		}
		if n != codeStreamMB<<20 {
			return 0, fmt.Errorf("got %d bytes of output, want %d", n, codeStreamMB<<20)
		}
		rates = append(rates, float64(n)/1e6/time.Since(t0).Seconds())
	}
	slices.Sort(rates)
	return rates[len(rates)/2], nil
}
