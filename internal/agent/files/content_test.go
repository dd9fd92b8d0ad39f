package files

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/hutch-sh/hutch/internal/testutil"
)

func TestContentRoundTrip(t *testing.T) {
	binary := string([]byte{0, 1, 2, 0xff, 0, 'a', 0, '\n', 0x80})
	tests := []struct {
		name     string
		path     string
		content  string
		query    []string
		wantPath string
		wantMode string
	}{
		{name: "text", path: "/workspace/a.txt", content: "hello\nworld\n", wantPath: "/workspace/a.txt", wantMode: "0644"},
		{name: "binary with NUL", path: "/workspace/bin", content: binary, wantPath: "/workspace/bin", wantMode: "0644"},
		{name: "empty", path: "/workspace/empty", content: "", wantPath: "/workspace/empty", wantMode: "0644"},
		{name: "relative", path: "rel.txt", content: "r", wantPath: "/workspace/rel.txt", wantMode: "0644"},
		{name: "mode", path: "/workspace/run.sh", content: "#!/bin/sh\n", query: []string{"mode", "0755"}, wantPath: "/workspace/run.sh", wantMode: "0755"},
		{name: "setuid mode", path: "/workspace/su", content: "x", query: []string{"mode", "4750"}, wantPath: "/workspace/su", wantMode: "4750"},
		{name: "parents", path: "/workspace/x/y/z.txt", content: "deep", query: []string{"parents", "1"}, wantPath: "/workspace/x/y/z.txt", wantMode: "0644"},
		{name: "outside workspace", path: "/tmp/t", content: "t", query: []string{"parents", "1"}, wantPath: "/tmp/t", wantMode: "0644"},
	}
	e := newEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.put(tt.path, tt.content, tt.query...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT status %d: %s", resp.StatusCode, body)
			}
			var res PutResult
			mustDo(t, json.Unmarshal(body, &res))
			if res.Path != tt.wantPath || res.Size != int64(len(tt.content)) {
				t.Errorf("PUT result = %+v, want path %q size %d", res, tt.wantPath, len(tt.content))
			}

			resp, body = e.get(tt.path)
			if resp.StatusCode != http.StatusOK || string(body) != tt.content {
				t.Fatalf("GET = %d %q, want %q", resp.StatusCode, body, tt.content)
			}
			h := resp.Header
			if h.Get("Content-Type") != "application/octet-stream" || h.Get("Content-Length") != fmt.Sprint(len(tt.content)) ||
				h.Get("X-Hutch-Mode") != tt.wantMode || h.Get("Last-Modified") == "" {
				t.Errorf("GET headers = %v", h)
			}
			if st, err := os.Stat(e.host(tt.wantPath)); err != nil || uint32(st.Mode().Perm()) != uint32(parseMode(t, tt.wantMode))&0o777 {
				t.Errorf("host file %v, %v; want mode %s", st.Mode(), err, tt.wantMode)
			}

			resp, body = e.do(http.MethodHead, e.contentURL(tt.path), nil)
			if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.ContentLength != int64(len(tt.content)) {
				t.Errorf("HEAD = %d, %d body bytes, length %d", resp.StatusCode, len(body), resp.ContentLength)
			}
		})
	}
}

func parseMode(t *testing.T, s string) uint64 {
	var m uint64
	_, err := fmt.Sscanf(s, "%o", &m)
	mustDo(t, err)
	return m
}

