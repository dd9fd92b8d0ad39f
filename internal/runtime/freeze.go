package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// Freeze stops every task of sandbox id with the freezer cgroup (v1, or
// cgroup.freeze on v2) and returns the function that thaws them.
func (r *Runc) Freeze(_ context.Context, id string) (thaw func(), err error) {
	rel := r.cgroup(id)
	v1 := filepath.Join(cgroupRoot, "freezer", rel, "freezer.state")
	if _, err := os.Stat(v1); err == nil {
		return setFrozen(v1, "FROZEN", "THAWED", func() bool {
			b, err := os.ReadFile(v1)
			return err == nil && strings.TrimSpace(string(b)) == "FROZEN"
		})
	}
	for _, base := range []string{cgroupRoot, filepath.Join(cgroupRoot, "unified")} {
		v2 := filepath.Join(base, rel, "cgroup.freeze")
		if _, err := os.Stat(v2); err == nil {
			events := filepath.Join(base, rel, "cgroup.events")
			return setFrozen(v2, "1", "0", func() bool {
				b, err := os.ReadFile(events)
				return err == nil && strings.Contains(string(b), "frozen 1")
			})
		}
	}
	return nil, fmt.Errorf("freeze sandbox %s: no freezer cgroup: %w", id, errdefs.ErrUnavailable)
}

// setFrozen freezes and waits. A task in the middle of a fork or an exit
// can leave a v1 freezer stuck in FREEZING, so, like runc, it thaws and
// tries again until the deadline.
func setFrozen(file, frozen, thawed string, done func() bool) (func(), error) {
	thaw := func() { _ = os.WriteFile(file, []byte(thawed), 0o644) }
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := os.WriteFile(file, []byte(frozen), 0o644); err != nil {
			thaw()
			return nil, fmt.Errorf("freeze: %w", err)
		}
		for try := time.Now().Add(10 * time.Millisecond); time.Now().Before(try); time.Sleep(100 * time.Microsecond) {
			if done() {
				return thaw, nil
			}
		}
		if time.Now().After(deadline) {
			thaw()
			return nil, fmt.Errorf("freeze: tasks did not stop within 5s: %w", errdefs.ErrUnavailable)
		}
		thaw()
		time.Sleep(100 * time.Microsecond)
	}
}
