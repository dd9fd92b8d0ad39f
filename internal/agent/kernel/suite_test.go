package kernel

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agent/agenttest"
	"github.com/hutch-sh/hutch/internal/agent/spawn"
	"github.com/hutch-sh/hutch/internal/testutil"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

// dialect is how the conformance suite speaks one kernel's language: the
// cells every kernel must run the same way.
type dialect struct {
	lang    string
	set     string // binds x to 41
	use     string // last expression x + 1
	hasX    string // last expression: whether x is bound, as "True"/"true" or "False"/"false"
	yes, no string // hasX's results
	tick    string // prints "tick", waits a second, prints "tock"
	raise   string // raises errName with message "boom" on line 2
	errName string
	spin    string // prints "spinning", then never ends by itself
	die     string // ends the kernel's process with exit code 3
	// bugs names the suite's cases this kernel is known to fail now, and
	// why; each is skipped with its reason until fixed. Only a failure seen
	// and not yet understood goes here, never a case that cannot pass.
	bugs map[string]string
}

// nodeInterruptBug: the Node kernel's breakOnSigint sometimes misses the
// SIGINT meant to break a synchronous loop (about one run in five under
// load; more after a cell assigns a global with var); the kernel is then
// killed after its grace and the context's state is lost. Node alone (vm
// with a SIGINT listener, breakOnSigint, a spinning cell) does not show it.
const nodeInterruptBug = "known bug: the node kernel sometimes misses the SIGINT that should break a synchronous loop, and is killed with its state"

var (
	pythonDialect = dialect{
		lang: Python, set: "x = 41", use: "x + 1", hasX: "'x' in globals()", yes: "True", no: "False",
		tick:  "import time\nprint('tick', flush=True)\ntime.sleep(1)\nprint('tock')",
		raise: "y = 1\nraise ValueError('boom')", errName: "ValueError",
		spin: "import time\nprint('spinning', flush=True)\nwhile True:\n    time.sleep(0.05)",
		die:  "import os\nos._exit(3)",
	}
	javaScriptDialect = dialect{
		// let, not var: after a cell assigns a global with var (or without a
		// declaration), SIGINT no longer breaks a synchronous loop (a bug
		// of the node kernel, not of this suite).
		lang: JavaScript, set: "let x = 41", use: "x + 1", hasX: "typeof x !== 'undefined'", yes: "true", no: "false",
		tick:  "console.log('tick')\nawait new Promise((r) => setTimeout(r, 1000))\nconsole.log('tock')",
		raise: "const y = 1\nthrow new TypeError('boom')", errName: "TypeError",
		spin: "console.log('spinning')\nwhile (true) {}",
		die:  "process.exit(3)",
		bugs: map[string]string{"InterruptKeepsState": nodeInterruptBug},
	}
	typeScriptDialect = dialect{
		lang: TypeScript, set: "let x: number = 41", use: "x + 1", hasX: "typeof x !== 'undefined'", yes: "true", no: "false",
		tick:  "console.log('tick')\nawait new Promise<void>((r) => setTimeout(r, 1000))\nconsole.log('tock')",
		raise: "const y: number = 1\nthrow new TypeError('boom')", errName: "TypeError",
		spin: "console.log('spinning')\nwhile (true) {}",
		die:  "process.exit(3)",
		bugs: map[string]string{"InterruptKeepsState": nodeInterruptBug},
	}
)

// The conformance suite: what every kernel must do, run against each real
// kernel (as containerd's snapshotter testsuite is run by each snapshotter).
func TestPythonConformance(t *testing.T) {
	runSuite(t, newKernels(t, Python), pythonDialect)
}

func TestJavaScriptConformance(t *testing.T) {
	runSuite(t, newKernels(t, JavaScript), javaScriptDialect)
}

func TestTypeScriptConformance(t *testing.T) {
	runSuite(t, newKernels(t, TypeScript), typeScriptDialect)
}

