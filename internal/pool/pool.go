// Package pool keeps a few sandboxes of the default image and instance
// type running without a name, so that creating one is a rename. It owns
// the goroutines that fill it and that remove the entries it discards; the
// manager makes and removes the sandboxes themselves (Maker).
package pool

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// Entry is a pooled sandbox, running with no name.
type Entry struct {
	Rec   sandbox.Record // Name empty
	Pidfd int            // of the sandbox's init, taken right after it started; -1 once closed
	Conn  *agentconn.Conn
}

// Close releases what the entry holds in the daemon (not the sandbox).
func (e *Entry) Close() {
	e.Conn.Close()
	e.ClosePidfd()
}

// ClosePidfd closes the entry's pidfd, once.
func (e *Entry) ClosePidfd() {
	if e.Pidfd >= 0 {
		_ = unix.Close(e.Pidfd)
		e.Pidfd = -1
	}
}

// Maker makes and removes the sandboxes of a pool.
type Maker interface {
	// Make starts a sandbox with no name.
	Make(ctx context.Context) (*Entry, error)
	// Remove removes a sandbox that has no record.
	Remove(ctx context.Context, rec sandbox.Record)
}

// Pool is a warm pool; Close stops it and removes what is left.
type Pool struct {
	log  *slog.Logger
	size int
	mk   Maker
	kick chan struct{}

	cancel   context.CancelFunc
	done     chan struct{}
	removing sync.WaitGroup // removals of discarded entries

	mu    sync.Mutex
	ready []*Entry
}

// Start fills a pool of size entries made by mk and keeps it filled.
func Start(ctx context.Context, log *slog.Logger, size int, mk Maker) *Pool {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &Pool{log: log, size: size, mk: mk, kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go p.fill(ctx)
	return p
}

// fill keeps the pool filled until ctx ends, then removes what is left.
func (p *Pool) fill(ctx context.Context) {
	defer close(p.done)
	defer p.drain()
	backoff := time.Second
	for {
		for p.Len() < p.size && ctx.Err() == nil {
			e, err := p.mk.Make(ctx)
			if err != nil {
				if ctx.Err() == nil {
					p.log.Warn("warm pool: start sandbox", "err", err)
					select {
					case <-ctx.Done():
					case <-time.After(backoff):
					}
					backoff = min(2*backoff, time.Minute)
				}
				continue
			}
			backoff = time.Second
			p.mu.Lock()
			p.ready = append(p.ready, e)
			p.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		}
	}
}

// Len is how many entries are ready.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ready)
}

// Take hands out the oldest entry, or nil when the pool is empty, and has
// the pool refilled.
func (p *Pool) Take() *Entry {
	p.mu.Lock()
	if len(p.ready) == 0 {
		p.mu.Unlock()
		return nil
	}
	e := p.ready[0]
	p.ready = p.ready[1:]
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
	return e
}

// Discard removes an entry Take handed out that is of no use (stale, or it
// could not be renamed), in the background; Close waits for it.
func (p *Pool) Discard(e *Entry) {
	e.Close()
	p.removing.Add(1)
	go func() {
		defer p.removing.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p.mk.Remove(ctx, e.Rec)
	}()
}

func (p *Pool) drain() {
	p.mu.Lock()
	ready := p.ready
	p.ready = nil
	p.mu.Unlock()
	for _, e := range ready {
		e.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		p.mk.Remove(ctx, e.Rec)
		cancel()
	}
}

// Close stops filling the pool, removes its entries and waits for the
// removals of discarded ones.
func (p *Pool) Close() {
	p.cancel()
	<-p.done
	p.removing.Wait()
}
