package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hutch-sh/hutch/client"
)

const (
	previewPort     = 8000
	previewRuns     = 300
	startWaitRuns   = 10
	previewDuration = 2 * time.Second
)

// inSandboxGet times GETs of the same server from inside the sandbox, over
// its loopback: the baseline the preview proxy adds to.
const inSandboxGet = `
import http.client, time, statistics
c = http.client.HTTPConnection("127.0.0.1", 8000)
ts = []
for i in range(%d):
    t = time.perf_counter(); c.request("GET", "/"); c.getresponse().read(); ts.append(time.perf_counter() - t)
print(statistics.median(ts) * 1e9)
`

// benchPreview starts a dev server (python3 -m http.server) in sandbox name,
// exposes it, and times GET / through the preview URL against the same
// GETs made inside the sandbox; then requests per second with clients
// concurrent clients.
func benchPreview(ctx context.Context, c *client.Client, daemonURL, name string) (via, direct latency, rps float64, err error) {
	p, err := c.StartProcess(ctx, name, []string{"python3", "-m", "http.server", strconv.Itoa(previewPort), "--bind", "127.0.0.1", "--directory", "/tmp"}, client.ProcessOptions{ID: "bench-web"})
	if err != nil {
		return via, direct, 0, err
	}
	defer func() { _, _ = c.KillProcess(context.WithoutCancel(ctx), name, p.Id, "", time.Second) }()
	if err := c.WaitForPort(ctx, name, p.Id, previewPort, client.PortOptions{HTTP: true}, 30*time.Second); err != nil {
		return via, direct, 0, err
	}
	u, err := c.ExposePort(ctx, name, previewPort)
	if err != nil {
		return via, direct, 0, err
	}
	pu, err := url.Parse(u)
	if err != nil {
		return via, direct, 0, err
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	get := func() error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, daemonURL+"/", nil)
		req.Host = pu.Host
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("preview GET: %s", resp.Status)
		}
		return nil
	}
	var ds []time.Duration
	for i := -20; i < previewRuns; i++ {
		t0 := time.Now()
		if err := get(); err != nil {
			return via, direct, 0, err
		}
		if i >= 0 {
			ds = append(ds, time.Since(t0))
		}
	}
	via = summarize(ds)

	var out strings.Builder
	st, err := c.Exec(ctx, name, client.Command{Argv: []string{"python3", "-c", fmt.Sprintf(inSandboxGet, previewRuns)}, Stdout: &out})
	if err != nil || st.Code != 0 {
		return via, direct, 0, fmt.Errorf("in-sandbox GETs: %v (exit %v)", err, st)
	}
	ns, err := strconv.ParseFloat(strings.TrimSpace(out.String()), 64)
	if err != nil {
		return via, direct, 0, err
	}
	direct = latency{Median: time.Duration(ns), Runs: previewRuns}

	var n atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, clients)
	deadline := time.Now().Add(previewDuration)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := get(); err != nil {
					errc <- err
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return via, direct, 0, err
	}
	return via, direct, float64(n.Load()) / previewDuration.Seconds(), nil
}

// benchStartToReady times StartProcess of a server until WaitForPort
// succeeds.
func benchStartToReady(ctx context.Context, c *client.Client, name string) (latency, error) {
	var ds []time.Duration
	for i := range startWaitRuns {
		port := 8100 + i
		t0 := time.Now()
		p, err := c.StartProcess(ctx, name, []string{"python3", "-m", "http.server", strconv.Itoa(port), "--bind", "127.0.0.1"}, client.ProcessOptions{})
		if err != nil {
			return latency{}, err
		}
		err = c.WaitForPort(ctx, name, p.Id, port, client.PortOptions{}, 30*time.Second)
		d := time.Since(t0)
		_, _ = c.KillProcess(ctx, name, p.Id, "", time.Second)
		if err != nil {
			return latency{}, err
		}
		ds = append(ds, d)
	}
	return summarize(ds), nil
}
