package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/client"
)

const (
	watchRuns  = 300
	watchBurst = 20_000
)

// watchWriter creates files named by the wall-clock time of their creation
// (the sandbox shares the host's clock), spaced so each is timed alone;
// then a burst of files as fast as it can.
const watchWriter = `
import os, time, sys
d = sys.argv[1]
for i in range(%d):
    open(os.path.join(d, "t%%d" %% time.time_ns()), "w").close()
    time.sleep(0.01)
open(os.path.join(d, "end-latency"), "w").close()
time.sleep(0.3)
for i in range(%d):
    open(os.path.join(d, "b%%06d" %% i), "w").close()
open(os.path.join(d, "end-burst"), "w").close()
`

// benchWatch times events from a file created inside the sandbox to the
// client receiving it, then how many events per second reach the client
// from a burst of creates.
func benchWatch(ctx context.Context, c *client.Client, name string) (l latency, perSec float64, lost bool, err error) {
	dir := "/workspace/bench-watch"
	if err := c.MakeDir(ctx, name, dir, true); err != nil {
		return l, 0, false, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan struct{})
	var (
		ds          []time.Duration
		first, last time.Time
		burst       int
		overflowed  bool
	)
	done := make(chan error, 1)
	go func() {
		_, err := c.Watch(ctx, name, dir, client.WatchOptions{}, func(ev *hutchv1.WatchEvent) error {
			now := time.Now()
			base := path.Base(ev.Path)
			switch {
			case ev.Type == hutchv1.WatchEventType_WATCH_EVENT_TYPE_STARTED:
				close(ready)
			case ev.Type == hutchv1.WatchEventType_WATCH_EVENT_TYPE_OVERFLOW:
				overflowed = true
			case ev.Type != hutchv1.WatchEventType_WATCH_EVENT_TYPE_CREATE:
			case strings.HasPrefix(base, "t"):
				if ns, err := strconv.ParseInt(base[1:], 10, 64); err == nil {
					ds = append(ds, now.Sub(time.Unix(0, ns)))
				}
			case strings.HasPrefix(base, "b"):
				if burst == 0 {
					first = now
				}
				burst++
			case base == "end-burst":
				last = now
				return client.ErrStopWatch
			}
			return nil
		})
		done <- err
	}()
	select {
	case <-ready:
	case err := <-done:
		return l, 0, false, fmt.Errorf("watch: %v", err)
	}
	var out strings.Builder
	st, err := c.Exec(ctx, name, client.Command{Argv: []string{"python3", "-c", fmt.Sprintf(watchWriter, watchRuns, watchBurst), dir}, Stderr: &out})
	if err != nil || st.Code != 0 {
		return l, 0, false, fmt.Errorf("writer: %v (exit %v) %s", err, st, out.String())
	}
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		err = errors.New("the burst's last event never came")
	}
	if err != nil {
		return l, 0, false, err
	}
	if burst > 1 && last.After(first) {
		perSec = float64(burst) / last.Sub(first).Seconds()
	}
	return summarize(ds), perSec, overflowed || burst < watchBurst, nil
}
