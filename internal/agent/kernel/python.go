package kernel

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/go-zeromq/zmq4"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agent/spawn"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// python is an ipykernel process and our shell and iopub sockets to it,
// over ipc (unix sockets in the kernel's private directory).
type python struct {
	proc   *spawn.Child
	dir    string
	sg     signer
	shell  zmq4.Socket
	iopub  zmq4.Socket
	cancel context.CancelFunc // ends the sockets
	wg     sync.WaitGroup     // the two socket readers
	route  router[message]
	once   sync.Once
}

var _ kernel = (*python)(nil)

// pythonEnv makes plots come back as PNGs (the image sets MPLBACKEND=Agg,
// under which plt.show() shows nothing).
var pythonEnv = map[string]string{
	"MPLBACKEND":                     "module://matplotlib_inline.backend_inline",
	"PYDEVD_DISABLE_FILE_VALIDATION": "1",
}

func startPython(ctx context.Context, sp Spawner, dir, cwd string, env map[string]string) (_ *python, err error) {
	sg, err := newSigner()
	if err != nil {
		return nil, err
	}
	ip := filepath.Join(dir, "k")
	conn, err := json.Marshal(map[string]any{
		"transport": "ipc", "ip": ip, "key": string(sg.key), "signature_scheme": "hmac-sha256",
		"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5,
		"kernel_name": "python3",
	})
	if err != nil {
		return nil, err
	}
	connFile := filepath.Join(dir, "connection.json")
	if err := os.WriteFile(connFile, conn, 0o600); err != nil {
		return nil, fmt.Errorf("python kernel: %w", err)
	}
	logPath := filepath.Join(dir, "kernel.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("python kernel: %w", err)
	}
	defer logf.Close()
	kenv := map[string]string{}
	for k, v := range pythonEnv {
		kenv[k] = v
	}
	for k, v := range env {
		kenv[k] = v
	}
	child, err := sp.Spawn(spawn.SpawnRequest{
		// History in memory: parallel kernels would fight over one sqlite file.
		Argv:  []string{"python3", "-m", "ipykernel_launcher", "-f", connFile, "--HistoryManager.hist_file=:memory:"},
		Env:   kenv,
		Cwd:   cwd,
		Files: []*os.File{nil, logf, logf},
	})
	if err != nil {
		return nil, fmt.Errorf("python kernel: %w", err)
	}
	k := &python{proc: child, dir: dir, sg: sg}
	defer func() {
		if err != nil {
			k.close()
		}
	}()
	// The kernel binds its sockets 0.3-0.8 s after starting: wait for them
	// rather than have the sockets retry.
	if err := waitFiles(ctx, child, ip+"-1", ip+"-2"); err != nil {
		return nil, fmt.Errorf("python kernel did not start: %w\n%s", err, logTail(logPath, 10))
	}
	zctx, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	quiet := zmq4.WithLogger(log.New(io.Discard, "", 0))
	k.shell = zmq4.NewDealer(zctx, quiet, zmq4.WithDialerMaxRetries(50), zmq4.WithDialerRetry(20*time.Millisecond))
	k.iopub = zmq4.NewSub(zctx, quiet, zmq4.WithDialerMaxRetries(50), zmq4.WithDialerRetry(20*time.Millisecond))
	if err := k.shell.Dial("ipc://" + ip + "-1"); err != nil {
		return nil, fmt.Errorf("python kernel: shell: %w: %w", err, errdefs.ErrUnavailable)
	}
	if err := k.iopub.SetOption(zmq4.OptionSubscribe, ""); err != nil {
		return nil, err
	}
	if err := k.iopub.Dial("ipc://" + ip + "-2"); err != nil {
		return nil, fmt.Errorf("python kernel: iopub: %w: %w", err, errdefs.ErrUnavailable)
	}
	k.wg.Add(2)
	go k.read(k.shell)
	go k.read(k.iopub)
	if err := k.handshake(ctx); err != nil {
		return nil, fmt.Errorf("python kernel: %w\n%s", err, logTail(logPath, 10))
	}
	return k, nil
}

// waitFiles waits until every path exists, the child exits, or ctx ends.
func waitFiles(ctx context.Context, child *spawn.Child, paths ...string) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		ok := true
		for _, p := range paths {
			if _, err := os.Stat(p); err != nil {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		select {
		case <-child.Exited():
			return fmt.Errorf("it exited (%s): %w", child.Status(), errdefs.ErrFailedPrecondition)
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ctx.Err(), errdefs.ErrDeadlineExceeded)
		case <-tick.C:
		}
	}
}

// handshakeRetry is how long to wait for a kernel_info answer before asking
// again: the first iopub status is often lost while the subscription is new.
const handshakeRetry = 25 * time.Millisecond

