package files

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sys/unix"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
)

func TestStat(t *testing.T) {
	e := newEnv(t)
	e.writeHost("/workspace/f", "12345")
	mustDo(t, unix.Chmod(e.host("/workspace/f"), 0o4755))
	mustDo(t, os.Mkdir(e.host("/workspace/d"), 0o755))
	mustDo(t, unix.Chmod(e.host("/workspace/d"), 0o1777))
	e.symlink("f", "/workspace/l")
	e.symlink("/nowhere", "/workspace/dangling")
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	mustDo(t, os.Chtimes(e.host("/workspace/f"), mtime, mtime))

	tests := []struct {
		name   string
		path   string
		exists bool
		want   *hutchv1.FileInfo // fields checked: name, path, type, size, mode, target
	}{
		{name: "file", path: "/workspace/f", exists: true, want: &hutchv1.FileInfo{Name: "f", Path: "/workspace/f", Type: hutchv1.FileType_FILE_TYPE_FILE, Size: 5, Mode: 0o4755}},
		{name: "relative", path: "f", exists: true, want: &hutchv1.FileInfo{Name: "f", Path: "/workspace/f", Type: hutchv1.FileType_FILE_TYPE_FILE, Size: 5, Mode: 0o4755}},
		{name: "dotdot", path: "/workspace/../workspace/./f", exists: true, want: &hutchv1.FileInfo{Name: "f", Path: "/workspace/f", Type: hutchv1.FileType_FILE_TYPE_FILE, Size: 5, Mode: 0o4755}},
		{name: "sticky dir", path: "/workspace/d", exists: true, want: &hutchv1.FileInfo{Name: "d", Path: "/workspace/d", Type: hutchv1.FileType_FILE_TYPE_DIRECTORY, Mode: 0o1777}},
		{name: "symlink", path: "/workspace/l", exists: true, want: &hutchv1.FileInfo{Name: "l", Path: "/workspace/l", Type: hutchv1.FileType_FILE_TYPE_SYMLINK, Size: 1, Mode: 0o777, Target: "f"}},
		{name: "dangling symlink", path: "/workspace/dangling", exists: true, want: &hutchv1.FileInfo{Name: "dangling", Path: "/workspace/dangling", Type: hutchv1.FileType_FILE_TYPE_SYMLINK, Size: 8, Mode: 0o777, Target: "/nowhere"}},
		{name: "root", path: "/", exists: true, want: &hutchv1.FileInfo{Name: "/", Path: "/", Type: hutchv1.FileType_FILE_TYPE_DIRECTORY}},
		{name: "above root", path: "../../../..", exists: true, want: &hutchv1.FileInfo{Name: "/", Path: "/", Type: hutchv1.FileType_FILE_TYPE_DIRECTORY}},
		{name: "missing", path: "/workspace/nope"},
		{name: "missing parent", path: "/workspace/no/such"},
		{name: "parent is a file", path: "/workspace/f/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.rpc.Stat(context.Background(), connect.NewRequest(&hutchv1.StatRequest{Path: tt.path}))
			mustDo(t, err)
			if res.Msg.Exists != tt.exists {
				t.Fatalf("exists = %v, want %v", res.Msg.Exists, tt.exists)
			}
			if !tt.exists {
				if res.Msg.Info != nil {
					t.Errorf("info = %v for a missing path", res.Msg.Info)
				}
				return
			}
			got, want := res.Msg.Info, tt.want
			if got.Name != want.Name || got.Path != want.Path || got.Type != want.Type || got.Target != want.Target ||
				(want.Type != hutchv1.FileType_FILE_TYPE_DIRECTORY && got.Size != want.Size) ||
				(want.Mode != 0 && got.Mode != want.Mode) {
				t.Errorf("info = %v, want %v", got, want)
			}
			if tt.name == "file" && !got.ModifiedAt.AsTime().Equal(mtime) {
				t.Errorf("modified_at = %v, want %v", got.ModifiedAt.AsTime(), mtime)
			}
		})
	}
	for _, bad := range []string{"", "/workspace/\x00"} {
		_, err := e.rpc.Stat(context.Background(), connect.NewRequest(&hutchv1.StatRequest{Path: bad}))
		e.wantCode(err, connect.CodeInvalidArgument)
	}
}

