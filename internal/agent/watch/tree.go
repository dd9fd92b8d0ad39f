package watch

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/timestamppb"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// mask is what every watched directory reports.
const mask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MODIFY | unix.IN_ATTRIB |
	unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF |
	unix.IN_ONLYDIR | unix.IN_EXCL_UNLINK

// maxDirs bounds the directories one watch holds: the kernel's watch limit
// is shared by every sandbox on the host.
const maxDirs = 50_000

// Opener opens sandbox directories with the file service's path rules.
type Opener interface {
	OpenDir(op, path string) (*os.File, string, error)
}

// key identifies a tree: watches of one path with one set of excluded
// directories share it.
type key struct {
	path      string
	recursive bool
	exclude   string // the globs, NUL-separated
}

// tree is one inotify instance watching a directory (and, if recursive,
// every directory below it that is not excluded), turning its events into
// WatchEvents for its subscribers and its journal.
type tree struct {
	log     *slog.Logger
	open    Opener
	key     key
	root    string
	exclude filter
	dev     uint64 // the root's filesystem: recursion stays on it
	file    *os.File
	fd      int // the inotify fd; used only while file is held (inside rc.Read, or before run)
	done    chan struct{}
	onEnd   func(*tree)
	closeMu sync.Once

	// Owned by the goroutine reading events (and the walk before it starts).
	dirs    map[int32]string // wd → sandbox path
	wds     map[string]int32
	rootWD  int32
	moves   [16]move // recent move_from, by cookie
	nmove   int
	pending map[string]bool // directories moved from, not (yet) moved to
	synth   map[string]bool // creates made up by a scan, until the kernel's own arrive
	batch   []*hutchv1.WatchEvent
	ended   string

	mu    sync.Mutex // guards below
	subs  map[*sub]bool
	j     journal
	idle  *time.Timer // runs out the kept state once the last subscriber left
	stopd *hutchv1.WatchEvent
	why   string // why the tree was closed from outside
}

type move struct {
	cookie uint32
	path   string
	isDir  bool
}

// newTree starts watching k.path. When it returns, every directory of the
// tree is watched.
func newTree(log *slog.Logger, open Opener, k key, exclude filter, onEnd func(*tree)) (*tree, error) {
	d, root, err := open.OpenDir("watch", k.path)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(d.Fd()), &st); err != nil {
		return nil, fmt.Errorf("watch %q: %w", root, errdefs.ErrInternal)
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) {
			return nil, fmt.Errorf("watch %q: too many inotify instances (%v); end other watches: %w", root, err, errdefs.ErrResourceExhausted)
		}
		return nil, fmt.Errorf("watch %q: inotify: %w: %w", root, err, errdefs.ErrInternal)
	}
	var epoch [6]byte
	_, _ = rand.Read(epoch[:])
	t := &tree{
		log: log, open: open, key: k, root: root, exclude: exclude, dev: st.Dev,
		file: os.NewFile(uintptr(fd), "inotify"), fd: fd, done: make(chan struct{}), onEnd: onEnd,
		dirs: map[int32]string{}, wds: map[string]int32{}, pending: map[string]bool{}, synth: map[string]bool{},
		subs: map[*sub]bool{}, j: journal{epoch: hex.EncodeToString(epoch[:])},
	}
	if err := t.addDir(d, root, false); err != nil {
		t.file.Close()
		return nil, err
	}
	t.rootWD = t.wds[root]
	go t.run()
	return t, nil
}

// close releases the inotify instance; run ends, stopping subscribers
// with reason.
func (t *tree) close(reason string) {
	t.mu.Lock()
	if t.why == "" {
		t.why = reason
	}
	t.mu.Unlock()
	t.closeMu.Do(func() { t.file.Close() })
}

func (t *tree) run() {
	defer close(t.done)
	rc, err := t.file.SyscallConn()
	if err != nil {
		t.end("inotify: " + err.Error())
		return
	}
	buf := make([]byte, 64<<10)
	for t.ended == "" {
		err := rc.Read(func(fd uintptr) bool {
			n, err := unix.Read(int(fd), buf)
			if errors.Is(err, unix.EAGAIN) {
				t.drained()
				t.flush()
				return false
			}
			if err != nil || n <= 0 {
				t.ended = fmt.Sprintf("inotify read: %v", err)
				return true
			}
			t.parse(buf[:n])
			t.flush()
			return true
		})
		if err != nil && t.ended == "" {
			t.mu.Lock()
			t.ended = t.why
			t.mu.Unlock()
			if t.ended == "" {
				t.ended = "the watch was closed"
			}
		}
	}
	t.end(t.ended)
}

