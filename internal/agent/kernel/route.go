package kernel

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"sync"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agent/spawn"
)

// router hands a kernel's messages, read by one goroutine per socket, to
// the cell they belong to. Messages of no running cell are dropped.
type router[M any] struct {
	mu   sync.Mutex
	id   string
	ch   chan M
	stop chan struct{}
}

// begin routes messages for id to the returned channel until end is called.
func (r *router[M]) begin(id string) (<-chan M, func()) {
	ch, stop := make(chan M, 64), make(chan struct{})
	r.mu.Lock()
	r.id, r.ch, r.stop = id, ch, stop
	r.mu.Unlock()
	return ch, func() {
		r.mu.Lock()
		r.id, r.ch, r.stop = "", nil, nil
		r.mu.Unlock()
		close(stop)
	}
}

// deliver passes m to the cell id if it is the one running, waiting while
// the cell is busy sending earlier output.
func (r *router[M]) deliver(id string, m M) {
	r.mu.Lock()
	ch, stop := r.ch, r.stop
	ok := id != "" && id == r.id
	r.mu.Unlock()
	if !ok {
		return
	}
	select {
	case ch <- m:
	case <-stop:
	}
}

// died is whether a kernel exited while a cell waited for it.
type died bool

// end marks res as ended by the kernel's death, if it died.
func (d died) end(res cellEnd) cellEnd {
	if d {
		res.status = hutchv1.CodeStatus_CODE_STATUS_KERNEL_DIED
	}
	return res
}

// next waits for a cell's next message, the kernel's exit, or ctx's end.
func next[M any](ctx context.Context, msgs <-chan M, k *spawn.Child) (M, died, error) {
	var m M
	select {
	case m = <-msgs:
		return m, false, nil
	case <-k.Exited():
		return m, true, nil
	case <-ctx.Done():
		return m, false, ctx.Err()
	}
}

// outputEvent is printed output of stream name (stdout or stderr).
func outputEvent(name, text string) *hutchv1.CodeEvent {
	if name == "stderr" {
		return &hutchv1.CodeEvent{Event: &hutchv1.CodeEvent_Stderr{Stderr: text}}
	}
	return &hutchv1.CodeEvent{Event: &hutchv1.CodeEvent_Stdout{Stdout: text}}
}

// mimeBundle turns a Jupyter data dict into text values: strings stay,
// lists of strings are joined, anything else (application/json) is
// compact JSON.
func mimeBundle(raw map[string]json.RawMessage) map[string]string {
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[k] = s
			continue
		}
		var ls []string
		if json.Unmarshal(v, &ls) == nil {
			out[k] = strings.Join(ls, "")
			continue
		}
		var b bytes.Buffer
		if json.Compact(&b, v) == nil {
			out[k] = b.String()
		} else {
			out[k] = string(v)
		}
	}
	return out
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// stripANSI removes terminal colours from traceback lines.
func stripANSI(lines []string) []string {
	var out []string
	for _, l := range lines {
		// IPython packs several lines into one entry.
		out = append(out, strings.Split(ansi.ReplaceAllString(l, ""), "\n")...)
	}
	return out
}
