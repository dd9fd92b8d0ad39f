package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/client"
)

// runCell runs code and fails the test unless the cell ran to the end.
func runCell(t *testing.T, d *daemon, name, code string, o client.CodeOptions) *client.Execution {
	t.Helper()
	ex, err := d.Client.RunCode(context.Background(), name, code, o)
	if err != nil {
		t.Fatalf("run %q: %v", code, err)
	}
	return ex
}

func okCell(t *testing.T, d *daemon, name, code string, o client.CodeOptions) *client.Execution {
	t.Helper()
	ex := runCell(t, d, name, code, o)
	if ex.Status != hutchv1.CodeStatus_CODE_STATUS_OK {
		t.Fatalf("run %q: status %v, error %+v, message %q, stderr %q", code, ex.Status, ex.Error, ex.Message, ex.Stderr)
	}
	return ex
}

func decodePNG(t *testing.T, r *hutchv1.CodeResult) {
	t.Helper()
	b, err := client.Decode(r, "image/png")
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if img.Bounds().Dx() < 100 || img.Bounds().Dy() < 100 {
		t.Fatalf("PNG is %v", img.Bounds())
	}
}

// assertStreams runs a cell that prints 0, 1, 2 a second apart and checks
// that each line arrives as it is printed, not when the cell ends.
func assertStreams(t *testing.T, d *daemon, sb, code string, o client.CodeOptions) {
	t.Helper()
	var mu sync.Mutex
	var times []time.Time
	start := time.Now()
	o.OnEvent = func(ev *hutchv1.CodeEvent) {
		if _, ok := ev.Event.(*hutchv1.CodeEvent_Stdout); ok {
			mu.Lock()
			times = append(times, time.Now())
			mu.Unlock()
		}
	}
	ex := okCell(t, d, sb, code, o)
	if ex.Stdout != "0\n1\n2\n" {
		t.Fatalf("stdout %q", ex.Stdout)
	}
	if len(times) < 3 || times[0].Sub(start) > 1500*time.Millisecond || times[2].Sub(times[0]) < 1500*time.Millisecond {
		t.Fatalf("output did not stream: %d events, first after %v", len(times), times[0].Sub(start))
	}
}