func TestListDir(t *testing.T) {
	e := newEnv(t)
	e.writeHost("/workspace/b.txt", "bb")
	e.writeHost("/workspace/a/x", "x")
	e.writeHost("/workspace/a/sub/y", "yy")
	e.writeHost("/workspace/.hidden/z", "z")
	e.writeHost("/workspace/.env", "e")
	e.writeHost("/data/in", "i")
	e.symlink("/data", "/workspace/datalink")

	tests := []struct {
		name          string
		path          string
		recursive     bool
		excludeHidden bool
		want          []string // path:type
	}{
		{name: "flat", path: "/workspace", want: []string{"/workspace/.env:f", "/workspace/.hidden:d", "/workspace/a:d", "/workspace/b.txt:f", "/workspace/datalink:l"}},
		{name: "flat relative", path: ".", excludeHidden: true, want: []string{"/workspace/a:d", "/workspace/b.txt:f", "/workspace/datalink:l"}},
		{name: "recursive", path: "/workspace", recursive: true, want: []string{
			"/workspace/.env:f", "/workspace/.hidden:d", "/workspace/.hidden/z:f", "/workspace/a:d", "/workspace/a/sub:d",
			"/workspace/a/sub/y:f", "/workspace/a/x:f", "/workspace/b.txt:f", "/workspace/datalink:l"}},
		{name: "recursive no hidden", path: "/workspace", recursive: true, excludeHidden: true, want: []string{
			"/workspace/a:d", "/workspace/a/sub:d", "/workspace/a/sub/y:f", "/workspace/a/x:f", "/workspace/b.txt:f", "/workspace/datalink:l"}},
		{name: "through symlink to dir", path: "/workspace/datalink", want: []string{"/workspace/datalink/in:f"}},
		{name: "empty dir", path: "/workspace/a/sub/..", want: []string{"/workspace/a/sub:d", "/workspace/a/x:f"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.rpc.ListDir(context.Background(), connect.NewRequest(&hutchv1.ListDirRequest{
				Path: tt.path, Recursive: tt.recursive, ExcludeHidden: tt.excludeHidden}))
			mustDo(t, err)
			var got []string
			for _, fi := range res.Msg.Entries {
				got = append(got, fi.Path+":"+typeLetter(fi.Type))
				if fi.Name == "" || !strings.HasSuffix(fi.Path, "/"+fi.Name) || fi.ModifiedAt == nil || fi.Mode == 0 {
					t.Errorf("bad metadata: %v", fi)
				}
				if fi.Path == "/workspace/a/sub/y" && fi.Size != 2 {
					t.Errorf("size of y = %d", fi.Size)
				}
				if fi.Path == "/workspace/datalink" && fi.Target != "/data" {
					t.Errorf("target = %q", fi.Target)
				}
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("entries\n got %v\nwant %v", got, tt.want)
			}
		})
	}
	errTests := []struct {
		name string
		path string
		code connect.Code
	}{
		{name: "file", path: "/workspace/b.txt", code: connect.CodeFailedPrecondition},
		{name: "missing", path: "/workspace/nope", code: connect.CodeNotFound},
		{name: "empty path", path: "", code: connect.CodeInvalidArgument},
		{name: "NUL", path: "a\x00", code: connect.CodeInvalidArgument},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.rpc.ListDir(context.Background(), connect.NewRequest(&hutchv1.ListDirRequest{Path: tt.path}))
			e.wantCode(err, tt.code)
		})
	}
	t.Run("entry cap", func(t *testing.T) {
		e := newEnv(t)
		e.svc.maxEntries = 10
		for i := range 11 {
			e.writeHost("/workspace/many/"+string(rune('a'+i)), "")
		}
		_, err := e.rpc.ListDir(context.Background(), connect.NewRequest(&hutchv1.ListDirRequest{Path: "/workspace", Recursive: true}))
		e.wantCode(err, connect.CodeResourceExhausted)
	})
}

func typeLetter(t hutchv1.FileType) string {
	switch t {
	case hutchv1.FileType_FILE_TYPE_FILE:
		return "f"
	case hutchv1.FileType_FILE_TYPE_DIRECTORY:
		return "d"
	case hutchv1.FileType_FILE_TYPE_SYMLINK:
		return "l"
	}
	return "?"
}

