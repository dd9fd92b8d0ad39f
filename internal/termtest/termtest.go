// Package termtest is for tests of terminals: a Screen collects what one
// attached client reads, and waits for text to appear in it.
package termtest

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/client"
)

// Timeout bounds every wait.
const Timeout = 15 * time.Second

// Screen is an attached client whose output is collected as it arrives.
type Screen struct {
	*client.Terminal
	mu  sync.Mutex
	buf bytes.Buffer
}

// New starts collecting term's output; it closes term when the test ends.
func New(t testing.TB, term *client.Terminal) *Screen {
	s := &Screen{Terminal: term}
	done := make(chan struct{})
	t.Cleanup(func() {
		term.Close()
		<-done
	})
	go func() {
		defer close(done)
		b := make([]byte, 32<<10)
		for {
			n, err := term.Read(b)
			s.mu.Lock()
			s.buf.Write(b[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return s
}

// String is everything read so far.
func (s *Screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// WaitFor waits until the output holds want.
func (s *Screen) WaitFor(t testing.TB, want string) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !strings.Contains(s.String(), want) {
		if time.Now().After(deadline) {
			out := s.String()
			if len(out) > 2000 {
				out = "…" + out[len(out)-2000:]
			}
			t.Fatalf("output never held %q; got %q", want, out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Type sends line and Enter, as a person types it.
func (s *Screen) Type(t testing.TB, line string) {
	t.Helper()
	if _, err := s.Write([]byte(line + "\r")); err != nil {
		t.Fatal(err)
	}
}
