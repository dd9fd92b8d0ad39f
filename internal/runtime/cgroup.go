package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hutch-sh/hutch/internal/sandbox"
)

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// CgroupParent is the cgroup under which the daemon tagged tag (see
// sandbox.Tag) puts its sandboxes: one subtree per daemon, so a daemon can
// sweep its own leftovers without touching another daemon's sandboxes on
// the same host.
func CgroupParent(tag string) string { return "/hutch/" + tag }

var (
	_ sandbox.Freezer = (*Runc)(nil)
	_ sandbox.Sweeper = (*Runc)(nil)
)

// cgroup is sandbox id's cgroup path, relative to each hierarchy.
func (r *Runc) cgroup(id string) string { return r.cgroupParent + "/" + id }

// cgroupDirs returns the directories of cgroup path rel in every hierarchy.
func cgroupDirs(rel string) []string {
	var out []string
	hs, _ := os.ReadDir(cgroupRoot)
	for _, h := range hs {
		p := filepath.Join(cgroupRoot, h.Name(), rel)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			out = append(out, p)
		}
	}
	return out
}

// Sweep kills whatever runs in this daemon's cgroups that belong to no
// known sandbox (a container whose daemon died while starting it) and
// removes those cgroups.
func (r *Runc) Sweep(_ context.Context, known func(id string) bool) {
	if r.cgroupParent == "" {
		return
	}
	stale := map[string][]string{}
	for _, parent := range cgroupDirs(r.cgroupParent) {
		ents, _ := os.ReadDir(parent)
		for _, e := range ents {
			if e.IsDir() && !known(e.Name()) {
				stale[e.Name()] = append(stale[e.Name()], filepath.Join(parent, e.Name()))
			}
		}
	}
	for id, dirs := range stale {
		r.log.Info("removing orphaned cgroup", "id", id)
		for _, d := range dirs {
			killCgroup(d)
		}
		// A killed task leaves its cgroup only once it is reaped, which for
		// tasks that are not ours is up to the host's init.
		deadline := time.Now().Add(5 * time.Second)
		for _, d := range dirs {
			for os.Remove(d) != nil && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}

func killCgroup(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// removeCgroups removes what the runtime left of sandbox id's cgroups: a
// task that is exiting, or a zombie waiting for the host's init to reap it,
// keeps its cgroup busy for a moment after the container is gone.
func (r *Runc) removeCgroups(id string) error {
	if r.cgroupParent == "" {
		return nil
	}
	dirs := cgroupDirs(r.cgroup(id))
	deadline := time.Now().Add(5 * time.Second)
	for _, d := range dirs {
		for {
			err := os.Remove(d)
			if err == nil || os.IsNotExist(err) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("remove cgroup %s: %w", d, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// Close removes this daemon's cgroup subtree when no sandbox is left in it;
// sandboxes that keep running keep it.
func (r *Runc) Close() {
	if r.cgroupParent == "" {
		return
	}
	for _, d := range cgroupDirs(r.cgroupParent) {
		_ = os.Remove(d)
	}
}
