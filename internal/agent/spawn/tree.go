package spawn

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// KillTree kills the process group led by pid and every descendant of pid,
// including ones that left the group with setsid. Descendants are stopped
// first so none can fork a new child between the scan and the kill.
func KillTree(pid int) {
	for range 2 {
		kids := Descendants(pid)
		_ = syscall.Kill(-pid, syscall.SIGSTOP)
		for _, k := range kids {
			_ = syscall.Kill(k, syscall.SIGSTOP)
		}
		kids = append(kids, Descendants(pid)...)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for _, k := range kids {
			_ = syscall.Kill(k, syscall.SIGKILL)
		}
	}
}

// Descendants lists the pids below root in the process tree, from /proc.
func Descendants(root int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := make(map[int][]int)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp := ppid(pid); pp > 0 {
			children[pp] = append(children[pp], pid)
		}
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

func ppid(pid int) int {
	f, ok := statFields(pid)
	if !ok || len(f) < 2 {
		return 0
	}
	pp, _ := strconv.Atoi(f[1])
	return pp
}

// statFields returns the fields of /proc/<pid>/stat after the command name,
// which may contain spaces and parentheses: they follow the last ')'.
func statFields(pid int) ([]string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, false
	}
	return strings.Fields(s[i+1:]), true
}

// KillDescendants kills every process below pid, but not pid.
func KillDescendants(pid int) {
	for range 2 {
		for _, k := range Descendants(pid) {
			_ = syscall.Kill(k, syscall.SIGKILL)
		}
	}
}

// AnyRunning reports whether any of pids still runs.
func AnyRunning(pids []int) bool {
	for _, p := range pids {
		if IsRunning(p) {
			return true
		}
	}
	return false
}

// IsRunning reports whether pid runs; a zombie waiting to be reaped does not.
func IsRunning(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	st, ok := procStat(pid)
	return ok && st != 'Z' && st != 'X'
}

// procStat returns the state letter of pid from /proc.
func procStat(pid int) (byte, bool) {
	f, ok := statFields(pid)
	if !ok || len(f) < 1 || len(f[0]) != 1 {
		return 0, false
	}
	return f[0][0], true
}
