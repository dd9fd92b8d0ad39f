package egress

import (
	"sync"
	"time"
)

// Entry is one line of a sandbox's egress log: a connection (tunnelled TLS,
// raw TCP) or a request (HTTP, intercepted HTTPS).
type Entry struct {
	Time     time.Time `json:"time"`
	Sandbox  string    `json:"sandbox"`
	Proto    string    `json:"proto"` // http, https (intercepted), tls (tunnelled), tcp
	Host     string    `json:"host"`
	Addr     string    `json:"addr,omitempty"` // where the daemon connected, if it did
	Port     int       `json:"port"`
	Method   string    `json:"method,omitempty"`
	Path     string    `json:"path,omitempty"`
	Status   int       `json:"status,omitempty"`
	Allowed  bool      `json:"allowed"`
	Rule     string    `json:"rule"`
	BytesOut int64     `json:"bytesOut"` // sandbox → upstream
	BytesIn  int64     `json:"bytesIn"`  // upstream → sandbox
	Error    string    `json:"error,omitempty"`
}

// LogSize is how many entries each sandbox's log keeps.
const LogSize = 1000

// logs keeps a bounded log per sandbox name.
type logs struct {
	mu sync.Mutex
	by map[string]*ring
}

type ring struct {
	buf  []Entry
	next int
	full bool
}

func (l *logs) add(e Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.by == nil {
		l.by = make(map[string]*ring)
	}
	r := l.by[e.Sandbox]
	if r == nil {
		r = &ring{buf: make([]Entry, LogSize)}
		l.by[e.Sandbox] = r
	}
	r.buf[r.next] = e
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
}

// last returns up to n of sandbox's latest entries, oldest first.
func (l *logs) last(sandbox string, n int) []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.by[sandbox]
	if r == nil {
		return nil
	}
	var all []Entry
	if r.full {
		all = append(all, r.buf[r.next:]...)
	}
	all = append(all, r.buf[:r.next]...)
	if n > 0 && len(all) > n {
		all = all[len(all)-n:]
	}
	return all
}

func (l *logs) forget(sandbox string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.by, sandbox)
}
