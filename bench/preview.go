package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
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

// benchPreview starts a dev server (python3 -m http.server) in sandbox name,
// exposes it, and times GET / through the preview URL and, in the same run
// with the same client, straight to the sandbox's address; then requests
// per second both ways with clients concurrent clients.
func benchPreview(ctx context.Context, c *client.Client, daemonURL, name string) (r previewResult, err error) {
	p, err := c.StartProcess(ctx, name, []string{"python3", "-m", "http.server", strconv.Itoa(previewPort), "--directory", "/tmp"}, client.ProcessOptions{ID: "bench-web"})
	if err != nil {
		return r, err
	}
	defer func() { _, _ = c.KillProcess(context.WithoutCancel(ctx), name, p.Id, "", time.Second) }()
	if err := c.WaitForPort(ctx, name, p.Id, previewPort, client.PortOptions{HTTP: true}, 30*time.Second); err != nil {
		return r, err
	}
	u, err := c.ExposePort(ctx, name, previewPort)
	if err != nil {
		return r, err
	}
	pu, err := url.Parse(u)
	if err != nil {
		return r, err
	}
	sb, err := c.Get(ctx, name)
	if err != nil {
		return r, err
	}
	if sb.Address == "" {
		return r, fmt.Errorf("sandbox %s has no address", name)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	viaPreview := getter(ctx, hc, daemonURL+"/", pu.Host)
	direct := getter(ctx, hc, "http://"+net.JoinHostPort(sb.Address, strconv.Itoa(previewPort))+"/", "")
	if r.Via, err = timeGets(viaPreview); err != nil {
		return r, err
	}
	if r.Direct, err = timeGets(direct); err != nil {
		return r, err
	}
	if r.ViaRPS, err = rate(viaPreview); err != nil {
		return r, err
	}
	if r.DirectRPS, err = rate(direct); err != nil {
		return r, err
	}
	return r, nil
}

type previewResult struct {
	Via, Direct       latency
	ViaRPS, DirectRPS float64
}

// getter returns a GET of url with Host host (when set) that reads the
// whole body and wants 200.
func getter(ctx context.Context, hc *http.Client, url, host string) func() error {
	return func() error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// timeGets times previewRuns calls of get after 20 to warm up.
func timeGets(get func() error) (latency, error) {
	var ds []time.Duration
	for i := -20; i < previewRuns; i++ {
		t0 := time.Now()
		if err := get(); err != nil {
			return latency{}, err
		}
		if i >= 0 {
			ds = append(ds, time.Since(t0))
		}
	}
	return summarize(ds), nil
}

// rate is how many calls of get per second clients concurrent callers make.
func rate(get func() error) (float64, error) {
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
		return 0, err
	}
	return float64(n.Load()) / previewDuration.Seconds(), nil
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
