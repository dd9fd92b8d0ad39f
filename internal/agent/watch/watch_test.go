package watch

import (
	"context"
	"errors"
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
	"github.com/hutch-sh/hutch/internal/agent/files"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/testutil"
)

type env struct {
	t    *testing.T
	root string
	svc  *Service
}

func newEnv(t *testing.T, o Options) *env {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "workspace"), 0o755); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	e := &env{t: t, root: root, svc: New(log, files.New(root, log), o)}
	t.Cleanup(e.svc.Close)
	return e
}

// host is the host path of a sandbox path.
func (e *env) host(p string) string { return filepath.Join(e.root, p) }

func (e *env) write(p, data string) {
	e.t.Helper()
	if err := os.MkdirAll(filepath.Dir(e.host(p)), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(e.host(p), []byte(data), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

type stream struct {
	t      *testing.T
	events chan *hutchv1.WatchEvent
	done   chan error
	cancel context.CancelFunc
	seen   []*hutchv1.WatchEvent
	once   sync.Once
	err    error
}

// watch starts a Watch and returns once it is live.
func (e *env) watch(req *hutchv1.WatchRequest) *stream {
	e.t.Helper()
	s, err := e.tryWatch(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) tryWatch(req *hutchv1.WatchRequest) (*stream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &stream{t: e.t, events: make(chan *hutchv1.WatchEvent, 1<<16), done: make(chan error, 1), cancel: cancel}
	go func() {
		s.done <- e.svc.watch(ctx, req, func(r *hutchv1.WatchResponse) error {
			for _, ev := range r.Events {
				s.events <- ev
			}
			return nil
		})
	}()
	select {
	case ev := <-s.events:
		if ev.Type != hutchv1.WatchEventType_WATCH_EVENT_TYPE_STARTED {
			e.t.Fatalf("first event %v", ev)
		}
		e.t.Cleanup(func() { s.close() })
		return s, nil
	case err := <-s.done:
		cancel()
		return nil, err
	case <-time.After(10 * time.Second):
		e.t.Fatal("watch did not start")
	}
	return nil, nil
}

func (s *stream) close() {
	s.cancel()
	s.wait()
}

// wait returns how the stream ended, once it has.
func (s *stream) wait() error {
	s.once.Do(func() { s.err = <-s.done })
	return s.err
}

// until collects events until one matches, failing after a timeout.
func (s *stream) until(what string, match func(*hutchv1.WatchEvent) bool) *hutchv1.WatchEvent {
	s.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-s.events:
			s.seen = append(s.seen, ev)
			if match(ev) {
				return ev
			}
		case <-timeout:
			s.t.Fatalf("no %s; saw:\n%s", what, dump(s.seen))
		}
	}
}

func (s *stream) untilEvent(typ hutchv1.WatchEventType, p string) *hutchv1.WatchEvent {
	s.t.Helper()
	return s.until(typ.String()+" "+p, func(ev *hutchv1.WatchEvent) bool { return ev.Type == typ && ev.Path == p })
}

// quiet collects what arrives within d.
func (s *stream) quiet(d time.Duration) []*hutchv1.WatchEvent {
	var out []*hutchv1.WatchEvent
	timeout := time.After(d)
	for {
		select {
		case ev := <-s.events:
			out = append(out, ev)
		case <-timeout:
			return out
		}
	}
}

func dump(evs []*hutchv1.WatchEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "  %s %s old=%q cookie=%d %s\n", ev.Type, ev.Path, ev.OldPath, ev.Cookie, ev.Reason)
	}
	return b.String()
}

const (
	create   = hutchv1.WatchEventType_WATCH_EVENT_TYPE_CREATE
	modify   = hutchv1.WatchEventType_WATCH_EVENT_TYPE_MODIFY
	del      = hutchv1.WatchEventType_WATCH_EVENT_TYPE_DELETE
	moveFrom = hutchv1.WatchEventType_WATCH_EVENT_TYPE_MOVE_FROM
	moveTo   = hutchv1.WatchEventType_WATCH_EVENT_TYPE_MOVE_TO
	overflow = hutchv1.WatchEventType_WATCH_EVENT_TYPE_OVERFLOW
	stopped  = hutchv1.WatchEventType_WATCH_EVENT_TYPE_STOPPED
)

