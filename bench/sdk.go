package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hutch-sh/hutch/client"
)

const gib = 1 << 30

// execTrue runs `true` in name and fails unless it exits 0.
func execTrue(ctx context.Context, c *client.Client, name string) error {
	st, err := c.Exec(ctx, name, client.Command{Argv: []string{"true"}})
	if err != nil {
		return fmt.Errorf("exec true in %q: %w", name, err)
	}
	if st.Code != 0 {
		return fmt.Errorf("exec true in %q: exit %d", name, st.Code)
	}
	return nil
}

// benchCreate times the first exec on names that do not exist yet, which
// creates each sandbox; the deletes and the pause after each (time for a
// warm pool to refill) are not timed. One untimed warm-up.
func benchCreate(ctx context.Context, c *client.Client, runs int, pause time.Duration) (latency, error) {
	var ds []time.Duration
	for i := -1; i < runs; i++ {
		name := fmt.Sprintf("bench-create-%d", i+1)
		t0 := time.Now()
		err := execTrue(ctx, c, name)
		d := time.Since(t0)
		if err != nil {
			return latency{}, err
		}
		if err := c.Delete(ctx, name); err != nil {
			return latency{}, fmt.Errorf("delete sandbox %q: %w", name, err)
		}
		time.Sleep(pause)
		if i >= 0 {
			ds = append(ds, d)
		}
	}
	return summarize(ds), nil
}

// benchExec times `true` round trips on a running sandbox.
func benchExec(ctx context.Context, c *client.Client, name string, warmup, runs int) (latency, error) {
	ds := make([]time.Duration, 0, runs)
	for i := 0; i < warmup+runs; i++ {
		t0 := time.Now()
		if err := execTrue(ctx, c, name); err != nil {
			return latency{}, err
		}
		if i >= warmup {
			ds = append(ds, time.Since(t0))
		}
	}
	return summarize(ds), nil
}

// benchConcurrent runs `true` from clients goroutines on one sandbox for
// dur and returns completed execs per second.
func benchConcurrent(ctx context.Context, c *client.Client, name string, clients int, dur time.Duration) (float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		n        atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	t0 := time.Now()
	deadline := t0.Add(dur)
	for range clients {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if err := execTrue(ctx, c, name); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(n.Load()) / time.Since(t0).Seconds(), nil
}

// counter is io.Discard that counts what it was given.
type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// benchStdout streams 1 GiB of stdout to the client, runs times, and
// returns the median MB/s.
func benchStdout(ctx context.Context, c *client.Client, name string, runs int) (float64, error) {
	var rates []float64
	for range runs {
		var out counter
		t0 := time.Now()
		st, err := c.Exec(ctx, name, client.Command{Argv: []string{"head", "-c", "1G", "/dev/zero"}, Stdout: &out})
		d := time.Since(t0)
		if err != nil {
			return 0, fmt.Errorf("exec head in %q: %w", name, err)
		}
		if st.Code != 0 || out.n != gib {
			return 0, fmt.Errorf("exec head in %q: exit %d after %d bytes of stdout, want %d", name, st.Code, out.n, gib)
		}
		rates = append(rates, mbps(out.n, d))
	}
	return medianFloat(rates), nil
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// benchFiles writes and reads back a 1 GiB file, runs times each, and
// returns the median write and read MB/s.
func benchFiles(ctx context.Context, c *client.Client, name string, runs int) (write, read float64, err error) {
	const path = "/workspace/bench.bin"
	var ws, rs []float64
	for range runs {
		t0 := time.Now()
		if err := c.WriteFile(ctx, name, path, io.LimitReader(zeros{}, gib), client.WriteOptions{Parents: true}); err != nil {
			return 0, 0, fmt.Errorf("write %s: %w", path, err)
		}
		ws = append(ws, mbps(gib, time.Since(t0)))
		t0 = time.Now()
		n, err := readAll(ctx, c, name, path)
		if err != nil {
			return 0, 0, err
		}
		if n != gib {
			return 0, 0, fmt.Errorf("read %s: got %d bytes, want %d", path, n, gib)
		}
		rs = append(rs, mbps(n, time.Since(t0)))
	}
	if err := c.Remove(ctx, name, path, false); err != nil {
		return 0, 0, fmt.Errorf("remove %s: %w", path, err)
	}
	return medianFloat(ws), medianFloat(rs), nil
}

func readAll(ctx context.Context, c *client.Client, name, path string) (int64, error) {
	r, _, err := c.ReadFile(ctx, name, path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	defer r.Close()
	// io.Discard would read through an 8 KiB buffer.
	var out counter
	if _, err := io.CopyBuffer(&out, r, make([]byte, 1<<20)); err != nil {
		return out.n, fmt.Errorf("read %s: %w", path, err)
	}
	return out.n, nil
}
