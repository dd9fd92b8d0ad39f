package testutil

import (
	"errors"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	n := 0
	if err := Poll(time.Second, func() error {
		if n++; n < 5 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil || n != 5 {
		t.Fatalf("Poll = %v after %d calls, want nil after 5", err, n)
	}
	want := errors.New("never")
	start := time.Now()
	if err := Poll(30*time.Millisecond, func() error { return want }); err != want {
		t.Fatalf("Poll = %v, want the condition's last error", err)
	}
	if time.Since(start) < 30*time.Millisecond {
		t.Fatal("Poll gave up before its deadline")
	}
}

func TestInCI(t *testing.T) {
	for _, c := range []struct {
		v    string
		want bool
	}{{"true", true}, {"1", true}, {"", false}, {"false", false}} {
		t.Setenv("CI", c.v)
		if got := InCI(); got != c.want {
			t.Errorf("CI=%q: InCI = %v, want %v", c.v, got, c.want)
		}
	}
}
