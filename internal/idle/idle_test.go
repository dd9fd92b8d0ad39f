package idle

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/internal/testutil"
)

func TestLoopRunsUntilClose(t *testing.T) {
	var a, b atomic.Int64
	l := Start(context.Background(), time.Millisecond,
		func(context.Context, time.Time) { a.Add(1) },
		Every(time.Hour, func(context.Context, time.Time) { b.Add(1) }))
	testutil.Eventually(t, 5*time.Second, func() error {
		if a.Load() < 3 {
			return context.DeadlineExceeded
		}
		return nil
	})
	l.Close() // returns only once the loop's goroutine has
	if b.Load() != 1 {
		t.Errorf("hourly task ran %d times, want once", b.Load())
	}
}
