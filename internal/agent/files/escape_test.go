package files

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
)

// escapeLinks plants links that point outside the root on the host: an
// absolute one, one to the sentinel file, a relative one with enough ".."
// to reach it from the host's point of view, and ones to "/" and "/etc".
func escapeLinks(e *env) {
	up := strings.Repeat("../", 20)
	e.symlink(e.outside, "/workspace/abs")
	e.symlink(filepath.Join(e.outside, "sentinel"), "/workspace/absfile")
	e.symlink(up+strings.TrimPrefix(e.outside, "/"), "/workspace/rel")
	e.symlink(up+strings.TrimPrefix(e.outside, "/")+"/sentinel", "/workspace/relfile")
	e.symlink(up, "/workspace/up")
	e.symlink("/etc", "/workspace/etc")
	e.writeHost("/etc/passwd", "sandbox passwd")
	e.writeHost("/workspace/mine", "mine")
}

// TestEscape tries to reach the outside directory through ".." and
// symlinks with every operation. newEnv's cleanup fails the test if
// anything outside the root changed or appeared.
func TestEscape(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, e *env)
	}{
		{"get via dotdot", func(t *testing.T, e *env) {
			resp, body := e.get("../../../../../../../.." + e.outside + "/sentinel")
			e.wantHTTPError(resp, body, 404, connect.CodeNotFound)
		}},
		{"get via absolute dir link", func(t *testing.T, e *env) {
			resp, body := e.get("/workspace/abs/sentinel")
			e.wantHTTPError(resp, body, 404, connect.CodeNotFound)
		}},
		{"get via absolute file link", func(t *testing.T, e *env) {
			resp, body := e.get("/workspace/absfile")
			e.wantHTTPError(resp, body, 404, connect.CodeNotFound)
		}},
		{"get via relative links", func(t *testing.T, e *env) {
			for _, p := range []string{"/workspace/rel/sentinel", "/workspace/relfile", "/workspace/up" + e.outside + "/sentinel"} {
				resp, body := e.get(p)
				e.wantHTTPError(resp, body, 404, connect.CodeNotFound)
			}
		}},
		{"get /etc link resolves in root", func(t *testing.T, e *env) {
			resp, body := e.get("/workspace/etc/passwd")
			if resp.StatusCode != 200 || string(body) != "sandbox passwd" {
				t.Errorf("got %d %q, want the sandbox's own /etc/passwd", resp.StatusCode, body)
			}
		}},
		{"put via links without parents", func(t *testing.T, e *env) {
			for _, p := range []string{"/workspace/abs/sentinel", "/workspace/absfile", "/workspace/rel/new", "/workspace/relfile"} {
				resp, body := e.put(p, "pwned")
				e.wantHTTPError(resp, body, 412, connect.CodeFailedPrecondition)
			}
		}},
		{"put via links with parents", func(t *testing.T, e *env) {
			// Parents are not created through dangling links...
			for _, p := range []string{"/workspace/abs/sentinel", "/workspace/rel/sentinel"} {
				resp, body := e.put(p, "pwned", "parents", "1")
				e.wantHTTPError(resp, body, 412, connect.CodeFailedPrecondition)
			}
			// ...and what is created lands inside the root.
			for _, p := range []string{"/workspace/absfile", "/workspace/relfile", "/workspace/up" + e.outside + "/x"} {
				if resp, body := e.put(p, "contained", "parents", "1"); resp.StatusCode != 200 {
					t.Fatalf("PUT %s: %d %s", p, resp.StatusCode, body)
				}
			}
			if got := e.readHost(filepath.Join(e.outside, "sentinel")); got != "contained" {
				t.Errorf("in-root copy = %q", got)
			}
		}},
		{"append via link", func(t *testing.T, e *env) {
			resp, body := e.put("/workspace/absfile", "pwned", "append", "1")
			e.wantHTTPError(resp, body, 412, connect.CodeFailedPrecondition)
			resp, body = e.put("/workspace/absfile", "x", "append", "1", "parents", "1")
			if resp.StatusCode != 200 {
				t.Fatalf("append with parents: %d %s", resp.StatusCode, body)
			}
		}},
		{"put via dotdot", func(t *testing.T, e *env) {
			resp, body := e.put("../../../../../.."+e.outside+"/sentinel", "pwned")
			e.wantHTTPError(resp, body, 412, connect.CodeFailedPrecondition)
		}},
		{"list via links", func(t *testing.T, e *env) {
			for _, p := range []string{"/workspace/abs", "/workspace/rel", "/workspace/up" + e.outside} {
				_, err := e.rpc.ListDir(ctx, connect.NewRequest(&hutchv1.ListDirRequest{Path: p, Recursive: true}))
				e.wantCode(err, connect.CodeNotFound)
			}
			res, err := e.rpc.ListDir(ctx, connect.NewRequest(&hutchv1.ListDirRequest{Path: "/workspace/up", Recursive: true}))
			mustDo(t, err)
			for _, fi := range res.Msg.Entries {
				if strings.Contains(fi.Path, "sentinel") || strings.HasPrefix(fi.Path, e.root) {
					t.Errorf("listing reached %s", fi.Path)
				}
			}
		}},
		{"list recursive does not follow links", func(t *testing.T, e *env) {
			res, err := e.rpc.ListDir(ctx, connect.NewRequest(&hutchv1.ListDirRequest{Path: "/", Recursive: true}))
			mustDo(t, err)
			for _, fi := range res.Msg.Entries {
				if strings.Contains(fi.Path, "sentinel") {
					t.Errorf("listing reached %s", fi.Path)
				}
			}
		}},
		{"stat via links", func(t *testing.T, e *env) {
			for _, p := range []string{"/workspace/abs/sentinel", "/workspace/rel/sentinel", "../../.." + e.outside + "/sentinel"} {
				res, err := e.rpc.Stat(ctx, connect.NewRequest(&hutchv1.StatRequest{Path: p}))
				mustDo(t, err)
				if res.Msg.Exists {
					t.Errorf("stat %s: exists: %v", p, res.Msg.Info)
				}
			}
			res, err := e.rpc.Stat(ctx, connect.NewRequest(&hutchv1.StatRequest{Path: "/workspace/abs"}))
			mustDo(t, err)
			if fi := res.Msg.Info; fi.Type != hutchv1.FileType_FILE_TYPE_SYMLINK || fi.Target != e.outside || fi.Path != "/workspace/abs" {
				t.Errorf("stat link = %v", fi)
			}
		}},
		{"remove via links", func(t *testing.T, e *env) {
			for _, p := range []string{"/workspace/abs/sentinel", "/workspace/rel/sentinel", "/workspace/up" + e.outside, "../../../../.." + e.outside} {
				_, err := e.rpc.Remove(ctx, connect.NewRequest(&hutchv1.RemoveRequest{Path: p, Recursive: true}))
				e.wantCode(err, connect.CodeNotFound)
			}
		}},
		{"remove links removes only links", func(t *testing.T, e *env) {
			for _, p := range []string{"/workspace/abs", "/workspace/absfile", "/workspace/rel", "/workspace/relfile", "/workspace/up"} {
				_, err := e.rpc.Remove(ctx, connect.NewRequest(&hutchv1.RemoveRequest{Path: p, Recursive: true}))
				mustDo(t, err)
				if _, err := os.Lstat(e.host(p)); !os.IsNotExist(err) {
					t.Errorf("%s still there", p)
				}
			}
		}},
		{"remove everything", func(t *testing.T, e *env) {
			_, err := e.rpc.Remove(ctx, connect.NewRequest(&hutchv1.RemoveRequest{Path: "/workspace", Recursive: true}))
			mustDo(t, err)
		}},
		{"rename via links", func(t *testing.T, e *env) {
			_, err := e.rpc.Rename(ctx, connect.NewRequest(&hutchv1.RenameRequest{From: "/workspace/abs/sentinel", To: "/workspace/stolen"}))
			e.wantCode(err, connect.CodeNotFound)
			_, err = e.rpc.Rename(ctx, connect.NewRequest(&hutchv1.RenameRequest{From: "/workspace/rel/sentinel", To: "/workspace/stolen"}))
			e.wantCode(err, connect.CodeNotFound)
			_, err = e.rpc.Rename(ctx, connect.NewRequest(&hutchv1.RenameRequest{From: "/workspace/mine", To: "/workspace/abs/planted", Overwrite: true}))
			e.wantCode(err, connect.CodeFailedPrecondition)
			_, err = e.rpc.Rename(ctx, connect.NewRequest(&hutchv1.RenameRequest{From: "/workspace/mine", To: "/workspace/rel/planted"}))
			e.wantCode(err, connect.CodeFailedPrecondition)
			_, err = e.rpc.Rename(ctx, connect.NewRequest(&hutchv1.RenameRequest{From: "/workspace/mine", To: "/workspace/absfile", Overwrite: true}))
			mustDo(t, err) // replaces the link itself
			if got := e.readHost("/workspace/absfile"); got != "mine" {
				t.Errorf("absfile = %q", got)
			}
			_, err = e.rpc.Rename(ctx, connect.NewRequest(&hutchv1.RenameRequest{From: "/workspace/abs", To: "/workspace/moved"}))
			mustDo(t, err)
		}},
		{"mkdir via links", func(t *testing.T, e *env) {
			for _, parents := range []bool{false, true} {
				for _, p := range []string{"/workspace/abs/new", "/workspace/rel/new"} {
					_, err := e.rpc.MakeDir(ctx, connect.NewRequest(&hutchv1.MakeDirRequest{Path: p, Parents: parents}))
					e.wantCode(err, connect.CodeFailedPrecondition)
				}
			}
			for _, p := range []string{"/workspace/up" + e.outside + "/new", "/workspace/up/workspace/../.." + e.outside + "/new2"} {
				_, err := e.rpc.MakeDir(ctx, connect.NewRequest(&hutchv1.MakeDirRequest{Path: p, Parents: true}))
				mustDo(t, err)
			}
			if st, err := os.Stat(e.host(e.outside + "/new")); err != nil || !st.IsDir() {
				t.Errorf("in-root dir: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			escapeLinks(e)
			tt.run(t, e)
			if got, err := os.ReadFile(filepath.Join(e.outside, "sentinel")); err != nil || string(got) != "host secret" {
				t.Errorf("sentinel = %q, %v", got, err)
			}
		})
	}
}
