package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hutch-sh/hutch/client"
)

const (
	keystrokeWarmup = 20
	keystrokeRuns   = 500
	catBytes        = 100_000_000
	catRuns         = 3
)

// termReader delivers a terminal's output as it arrives.
type termReader struct {
	chunks chan []byte
	err    chan error
}

func readTerminal(t *client.Terminal) *termReader {
	r := &termReader{chunks: make(chan []byte, 1024), err: make(chan error, 1)}
	go func() {
		for {
			b := make([]byte, 64<<10)
			n, err := t.Read(b)
			if n > 0 {
				r.chunks <- b[:n]
			}
			if err != nil {
				r.err <- err
				close(r.chunks)
				return
			}
		}
	}()
	return r
}

// until reads until the output holds want, and returns how many bytes it read.
func (r *termReader) until(ctx context.Context, want string, timeout time.Duration) (int64, error) {
	var n int64
	var tail []byte
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case b, ok := <-r.chunks:
			if !ok {
				return n, fmt.Errorf("terminal ended before %q: %v", want, <-r.err)
			}
			n += int64(len(b))
			tail = append(tail, b...)
			if bytes.Contains(tail, []byte(want)) {
				return n, nil
			}
			if len(tail) > len(want) {
				tail = append(tail[:0], tail[len(tail)-len(want):]...)
			}
		case <-deadline.C:
			return n, fmt.Errorf("no %q within %v", want, timeout)
		case <-ctx.Done():
			return n, ctx.Err()
		}
	}
}

// openBenchTerminal starts a bash without rc files in sandbox name and
// attaches to it, ready at its prompt.
func openBenchTerminal(ctx context.Context, c *client.Client, name string) (*client.Terminal, *termReader, func(), error) {
	info, err := c.CreateTerminal(ctx, name, client.TerminalOptions{Argv: []string{"bash", "--norc", "--noprofile"}, Env: map[string]string{"PS1": "$ "}})
	if err != nil {
		return nil, nil, nil, err
	}
	t, err := c.AttachTerminal(ctx, name, info.Id)
	if err != nil {
		return nil, nil, nil, err
	}
	closeAll := func() {
		t.Close()
		_ = c.CloseTerminal(context.WithoutCancel(ctx), name, info.Id)
	}
	r := readTerminal(t)
	if _, err := io.WriteString(t, "echo READY-$((6*7))\r"); err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	if _, err := r.until(ctx, "READY-42", 10*time.Second); err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	return t, r, closeAll, nil
}

// benchKeystroke times one keystroke to its echo, through the daemon's
// WebSocket, the agent's PTY and bash's line editor. Keys alternate between
// a letter and DEL so the line stays empty.
func benchKeystroke(ctx context.Context, c *client.Client, name string) (latency, error) {
	t, r, closeAll, err := openBenchTerminal(ctx, c, name)
	if err != nil {
		return latency{}, err
	}
	defer closeAll()
	time.Sleep(100 * time.Millisecond)
	for len(r.chunks) > 0 {
		<-r.chunks
	}
	var ds []time.Duration
	for i := -keystrokeWarmup; i < keystrokeRuns; i++ {
		key := []byte("x")
		if i%2 != 0 {
			key = []byte{0x7f}
		}
		t0 := time.Now()
		if _, err := t.Write(key); err != nil {
			return latency{}, err
		}
		select {
		case _, ok := <-r.chunks:
			if !ok {
				return latency{}, fmt.Errorf("terminal ended: %v", <-r.err)
			}
		case <-time.After(5 * time.Second):
			return latency{}, fmt.Errorf("no echo within 5s")
		}
		if i >= 0 {
			ds = append(ds, time.Since(t0))
		}
		time.Sleep(time.Millisecond) // typing, not a paste: each echo arrives alone
		for len(r.chunks) > 0 {
			<-r.chunks
		}
	}
	return summarize(ds), nil
}

// benchTerminalCat times `cat` of a 100 MB text file through the terminal
// to the client, in MB/s of the file.
func benchTerminalCat(ctx context.Context, c *client.Client, name string) (float64, error) {
	line := strings.Repeat("0123456789", 10)[:99] // lines of 100 bytes with the newline
	if err := shellIn(ctx, c, name, fmt.Sprintf("yes %s | head -c %d > /tmp/bench-cat", line, catBytes)); err != nil {
		return 0, err
	}
	t, r, closeAll, err := openBenchTerminal(ctx, c, name)
	if err != nil {
		return 0, err
	}
	defer closeAll()
	var rates []float64
	for range catRuns {
		t0 := time.Now()
		if _, err := io.WriteString(t, "cat /tmp/bench-cat; echo CAT-$((6*7))-DONE\r"); err != nil {
			return 0, err
		}
		n, err := r.until(ctx, "CAT-42-DONE", 2*time.Minute)
		if err != nil {
			return 0, err
		}
		if n < catBytes {
			return 0, fmt.Errorf("read %d bytes, fewer than the file's %d", n, catBytes)
		}
		rates = append(rates, mbps(catBytes, time.Since(t0)))
	}
	return medianFloat(rates), nil
}

// benchPTYFloor times the same cat through a PTY inside the sandbox
// (script(1) reading it to /dev/null): what the PTY alone allows.
func benchPTYFloor(ctx context.Context, c *client.Client, name string) (float64, error) {
	var rates []float64
	for range catRuns {
		var out strings.Builder
		st, err := c.Exec(ctx, name, client.Command{Shell: `s=$(date +%s%N); script -qc "cat /tmp/bench-cat" /dev/null >/dev/null; echo $(( $(date +%s%N) - s ))`, Stdout: &out})
		if err != nil {
			return 0, err
		}
		var ns int64
		if _, err := fmt.Sscan(out.String(), &ns); err != nil || st.Code != 0 {
			return 0, fmt.Errorf("pty floor: exit %d, output %q", st.Code, out.String())
		}
		rates = append(rates, mbps(catBytes, time.Duration(ns)))
	}
	return medianFloat(rates), nil
}

// shellIn runs a shell command in sandbox name and fails unless it exits 0.
func shellIn(ctx context.Context, c *client.Client, name, shell string) error {
	st, err := c.Exec(ctx, name, client.Command{Shell: shell})
	if err != nil {
		return err
	}
	if st.Code != 0 {
		return fmt.Errorf("%q exited %d", shell, st.Code)
	}
	return nil
}
