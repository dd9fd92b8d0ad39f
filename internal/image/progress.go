package image

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// reporter shows a build's progress: on a terminal one status line
// rewritten in place with a spinner, elsewhere one plain line per phase.
type reporter struct {
	w     io.Writer
	tty   bool
	start time.Time

	mu       sync.Mutex // guards the fields below
	phase    string
	detail   string
	lastLine time.Time // non-tty: when a detail line was last printed

	stop chan struct{}
	done chan struct{}
}

func newReporter(w io.Writer) *reporter {
	if w == nil {
		w = io.Discard
	}
	r := &reporter{w: w, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		r.tty = true
		go r.spin()
	} else {
		close(r.done)
	}
	return r
}

var spinner = []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")

func (r *reporter) spin() {
	defer close(r.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.mu.Lock()
			fmt.Fprintf(r.w, "\r\033[K%c %s%s (%ds)", spinner[i%len(spinner)], r.phase, r.detail, r.elapsed())
			r.mu.Unlock()
		}
	}
}

func (r *reporter) elapsed() int { return int(time.Since(r.start).Seconds()) }

// Phase moves to a new phase; repeating the current one is a no-op.
func (r *reporter) Phase(p string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p == r.phase {
		return
	}
	r.phase, r.detail = p, ""
	if !r.tty {
		fmt.Fprintf(r.w, "%s (%ds)\n", p, r.elapsed())
	}
}

// Detail sets the text after the phase (e.g. bytes done); without a
// terminal it is printed at most every 10 s.
func (r *reporter) Detail(d string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.detail = " " + d
	if !r.tty && time.Since(r.lastLine) >= 10*time.Second {
		r.lastLine = time.Now()
		fmt.Fprintf(r.w, "%s %s (%ds)\n", r.phase, d, r.elapsed())
	}
}

// Close stops the spinner and prints the final line.
func (r *reporter) Close(final string) {
	if r.tty {
		close(r.stop)
	}
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tty {
		fmt.Fprint(r.w, "\r\033[K")
	}
	fmt.Fprintf(r.w, "%s (%ds)\n", final, r.elapsed())
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d KiB", n>>10)
	}
}