// Python runs in a real ipykernel: state, pandas, matplotlib, structured
// errors, live output, interrupts and timeouts that keep state, and a
// kernel that dies.
func TestCodePython(t *testing.T) {
	d := newDaemon(t)
	const sb = "code-py"
	py := client.CodeOptions{Language: client.Python}
	okCell(t, d, sb, "x = 41", py)
	if ex := okCell(t, d, sb, "print(x + 1)\nx + 1", py); ex.Stdout != "42\n" || ex.Text() != "42" || ex.ExecutionCount != 2 {
		t.Fatalf("state: stdout %q, text %q, count %d", ex.Stdout, ex.Text(), ex.ExecutionCount)
	}

	t.Run("pandas", func(t *testing.T) {
		if err := d.Client.WriteFile(context.Background(), sb, "/workspace/sales.csv", strings.NewReader("region,amount\nnorth,10\nsouth,4\nnorth,20\nsouth,6\n"), client.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		ex := okCell(t, d, sb, "import pandas as pd\ndf = pd.read_csv('sales.csv')\ndf.groupby('region')['amount'].mean().to_frame()", py)
		html := ex.Results[0].Data["text/html"]
		if !strings.Contains(html, "<table") || !strings.Contains(html, "15.0") || !strings.Contains(html, "5.0") {
			t.Fatalf("DataFrame HTML: %q (results %v)", html, ex.Results)
		}
	})

	t.Run("matplotlib", func(t *testing.T) {
		ex := okCell(t, d, sb, "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()", py)
		if len(ex.Results) != 1 || !ex.Results[0].Display {
			t.Fatalf("plt.show(): results %v", ex.Results)
		}
		decodePNG(t, ex.Results[0])
		// A figure left open at the end of the cell is shown too.
		ex = okCell(t, d, sb, "fig, ax = plt.subplots()\nax.bar(['a', 'b'], [3, 5])", py)
		var found bool
		for _, r := range ex.Results {
			if _, ok := r.Data["image/png"]; ok {
				decodePNG(t, r)
				found = true
			}
		}
		if !found {
			t.Fatalf("bare figure: results %v", ex.Results)
		}
	})

	t.Run("rich", func(t *testing.T) {
		ex := okCell(t, d, sb, "import io\nfrom IPython.display import display, Markdown, JSON, SVG, Math, Image\n"+
			"display(Markdown('# hi'))\ndisplay(JSON({'a': 1}))\n"+
			"display(SVG('<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1\" height=\"1\"/>'))\n"+
			"display(Math(r'x^2'))\n"+
			"buf = io.BytesIO()\nplt.figure()\nplt.plot([1, 2])\nplt.savefig(buf, format='jpeg')\nplt.close('all')\n"+
			"display(Image(data=buf.getvalue(), format='jpeg'))", py)
		want := []string{"text/markdown", "application/json", "image/svg+xml", "text/latex", "image/jpeg"}
		if len(ex.Results) != len(want) {
			t.Fatalf("results %v", ex.Results)
		}
		for i, m := range want {
			if _, ok := ex.Results[i].Data[m]; !ok {
				t.Errorf("result %d has no %s: %v", i, m, ex.Results[i].Data)
			}
		}
		if ex.Results[1].Data["application/json"] != `{"a":1}` {
			t.Errorf("json: %q", ex.Results[1].Data["application/json"])
		}
		if jpg, err := client.Decode(ex.Results[4], "image/jpeg"); err != nil || !bytes.HasPrefix(jpg, []byte{0xff, 0xd8, 0xff}) {
			t.Errorf("jpeg: %v", err)
		}
	})

	t.Run("error", func(t *testing.T) {
		ex := runCell(t, d, sb, "a = 1\nb = 0\na / b", py)
		e := ex.Error
		if ex.Status != hutchv1.CodeStatus_CODE_STATUS_ERROR || e == nil || e.Name != "ZeroDivisionError" || e.Value != "division by zero" || e.Line != 3 {
			t.Fatalf("status %v, error %+v", ex.Status, e)
		}
		if tb := strings.Join(e.Traceback, "\n"); strings.Contains(tb, "\x1b[") || !strings.Contains(tb, "a / b") {
			t.Fatalf("traceback: %q", tb)
		}
		// The next cell runs: a failed cell does not abort later ones.
		okCell(t, d, sb, "x", py)
	})

	t.Run("streams live", func(t *testing.T) {
		assertStreams(t, d, sb, "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(1)", py)
	})

	t.Run("interrupt keeps state", func(t *testing.T) {
		ctxs, err := d.Client.CodeContexts(context.Background(), sb)
		if err != nil || len(ctxs) != 1 {
			t.Fatalf("contexts: %v %v", ctxs, err)
		}
		id := ctxs[0].Id
		go func() {
			time.Sleep(700 * time.Millisecond)
			if ok, err := d.Client.InterruptCode(context.Background(), sb, id); !ok || err != nil {
				t.Errorf("interrupt: %v %v", ok, err)
			}
		}()
		ex := runCell(t, d, sb, "while True: pass", py)
		if ex.Status != hutchv1.CodeStatus_CODE_STATUS_INTERRUPTED || ex.Error == nil || ex.Error.Name != "KeyboardInterrupt" {
			t.Fatalf("status %v, error %+v", ex.Status, ex.Error)
		}
		if ex := okCell(t, d, sb, "x", py); ex.Text() != "41" {
			t.Fatalf("x after interrupt: %q", ex.Text())
		}
		o := py
		o.Timeout = 500 * time.Millisecond
		if ex := runCell(t, d, sb, "import time\ntime.sleep(60)", o); ex.Status != hutchv1.CodeStatus_CODE_STATUS_TIMEOUT || ex.Duration > 5*time.Second {
			t.Fatalf("timeout: status %v after %v", ex.Status, ex.Duration)
		}
		if ex := okCell(t, d, sb, "x", py); ex.Text() != "41" {
			t.Fatalf("x after timeout: %q", ex.Text())
		}
	})

	t.Run("kernel dies", func(t *testing.T) {
		ex := runCell(t, d, sb, "import os\nos._exit(1)", py)
		if ex.Status != hutchv1.CodeStatus_CODE_STATUS_KERNEL_DIED || !strings.Contains(ex.Message, "state is lost") {
			t.Fatalf("status %v, message %q", ex.Status, ex.Message)
		}
		ex = runCell(t, d, sb, "'x' in globals()", py)
		if ex.Status != hutchv1.CodeStatus_CODE_STATUS_OK || !ex.StateLost || ex.Text() != "False" || !strings.Contains(ex.Message, "lost") {
			t.Fatalf("after death: status %v, lost %v, text %q, message %q", ex.Status, ex.StateLost, ex.Text(), ex.Message)
		}
	})
}

// JavaScript and TypeScript run in a persistent Node vm context:
// re-declared consts, top-level await, types, errors, interrupts.
func TestCodeJavaScript(t *testing.T) {
	d := newDaemon(t)
	const sb = "code-js"
	js := client.CodeOptions{Language: client.JavaScript}
	okCell(t, d, sb, "const y = 40; const p = new Promise(r => setTimeout(() => r(2), 10));", js)
	if ex := okCell(t, d, sb, "console.log(y + (await p)); const y2 = y + 2; y2", js); ex.Stdout != "42\n" || ex.Text() != "42" {
		t.Fatalf("state/await: stdout %q text %q", ex.Stdout, ex.Text())
	}
	// Re-declaring a const is fine, as in a REPL.
	if ex := okCell(t, d, sb, "const y = 1; y", js); ex.Text() != "1" {
		t.Fatalf("re-declare: %q", ex.Text())
	}
	ex := runCell(t, d, sb, "function f(o) { return o.missing.deep }\n\nf({})", js)
	if e := ex.Error; ex.Status != hutchv1.CodeStatus_CODE_STATUS_ERROR || e == nil || e.Name != "TypeError" || e.Line != 1 || !strings.Contains(e.Value, "deep") {
		t.Fatalf("js error: %v %+v", ex.Status, ex.Error)
	}
	if ex := runCell(t, d, sb, "let = = 2", js); ex.Error == nil || ex.Error.Name != "SyntaxError" || ex.Error.Line != 1 {
		t.Fatalf("syntax error: %+v", ex.Error)
	}
	if ex := okCell(t, d, sb, "display({'text/html': '<b>hi</b>'})", js); len(ex.Results) != 1 || ex.Results[0].Data["text/html"] != "<b>hi</b>" {
		t.Fatalf("display: %v", ex.Results)
	}

	// A synchronous loop streams too.
	assertStreams(t, d, sb, "for (let i = 0; i < 3; i++) { console.log(i); const t = Date.now(); while (Date.now() - t < 1000) {} }", js)

	ts := client.CodeOptions{Language: client.TypeScript}
	ex = okCell(t, d, sb, "interface P { v: number }\nfunction twice(p: P): number { return p.v * 2 }\nconst q: P = { v: 21 };\ntwice(q)", ts)
	if ex.Text() != "42" {
		t.Fatalf("typescript: %q", ex.Text())
	}
	if ex := okCell(t, d, sb, "const r: number = await Promise.resolve(twice({ v: 1 })); r", ts); ex.Text() != "2" {
		t.Fatalf("typescript await: %q", ex.Text())
	}
	if ex := runCell(t, d, sb, "const s: string = undefined as any;\ns.length", ts); ex.Error == nil || ex.Error.Name != "TypeError" || ex.Error.Line != 2 {
		t.Fatalf("ts error: %+v", ex.Error)
	}
	// JavaScript and TypeScript default contexts are separate.
	if ex := okCell(t, d, sb, "typeof twice", js); ex.Text() != "'undefined'" {
		t.Fatalf("js sees ts state: %q", ex.Text())
	}

	o := js
	o.Timeout = 500 * time.Millisecond
	if ex := runCell(t, d, sb, "while (true) {}", o); ex.Status != hutchv1.CodeStatus_CODE_STATUS_TIMEOUT {
		t.Fatalf("busy loop: %v %q", ex.Status, ex.Message)
	}
	if ex := runCell(t, d, sb, "await new Promise(() => {})", o); ex.Status != hutchv1.CodeStatus_CODE_STATUS_TIMEOUT {
		t.Fatalf("pending promise: %v %q", ex.Status, ex.Message)
	}
	if ex := okCell(t, d, sb, "y2", js); ex.Text() != "42" || ex.StateLost {
		t.Fatalf("state after timeouts: %q lost=%v", ex.Text(), ex.StateLost)
	}
	// A busy loop after an await cannot be interrupted: the kernel is
	// killed after the grace period, and the next cell says so.
	if ex := runCell(t, d, sb, "await null; while (true) {}", o); ex.Status != hutchv1.CodeStatus_CODE_STATUS_KERNEL_DIED || !strings.Contains(ex.Message, "did not stop") {
		t.Fatalf("unstoppable cell: %v %q", ex.Status, ex.Message)
	}
	if ex := okCell(t, d, sb, "typeof y2", js); ex.Text() != "'undefined'" || !ex.StateLost {
		t.Fatalf("after kill: %q lost=%v", ex.Text(), ex.StateLost)
	}
}

// Contexts: created in parallel, isolated, listed, deleted; bad input gets
// typed errors; a client that goes away interrupts its cell.
func TestCodeContexts(t *testing.T) {
	d := newDaemon(t)
	const sb = "code-ctx"
	ctx := context.Background()
	langs := []string{client.Python, client.JavaScript, client.TypeScript, client.Python, client.JavaScript, client.TypeScript}
	var wg sync.WaitGroup
	for i, lang := range langs {
		wg.Go(func() {
			id := fmt.Sprintf("c%d", i)
			if _, err := d.Client.CreateCodeContext(ctx, sb, client.CodeContextOptions{ID: id, Language: lang}); err != nil {
				t.Errorf("create %s: %v", id, err)
				return
			}
			code := fmt.Sprintf("v%d = %d", i, i)
			if lang != client.Python {
				code = "var " + code
			}
			if _, err := d.Client.RunCode(ctx, sb, code, client.CodeOptions{Context: id}); err != nil {
				t.Errorf("run in %s: %v", id, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// c0 and c3 are both Python: neither sees the other's variables.
	if ex := okCell(t, d, sb, "'v3' in globals(), v0", client.CodeOptions{Context: "c0"}); ex.Text() != "(False, 0)" {
		t.Fatalf("isolation: %q", ex.Text())
	}
	if ex := okCell(t, d, sb, "typeof v1", client.CodeOptions{Context: "c4"}); ex.Text() != "'undefined'" {
		t.Fatalf("js isolation: %q", ex.Text())
	}
	list, err := d.Client.CodeContexts(ctx, sb)
	if err != nil || len(list) != 6 {
		t.Fatalf("list: %v %v", list, err)
	}
	for _, c := range list {
		if !c.Running || c.Pid == 0 {
			t.Errorf("context %s not running: %+v", c.Id, c)
		}
	}

	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			code string
			o    client.CodeOptions
			want error
		}{
			{"unknown context", "1", client.CodeOptions{Context: "nope"}, client.ErrNotFound},
			{"unknown language", "1", client.CodeOptions{Language: "cobol"}, client.ErrInvalidArgument},
			{"no language", "1", client.CodeOptions{}, client.ErrInvalidArgument},
			{"wrong language", "1", client.CodeOptions{Context: "c0", Language: client.JavaScript}, client.ErrInvalidArgument},
			{"oversized code", strings.Repeat("#", 1<<20+1), client.CodeOptions{Language: client.Python}, client.ErrInvalidArgument},
			{"negative timeout", "1", client.CodeOptions{Language: client.Python, Timeout: -time.Second}, client.ErrInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := d.Client.RunCode(ctx, sb, tc.code, tc.o); !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
			})
		}
		if _, err := d.Client.CreateCodeContext(ctx, sb, client.CodeContextOptions{ID: "c0", Language: client.Python}); !errors.Is(err, client.ErrAlreadyExists) {
			t.Fatalf("duplicate id: %v", err)
		}
		if _, err := d.Client.CreateCodeContext(ctx, sb, client.CodeContextOptions{ID: "bad id!", Language: client.Python}); !errors.Is(err, client.ErrInvalidArgument) {
			t.Fatalf("bad id: %v", err)
		}
		if err := d.Client.DeleteCodeContext(ctx, sb, "nope"); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("delete unknown: %v", err)
		}
		if _, err := d.Client.InterruptCode(ctx, sb, "nope"); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("interrupt unknown: %v", err)
		}
	})

	t.Run("client goes away", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		started := make(chan struct{})
		var once sync.Once
		errc := make(chan error, 1)
		go func() {
			_, err := d.Client.RunCode(cctx, sb, "import time\nwhile True:\n    print('.', flush=True)\n    time.sleep(0.05)", client.CodeOptions{
				Context: "c0",
				OnEvent: func(ev *hutchv1.CodeEvent) {
					if _, ok := ev.Event.(*hutchv1.CodeEvent_Stdout); ok {
						once.Do(func() { close(started) })
					}
				},
			})
			errc <- err
		}()
		<-started
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled run: %v", err)
		}
		t0 := time.Now()
		if ex := okCell(t, d, sb, "v0 + 1", client.CodeOptions{Context: "c0"}); ex.Text() != "1" || time.Since(t0) > 5*time.Second {
			t.Fatalf("after disconnect: %q in %v", ex.Text(), time.Since(t0))
		}
	})

	if err := d.Client.DeleteCodeContext(ctx, sb, "c0"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Client.RunCode(ctx, sb, "1", client.CodeOptions{Context: "c0"}); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("run in deleted context: %v", err)
	}
	if out := d.run(sb, "sh", "-c", "pgrep -c -f '^python3 -m ipykernel' || true"); out != "1\n" {
		t.Fatalf("python kernels left after deleting one of two: %q", out)
	}
}