func runSuite(t *testing.T, s *Service, d dialect) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *Service, dialect)
	}{
		{"StatePersists", testStatePersists},
		{"StdoutStreams", testStdoutStreams},
		{"LastExpressionIsResult", testLastExpression},
		{"StructuredError", testStructuredError},
		{"InterruptKeepsState", testInterruptKeepsState},
		{"Timeout", testTimeout},
		{"DeathReportedAndRestarted", testDeath},
		{"ConcurrentContexts", testConcurrentContexts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if why, ok := d.bugs[tc.name]; ok {
				t.Skip(why)
			}
			tc.fn(t, s, d)
		})
	}
}

// cell is what one RunCode stream delivered, with when stdout arrived.
type cell struct {
	started *hutchv1.CodeStarted
	stdout  strings.Builder
	stderr  strings.Builder
	outAt   []time.Time
	results []*hutchv1.CodeResult
	err     *hutchv1.CodeError
	done    *hutchv1.CodeDone
	doneAt  time.Time
}

// run runs one cell in context id (created if need be) to its end;
// onEvent, if set, sees each event as it arrives.
func run(t *testing.T, s *Service, d dialect, id, code string, timeoutMs int64, onEvent func(*hutchv1.CodeEvent)) *cell {
	t.Helper()
	c := &cell{}
	var mu sync.Mutex
	err := s.run(context.Background(), &hutchv1.RunCodeRequest{Code: code, Context: id, Language: d.lang, Create: id != "", TimeoutMs: timeoutMs}, func(ev *hutchv1.CodeEvent) error {
		mu.Lock()
		switch e := ev.Event.(type) {
		case *hutchv1.CodeEvent_Started:
			c.started = e.Started
		case *hutchv1.CodeEvent_Stdout:
			c.stdout.WriteString(e.Stdout)
			c.outAt = append(c.outAt, time.Now())
		case *hutchv1.CodeEvent_Stderr:
			c.stderr.WriteString(e.Stderr)
		case *hutchv1.CodeEvent_Result:
			c.results = append(c.results, e.Result)
		case *hutchv1.CodeEvent_Error:
			c.err = e.Error
		case *hutchv1.CodeEvent_Done:
			c.done, c.doneAt = e.Done, time.Now()
		}
		mu.Unlock()
		if onEvent != nil {
			onEvent(ev)
		}
		return nil
	})
	if err != nil || c.done == nil {
		t.Fatalf("%s cell %q: %v (done %v)", d.lang, code, err, c.done)
	}
	return c
}

// ok runs a cell and fails unless it ended ok.
func ok(t *testing.T, s *Service, d dialect, id, code string) *cell {
	t.Helper()
	c := run(t, s, d, id, code, 0, nil)
	if c.done.Status != hutchv1.CodeStatus_CODE_STATUS_OK {
		t.Fatalf("%s cell %q: %v %q, error %+v, stderr %q", d.lang, code, c.done.Status, c.done.Message, c.err, c.stderr.String())
	}
	return c
}

// value is the text/plain of the cell's last-expression result.
func (c *cell) value() string {
	for _, r := range c.results {
		if !r.Display {
			return r.Data["text/plain"]
		}
	}
	return ""
}

func wantValue(t *testing.T, c *cell, want string) {
	t.Helper()
	if got := c.value(); got != want {
		t.Fatalf("value %q, want %q (results %v, error %+v)", got, want, c.results, c.err)
	}
}

func testStatePersists(t *testing.T, s *Service, d dialect) {
	ok(t, s, d, "state", d.set)
	wantValue(t, ok(t, s, d, "state", d.use), "42")
}

func testStdoutStreams(t *testing.T, s *Service, d dialect) {
	c := ok(t, s, d, "streams", d.tick)
	if c.stdout.String() != "tick\ntock\n" {
		t.Fatalf("stdout %q", c.stdout.String())
	}
	if len(c.outAt) == 0 || c.doneAt.Sub(c.outAt[0]) < 700*time.Millisecond {
		t.Fatalf("the first output came %v before the cell ended, want about a second", c.doneAt.Sub(c.outAt[0]))
	}
}

