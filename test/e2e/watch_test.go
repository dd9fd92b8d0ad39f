package e2e

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/client"
	"github.com/hutch-sh/hutch/internal/testutil"
)

// watcher is one Watch stream through the SDK, its events collected.
type watcher struct {
	t       *testing.T
	events  chan *hutchv1.WatchEvent
	cancel  context.CancelFunc
	done    chan struct{}
	stopped *hutchv1.WatchEvent
	err     error
	seen    []*hutchv1.WatchEvent
	mu      sync.Mutex
}

// startWatch returns once the watch is live.
func startWatch(t *testing.T, c *client.Client, name, path string, o client.WatchOptions) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{t: t, events: make(chan *hutchv1.WatchEvent, 1<<16), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		stopped, err := c.Watch(ctx, name, path, o, func(ev *hutchv1.WatchEvent) error {
			w.events <- ev
			return nil
		})
		w.mu.Lock()
		w.stopped, w.err = stopped, err
		w.mu.Unlock()
	}()
	select {
	case ev := <-w.events:
		if ev.Type != hutchv1.WatchEventType_WATCH_EVENT_TYPE_STARTED {
			t.Fatalf("first event: %v", ev)
		}
	case <-w.done:
		t.Fatalf("watch ended before it started: %v", w.err)
	case <-time.After(30 * time.Second):
		t.Fatal("watch did not start")
	}
	t.Cleanup(w.close)
	return w
}

func (w *watcher) close() {
	w.cancel()
	<-w.done
}

// until collects events until one matches.
func (w *watcher) until(what string, match func(*hutchv1.WatchEvent) bool) *hutchv1.WatchEvent {
	w.t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-w.events:
			w.seen = append(w.seen, ev)
			if match(ev) {
				return ev
			}
		case <-timeout:
			var b strings.Builder
			for _, ev := range w.seen[max(0, len(w.seen)-30):] {
				fmt.Fprintf(&b, "  %s %s %q\n", ev.Type, ev.Path, ev.OldPath)
			}
			w.t.Fatalf("no %s; last events:\n%s", what, b.String())
		}
	}
}

func (w *watcher) untilEvent(typ hutchv1.WatchEventType, p string) *hutchv1.WatchEvent {
	w.t.Helper()
	return w.until(typ.String()+" "+p, func(ev *hutchv1.WatchEvent) bool { return ev.Type == typ && ev.Path == p })
}

const (
	evCreate   = hutchv1.WatchEventType_WATCH_EVENT_TYPE_CREATE
	evModify   = hutchv1.WatchEventType_WATCH_EVENT_TYPE_MODIFY
	evDelete   = hutchv1.WatchEventType_WATCH_EVENT_TYPE_DELETE
	evMoveTo   = hutchv1.WatchEventType_WATCH_EVENT_TYPE_MOVE_TO
	evOverflow = hutchv1.WatchEventType_WATCH_EVENT_TYPE_OVERFLOW
)