// hutch run: code from stdin, live output, images to --out, exit codes.
func TestRunCLI(t *testing.T) {
	d := newDaemon(t)
	const sb = "code-cli"
	if out, stderr, code := d.hutch("x = 41", "run", sb, "--lang", "python"); code != 0 || out != "" {
		t.Fatalf("run: %d %q %q", code, out, stderr)
	}
	if out, stderr, code := d.hutch("print(x + 1)\nx", "run", sb, "--lang", "py"); code != 0 || out != "42\n41\n" {
		t.Fatalf("run 2: %d %q %q", code, out, stderr)
	}
	dir := t.TempDir()
	_, stderr, code := d.hutch("import matplotlib.pyplot as plt\nplt.plot([1,2],[3,4])\nplt.show()", "run", sb, "--lang", "python", "--out", dir)
	if code != 0 || !strings.Contains(stderr, "image/png written to") {
		t.Fatalf("plot: %d %q", code, stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "output-1.png"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(b)); err != nil {
		t.Fatalf("output-1.png: %v", err)
	}
	if _, stderr, code := d.hutch("1/0", "run", sb, "--lang", "python"); code != 1 || !strings.Contains(stderr, "ZeroDivisionError") {
		t.Fatalf("error: %d %q", code, stderr)
	}
	if out, stderr, code := d.hutch("const a: number = 2; a * 21", "run", sb, "--lang", "typescript", "--context", "mine"); code != 0 || out != "42\n" {
		t.Fatalf("ts in a named context: %d %q %q", code, out, stderr)
	}
	if _, _, code := d.hutch("while True: pass", "run", sb, "--lang", "python", "--timeout", "300ms"); code != 124 {
		t.Fatalf("timeout exit %d", code)
	}
	out, _, code := d.hutch("print('hi')", "run", sb, "--lang", "python", "--json")
	if code != 0 || !strings.Contains(out, `{"stdout":"hi\n"}`) || !strings.Contains(out, `"done":{"status":"CODE_STATUS_OK"`) {
		t.Fatalf("--json: %d %q", code, out)
	}
	if _, stderr, code := d.hutch("1", "run", sb); code != 2 {
		t.Fatalf("no --lang: %d %q", code, stderr)
	}
}
