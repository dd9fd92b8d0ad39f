package files

import (
	"context"
	"os"
	"testing"

	"connectrpc.com/connect"
	"golang.org/x/sys/unix"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/testutil"
)

// TestRenameAcrossFilesystems renames onto a tmpfs mounted inside the root,
// where rename(2) fails with EXDEV and the service copies instead.
func TestRenameAcrossFilesystems(t *testing.T) {
	testutil.RequiresRoot(t) // mounts a tmpfs
	tests := []struct {
		name      string
		from, to  string
		overwrite bool
		code      connect.Code
		check     func(t *testing.T, e *env)
	}{
		{name: "file", from: "/workspace/f", to: "/mnt/f", check: func(t *testing.T, e *env) {
			checkHost(t, e, "/workspace/f", "-")
			checkHost(t, e, "/mnt/f", "F")
			if st, err := os.Stat(e.host("/mnt/f")); err != nil || st.Mode().Perm() != 0o640 {
				t.Errorf("mode not kept: %v %v", st.Mode(), err)
			}
		}},
		{name: "tree", from: "/workspace/d", to: "/mnt/d", check: func(t *testing.T, e *env) {
			checkHost(t, e, "/workspace/d", "-")
			checkHost(t, e, "/mnt/d/sub/x", "X")
			if target, err := os.Readlink(e.host("/mnt/d/link")); err != nil || target != "/data/t" {
				t.Errorf("link = %q, %v", target, err)
			}
			checkHost(t, e, "/data/t", "T")
		}},
		{name: "exists", from: "/workspace/f", to: "/mnt/taken", code: connect.CodeAlreadyExists, check: func(t *testing.T, e *env) {
			checkHost(t, e, "/workspace/f", "F")
			checkHost(t, e, "/mnt/taken", "taken")
		}},
		{name: "overwrite", from: "/workspace/f", to: "/mnt/taken", overwrite: true, check: func(t *testing.T, e *env) {
			checkHost(t, e, "/workspace/f", "-")
			checkHost(t, e, "/mnt/taken", "F")
		}},
		{name: "special file", from: "/workspace/fifo", to: "/mnt/fifo", code: connect.CodeFailedPrecondition, check: func(t *testing.T, e *env) {
			checkHost(t, e, "/mnt/fifo", "-")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			mnt := e.host("/mnt")
			mustDo(t, os.Mkdir(mnt, 0o755))
			if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=16m"); err != nil {
				testutil.Unavailable(t, "mount tmpfs: %v", err)
			}
			t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
			e.writeHost("/workspace/f", "F")
			mustDo(t, os.Chmod(e.host("/workspace/f"), 0o640))
			e.writeHost("/workspace/d/sub/x", "X")
			e.writeHost("/data/t", "T")
			e.symlink("/data/t", "/workspace/d/link")
			e.writeHost("/mnt/taken", "taken")
			mustDo(t, unix.Mkfifo(e.host("/workspace/fifo"), 0o644))
			_, err := e.rpc.Rename(context.Background(), connect.NewRequest(&hutchv1.RenameRequest{From: tt.from, To: tt.to, Overwrite: tt.overwrite}))
			if tt.code != 0 {
				e.wantCode(err, tt.code)
			} else {
				mustDo(t, err)
			}
			tt.check(t, e)
			ents, _ := os.ReadDir(mnt)
			for _, d := range ents {
				if len(d.Name()) > len(tempPrefix) && d.Name()[:len(tempPrefix)] == tempPrefix {
					t.Errorf("temporary copy left: %s", d.Name())
				}
			}
		})
	}
}
