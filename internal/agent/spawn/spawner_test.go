package spawn

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestMergeEnv(t *testing.T) {
	tests := []struct {
		name  string
		base  []string
		extra map[string]string
		want  []string
	}{
		{"empty", nil, nil, []string{}},
		{"base only, sorted", []string{"B=2", "A=1"}, nil, []string{"A=1", "B=2"}},
		{"request overrides base", []string{"A=1", "B=2"}, map[string]string{"B": "3"}, []string{"A=1", "B=3"}},
		{"value with =", nil, map[string]string{"A": "x=y"}, []string{"A=x=y"}},
		{"empty value kept", nil, map[string]string{"A": ""}, []string{"A="}},
		{"bad keys dropped", nil, map[string]string{"": "x", "A=B": "x", "N\x00": "x", "OK": "1"}, []string{"OK=1"}},
		{"NUL value dropped", nil, map[string]string{"A": "x\x00y"}, []string{}},
		{"base without = ignored", []string{"JUNK", "A=1"}, nil, []string{"A=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MergeEnv(tt.base, tt.extra)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") || len(got) != len(tt.want) {
				t.Errorf("MergeEnv = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseSignal(t *testing.T) {
	tests := []struct {
		in      string
		want    syscall.Signal
		wantErr bool
	}{
		{"", syscall.SIGTERM, false},
		{"SIGINT", syscall.SIGINT, false},
		{"INT", syscall.SIGINT, false},
		{"int", syscall.SIGINT, false},
		{"sigkill", syscall.SIGKILL, false},
		{"Hup", syscall.SIGHUP, false},
		{"9", syscall.SIGKILL, false},
		{"15", syscall.SIGTERM, false},
		{"64", syscall.Signal(64), false},
		{"0", 0, true},
		{"65", 0, true},
		{"-1", 0, true},
		{"+9", 0, true},
		{" 9", 0, true},
		{"SIGFOO", 0, true},
		{"SIG", 0, true},
		{"9x", 0, true},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := ParseSignal(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseSignal(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSignal(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

// treeScript prints the pid of a shell, then of a grandchild that left the
// process group with setsid, then blocks.