// end stops every subscriber with reason and drops the tree.
func (t *tree) end(reason string) {
	t.onEnd(t)
	t.close(reason)
	ev := &hutchv1.WatchEvent{Type: hutchv1.WatchEventType_WATCH_EVENT_TYPE_STOPPED, Path: t.root, Timestamp: timestamppb.Now(), Reason: reason}
	t.mu.Lock()
	ev.Version = t.j.version(t.j.seq)
	t.stopd = ev
	for s := range t.subs {
		s.stop(ev)
	}
	t.mu.Unlock()
}

func (t *tree) parse(b []byte) {
	for len(b) >= unix.SizeofInotifyEvent {
		raw := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		size := unix.SizeofInotifyEvent + int(raw.Len)
		if size > len(b) {
			return
		}
		name := b[unix.SizeofInotifyEvent:size]
		for len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1]
		}
		t.handle(raw.Wd, raw.Mask, raw.Cookie, string(name))
		b = b[size:]
	}
}

func (t *tree) handle(wd int32, m, cookie uint32, name string) {
	if m&unix.IN_Q_OVERFLOW != 0 {
		t.lost("the kernel's event queue overflowed")
		t.rescan()
		return
	}
	dir, ok := t.dirs[wd]
	if !ok {
		return // a directory no longer watched
	}
	if m&unix.IN_IGNORED != 0 {
		t.forget(wd)
		if wd == t.rootWD {
			t.ended = "the watched directory was deleted"
		}
		return
	}
	if name == "" {
		if wd == t.rootWD {
			switch {
			case m&unix.IN_DELETE_SELF != 0:
				t.ended = "the watched directory was deleted"
			case m&unix.IN_MOVE_SELF != 0:
				t.ended = "the watched directory was moved"
			case m&unix.IN_UNMOUNT != 0:
				t.ended = "the watched directory's filesystem was unmounted"
			}
		}
		return
	}
	p := path.Join(dir, name)
	rel, _ := relative(t.root, p)
	if t.exclude.match(rel) {
		return
	}
	isDir := m&unix.IN_ISDIR != 0
	switch {
	case m&unix.IN_CREATE != 0:
		if t.synth[p] {
			delete(t.synth, p)
			return
		}
		t.emit(hutchv1.WatchEventType_WATCH_EVENT_TYPE_CREATE, p, isDir, 0, "")
		if isDir && t.key.recursive {
			t.addPath(p, true)
		}
	case m&unix.IN_MODIFY != 0:
		t.emit(hutchv1.WatchEventType_WATCH_EVENT_TYPE_MODIFY, p, isDir, 0, "")
	case m&unix.IN_ATTRIB != 0:
		t.emit(hutchv1.WatchEventType_WATCH_EVENT_TYPE_ATTRIB, p, isDir, 0, "")
	case m&unix.IN_DELETE != 0:
		delete(t.synth, p) // a create after this one is news
		t.emit(hutchv1.WatchEventType_WATCH_EVENT_TYPE_DELETE, p, isDir, 0, "")
	case m&unix.IN_MOVED_FROM != 0:
		delete(t.synth, p)
		t.emit(hutchv1.WatchEventType_WATCH_EVENT_TYPE_MOVE_FROM, p, isDir, cookie, "")
		t.moves[t.nmove%len(t.moves)] = move{cookie: cookie, path: p, isDir: isDir}
		t.nmove++
		if isDir {
			t.pending[p] = true
		}
	case m&unix.IN_MOVED_TO != 0:
		from := t.takeMove(cookie)
		t.emit(hutchv1.WatchEventType_WATCH_EVENT_TYPE_MOVE_TO, p, isDir, cookie, from.path)
		if !isDir || !t.key.recursive {
			return
		}
		if from.path != "" && t.pending[from.path] {
			delete(t.pending, from.path)
			t.renameDirs(from.path, p)
			return
		}
		t.addPath(p, true) // moved in from outside the tree
	}
}

func (t *tree) takeMove(cookie uint32) move {
	for i, mv := range t.moves {
		if mv.cookie == cookie && mv.path != "" {
			t.moves[i] = move{}
			return mv
		}
	}
	return move{}
}

// drained runs when the kernel queue is empty: a directory moved from
// without a move to left the tree, and scanned creates can no longer be
// reported twice.
func (t *tree) drained() {
	for p := range t.pending {
		t.removeDirs(p)
	}
	clear(t.pending)
	clear(t.synth)
	t.moves = [16]move{}
}

func (t *tree) emit(typ hutchv1.WatchEventType, p string, isDir bool, cookie uint32, oldPath string) {
	t.batch = append(t.batch, &hutchv1.WatchEvent{Type: typ, Path: p, IsDirectory: isDir, Cookie: cookie, OldPath: oldPath})
}

// lost reports that events were lost.
func (t *tree) lost(reason string) {
	t.batch = append(t.batch, &hutchv1.WatchEvent{Type: hutchv1.WatchEventType_WATCH_EVENT_TYPE_OVERFLOW, Path: t.root,
		Reason: reason + "; resync (list the tree again)"})
}

