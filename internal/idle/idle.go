// Package idle runs the daemon's periodic housekeeping (putting idle
// sandboxes to sleep, collecting expired snapshots) on one goroutine that
// it owns and stops.
package idle

import (
	"context"
	"time"
)

// Task is one piece of housekeeping, run with the tick's time.
type Task func(ctx context.Context, now time.Time)

// Loop runs tasks every tick until Close.
type Loop struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs tasks, in order, every every; ctx's values carry over, its
// cancellation does not (Close stops the loop).
func Start(ctx context.Context, every time.Duration, tasks ...Task) *Loop {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &Loop{cancel: cancel, done: make(chan struct{})}
	go l.run(ctx, every, tasks)
	return l
}

func (l *Loop) run(ctx context.Context, every time.Duration, tasks []Task) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, task := range tasks {
				task(ctx, now)
			}
		}
	}
}

// Close stops the loop and waits for a running task to return.
func (l *Loop) Close() {
	l.cancel()
	<-l.done
}

// Every makes task run at most once per period, however often it is ticked.
func Every(period time.Duration, task Task) Task {
	var last time.Time
	return func(ctx context.Context, now time.Time) {
		if now.Sub(last) >= period {
			last = now
			task(ctx, now)
		}
	}
}
