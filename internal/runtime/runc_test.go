package runtime_test

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/hutch-sh/hutch/internal/runtime"
	"github.com/hutch-sh/hutch/internal/runtime/runtimetest"
	"github.com/hutch-sh/hutch/internal/testutil"
)

var _ runtimetest.Runtime = (*runtime.Runc)(nil)

func TestRuncConformance(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.RequiresTool(t, "runc")
	runtimetest.Run(t, func(t *testing.T) runtimetest.Runtime {
		rt, err := runtime.NewRunc(filepath.Join(t.TempDir(), "runc"), runtimetest.CgroupParent, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("runc: %v", err)
		}
		return rt
	})
}
