package kernel

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agent/spawn"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

//go:embed runner.js
var runnerJS []byte

// maxNodeLine bounds one event from the Node kernel (a displayed image can
// be large).
const maxNodeLine = 64 << 20

// node is a Node process running runner.js, spoken to in JSON lines over a
// socketpair on its fd 3.
type node struct {
	proc  *spawn.Child
	dir   string
	conn  net.Conn
	wg    sync.WaitGroup
	ready chan struct{}
	route router[nodeMsg]
	once  sync.Once

	wmu sync.Mutex // one cell is written at a time
}

var _ kernel = (*node)(nil)

type nodeMsg struct {
	T         string            `json:"t"`
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Text      string            `json:"text"`
	Data      map[string]string `json:"data"`
	Display   bool              `json:"display"`
	Value     string            `json:"value"`
	Traceback []string          `json:"traceback"`
	Line      int32             `json:"line"`
	Count     int32             `json:"count"`
	Status    string            `json:"status"`
}

func startNode(ctx context.Context, sp Spawner, dir, lang, cwd string, env map[string]string) (_ *node, err error) {
	script := filepath.Join(dir, "runner.js")
	if err := os.WriteFile(script, runnerJS, 0o600); err != nil {
		return nil, fmt.Errorf("%s kernel: %w", lang, err)
	}
	logPath := filepath.Join(dir, "kernel.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s kernel: %w", lang, err)
	}
	defer logf.Close()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s kernel: socketpair: %w: %w", lang, err, errdefs.ErrResourceExhausted)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "kernel"), os.NewFile(uintptr(fds[1]), "kernel")
	defer theirs.Close()
	conn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return nil, fmt.Errorf("%s kernel: %w", lang, err)
	}
	child, err := sp.Spawn(spawn.SpawnRequest{
		Argv:  []string{"node", script, lang},
		Env:   env,
		Cwd:   cwd,
		Files: []*os.File{nil, logf, logf, theirs},
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s kernel: %w", lang, err)
	}
	k := &node{proc: child, dir: dir, conn: conn, ready: make(chan struct{})}
	k.wg.Add(1)
	go k.read()
	select {
	case <-k.ready:
		return k, nil
	case <-child.Exited():
		k.close()
		return nil, fmt.Errorf("%s kernel exited (%s): %w\n%s", lang, child.Status(), errdefs.ErrFailedPrecondition, logTail(logPath, 10))
	case <-ctx.Done():
		k.close()
		return nil, fmt.Errorf("%s kernel did not start: %w: %w", lang, ctx.Err(), errdefs.ErrDeadlineExceeded)
	}
}

func (k *node) read() {
	defer k.wg.Done()
	sc := bufio.NewScanner(k.conn)
	sc.Buffer(make([]byte, 64<<10), maxNodeLine)
	for sc.Scan() {
		var m nodeMsg
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if m.T == "ready" {
			close(k.ready)
			continue
		}
		k.route.deliver(m.ID, m)
	}
}

func (k *node) execute(ctx context.Context, code string, out emit) (cellEnd, error) {
	id := newMsgID()
	msgs, end := k.route.begin(id)
	defer end()
	line, err := json.Marshal(map[string]string{"id": id, "code": code})
	if err != nil {
		return cellEnd{}, err
	}
	k.wmu.Lock()
	_, err = k.conn.Write(append(line, '\n'))
	k.wmu.Unlock()
	res := cellEnd{status: hutchv1.CodeStatus_CODE_STATUS_OK}
	if err != nil {
		res.status = hutchv1.CodeStatus_CODE_STATUS_KERNEL_DIED
		return res, nil
	}
	var held *nodeMsg // read while merging output, not handled yet
	for {
		var m nodeMsg
		if held != nil {
			m, held = *held, nil
		} else {
			var died died
			if m, died, err = next(ctx, msgs, k.proc); died || err != nil {
				return died.end(res), err
			}
		}
		var ev *hutchv1.CodeEvent
		switch m.T {
		case "out":
			var text string
			text, held = mergeOutput(m, msgs)
			ev = outputEvent(m.Name, text)
		case "result":
			ev = &hutchv1.CodeEvent{Event: &hutchv1.CodeEvent_Result{Result: &hutchv1.CodeResult{Data: m.Data, Display: m.Display}}}
		case "error":
			ev = &hutchv1.CodeEvent{Event: &hutchv1.CodeEvent_Error{Error: &hutchv1.CodeError{Name: m.Name, Value: m.Value, Traceback: m.Traceback, Line: m.Line}}}
		case "done":
			res.count = m.Count
			switch m.Status {
			case "error":
				res.status = hutchv1.CodeStatus_CODE_STATUS_ERROR
			case "interrupted":
				res.status = hutchv1.CodeStatus_CODE_STATUS_INTERRUPTED
			}
			return res, nil
		}
		if ev != nil {
			// A failed send means the caller is gone: the cell is being
			// interrupted; read on to its end so the next cell starts clean.
			_ = out(ev)
		}
	}
}

// maxMerge bounds the output merged into one event.
const maxMerge = 1 << 20

// mergeOutput joins m's text with output of the same stream already
// waiting, so a burst of small writes travels as one event rather than one
// per write. It returns the first other message it read, if any.
func mergeOutput(m nodeMsg, msgs <-chan nodeMsg) (string, *nodeMsg) {
	var b strings.Builder
	b.WriteString(m.Text)
	for b.Len() < maxMerge {
		select {
		case n := <-msgs:
			if n.T != "out" || n.Name != m.Name {
				return b.String(), &n
			}
			b.WriteString(n.Text)
		default:
			return b.String(), nil
		}
	}
	return b.String(), nil
}

func (k *node) child() *spawn.Child { return k.proc }

func (k *node) repeatsInterrupt() bool { return true }

func (k *node) close() { k.once.Do(k.stop) }

func (k *node) stop() {
	k.proc.Kill()
	k.conn.Close()
	k.wg.Wait()
	_ = os.RemoveAll(k.dir) // best effort: it is under /tmp
}
