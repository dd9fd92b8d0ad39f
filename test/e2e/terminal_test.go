package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/client"
	"github.com/hutch-sh/hutch/internal/termtest"
	"github.com/hutch-sh/hutch/internal/testutil"
)

func attachTerm(t *testing.T, c *client.Client, name, id string) *termtest.Screen {
	t.Helper()
	term, err := c.AttachTerminal(context.Background(), name, id)
	if err != nil {
		t.Fatalf("attach %s: %v", id, err)
	}
	return termtest.New(t, term)
}

func TestTerminalThroughDaemon(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	ctx := context.Background()
	info, err := d.Client.CreateTerminal(ctx, "term", client.TerminalOptions{Cols: 90, Rows: 20})
	if err != nil {
		t.Fatal(err)
	}
	a := attachTerm(t, d.Client, "term", info.Id)
	a.Type(t, `tty; stty size; echo "$TERM $(pwd) $((6*7))"`)
	a.WaitFor(t, "20 90")
	a.WaitFor(t, "xterm-256color /workspace 42")
	if !strings.Contains(a.String(), "/dev/pts/") {
		t.Fatalf("not a pty: %q", a.String())
	}
	b := attachTerm(t, d.Client, "term", info.Id) // replays, then live
	b.WaitFor(t, "xterm-256color /workspace 42")
	b.Type(t, "echo from-b-$((1+2))")
	a.WaitFor(t, "from-b-3")
	ts, err := d.Client.Terminals(ctx, "term")
	if err != nil || len(ts) != 1 || ts[0].Clients != 2 {
		t.Fatalf("terminals: %v %v", ts, err)
	}

	get := func(path string, h http.Header) int {
		req, _ := http.NewRequest(http.MethodGet, d.url+path, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	ws := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}
	tests := []struct {
		name   string
		path   string
		header http.Header
		want   int
	}{
		{"plain HTTP", "/v1/sandboxes/term/terminals/" + info.Id, nil, http.StatusUpgradeRequired},
		{"unknown terminal", "/v1/sandboxes/term/terminals/nope", ws, http.StatusNotFound},
		{"unknown sandbox", "/v1/sandboxes/nosuch/terminals/" + info.Id, ws, http.StatusNotFound},
		{"other origin", "/v1/sandboxes/term/terminals/" + info.Id, http.Header{"Origin": {"http://evil.example"}, "Connection": ws["Connection"], "Upgrade": ws["Upgrade"]}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := get(tt.path, tt.header); got != tt.want {
				t.Fatalf("status %d, want %d", got, tt.want)
			}
		})
	}
	if _, err := d.Client.AttachTerminal(ctx, "term", "nope"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("attach unknown: %v", err)
	}

	a.Type(t, "exit 7")
	for _, s := range []*termtest.Screen{a, b} {
		if code, err := s.Wait(); err != nil || code != 7 {
			t.Fatalf("exit: %d %v", code, err)
		}
	}
}

// hutch shell in a real terminal (a pty pair): raw mode, size, window-size
// changes, ^C, the exit code, the terminal restored, and --attach.
func TestShellCLI(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	d.run("cli", "true")
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if err := pty.Setsize(tty, &pty.Winsize{Cols: 100, Rows: 30}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, "hutch"), "shell", "cli")
	cmd.Env = append(os.Environ(), "HUTCH_URL="+d.url)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	out := &syncBuffer{}
	go io.Copy(out, ptmx)
	saw := func(want string) func() error {
		return func() error {
			if !strings.Contains(out.String(), want) {
				return fmt.Errorf("never saw %q in %q", want, out.String())
			}
			return nil
		}
	}
	waitOut := func(want string) {
		t.Helper()
		testutil.Eventually(t, termtest.Timeout, saw(want))
	}
	send := func(s string) {
		if _, err := ptmx.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	waitOut("# ") // the prompt
	send("tty; stty size; echo raw-$((6*7))\r")
	waitOut("30 100")
	waitOut("raw-42")
	send("sleep 30\r")
	testutil.Eventually(t, termtest.Timeout, func() error { // ^C must find it running
		if pgrep(t, d, "cli", "^sleep 30$") == "" {
			return errors.New("sleep 30 is not running")
		}
		return nil
	})
	send("\x03")
	send("echo after-$((40+2))\r")
	waitOut("after-42")
	if err := pty.Setsize(tty, &pty.Winsize{Cols: 132, Rows: 43}); err != nil { // SIGWINCH to hutch shell
		t.Fatal(err)
	}
	// The resize travels SIGWINCH → hutch shell → daemon → agent; ask again
	// until it has arrived.
	testutil.Eventually(t, termtest.Timeout, func() error {
		send("stty size\r")
		return testutil.Poll(300*time.Millisecond, saw("43 132"))
	})

	ts, err := d.Client.Terminals(context.Background(), "cli")
	if err != nil || len(ts) != 1 {
		t.Fatalf("terminals: %v %v", ts, err)
	}
	send("exit 4\r")
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 4 {
		t.Fatalf("hutch shell: %v, want exit 4; output %q", err, out.String())
	}
	after, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if before.Lflag != after.Lflag || before.Iflag != after.Iflag || before.Oflag != after.Oflag {
		t.Fatalf("terminal not restored: before %+v after %+v", before, after)
	}

	// --attach replays a running terminal's output.
	info, err := d.Client.CreateTerminal(context.Background(), "cli", client.TerminalOptions{Argv: []string{"sh", "-c", "echo kept-$((2+3)); exec sleep 600"}})
	if err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := d.hutch("", "shell", "cli", "--list"); code != 0 || !strings.Contains(out, info.Id) || !strings.Contains(out, "exited 4") {
		t.Fatalf("shell --list: %d %q %q", code, out, errOut)
	}
	attach := exec.Command(filepath.Join(binDir, "hutch"), "shell", "cli", "--attach", info.Id)
	attach.Env = append(os.Environ(), "HUTCH_URL="+d.url)
	r, w := io.Pipe()
	attach.Stdout = w
	if err := attach.Start(); err != nil {
		t.Fatal(err)
	}
	defer attach.Process.Kill()
	buf := make([]byte, 4096)
	got := ""
	for !strings.Contains(got, "kept-5") {
		n, err := r.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got += string(buf[:n])
	}
	if err := d.Client.CloseTerminal(context.Background(), "cli", info.Id); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, r)
	if err := attach.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 128+9 {
		t.Fatalf("attached shell after close: %v", err)
	}
}
