package manager

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// CgroupParent is the cgroup under which the daemon with this data dir puts
// its sandboxes: one subtree per daemon, so a daemon can sweep its own
// leftovers without touching another daemon's sandboxes on the same host.
func CgroupParent(dataDir string) string { return "/hutch/" + Tag(dataDir) }

// Tag is the short name of the daemon with this data dir: 8 hex digits that
// name what it creates on the host (cgroups, bridge, rules).
func Tag(dataDir string) string {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	sum := sha256.Sum256([]byte(abs))
	return hex.EncodeToString(sum[:4])
}

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

// sweepCgroups kills whatever runs in this daemon's cgroups that belong to
// no known sandbox (a container whose daemon died while starting it) and
// removes those cgroups.
func (m *Manager) sweepCgroups(known map[string]bool) {
	stale := map[string][]string{}
	for _, parent := range cgroupDirs(m.cgroupParent) {
		ents, _ := os.ReadDir(parent)
		for _, e := range ents {
			if e.IsDir() && !known[e.Name()] {
				stale[e.Name()] = append(stale[e.Name()], filepath.Join(parent, e.Name()))
			}
		}
	}
	for id, dirs := range stale {
		m.log.Info("removing orphaned cgroup", "id", id)
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
func (m *Manager) removeCgroups(id string) error {
	dirs := cgroupDirs(m.cgroupParent + "/" + id)
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