func TestContentWrite(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(e *env)
		path     string
		content  string
		query    []string
		want     string // content afterwards; "" to skip
		wantMode os.FileMode
		file     string // where the content lands, if not path
	}{
		{
			name:  "replace keeps mode",
			setup: func(e *env) { e.writeHost("/workspace/s", "old"); os.Chmod(e.host("/workspace/s"), 0o750) },
			path:  "/workspace/s", content: "new", want: "new", wantMode: 0o750,
		},
		{
			name:  "replace with mode",
			setup: func(e *env) { e.writeHost("/workspace/s", "old") },
			path:  "/workspace/s", content: "new", query: []string{"mode", "600"}, want: "new", wantMode: 0o600,
		},
		{
			name:  "append",
			setup: func(e *env) { e.writeHost("/workspace/log", "one\n") },
			path:  "/workspace/log", content: "two\n", query: []string{"append", "1"}, want: "one\ntwo\n", wantMode: 0o644,
		},
		{
			name: "append creates",
			path: "/workspace/new.log", content: "first", query: []string{"append", "1", "mode", "0640"}, want: "first", wantMode: 0o640,
		},
		{
			name:  "write through symlink inside root",
			setup: func(e *env) { e.writeHost("/data/real", "old"); e.symlink("/data/real", "/workspace/link") },
			path:  "/workspace/link", content: "via link", want: "via link", wantMode: 0o644, file: "/data/real",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.setup != nil {
				tt.setup(e)
			}
			resp, body := e.put(tt.path, tt.content, tt.query...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT status %d: %s", resp.StatusCode, body)
			}
			var res PutResult
			mustDo(t, json.Unmarshal(body, &res))
			if res.Size != int64(len(tt.want)) {
				t.Errorf("size = %d, want %d", res.Size, len(tt.want))
			}
			if _, got := e.get(tt.path); string(got) != tt.want {
				t.Errorf("content = %q, want %q", got, tt.want)
			}
			file := tt.path
			if tt.file != "" {
				file = tt.file
			}
			st, err := os.Stat(e.host(file))
			mustDo(t, err)
			if st.Mode().Perm() != tt.wantMode {
				t.Errorf("mode = %v, want %v", st.Mode().Perm(), tt.wantMode)
			}
		})
	}
	t.Run("symlink stays a symlink", func(t *testing.T) {
		e := newEnv(t)
		e.writeHost("/data/real", "old")
		e.symlink("../data/real", "/workspace/link")
		e.put("/workspace/link", "new")
		if fi, err := os.Lstat(e.host("/workspace/link")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("link replaced: %v %v", fi.Mode(), err)
		}
		if got := e.readHost("/data/real"); got != "new" {
			t.Errorf("target = %q", got)
		}
	})
}

func TestContentErrors(t *testing.T) {
	tests := []struct {
		name   string
		method string
		path   string
		query  []string
		status int
		code   connect.Code
		msg    string // substring of the message
	}{
		{name: "get missing", method: "GET", path: "/workspace/nope", status: 404, code: connect.CodeNotFound},
		{name: "head missing", method: "HEAD", path: "/workspace/nope", status: 404, code: connect.CodeNotFound},
		{name: "get directory", method: "GET", path: "/workspace", status: 412, code: connect.CodeFailedPrecondition, msg: "is a directory"},
		{name: "get root", method: "GET", path: "/", status: 412, code: connect.CodeFailedPrecondition},
		{name: "get fifo", method: "GET", path: "/workspace/fifo", status: 412, code: connect.CodeFailedPrecondition, msg: "not a regular file"},
		{name: "get empty path", method: "GET", path: "", status: 400, code: connect.CodeInvalidArgument, msg: "empty"},
		{name: "get NUL", method: "GET", path: "/workspace/a\x00b", status: 400, code: connect.CodeInvalidArgument, msg: "NUL"},
		{name: "get through file", method: "GET", path: "/workspace/file/x", status: 412, code: connect.CodeFailedPrecondition},
		{name: "put NUL", method: "PUT", path: "/workspace/a\x00b", status: 400, code: connect.CodeInvalidArgument},
		{name: "put empty path", method: "PUT", path: "", status: 400, code: connect.CodeInvalidArgument},
		{name: "put no parent", method: "PUT", path: "/workspace/no/such/f", status: 412, code: connect.CodeFailedPrecondition, msg: "parents=1"},
		{name: "put parent is file", method: "PUT", path: "/workspace/file/x", status: 412, code: connect.CodeFailedPrecondition},
		{name: "put directory", method: "PUT", path: "/workspace", status: 412, code: connect.CodeFailedPrecondition, msg: "is a directory"},
		{name: "put root", method: "PUT", path: "/", status: 412, code: connect.CodeFailedPrecondition},
		{name: "put bad mode", method: "PUT", path: "/workspace/m", query: []string{"mode", "999"}, status: 400, code: connect.CodeInvalidArgument},
		{name: "put mode too big", method: "PUT", path: "/workspace/m", query: []string{"mode", "17777"}, status: 400, code: connect.CodeInvalidArgument},
		{name: "append to dir", method: "PUT", path: "/workspace", query: []string{"append", "1"}, status: 412, code: connect.CodeFailedPrecondition},
		{name: "post", method: "POST", path: "/workspace/file", status: 405, code: connect.CodeUnimplemented},
		{name: "delete", method: "DELETE", path: "/workspace/file", status: 405, code: connect.CodeUnimplemented},
	}
	e := newEnv(t)
	e.writeHost("/workspace/file", "f")
	mustDo(t, syscallMkfifo(e.host("/workspace/fifo")))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do(tt.method, e.contentURL(tt.path, tt.query...), strings.NewReader("data"))
			if tt.method == "HEAD" {
				if resp.StatusCode != tt.status {
					t.Fatalf("status = %d, want %d", resp.StatusCode, tt.status)
				}
				return
			}
			e.wantHTTPError(resp, body, tt.status, tt.code)
			if !strings.Contains(string(body), tt.msg) {
				t.Errorf("body %s does not mention %q", body, tt.msg)
			}
			if tt.status == 405 && resp.Header.Get("Allow") != "GET, HEAD, PUT" {
				t.Errorf("Allow = %q", resp.Header.Get("Allow"))
			}
		})
	}
	t.Run("missing path parameter", func(t *testing.T) {
		resp, body := e.do("GET", e.srv.URL+"/v1/files", nil)
		e.wantHTTPError(resp, body, 400, connect.CodeInvalidArgument)
	})
	t.Run("error body is exactly code and message", func(t *testing.T) {
		_, body := e.get("/workspace/nope")
		var m map[string]any
		mustDo(t, json.Unmarshal(body, &m))
		if len(m) != 2 || m["code"] != "not_found" || !strings.Contains(m["message"].(string), `"/workspace/nope"`) {
			t.Errorf("body = %s", body)
		}
	})
}

