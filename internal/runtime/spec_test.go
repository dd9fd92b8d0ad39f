package runtime

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hutch-sh/hutch/internal/agentapi"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

func TestSpec(t *testing.T) {
	o := SpecOptions{
		Hostname:    "box",
		Rootfs:      "/r",
		AgentBinary: "/host/hutch-agent",
		RunDir:      "/host/run",
		Env:         []string{"PATH=/bin", "LANG=C.UTF-8"},
		Limits:      sandbox.Limits{CPUMillis: 1000, MemoryBytes: 1 << 30, Pids: 512},
		CgroupsPath: "/hutch/hb-1",
	}
	s, err := Spec(o)
	if err != nil {
		t.Fatal(err)
	}
	p := s.Process
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno || len(s.Linux.Seccomp.Syscalls) == 0 {
		t.Errorf("seccomp = %+v, want the default profile (errno by default, allow list)", s.Linux.Seccomp)
	}
	if !p.NoNewPrivileges {
		t.Error("NoNewPrivileges is off")
	}
	for name, set := range map[string][]string{
		"bounding": p.Capabilities.Bounding, "effective": p.Capabilities.Effective,
		"permitted": p.Capabilities.Permitted, "inheritable": p.Capabilities.Inheritable, "ambient": p.Capabilities.Ambient,
	} {
		for _, c := range []string{"CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_PTRACE", "CAP_NET_ADMIN", "CAP_SYS_RAWIO", "CAP_SYS_BOOT"} {
			if slices.Contains(set, c) {
				t.Errorf("%s capabilities include %s", name, c)
			}
		}
	}
	if !slices.Contains(p.Capabilities.Bounding, "CAP_CHOWN") {
		t.Error("bounding set lacks CAP_CHOWN: the default set is missing")
	}
	for _, m := range []string{"/proc/kcore", "/proc/keys", "/sys/firmware"} {
		if !slices.Contains(s.Linux.MaskedPaths, m) {
			t.Errorf("%s is not masked", m)
		}
	}
	if !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") {
		t.Error("/proc/sys is not read-only")
	}
	if got := p.Args; len(got) == 0 || got[0] != agentapi.AgentPath {
		t.Errorf("init = %v, want the agent at %s", got, agentapi.AgentPath)
	}
	if s.Hostname != "box" || s.Root.Path != "/r" || s.Linux.CgroupsPath != "/hutch/hb-1" {
		t.Errorf("hostname %q root %q cgroups %q", s.Hostname, s.Root.Path, s.Linux.CgroupsPath)
	}
	for _, kv := range []string{"PATH=/bin", "LANG=C.UTF-8"} {
		if !slices.Contains(p.Env, kv) {
			t.Errorf("env lacks %s: %v", kv, p.Env)
		}
	}
	var agent, run *specs.Mount
	for i, m := range s.Mounts {
		switch m.Destination {
		case agentapi.AgentPath:
			agent = &s.Mounts[i]
		case agentapi.RunDir:
			run = &s.Mounts[i]
		}
	}
	if agent == nil || agent.Source != o.AgentBinary || !slices.Contains(agent.Options, "ro") {
		t.Errorf("agent mount = %+v, want a read-only bind of %s", agent, o.AgentBinary)
	}
	if run == nil || run.Source != o.RunDir || !slices.Contains(run.Options, "noexec") {
		t.Errorf("run dir mount = %+v, want a noexec bind of %s", run, o.RunDir)
	}
	want := map[specs.LinuxNamespaceType]bool{specs.PIDNamespace: true, specs.MountNamespace: true, specs.NetworkNamespace: true,
		specs.UTSNamespace: true, specs.IPCNamespace: true, specs.CgroupNamespace: true}
	for _, ns := range s.Linux.Namespaces {
		if ns.Path != "" {
			t.Errorf("namespace %s joins %s; want a new one", ns.Type, ns.Path)
		}
		delete(want, ns.Type)
	}
	if len(want) > 0 {
		t.Errorf("missing namespaces: %v", want)
	}
}