// handshake asks for kernel_info until both the reply and an iopub status
// for it arrive: only then is iopub surely subscribed, so no output of the
// first cell is lost.
func (k *python) handshake(ctx context.Context) error {
	for {
		frames, id, err := k.sg.encode("kernel_info_request", map[string]any{})
		if err != nil {
			return err
		}
		msgs, end := k.route.begin(id)
		if err := k.shell.Send(zmq4.NewMsgFrom(frames...)); err != nil {
			end()
			return fmt.Errorf("kernel_info: %w: %w", err, errdefs.ErrUnavailable)
		}
		reply, status := false, false
		t := time.NewTimer(handshakeRetry)
	wait:
		for !reply || !status {
			select {
			case m := <-msgs:
				switch m.Type {
				case "kernel_info_reply":
					reply = true
				case "status":
					status = true
				}
			case <-t.C:
				break wait
			case <-k.proc.Exited():
				end()
				return fmt.Errorf("it exited (%s): %w", k.proc.Status(), errdefs.ErrFailedPrecondition)
			case <-ctx.Done():
				end()
				return fmt.Errorf("no answer: %w: %w", ctx.Err(), errdefs.ErrDeadlineExceeded)
			}
		}
		t.Stop()
		end()
		if reply && status {
			return nil
		}
	}
}

// read routes one socket's messages until the socket is closed.
func (k *python) read(s zmq4.Socket) {
	defer k.wg.Done()
	for {
		msg, err := s.Recv()
		if err != nil {
			return
		}
		m, err := k.sg.decode(msg.Frames)
		if err != nil {
			continue
		}
		k.route.deliver(m.Parent, m)
	}
}

// IPython 8 names cells "Cell In[3], line 2" (8.5: "Cell In [3], line 2").
var cellLine = regexp.MustCompile(`Cell In ?\[(\d+)\], line (\d+)`)

func (k *python) execute(ctx context.Context, code string, out emit) (cellEnd, error) {
	frames, id, err := k.sg.encode("execute_request", map[string]any{
		"code": code, "silent": false, "store_history": true,
		// Cells go one at a time, so there is no queue to abort on an error;
		// with stop_on_error the kernel would also abort a cell sent just
		// after a failed one.
		"user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": false,
	})
	if err != nil {
		return cellEnd{}, err
	}
	msgs, end := k.route.begin(id)
	defer end()
	if err := k.shell.Send(zmq4.NewMsgFrom(frames...)); err != nil {
		return cellEnd{}, fmt.Errorf("python kernel: send: %w: %w", err, errdefs.ErrUnavailable)
	}
	var (
		res        cellEnd
		replied    bool
		idle       bool
		inputCount string
	)
	res.status = hutchv1.CodeStatus_CODE_STATUS_OK
	for !replied || !idle {
		m, died, err := next(ctx, msgs, k.proc)
		if died || err != nil {
			return died.end(res), err
		}
		var ev *hutchv1.CodeEvent
		switch m.Type {
		case "status":
			var c struct {
				State string `json:"execution_state"`
			}
			_ = json.Unmarshal(m.Content, &c)
			idle = c.State == "idle"
		case "execute_input":
			var c struct {
				Count int `json:"execution_count"`
			}
			_ = json.Unmarshal(m.Content, &c)
			inputCount = strconv.Itoa(c.Count)
		case "stream":
			var c struct{ Name, Text string }
			_ = json.Unmarshal(m.Content, &c)
			ev = outputEvent(c.Name, c.Text)
		case "execute_result", "display_data":
			var c struct {
				Data map[string]json.RawMessage `json:"data"`
			}
			_ = json.Unmarshal(m.Content, &c)
			ev = &hutchv1.CodeEvent{Event: &hutchv1.CodeEvent_Result{Result: &hutchv1.CodeResult{Data: mimeBundle(c.Data), Display: m.Type == "display_data"}}}
		case "error":
			ev = &hutchv1.CodeEvent{Event: &hutchv1.CodeEvent_Error{Error: pythonError(m.Content, inputCount)}}
		case "execute_reply":
			var c struct {
				Status string `json:"status"`
				Count  int32  `json:"execution_count"`
			}
			_ = json.Unmarshal(m.Content, &c)
			replied = true
			res.count = c.Count
			if c.Status != "ok" {
				res.status = hutchv1.CodeStatus_CODE_STATUS_ERROR
			}
		}
		if ev != nil {
			// A failed send means the caller is gone: the cell is being
			// interrupted; read on to its end so the next cell starts clean.
			_ = out(ev)
		}
	}
	return res, nil
}

// pythonError turns an iopub error into a CodeError, finding the line in
// this cell ("Cell In[N], line L") when the traceback names it.
func pythonError(content json.RawMessage, count string) *hutchv1.CodeError {
	var c struct {
		Name      string   `json:"ename"`
		Value     string   `json:"evalue"`
		Traceback []string `json:"traceback"`
	}
	_ = json.Unmarshal(content, &c)
	e := &hutchv1.CodeError{Name: c.Name, Value: c.Value, Traceback: stripANSI(c.Traceback)}
	for _, l := range e.Traceback {
		if m := cellLine.FindStringSubmatch(l); m != nil && (count == "" || m[1] == count) {
			n, _ := strconv.Atoi(m[2])
			e.Line = int32(n)
		}
	}
	return e
}

func (k *python) child() *spawn.Child { return k.proc }

func (k *python) close() { k.once.Do(k.stop) }

func (k *python) stop() {
	k.proc.Kill()
	if k.cancel != nil {
		if k.shell != nil {
			_ = k.shell.Close()
		}
		if k.iopub != nil {
			_ = k.iopub.Close()
		}
		k.cancel()
	}
	k.wg.Wait()
	_ = os.RemoveAll(k.dir) // best effort: it is under /tmp
}
