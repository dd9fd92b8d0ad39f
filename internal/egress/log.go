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
	buf  []*Entry
	next int
	full bool
}

// add records e; the returned entry can be completed later with done,
// so a long connection shows in the log while it lasts.
func (l *logs) add(e Entry) *Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.by == nil {
		l.by = make(map[string]*ring)
	}
	r := l.by[e.Sandbox]
	if r == nil {
		r = &ring{buf: make([]*Entry, LogSize)}
		l.by[e.Sandbox] = r
	}
	p := &e
	r.buf[r.next] = p
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
	return p
}

// done updates an entry that add returned.
func (l *logs) done(e *Entry, update func(*Entry)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	update(e)
}

// last returns up to n of sandbox's latest entries, oldest first.
func (l *logs) last(sandbox string, n int) []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.by[sandbox]
	if r == nil {
		return nil
	}
	var ps []*Entry
	if r.full {
		ps = append(ps, r.buf[r.next:]...)
	}
	ps = append(ps, r.buf[:r.next]...)
	if n > 0 && len(ps) > n {
		ps = ps[len(ps)-n:]
	}
	all := make([]Entry, len(ps))
	for i, p := range ps {
		all[i] = *p
	}
	return all
}

func (l *logs) forget(sandbox string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.by, sandbox)
}
