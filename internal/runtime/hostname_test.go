package runtime

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/testutil"
)

func TestSetHostname(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.RequiresTool(t, "unshare")
	testutil.RequiresTool(t, "nsenter")
	r := &Runc{log: slog.New(slog.DiscardHandler)}
	host, _ := os.Hostname()

	// A process in its own UTS namespace gets the new name; the host keeps its own.
	cmd := exec.Command("unshare", "-u", "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	// The pid is unshare's until it has made the namespace and exec'd sleep.
	testutil.Eventually(t, 5*time.Second, func() error {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid))
		if err != nil || strings.TrimSpace(string(comm)) != "sleep" {
			return fmt.Errorf("unshare has not exec'd sleep yet: %q %v", comm, err)
		}
		return nil
	})
	fd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := r.SetHostname(fd, "renamed-box"); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("nsenter", "-t", strconv.Itoa(cmd.Process.Pid), "-u", "hostname").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "renamed-box" {
		t.Fatalf("hostname in the namespace %q", got)
	}
	if now, _ := os.Hostname(); now != host {
		t.Fatalf("host hostname changed to %q", now)
	}

	// Once the process is gone its pidfd fails: it never names another process.
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if err := r.SetHostname(fd, "stranger"); err == nil {
		t.Fatal("SetHostname through the pidfd of a dead process succeeded")
	}
	if now, _ := os.Hostname(); now != host {
		t.Fatalf("host hostname changed to %q", now)
	}
}