func testLastExpression(t *testing.T, s *Service, d dialect) {
	wantValue(t, ok(t, s, d, "", "6 * 7"), "42")
	// A cell whose last statement is no expression has no value.
	if c := ok(t, s, d, "", d.set); c.value() != "" {
		t.Fatalf("assignment gave value %q", c.value())
	}
}

func testStructuredError(t *testing.T, s *Service, d dialect) {
	c := run(t, s, d, "errors", d.raise, 0, nil)
	e := c.err
	if c.done.Status != hutchv1.CodeStatus_CODE_STATUS_ERROR || e == nil {
		t.Fatalf("status %v, error %+v", c.done.Status, e)
	}
	if e.Name != d.errName || e.Value != "boom" || e.Line != 2 || len(e.Traceback) == 0 {
		t.Fatalf("error %+v, want %s %q on line 2 with a traceback", e, d.errName, "boom")
	}
	for _, l := range e.Traceback {
		if strings.Contains(l, "\x1b[") {
			t.Fatalf("terminal colours in traceback line %q", l)
		}
	}
	// The context lives on.
	wantValue(t, ok(t, s, d, "errors", "y"), "1")
}

// spinUntil runs the endless cell in id and calls stop once it printed.
func spinUntil(t *testing.T, s *Service, d dialect, id string, timeoutMs int64, stop func()) *cell {
	t.Helper()
	var once sync.Once
	return run(t, s, d, id, d.spin, timeoutMs, func(ev *hutchv1.CodeEvent) {
		if _, ok := ev.Event.(*hutchv1.CodeEvent_Stdout); ok && stop != nil {
			once.Do(func() { go stop() })
		}
	})
}

func testInterruptKeepsState(t *testing.T, s *Service, d dialect) {
	ok(t, s, d, "interrupt", d.set)
	c := spinUntil(t, s, d, "interrupt", 0, func() {
		if _, err := s.InterruptCode(context.Background(), connect.NewRequest(&hutchv1.InterruptCodeRequest{Context: "interrupt"})); err != nil {
			t.Errorf("interrupt: %v", err)
		}
	})
	if c.done.Status != hutchv1.CodeStatus_CODE_STATUS_INTERRUPTED {
		t.Fatalf("status %v %q, want interrupted", c.done.Status, c.done.Message)
	}
	wantValue(t, ok(t, s, d, "interrupt", d.use), "42")
}

func testTimeout(t *testing.T, s *Service, d dialect) {
	ok(t, s, d, "timeout", d.set)
	start := time.Now()
	c := spinUntil(t, s, d, "timeout", 500, nil)
	if c.done.Status != hutchv1.CodeStatus_CODE_STATUS_TIMEOUT || !strings.Contains(c.done.Message, "timeout") {
		t.Fatalf("status %v %q, want a timeout", c.done.Status, c.done.Message)
	}
	if took := time.Since(start); took < 500*time.Millisecond || took > interruptGrace+5*time.Second {
		t.Fatalf("a 500ms timeout took %v", took)
	}
	wantValue(t, ok(t, s, d, "timeout", d.use), "42")
}

func testDeath(t *testing.T, s *Service, d dialect) {
	ok(t, s, d, "death", d.set)
	c := run(t, s, d, "death", d.die, 0, nil)
	if c.done.Status != hutchv1.CodeStatus_CODE_STATUS_KERNEL_DIED || !strings.Contains(c.done.Message, "exit code 3") {
		t.Fatalf("status %v %q, want kernel died with exit code 3", c.done.Status, c.done.Message)
	}
	next := ok(t, s, d, "death", d.hasX)
	if !next.started.KernelStarted || !next.started.StateLost || !strings.Contains(next.done.Message, "state is lost") {
		t.Fatalf("after the death: started %+v, message %q; want a new kernel, state lost", next.started, next.done.Message)
	}
	wantValue(t, next, d.no)
}

