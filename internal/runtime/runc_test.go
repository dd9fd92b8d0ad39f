package runtime_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/hutch-sh/hutch/internal/runtime"
	"github.com/hutch-sh/hutch/internal/runtime/runtimetest"
)

var _ runtimetest.Runtime = (*runtime.Runc)(nil)

func TestRuncConformance(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("requires root")
	}
	runtimetest.Run(t, func(t *testing.T) runtimetest.Runtime {
		rt, err := runtime.NewRunc(filepath.Join(t.TempDir(), "runc"), runtimetest.CgroupParent, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Skipf("runc: %v", err)
		}
		return rt
	})
}
