package spawn

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Reaper owns every child of the agent. As PID 1 the agent inherits orphans
// too, so it reaps with wait4(-1) and hands each status to whoever started
// that pid. Start must run before the first fork, so no exit is missed.
type Reaper struct {
	mu      sync.Mutex
	waiters map[int]chan syscall.WaitStatus
	early   map[int]syscall.WaitStatus // reaped before the starter registered
	sigs    chan os.Signal
	done    chan struct{}
}

// NewReaper registers for SIGCHLD and starts reaping until Stop.
func NewReaper() *Reaper {
	r := &Reaper{
		waiters: make(map[int]chan syscall.WaitStatus),
		early:   make(map[int]syscall.WaitStatus),
		sigs:    make(chan os.Signal, 1),
		done:    make(chan struct{}),
	}
	signal.Notify(r.sigs, syscall.SIGCHLD)
	go r.loop()
	return r
}

// Stop ends reaping.
func (r *Reaper) Stop() {
	signal.Stop(r.sigs)
	close(r.done)
}

func (r *Reaper) loop() {
	for {
		select {
		case <-r.done:
			return
		case <-r.sigs:
			r.reapAll()
		}
	}
}

func (r *Reaper) reapAll() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		r.mu.Lock()
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- ws
		} else {
			r.early[pid] = ws
		}
		r.mu.Unlock()
	}
}

// Spawn runs fork (which must start exactly one child and return its pid)
// and returns a channel that receives the child's wait status once.
func (r *Reaper) Spawn(fork func() (int, error)) (int, <-chan syscall.WaitStatus, error) {
	ch := make(chan syscall.WaitStatus, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := fork()
	if err != nil {
		return 0, nil, err
	}
	if ws, ok := r.early[pid]; ok {
		delete(r.early, pid)
		ch <- ws
		return pid, ch, nil
	}
	r.waiters[pid] = ch
	// Forget statuses of orphans nobody will ask for, so early stays small.
	if len(r.early) > 1024 {
		clear(r.early)
	}
	return pid, ch, nil
}