func testConcurrentContexts(t *testing.T, s *Service, d dialect) {
	ids := []string{"left", "right"}
	for i, id := range ids {
		ok(t, s, d, id, strings.Replace(d.set, "41", fmt.Sprint(i), 1))
	}
	// Both tick for a second at once: contexts do not wait for each other.
	start := time.Now()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() { ok(t, s, d, id, d.tick) })
	}
	wg.Wait()
	if took := time.Since(start); took > 1900*time.Millisecond {
		t.Fatalf("two one-second cells in two contexts took %v: they ran one after the other", took)
	}
	for i, id := range ids {
		wantValue(t, ok(t, s, d, id, d.use), fmt.Sprint(i+1))
	}
}

// newKernels returns a Service whose kernels run on this host: python3
// with ipykernel (the Debian package python3-ipykernel) and pyModules,
// node with the image's acorn and sucrase. Without them the test is skipped, or fails
// under CI=true.
func newKernels(t *testing.T, lang string, pyModules ...string) *Service {
	t.Helper()
	// Debian's python3 and node, not a version manager's.
	env := append(os.Environ(), "PATH=/usr/bin:/bin")
	if lang == Python {
		env = append(env, "HOME="+t.TempDir()) // ipython's profile
	} else {
		env = append(env, "HUTCH_NODE_MODULES="+nodeModules(t))
	}
	sp := agenttest.Spawner(t, env)
	if lang == Python {
		requireModules(t, sp, append([]string{"ipykernel", "zmq"}, pyModules...)...)
	} else if _, err := spawn.LookPath("node", sp.Env(), "/"); err != nil {
		testutil.Unavailable(t, "the JavaScript kernel needs node: %v", err)
	}
	s := New(slog.New(slog.DiscardHandler), sp, sp.Workdir(), t.TempDir(), spawn.KeepAliveInterval)
	t.Cleanup(s.Close)
	return s
}

// requireModules gates a test on python3 importing modules.
func requireModules(t *testing.T, sp *spawn.Spawner, modules ...string) {
	t.Helper()
	c, err := sp.Spawn(spawn.SpawnRequest{Argv: []string{"python3", "-c", "import " + strings.Join(modules, ", ")}})
	if err != nil {
		testutil.Unavailable(t, "needs python3: %v", err)
		return
	}
	<-c.Exited()
	if st := c.Status(); st != "exit code 0" {
		testutil.Unavailable(t, "needs the python3 modules %v (Debian: python3-ipykernel python3-matplotlib): import: %s", modules, st)
	}
}

// nodeModules finds acorn and sucrase: HUTCH_NODE_MODULES, or the default
// image's /usr/local/lib/node_modules in the image cache.
func nodeModules(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("HUTCH_NODE_MODULES"); d != "" {
		return d
	}
	dir := testutil.CacheDir()
	b, err := os.ReadFile(filepath.Join(dir, "images", "default.json"))
	if err != nil {
		testutil.Unavailable(t, "the JavaScript kernel needs acorn and sucrase: set HUTCH_NODE_MODULES, or build the default image in %s: %v", dir, err)
		return ""
	}
	var img struct{ Layers []string }
	if err := json.Unmarshal(b, &img); err != nil {
		t.Fatalf("default image: %v", err)
	}
	for _, l := range img.Layers {
		p := filepath.Join(dir, "layers", strings.Replace(l, ":", "/", 1), "usr", "local", "lib", "node_modules")
		if _, err := os.Stat(filepath.Join(p, "sucrase")); err == nil {
			return p
		}
	}
	testutil.Unavailable(t, "no layer of the default image in %s has acorn and sucrase", dir)
	return ""
}