func TestMakeDir(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		parents  bool
		mode     uint32
		code     connect.Code // 0 for success
		wantMode os.FileMode
	}{
		{name: "simple", path: "/workspace/d", wantMode: 0o755},
		{name: "mode", path: "/workspace/d", mode: 0o700, wantMode: 0o700},
		{name: "mode beats umask", path: "/workspace/d", mode: 0o777, wantMode: 0o777},
		{name: "parents", path: "/workspace/a/b/c", parents: true, wantMode: 0o755},
		{name: "parents exists", path: "/workspace/existing", parents: true, wantMode: 0o711},
		{name: "parents root", path: "/", parents: true},
		{name: "exists", path: "/workspace/existing", code: connect.CodeAlreadyExists},
		{name: "file exists", path: "/workspace/file", code: connect.CodeAlreadyExists},
		{name: "no parent", path: "/workspace/a/b", code: connect.CodeFailedPrecondition},
		{name: "parents file in the way", path: "/workspace/file/sub", parents: true, code: connect.CodeFailedPrecondition},
		{name: "parents file at path", path: "/workspace/file", parents: true, code: connect.CodeFailedPrecondition},
		{name: "bad mode", path: "/workspace/d", mode: 0o170000, code: connect.CodeInvalidArgument},
		{name: "empty", path: "", code: connect.CodeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			mustDo(t, os.Mkdir(e.host("/workspace/existing"), 0o711))
			mustDo(t, os.Chmod(e.host("/workspace/existing"), 0o711))
			e.writeHost("/workspace/file", "f")
			_, err := e.rpc.MakeDir(context.Background(), connect.NewRequest(&hutchv1.MakeDirRequest{Path: tt.path, Parents: tt.parents, Mode: tt.mode}))
			if tt.code != 0 {
				e.wantCode(err, tt.code)
				return
			}
			mustDo(t, err)
			st, err := os.Stat(e.host(tt.path))
			mustDo(t, err)
			if !st.IsDir() || (tt.wantMode != 0 && st.Mode().Perm() != tt.wantMode) {
				t.Errorf("got %v, want dir %v", st.Mode(), tt.wantMode)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	tests := []struct {
		name      string
		path      string
		recursive bool
		code      connect.Code
		msg       string
		gone      []string // host paths under root that must be gone
		kept      []string // and kept
	}{
		{name: "file", path: "/workspace/f", gone: []string{"/workspace/f"}},
		{name: "empty dir", path: "/workspace/empty", gone: []string{"/workspace/empty"}},
		{name: "tree", path: "/workspace/d", recursive: true, gone: []string{"/workspace/d"}, kept: []string{"/data/keep"}},
		{name: "symlink to dir", path: "/workspace/dlink", recursive: true, gone: []string{"/workspace/dlink"}, kept: []string{"/data/keep"}},
		{name: "symlink to file", path: "/workspace/flink", gone: []string{"/workspace/flink"}, kept: []string{"/data/keep"}},
		{name: "tree non-recursive", path: "/workspace/d", code: connect.CodeFailedPrecondition,
			msg: `remove "/workspace/d": directory not empty (set recursive)`, kept: []string{"/workspace/d/sub/x"}},
		{name: "missing", path: "/workspace/nope", code: connect.CodeNotFound},
		{name: "missing parent", path: "/workspace/no/such", recursive: true, code: connect.CodeNotFound},
		{name: "root", path: "/", recursive: true, code: connect.CodeInvalidArgument, kept: []string{"/workspace/f"}},
		{name: "above root", path: "../../..", recursive: true, code: connect.CodeInvalidArgument, kept: []string{"/workspace/f"}},
		{name: "empty", path: "", code: connect.CodeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.writeHost("/workspace/f", "f")
			e.writeHost("/workspace/d/sub/x", "x")
			e.writeHost("/workspace/d/y", "y")
			e.writeHost("/data/keep", "k")
			e.symlink("/data", "/workspace/d/sub/link")
			e.symlink("/data", "/workspace/dlink")
			e.symlink("../data/keep", "/workspace/flink")
			mustDo(t, os.Mkdir(e.host("/workspace/empty"), 0o755))
			_, err := e.rpc.Remove(context.Background(), connect.NewRequest(&hutchv1.RemoveRequest{Path: tt.path, Recursive: tt.recursive}))
			if tt.code != 0 {
				e.wantCode(err, tt.code)
				if tt.msg != "" && !strings.Contains(err.Error(), tt.msg) {
					t.Errorf("message %q does not contain %q", err, tt.msg)
				}
			} else {
				mustDo(t, err)
			}
			for _, p := range tt.gone {
				if _, err := os.Lstat(e.host(p)); !os.IsNotExist(err) {
					t.Errorf("%s still there", p)
				}
			}
			for _, p := range tt.kept {
				if _, err := os.Lstat(e.host(p)); err != nil {
					t.Errorf("%s removed", p)
				}
			}
		})
	}
	t.Run("large tree", func(t *testing.T) {
		e := newEnv(t)
		for i := range 3000 {
			e.writeHost(fmt.Sprintf("/workspace/big/%d/%s%d", i%20, strings.Repeat("n", 1+i%50), i), "")
		}
		_, err := e.rpc.Remove(context.Background(), connect.NewRequest(&hutchv1.RemoveRequest{Path: "/workspace/big", Recursive: true}))
		mustDo(t, err)
		if _, err := os.Lstat(e.host("/workspace/big")); !os.IsNotExist(err) {
			t.Errorf("big tree still there: %v", err)
		}
	})
}

func TestRename(t *testing.T) {
	tests := []struct {
		name      string
		from, to  string
		overwrite bool
		code      connect.Code
		want      map[string]string // host path -> content after ("" for a dir, "-" for gone)
	}{
		{name: "file", from: "/workspace/f", to: "/workspace/g", want: map[string]string{"/workspace/f": "-", "/workspace/g": "F"}},
		{name: "relative", from: "f", to: "sub/../g", want: map[string]string{"/workspace/f": "-", "/workspace/g": "F"}},
		{name: "dir", from: "/workspace/d", to: "/workspace/e", want: map[string]string{"/workspace/d": "-", "/workspace/e/x": "X"}},
		{name: "into other dir", from: "/workspace/f", to: "/workspace/d/f", want: map[string]string{"/workspace/d/f": "F"}},
		{name: "exists no overwrite", from: "/workspace/f", to: "/workspace/other", code: connect.CodeAlreadyExists, want: map[string]string{"/workspace/f": "F", "/workspace/other": "O"}},
		{name: "exists overwrite", from: "/workspace/f", to: "/workspace/other", overwrite: true, want: map[string]string{"/workspace/f": "-", "/workspace/other": "F"}},
		{name: "dir over non-empty dir", from: "/workspace/empty", to: "/workspace/d", overwrite: true, code: connect.CodeFailedPrecondition, want: map[string]string{"/workspace/d/x": "X"}},
		{name: "dir over empty dir", from: "/workspace/d", to: "/workspace/empty", overwrite: true, want: map[string]string{"/workspace/empty/x": "X"}},
		{name: "file over dir", from: "/workspace/f", to: "/workspace/empty", overwrite: true, code: connect.CodeFailedPrecondition},
		{name: "dir over file", from: "/workspace/d", to: "/workspace/f", overwrite: true, code: connect.CodeFailedPrecondition},
		{name: "dir into itself", from: "/workspace/d", to: "/workspace/d/inner", code: connect.CodeInvalidArgument},
		{name: "missing source", from: "/workspace/nope", to: "/workspace/g", code: connect.CodeNotFound},
		{name: "missing dest parent", from: "/workspace/f", to: "/workspace/no/g", code: connect.CodeFailedPrecondition, want: map[string]string{"/workspace/f": "F"}},
		{name: "dest parent is file", from: "/workspace/f", to: "/workspace/other/g", code: connect.CodeFailedPrecondition},
		{name: "symlink moves as link", from: "/workspace/link", to: "/workspace/link2", want: map[string]string{"/workspace/link": "-", "/data/t": "T"}},
		{name: "root", from: "/", to: "/workspace/r", code: connect.CodeInvalidArgument},
		{name: "to root", from: "/workspace/f", to: "/", overwrite: true, code: connect.CodeInvalidArgument},
		{name: "empty", from: "", to: "/workspace/g", code: connect.CodeInvalidArgument},
		{name: "NUL", from: "/workspace/f", to: "/workspace/\x00", code: connect.CodeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.writeHost("/workspace/f", "F")
			e.writeHost("/workspace/other", "O")
			e.writeHost("/workspace/d/x", "X")
			e.writeHost("/data/t", "T")
			e.symlink("/data/t", "/workspace/link")
			mustDo(t, os.Mkdir(e.host("/workspace/empty"), 0o755))
			_, err := e.rpc.Rename(context.Background(), connect.NewRequest(&hutchv1.RenameRequest{From: tt.from, To: tt.to, Overwrite: tt.overwrite}))
			if tt.code != 0 {
				e.wantCode(err, tt.code)
			} else {
				mustDo(t, err)
			}
			for p, want := range tt.want {
				checkHost(t, e, p, want)
			}
			if tt.name == "symlink moves as link" {
				if target, err := os.Readlink(e.host("/workspace/link2")); err != nil || target != "/data/t" {
					t.Errorf("link2 = %q, %v", target, err)
				}
			}
		})
	}
}

func checkHost(t *testing.T, e *env, p, want string) {
	t.Helper()
	st, err := os.Lstat(e.host(p))
	switch {
	case want == "-":
		if !os.IsNotExist(err) {
			t.Errorf("%s exists", p)
		}
	case err != nil:
		t.Errorf("%s: %v", p, err)
	case want == "":
		if !st.IsDir() {
			t.Errorf("%s is not a dir", p)
		}
	default:
		if got := e.readHost(p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
}