// mkdir -p followed at once by a write deep inside: the new directories are
// scanned when they are added, so nothing written before their watch exists
// is lost, and nothing is reported twice.
func TestNestedDirectoriesCreatedAfterStart(t *testing.T) {
	e := newEnv(t, Options{})
	s := e.watch(&hutchv1.WatchRequest{Path: "/workspace"})
	e.write("/workspace/a/b/c/new.txt", "x")
	s.untilEvent(create, "/workspace/a/b/c/new.txt")
	e.write("/workspace/a/b/c/later.txt", "y")
	s.untilEvent(modify, "/workspace/a/b/c/later.txt")
	counts := map[string]int{}
	for _, ev := range append(s.seen, s.quiet(200*time.Millisecond)...) {
		if ev.Type == create {
			counts[ev.Path]++
		}
	}
	for _, p := range []string{"/workspace/a", "/workspace/a/b", "/workspace/a/b/c", "/workspace/a/b/c/new.txt", "/workspace/a/b/c/later.txt"} {
		if counts[p] != 1 {
			t.Errorf("%d creates of %s:\n%s", counts[p], p, dump(s.seen))
		}
	}
}

func TestRenames(t *testing.T) {
	e := newEnv(t, Options{})
	e.write("/workspace/x/f", "1")
	e.write("/workspace/y/.keep", "")
	e.write("/workspace/d/sub/g", "2")
	s := e.watch(&hutchv1.WatchRequest{Path: "/workspace"})

	mustRename(t, e.host("/workspace/x/f"), e.host("/workspace/x/f2")) // within a directory
	to := s.untilEvent(moveTo, "/workspace/x/f2")
	if to.OldPath != "/workspace/x/f" || to.Cookie == 0 {
		t.Errorf("move_to %v", to)
	}
	mustRename(t, e.host("/workspace/x/f2"), e.host("/workspace/y/f3")) // across directories
	if to := s.untilEvent(moveTo, "/workspace/y/f3"); to.OldPath != "/workspace/x/f2" {
		t.Errorf("move_to %v", to)
	}
	// A renamed directory keeps being watched under its new name.
	mustRename(t, e.host("/workspace/d"), e.host("/workspace/y/d2"))
	s.untilEvent(moveTo, "/workspace/y/d2")
	e.write("/workspace/y/d2/sub/g", "3")
	s.untilEvent(modify, "/workspace/y/d2/sub/g")
	// A directory moved out of the tree is no longer reported.
	if err := os.MkdirAll(e.host("/outside"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustRename(t, e.host("/workspace/y/d2"), e.host("/outside/d3"))
	s.untilEvent(moveFrom, "/workspace/y/d2")
	// Once an event after the move arrives, the watcher has handled the move.
	e.write("/workspace/after-move", "")
	s.untilEvent(create, "/workspace/after-move")
	e.write("/outside/d3/sub/g", "4")
	e.write("/workspace/marker", "")
	for _, ev := range append(s.quiet(300*time.Millisecond), s.seen...) {
		if strings.Contains(ev.Path, "/d2/sub") && ev.Type == modify && ev.Path != "/workspace/y/d2/sub/g" {
			t.Errorf("event from a directory moved out: %v", ev)
		}
	}
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteTreeAndRoot(t *testing.T) {
	e := newEnv(t, Options{})
	e.write("/workspace/w/t/a/b/f", "x")
	s := e.watch(&hutchv1.WatchRequest{Path: "/workspace/w"})
	if err := os.RemoveAll(e.host("/workspace/w/t")); err != nil {
		t.Fatal(err)
	}
	s.untilEvent(del, "/workspace/w/t/a/b/f")
	s.untilEvent(del, "/workspace/w/t")
	if err := os.RemoveAll(e.host("/workspace/w")); err != nil {
		t.Fatal(err)
	}
	ev := s.untilEvent(stopped, "/workspace/w")
	if !strings.Contains(ev.Reason, "deleted") {
		t.Errorf("stopped: %q", ev.Reason)
	}
	if err := s.wait(); err != nil {
		t.Errorf("stream ended with %v", err)
	}
}

func TestFilters(t *testing.T) {
	e := newEnv(t, Options{})
	tests := []struct {
		name string
		req  *hutchv1.WatchRequest
		seen []string
		not  []string
	}{
		{"default excludes", &hutchv1.WatchRequest{},
			[]string{"/workspace/f.go", "/workspace/src/a.txt"},
			[]string{"/workspace/.git/HEAD", "/workspace/node_modules/m/i.js"}},
		{"no default excludes", &hutchv1.WatchRequest{NoDefaultExcludes: true},
			[]string{"/workspace/.git/HEAD", "/workspace/node_modules/m/i.js"}, nil},
		{"include", &hutchv1.WatchRequest{Include: []string{"*.go"}},
			[]string{"/workspace/f.go"}, []string{"/workspace/src/a.txt"}},
		{"exclude", &hutchv1.WatchRequest{Exclude: []string{"src", "*.go"}},
			[]string{"/workspace/node_modules"}, []string{"/workspace/src/a.txt", "/workspace/f.go"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fmt.Sprintf("/workspace/%d", i)
			for _, d := range []string{".git", "node_modules/m", "src"} {
				if err := os.MkdirAll(e.host(root+"/"+d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			tt.req.Path = root
			s := e.watch(tt.req)
			for _, p := range []string{"f.go", "src/a.txt", ".git/HEAD", "node_modules/m/i.js", "node_modules"} {
				if p != "node_modules" {
					e.write(root+"/"+p, "x")
				} else if err := os.Chmod(e.host(root+"/node_modules"), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			evs := s.quiet(300 * time.Millisecond)
			got := map[string]bool{}
			for _, ev := range evs {
				got[strings.Replace(ev.Path, root, "/workspace", 1)] = true
			}
			for _, p := range tt.seen {
				if !got[p] {
					t.Errorf("no event for %s:\n%s", p, dump(evs))
				}
			}
			for _, p := range tt.not {
				if got[p] {
					t.Errorf("event for %s:\n%s", p, dump(evs))
				}
			}
		})
	}
}

// 10,000 files created as fast as possible: every one is reported, or an
// overflow event says some were not.
func TestManyFiles(t *testing.T) {
	e := newEnv(t, Options{})
	s := e.watch(&hutchv1.WatchRequest{Path: "/workspace"})
	const n = 10_000
	for i := range n {
		f, err := os.Create(e.host(fmt.Sprintf("/workspace/f%05d", i)))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	e.write("/workspace/done", "")
	created := map[string]bool{}
	lost := false
	s.until("done", func(ev *hutchv1.WatchEvent) bool {
		switch ev.Type {
		case create:
			created[ev.Path] = true
		case overflow:
			lost = true
		}
		return ev.Path == "/workspace/done"
	})
	if !lost && len(created) != n+1 {
		t.Fatalf("%d of %d creates and no overflow", len(created), n+1)
	}
	t.Logf("%d creates, overflow %v", len(created), lost)
}

// A client that stops reading gets one overflow event, not unbounded memory.
func TestSlowClientOverflows(t *testing.T) {
	e := newEnv(t, Options{})
	block := make(chan struct{})
	events := make(chan *hutchv1.WatchEvent, 1<<16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	first := true
	go func() {
		done <- e.svc.watch(ctx, &hutchv1.WatchRequest{Path: "/workspace"}, func(r *hutchv1.WatchResponse) error {
			if !first {
				<-block
			}
			first = false
			for _, ev := range r.Events {
				events <- ev
			}
			return nil
		})
	}()
	<-events // started
	for i := range maxQueue + maxBatch + 100 {
		e.write(fmt.Sprintf("/workspace/g%05d", i), "")
	}
	// The watcher reads the writes while the client is blocked, until its
	// queue overflows.
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := e.svc.dropped(); n == 0 {
			return errors.New("no events dropped yet")
		}
		return nil
	})
	close(block)
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Type == overflow {
				if !strings.Contains(ev.Reason, "fell behind") {
					t.Errorf("overflow: %q", ev.Reason)
				}
				return
			}
		case <-timeout:
			t.Fatal("no overflow event")
		}
	}
}

func countInotify(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ent := range ents {
		if l, _ := os.Readlink("/proc/self/fd/" + ent.Name()); l == "anon_inode:inotify" {
			n++
		}
	}
	return n
}

// Opening and closing 500 watches leaves no inotify instance behind, beyond
// the few kept idle for CheckChanges.
func TestNoLeaks(t *testing.T) {
	for _, tt := range []struct {
		name string
		o    Options
		max  int
	}{{"kept idle", Options{}, DefaultMaxIdle}, {"no retention", Options{Retention: -1}, 0}} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.o)
			before := countInotify(t)
			for i := range 500 {
				p := fmt.Sprintf("/workspace/d%d", i%20)
				if err := os.MkdirAll(e.host(p), 0o755); err != nil {
					t.Fatal(err)
				}
				s, err := e.tryWatch(&hutchv1.WatchRequest{Path: p})
				if err != nil {
					t.Fatal(err)
				}
				s.close()
			}
			if n := countInotify(t) - before; n > tt.max {
				t.Fatalf("%d inotify instances left, want ≤ %d", n, tt.max)
			}
			e.svc.Close()
			if n := countInotify(t) - before; n != 0 {
				t.Fatalf("%d inotify instances left after Close", n)
			}
		})
	}
}

func TestCheckChanges(t *testing.T) {
	e := newEnv(t, Options{})
	s := e.watch(&hutchv1.WatchRequest{Path: "/workspace"})
	e.write("/workspace/a", "1")
	v := s.untilEvent(modify, "/workspace/a").Version
	s.close()

	check := func(since string) *hutchv1.CheckChangesResponse {
		t.Helper()
		res, err := e.svc.checkChanges(&hutchv1.CheckChangesRequest{Path: "/workspace", Since: since})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := check(v); res.Status != hutchv1.ChangeStatus_CHANGE_STATUS_UNCHANGED {
		t.Fatalf("right after: %v", res)
	}
	// Changes made with no stream open are still recorded.
	e.write("/workspace/b", "2")
	e.write("/workspace/sub/c", "3")
	var res *hutchv1.CheckChangesResponse
	testutil.Eventually(t, 5*time.Second, func() error {
		if res = check(v); len(res.Paths) < 3 {
			return fmt.Errorf("changes so far: %v", res)
		}
		return nil
	})
	if res.Status != hutchv1.ChangeStatus_CHANGE_STATUS_CHANGED || !res.PathsComplete ||
		strings.Join(res.Paths, " ") != "/workspace/b /workspace/sub /workspace/sub/c" {
		t.Fatalf("after changes: %v", res)
	}
	if res := check(res.Version); res.Status != hutchv1.ChangeStatus_CHANGE_STATUS_UNCHANGED {
		t.Fatalf("from the new version: %v", res)
	}
	for _, since := range []string{"", "nope", "abc.1"} {
		if res := check(since); res.Status != hutchv1.ChangeStatus_CHANGE_STATUS_RESYNC || res.Reason == "" {
			t.Errorf("since %q: %v", since, res)
		}
	}
	res2, err := e.svc.checkChanges(&hutchv1.CheckChangesRequest{Path: "/workspace/never", Since: v})
	if err != nil || res2.Status != hutchv1.ChangeStatus_CHANGE_STATUS_RESYNC {
		t.Errorf("unwatched path: %v %v", res2, err)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, Options{})
	e.write("/workspace/file", "x")
	if err := os.Symlink("../../../../../../", e.host("/workspace/up")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  *hutchv1.WatchRequest
		want error
	}{
		{"empty path", &hutchv1.WatchRequest{}, errdefs.ErrInvalidArgument},
		{"NUL", &hutchv1.WatchRequest{Path: "/workspace/\x00"}, errdefs.ErrInvalidArgument},
		{"missing", &hutchv1.WatchRequest{Path: "/workspace/nope"}, errdefs.ErrNotFound},
		{"file", &hutchv1.WatchRequest{Path: "/workspace/file"}, errdefs.ErrFailedPrecondition},
		{"bad glob", &hutchv1.WatchRequest{Path: "/workspace", Include: []string{"["}}, errdefs.ErrInvalidArgument},
		{"empty glob", &hutchv1.WatchRequest{Path: "/workspace", Exclude: []string{""}}, errdefs.ErrInvalidArgument},
		// The link climbs to the sandbox's root, never the host's.
		{"symlink out of the root", &hutchv1.WatchRequest{Path: "/workspace/up/tmp"}, errdefs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.req.Path == "" && tt.name != "empty path" {
				t.Fatal("bad table")
			}
			s, err := e.tryWatch(tt.req)
			if err == nil {
				s.close()
				t.Fatal("watch started")
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if got := errdefs.ToConnect(err); connect.CodeOf(got) == connect.CodeInternal {
				t.Fatalf("internal: %v", got)
			}
		})
	}
}

// dropped counts the events every stream's queue dropped, for tests that
// wait for an overflow.
func (s *Service) dropped() int {
	s.hub.mu.Lock()
	trees := make([]*tree, 0, len(s.hub.trees))
	for _, t := range s.hub.trees {
		trees = append(trees, t)
	}
	s.hub.mu.Unlock()
	n := 0
	for _, t := range trees {
		t.mu.Lock()
		subs := make([]*sub, 0, len(t.subs))
		for sb := range t.subs {
			subs = append(subs, sb)
		}
		t.mu.Unlock()
		for _, sb := range subs {
			sb.mu.Lock()
			n += sb.dropped
			sb.mu.Unlock()
		}
	}
	return n
}
