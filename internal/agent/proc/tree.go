package proc

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// killTree kills the process group led by pid and every descendant of pid,
// including ones that left the group with setsid. Descendants are stopped
// first so none can fork a new child between the scan and the kill.
func killTree(pid int) {
	for range 2 {
		kids := descendants(pid)
		_ = syscall.Kill(-pid, syscall.SIGSTOP)
		for _, k := range kids {
			_ = syscall.Kill(k, syscall.SIGSTOP)
		}
		kids = append(kids, descendants(pid)...)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for _, k := range kids {
			_ = syscall.Kill(k, syscall.SIGKILL)
		}
	}
}

// descendants lists the pids below root in the process tree, from /proc.
func descendants(root int) []int {
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
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name may contain spaces and parentheses: fields follow the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	pp, _ := strconv.Atoi(f[1])
	return pp
}