// Specs must not share slices: a caller editing one sandbox's spec (adding
// a masked path, dropping a capability) must not change the next one's.
func TestSpecDoesNotShareSlices(t *testing.T) {
	o := SpecOptions{Rootfs: "/r", Env: []string{"A=1"}}
	s, err := Spec(o)
	if err != nil {
		t.Fatal(err)
	}
	// While the bug lasts, the edits below reach the package's defaults: undo them.
	masked0, ro0 := s.Linux.MaskedPaths[0], s.Linux.ReadonlyPaths[0]
	t.Cleanup(func() { s.Linux.MaskedPaths[0], s.Linux.ReadonlyPaths[0] = masked0, ro0 })
	s.Process.Capabilities.Bounding[0] = "CAP_SYS_ADMIN"
	s.Linux.MaskedPaths[0] = "/changed"
	s.Linux.ReadonlyPaths[0] = "/changed"
	s.Process.Env[0] = "A=changed"
	s2, err := Spec(o)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  []string
		bad  string
	}{
		{"capabilities", s2.Process.Capabilities.Bounding, "CAP_SYS_ADMIN"},
		{"masked paths", s2.Linux.MaskedPaths, "/changed"},
		{"read-only paths", s2.Linux.ReadonlyPaths, "/changed"},
		{"env", s2.Process.Env, "A=changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if slices.Contains(tt.got, tt.bad) {
				t.Errorf("editing one spec's %s changed the next spec's: %v", tt.name, tt.got)
			}
		})
	}
	if o.Env[0] != "A=1" {
		t.Errorf("Spec changed the caller's env: %v", o.Env)
	}
}

func TestSpecNetNS(t *testing.T) {
	s, err := Spec(SpecOptions{Rootfs: "/r", NetNS: "/run/netns/x"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace && ns.Path != "/run/netns/x" {
			t.Errorf("network namespace path %q, want /run/netns/x", ns.Path)
		}
	}
}

func TestResources(t *testing.T) {
	tests := []struct {
		name       string
		l          sandbox.Limits
		wantQuota  int64 // 0: no CPU limit
		wantPeriod uint64
		wantMem    int64
		wantPids   int64
	}{
		{"one cpu", sandbox.Limits{CPUMillis: 1000}, 100000, 100000, 0, 0},
		{"quarter cpu", sandbox.Limits{CPUMillis: 250}, 25000, 100000, 0, 0},
		{"two cpus", sandbox.Limits{CPUMillis: 2000}, 200000, 100000, 0, 0},
		{"memory and pids", sandbox.Limits{MemoryBytes: 1 << 30, Pids: 512}, 0, 0, 1 << 30, 512},
		{"none", sandbox.Limits{}, 0, 0, 0, 0},
		{"basic", sandbox.Limits{CPUMillis: 1000, MemoryBytes: 1 << 30, Pids: 512}, 100000, 100000, 1 << 30, 512},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := resources(tt.l)
			if tt.wantQuota == 0 {
				if r.CPU != nil {
					t.Errorf("cpu = %+v, want none", r.CPU)
				}
			} else if r.CPU == nil || *r.CPU.Quota != tt.wantQuota || *r.CPU.Period != tt.wantPeriod {
				t.Errorf("cpu = %+v, want quota %d period %d", r.CPU, tt.wantQuota, tt.wantPeriod)
			}
			if tt.wantMem == 0 {
				if r.Memory != nil {
					t.Errorf("memory = %+v, want none", r.Memory)
				}
			} else if r.Memory == nil || *r.Memory.Limit != tt.wantMem || *r.Memory.Swap != tt.wantMem {
				t.Errorf("memory = %+v, want limit = swap = %d (no swap beyond the limit)", r.Memory, tt.wantMem)
			}
			if tt.wantPids == 0 {
				if r.Pids != nil {
					t.Errorf("pids = %+v, want none", r.Pids)
				}
			} else if r.Pids == nil || r.Pids.Limit == nil || *r.Pids.Limit != tt.wantPids {
				t.Errorf("pids = %+v, want %d", r.Pids, tt.wantPids)
			}
			if len(r.Devices) != 1 || r.Devices[0].Allow {
				t.Errorf("devices = %+v, want deny all", r.Devices)
			}
		})
	}
}

// Host files bind-mounted over the image's: only when asked, and the CA
// bundle read-only.
func TestSpecHostFiles(t *testing.T) {
	for _, tc := range []struct {
		dest string
		opts SpecOptions
		ro   bool
	}{
		{"/etc/resolv.conf", SpecOptions{Rootfs: "/r", ResolvConf: "/d/resolv.conf"}, false},
		{CABundlePath, SpecOptions{Rootfs: "/r", CABundle: "/d/ca-bundle.crt"}, true},
	} {
		t.Run(tc.dest, func(t *testing.T) {
			s, err := Spec(SpecOptions{Rootfs: "/r"})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range s.Mounts {
				if m.Destination == tc.dest {
					t.Fatalf("%s mounted without being asked: %+v", tc.dest, m)
				}
			}
			if s, err = Spec(tc.opts); err != nil {
				t.Fatal(err)
			}
			found := false
			for _, m := range s.Mounts {
				if m.Destination == tc.dest {
					found = m.Type == "bind" && (m.Source == tc.opts.ResolvConf || m.Source == tc.opts.CABundle) &&
						slices.Contains(m.Options, "ro") == tc.ro
				}
			}
			if !found {
				t.Fatalf("no bind mount at %s in %+v", tc.dest, s.Mounts)
			}
		})
	}
}
