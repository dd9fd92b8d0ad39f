package runtime

import (
	"fmt"
	"slices"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hutch-sh/hutch/internal/agentapi"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// CABundlePath is where Debian-based images keep their trusted roots.
const CABundlePath = "/etc/ssl/certs/ca-certificates.crt"

// SpecOptions describe one sandbox for Spec.
type SpecOptions struct {
	Hostname    string
	Rootfs      string // absolute host path of the merged root
	AgentBinary string // host path of hutch-agent, bind-mounted read-only
	RunDir      string // host dir bind-mounted at agentapi.RunDir; holds the agent socket
	Env         []string
	Limits      sandbox.Limits
	CgroupsPath string
	NetNS       string // path of a network namespace to join; empty for a new, empty one
	ResolvConf  string // host file bind-mounted at /etc/resolv.conf; empty keeps the image's
	// CABundle is a host file bind-mounted read-only over the image's CA
	// bundle (/etc/ssl/certs/ca-certificates.crt); empty keeps the image's.
	CABundle string
}

// The capabilities Docker grants by default: enough for package managers and
// servers, without admin powers over the host's kernel.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

var maskedPaths = []string{
	"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
	"/sys/firmware", "/sys/devices/virtual/powercap",
}

var readonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// cpuPeriod is the CFS period; the quota is derived from CPUMillis.
const cpuPeriod = 100000

// Spec builds the OCI runtime spec of a sandbox whose PID 1 is the agent.
func Spec(o SpecOptions) (*specs.Spec, error) {
	caps := append([]string(nil), defaultCaps...)
	env := append([]string(nil), o.Env...)
	// No HOSTNAME here: a pooled sandbox is renamed after it starts, so the
	// agent reads the hostname when it runs a command. One P for the agent:
	// it shares the sandbox's CPU quota with the user's processes, and a
	// second P only adds contention (measured: stdout 15% faster, less
	// memory); the agent drops the variable for the commands it runs.
	env = append(env, "GOMAXPROCS=1")
	s := &specs.Spec{
		Version:  specs.Version,
		Hostname: o.Hostname,
		Root:     &specs.Root{Path: o.Rootfs},
		Process: &specs.Process{
			Args: []string{agentapi.AgentPath, "--socket", agentapi.RunDir + "/" + agentapi.SocketName, "--listen-fd", "3"},
			Env:  env,
			Cwd:  "/",
			User: specs.User{UID: 0, GID: 0},
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			NoNewPrivileges: true,
			// The hard NOFILE limit for root on these hosts is 20,000.
			Rlimits:     []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 16384, Soft: 16384}},
			OOMScoreAdj: intPtr(500),
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
			{Destination: agentapi.AgentPath, Type: "bind", Source: o.AgentBinary, Options: []string{"bind", "ro", "nosuid", "nodev"}},
			{Destination: agentapi.RunDir, Type: "bind", Source: o.RunDir, Options: []string{"bind", "rw", "nosuid", "nodev", "noexec"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: o.CgroupsPath,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace, Path: o.NetNS}, {Type: specs.CgroupNamespace},
			},
			Resources:     resources(o.Limits),
			MaskedPaths:   slices.Clone(maskedPaths),
			ReadonlyPaths: slices.Clone(readonlyPaths),
		},
	}
	if o.ResolvConf != "" {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: o.ResolvConf,
			Options: []string{"bind", "rw", "nosuid", "nodev", "noexec"}})
	}
	if o.CABundle != "" {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: CABundlePath, Type: "bind", Source: o.CABundle,
			Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}})
	}
	prof, err := seccomp.GetDefaultProfile(s)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	s.Linux.Seccomp = prof
	return s, nil
}

func resources(l sandbox.Limits) *specs.LinuxResources {
	r := &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
	}
	if l.MemoryBytes > 0 {
		r.Memory = &specs.LinuxMemory{Limit: &l.MemoryBytes, Swap: &l.MemoryBytes}
	}
	if l.CPUMillis > 0 {
		quota := l.CPUMillis * cpuPeriod / 1000
		period := uint64(cpuPeriod)
		r.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	if l.Pids > 0 {
		r.Pids = &specs.LinuxPids{Limit: &l.Pids}
	}
	return r
}

func intPtr(i int) *int { return &i }