// Writes through the files API, by an exec'd command and by a process
// started before the watch; renames; deleting a tree; default excludes;
// then what changed while no stream was open; then the sandbox destroyed
// under the stream.
func TestWatch(t *testing.T) {
	d := newDaemon(t)
	ctx := context.Background()
	c := d.Client
	d.run("w", "mkdir", "-p", "/workspace/w/.git", "/workspace/w/node_modules")
	if _, err := c.StartProcess(ctx, "w", nil, client.ProcessOptions{ID: "ticker", Shell: "while :; do echo tick >> /workspace/w/bg.log; sleep 0.1; done"}); err != nil {
		t.Fatal(err)
	}
	w := startWatch(t, c, "w", "/workspace/w", client.WatchOptions{})

	w.untilEvent(evModify, "/workspace/w/bg.log") // a process started before the watch
	if err := c.WriteFile(ctx, "w", "/workspace/w/api.txt", strings.NewReader("hello"), client.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	w.until("api.txt written", func(ev *hutchv1.WatchEvent) bool {
		return ev.Path == "/workspace/w/api.txt" && (ev.Type == evCreate || ev.Type == evModify || ev.Type == evMoveTo)
	})
	d.run("w", "sh", "-c", "mkdir -p /workspace/w/a/b/c && echo x > /workspace/w/a/b/c/f && touch /workspace/w/.git/HEAD /workspace/w/node_modules/m.js")
	w.untilEvent(evCreate, "/workspace/w/a/b/c/f")
	d.run("w", "sh", "-c", "mv /workspace/w/a/b/c/f /workspace/w/a/b/c/g && mv /workspace/w/a/b/c/g /workspace/w/moved")
	if ev := w.untilEvent(evMoveTo, "/workspace/w/a/b/c/g"); ev.OldPath != "/workspace/w/a/b/c/f" || ev.Cookie == 0 {
		t.Errorf("rename within a directory: %v", ev)
	}
	if ev := w.untilEvent(evMoveTo, "/workspace/w/moved"); ev.OldPath != "/workspace/w/a/b/c/g" {
		t.Errorf("rename across directories: %v", ev)
	}
	d.run("w", "rm", "-rf", "/workspace/w/a")
	w.untilEvent(evDelete, "/workspace/w/a/b/c")
	last := w.untilEvent(evDelete, "/workspace/w/a")
	for _, ev := range w.seen {
		if strings.Contains(ev.Path, ".git") || strings.Contains(ev.Path, "node_modules") {
			t.Errorf("event in a default exclude: %v", ev)
		}
	}
	if _, err := c.KillProcess(ctx, "w", "ticker", "", time.Second); err != nil {
		t.Fatal(err)
	}

	// Disconnected: CheckChanges says what was missed.
	w.close()
	res, err := c.CheckChanges(ctx, "w", "/workspace/w", last.Version, client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	since := res.Version
	d.run("w", "sh", "-c", "echo more > /workspace/w/offline.txt")
	res, err = c.CheckChanges(ctx, "w", "/workspace/w", since, client.WatchOptions{})
	if err != nil || res.Status != hutchv1.ChangeStatus_CHANGE_STATUS_CHANGED || !strings.Contains(strings.Join(res.Paths, " "), "/workspace/w/offline.txt") {
		t.Fatalf("check changes: %v %v", res, err)
	}
	if res, err := c.CheckChanges(ctx, "w", "/workspace/w", res.Version, client.WatchOptions{}); err != nil || res.Status != hutchv1.ChangeStatus_CHANGE_STATUS_UNCHANGED {
		t.Fatalf("check changes again: %v %v", res, err)
	}

	// The sandbox destroyed under a stream: it ends with stopped.
	w2 := startWatch(t, c, "w", "/workspace/w", client.WatchOptions{})
	if err := c.Delete(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w2.done:
	case <-time.After(30 * time.Second):
		t.Fatal("watch still open after the sandbox was destroyed")
	}
	if w2.err != nil || w2.stopped == nil || !strings.Contains(w2.stopped.Reason, "destroyed") {
		t.Fatalf("after destroy: stopped %v, err %v", w2.stopped, w2.err)
	}
}

// 10,000 files created at once in the sandbox: each is reported, or an
// overflow event says some were not.
func TestWatchManyFiles(t *testing.T) {
	d := newDaemon(t)
	c := d.Client
	d.run("many", "mkdir", "-p", "/workspace/many")
	w := startWatch(t, c, "many", "/workspace/many", client.WatchOptions{})
	d.run("many", "python3", "-c", "import os\nfor i in range(10000): open(f'/workspace/many/f{i:05}', 'w').close()\nopen('/workspace/many/done', 'w').close()")
	created, lost := map[string]bool{}, false
	w.until("done", func(ev *hutchv1.WatchEvent) bool {
		switch ev.Type {
		case evCreate:
			created[ev.Path] = true
		case evOverflow:
			lost = true
		}
		return ev.Path == "/workspace/many/done" && ev.Type == evCreate
	})
	if !lost && len(created) != 10_001 {
		t.Fatalf("%d creates of 10001 and no overflow event", len(created))
	}
	t.Logf("%d creates, overflow: %v", len(created), lost)
}

// 500 watches opened and closed leave no inotify instance behind but the
// few kept idle for CheckChanges.
func TestWatchNoLeaks(t *testing.T) {
	d := newDaemon(t)
	c := d.Client
	d.run("leak", "mkdir", "-p", "/workspace/l0", "/workspace/l1", "/workspace/l2")
	for i := range 500 {
		ctx, cancel := context.WithCancel(context.Background())
		started := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, err := c.Watch(ctx, "leak", "/workspace/l"+strconv.Itoa(i%3), client.WatchOptions{}, func(*hutchv1.WatchEvent) error {
				close(started)
				return client.ErrStopWatch
			})
			done <- err
		}()
		select {
		case <-started:
		case err := <-done:
			t.Fatalf("watch %d: %v", i, err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("watch %d: %v", i, err)
		}
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		out := d.run("leak", "sh", "-c", "ls -l /proc/1/fd | grep -c inotify || true")
		if n, _ := strconv.Atoi(strings.TrimSpace(out)); n > 3 {
			return fmt.Errorf("%d inotify instances in the agent after 500 watches on 3 paths", n)
		}
		return nil
	})
}

func TestWatchBadInput(t *testing.T) {
	d := newDaemon(t)
	c := d.Client
	ctx := context.Background()
	d.run("bad", "touch", "/workspace/file")
	tests := []struct {
		name, sandbox, path string
		o                   client.WatchOptions
		want                error
	}{
		{"no such sandbox", "nope", "/workspace", client.WatchOptions{}, client.ErrNotFound},
		{"bad sandbox name", "Bad_Name", "/workspace", client.WatchOptions{}, client.ErrInvalidArgument},
		{"missing path", "bad", "/workspace/missing", client.WatchOptions{}, client.ErrNotFound},
		{"a file", "bad", "/workspace/file", client.WatchOptions{}, client.ErrFailedPrecondition},
		{"bad glob", "bad", "/workspace", client.WatchOptions{Include: []string{"[x"}}, client.ErrInvalidArgument},
		{"NUL in path", "bad", "/workspace/\x00", client.WatchOptions{}, client.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Watch(ctx, tt.sandbox, tt.path, tt.o, func(*hutchv1.WatchEvent) error { return errors.New("started") })
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
	_, stderr, code := d.hutch("", "watch", "bad", "/workspace/missing")
	if code != 1 || !strings.Contains(stderr, "/workspace/missing") {
		t.Fatalf("CLI: exit %d, %q", code, stderr)
	}
}