func TestContentRange(t *testing.T) {
	e := newEnv(t)
	e.writeHost("/workspace/r", "0123456789")
	resp, body := e.do("GET", e.contentURL("/workspace/r"), nil, "Range", "bytes=2-4")
	if resp.StatusCode != http.StatusPartialContent || string(body) != "234" {
		t.Errorf("range = %d %q", resp.StatusCode, body)
	}
	resp, body = e.do("GET", e.contentURL("/workspace/r"), nil, "Range", "bytes=50-60")
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("unsatisfiable range = %d %q", resp.StatusCode, body)
	}
}

// TestContentPutDisconnect cuts a PUT off half way: the old content must
// stay readable throughout and no temporary file may be left.
func TestContentPutDisconnect(t *testing.T) {
	e := newEnv(t)
	e.writeHost("/workspace/f", "old content")
	u, err := url.Parse(e.contentURL("/workspace/f"))
	mustDo(t, err)
	conn, err := net.Dial("tcp", u.Host)
	mustDo(t, err)
	defer conn.Close()
	w := bufio.NewWriter(conn)
	fmt.Fprintf(w, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", u.RequestURI(), u.Host, 1<<20)
	w.Write(bytes.Repeat([]byte("n"), 1<<19))
	mustDo(t, w.Flush())

	tmp := waitFor(t, func() bool { return len(e.tempFiles()) > 0 })
	if !tmp {
		t.Fatal("upload never started")
	}
	if _, body := e.get("/workspace/f"); string(body) != "old content" {
		t.Errorf("mid-upload read = %q", body)
	}
	conn.Close()
	if !waitFor(t, func() bool { return len(e.tempFiles()) == 0 }) {
		t.Fatalf("temporary files left: %v", e.tempFiles())
	}
	if got := e.readHost("/workspace/f"); got != "old content" {
		t.Errorf("content after cut upload = %q", got)
	}
}

func (e *env) tempFiles() []string {
	ents, _ := os.ReadDir(e.host("/workspace"))
	var out []string
	for _, d := range ents {
		if strings.HasPrefix(d.Name(), tempPrefix) {
			out = append(out, d.Name())
		}
	}
	return out
}

// waitFor polls cond for up to 10s and reports whether it came true.
func waitFor(t *testing.T, cond func() bool) bool {
	t.Helper()
	return testutil.Poll(10*time.Second, func() error {
		if !cond() {
			return errors.New("not yet")
		}
		return nil
	}) == nil
}
