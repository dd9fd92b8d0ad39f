package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/sandbox"
	"github.com/hutch-sh/hutch/internal/testutil"
)

// maker makes entries that hold nothing; removals wait for release.
type maker struct {
	release chan struct{}

	mu      sync.Mutex
	made    int
	removed []string
}

var _ Maker = (*maker)(nil)

func (m *maker) Make(context.Context) (*Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.made++
	return &Entry{Rec: sandbox.Record{ID: fmt.Sprintf("hb-%d", m.made)}, Pidfd: -1, Conn: agentconn.New("/nonexistent")}, nil
}

func (m *maker) Remove(_ context.Context, rec sandbox.Record) {
	<-m.release
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removed = append(m.removed, rec.ID)
}

func (m *maker) counts() (made, removed int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.made, len(m.removed)
}

func TestPool(t *testing.T) {
	tests := []struct {
		name        string
		take        int // entries taken
		discard     int // of those, discarded
		wantRemoved int // at Close: discarded ones and those left
	}{
		{"untouched", 0, 0, 2},
		{"taken and kept", 1, 0, 2}, // refilled to 2, both removed
		{"taken and discarded", 2, 2, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mk := &maker{release: make(chan struct{})}
			p := Start(context.Background(), slog.New(slog.DiscardHandler), 2, mk)
			for range tt.take {
				var e *Entry
				testutil.Eventually(t, 5*time.Second, func() error {
					if e = p.Take(); e == nil {
						return errors.New("pool empty")
					}
					return nil
				})
				if tt.discard > 0 {
					p.Discard(e)
				}
			}
			// Refilled to size after takes.
			testutil.Eventually(t, 5*time.Second, func() error {
				if n := p.Len(); n != 2 {
					return fmt.Errorf("%d ready, want 2", n)
				}
				return nil
			})
			closed := make(chan struct{})
			go func() { p.Close(); close(closed) }()
			select {
			case <-closed:
				t.Fatal("Close returned before the removals ran")
			case <-time.After(50 * time.Millisecond):
			}
			close(mk.release)
			<-closed
			if _, removed := mk.counts(); removed != tt.wantRemoved {
				t.Errorf("removed %d at Close, want %d", removed, tt.wantRemoved)
			}
		})
	}
}