// flush numbers the batch and hands it to the subscribers.
func (t *tree) flush() {
	if len(t.batch) == 0 {
		return
	}
	now := timestamppb.Now()
	t.mu.Lock()
	for _, ev := range t.batch {
		ev.Timestamp = now
		lost := ev.Type == hutchv1.WatchEventType_WATCH_EVENT_TYPE_OVERFLOW
		p := ev.Path
		if lost {
			p = ""
		}
		ev.Version = t.j.version(t.j.add(p, lost))
	}
	for s := range t.subs {
		s.push(t.batch)
	}
	t.mu.Unlock()
	t.batch = make([]*hutchv1.WatchEvent, 0, len(t.batch))
}

// addPath watches the directory at sandbox path p and, recursively, those
// below it; with emit, what is already there is reported as created.
func (t *tree) addPath(p string, emit bool) {
	d, _, err := t.open.OpenDir("watch", p)
	if err != nil {
		if errdefs.Code(err) != errdefs.Code(errdefs.ErrNotFound) {
			t.log.Debug("watch: open directory", "path", p, "err", err)
		}
		return // gone again, or replaced by a non-directory
	}
	defer d.Close()
	if err := t.addDir(d, p, emit); err != nil {
		t.lost(errdefs.Message(err))
	}
}

// addDir watches the open directory d at sandbox path p, then its entries.
func (t *tree) addDir(d *os.File, p string, emit bool) error {
	if len(t.wds) >= maxDirs {
		return fmt.Errorf("watch %q: more than %d directories; watch a smaller tree or exclude some: %w", t.root, maxDirs, errdefs.ErrResourceExhausted)
	}
	wd, err := unix.InotifyAddWatch(t.fd, "/proc/self/fd/"+strconv.Itoa(int(d.Fd())), mask)
	if err != nil {
		if errors.Is(err, unix.ENOSPC) {
			return fmt.Errorf("watch %q: the host's inotify watch limit is reached; watch a smaller tree: %w", t.root, errdefs.ErrResourceExhausted)
		}
		return fmt.Errorf("watch %q: %w: %w", p, err, errdefs.ErrInternal)
	}
	if old, ok := t.dirs[int32(wd)]; ok && old != p {
		delete(t.wds, old)
	}
	t.dirs[int32(wd)] = p
	t.wds[p] = int32(wd)
	for {
		ents, rerr := d.ReadDir(1024)
		for _, e := range ents {
			if err := t.addEntry(d, p, e, emit); err != nil {
				return err
			}
		}
		if rerr == io.EOF || len(ents) == 0 {
			return nil
		}
		if rerr != nil {
			return nil // the directory went away while it was read
		}
	}
}

func (t *tree) addEntry(d *os.File, dir string, e os.DirEntry, emit bool) error {
	p := path.Join(dir, e.Name())
	rel, _ := relative(t.root, p)
	if t.exclude.match(rel) {
		return nil
	}
	isDir := e.IsDir()
	if emit && len(t.synth) < maxQueue {
		t.emit(hutchv1.WatchEventType_WATCH_EVENT_TYPE_CREATE, p, isDir, 0, "")
		t.synth[p] = true
	}
	if !isDir || !t.key.recursive {
		return nil
	}
	fd, err := unix.Openat(int(d.Fd()), e.Name(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil // gone, or not a directory any more
	}
	sub := os.NewFile(uintptr(fd), p)
	defer sub.Close()
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Dev != t.dev {
		return nil // another filesystem (/proc, a mount): not followed
	}
	return t.addDir(sub, p, emit)
}

// rescan watches directories created while events were lost.
func (t *tree) rescan() {
	if !t.key.recursive {
		return
	}
	d, _, err := t.open.OpenDir("watch", t.root)
	if err != nil {
		return
	}
	defer d.Close()
	if err := t.addDir(d, t.root, false); err != nil {
		t.lost(errdefs.Message(err))
	}
}

func (t *tree) forget(wd int32) {
	if p, ok := t.dirs[wd]; ok {
		delete(t.dirs, wd)
		if t.wds[p] == wd {
			delete(t.wds, p)
		}
	}
}

// removeDirs stops watching p and the directories below it.
func (t *tree) removeDirs(p string) {
	for q, wd := range t.wds {
		if _, below := relative(p, q); below {
			_, _ = unix.InotifyRmWatch(t.fd, uint32(wd))
			t.forget(wd)
		}
	}
}

// renameDirs moves the paths of p and the directories below it to q.
func (t *tree) renameDirs(p, q string) {
	moved := map[string]int32{}
	for old, wd := range t.wds {
		if rel, below := relative(p, old); below {
			moved[path.Join(q, rel)] = wd
			delete(t.wds, old)
		}
	}
	for np, wd := range moved {
		t.wds[np] = wd
		t.dirs[wd] = np
	}
}
