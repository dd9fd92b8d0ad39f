package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/client"
	"github.com/hutch-sh/hutch/internal/testutil"
)

// procs lists the processes called comm in sandbox name (pgrep -x).
func procs(t *testing.T, d *daemon, name, comm string) string {
	t.Helper()
	var out bytes.Buffer
	if _, err := d.Client.Exec(context.Background(), name, client.Command{Argv: []string{"pgrep", "-ax", comm}, Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestHugeHeader(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(d.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	// The daemon may answer and close before it read everything: write
	// in the background and ignore the write error that causes.
	go func() {
		big := strings.Repeat("x", 1<<20)
		fmt.Fprintf(conn, "POST /hutch.v1.SandboxService/List HTTP/1.1\r\nHost: hutch\r\nContent-Type: application/json\r\nX-Big: %s\r\nContent-Length: 2\r\n\r\n{}", big)
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
	if _, err := d.Client.List(context.Background()); err != nil {
		t.Fatalf("daemon stopped serving after a huge header: %v", err)
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	ctx := context.Background()
	d.run("bad", "true")
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"unary body over 8 MiB", func() error {
			_, err := d.Client.Create(ctx, strings.Repeat("a", 9<<20), client.CreateOptions{})
			return err
		}, client.ErrResourceExhausted},
		{"exec argv with NUL", func() error {
			_, err := d.Client.Exec(ctx, "bad", client.Command{Argv: []string{"echo", "a\x00b"}})
			return err
		}, client.ErrInvalidArgument},
		{"exec env key with NUL is dropped", func() error {
			var out bytes.Buffer
			st, err := d.Client.Exec(ctx, "bad", client.Command{Shell: "env | grep -c '^K' || true", Env: map[string]string{"K\x00": "v"}, Stdout: &out})
			if err == nil && (st.Code != 0 || out.String() != "0\n") {
				return fmt.Errorf("a NUL env key reached the command: %q", out.String())
			}
			return err
		}, nil},
		{"exec negative timeout", func() error {
			_, err := d.Client.Exec(ctx, "bad", client.Command{Argv: []string{"true"}, Timeout: -time.Second})
			return err
		}, client.ErrInvalidArgument},
		{"put path with NUL", func() error {
			return d.Client.WriteFile(ctx, "bad", "/workspace/a\x00b", strings.NewReader("x"), client.WriteOptions{})
		}, client.ErrInvalidArgument},
		{"get path with NUL", func() error {
			_, _, err := d.Client.ReadFile(ctx, "bad", "/etc/passwd\x00x")
			return err
		}, client.ErrInvalidArgument},
		{"stat path with NUL", func() error {
			_, _, err := d.Client.Stat(ctx, "bad", "a\x00")
			return err
		}, client.ErrInvalidArgument},
		{"unknown signal", func() error {
			return d.Client.Signal(ctx, "bad", "nope", "SIGNOPE")
		}, client.ErrInvalidArgument},
		{"signal unknown exec", func() error {
			return d.Client.Signal(ctx, "bad", "nope", "INT")
		}, client.ErrNotFound},
		{"unknown instance type", func() error {
			_, err := d.Client.Create(ctx, "new", client.CreateOptions{InstanceType: "huge"})
			return err
		}, client.ErrInvalidArgument},
		{"unknown image", func() error {
			_, err := d.Client.Create(ctx, "new", client.CreateOptions{Image: "no-such-image"})
			return err
		}, client.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if sbs, err := d.Client.List(ctx); err != nil || len(sbs) != 1 {
		t.Errorf("after bad requests: %v %v, want only sandbox bad", sbs, err)
	}
}

func TestFilesEndpointMethods(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	for _, method := range []string{http.MethodDelete, http.MethodPost, http.MethodPatch} {
		t.Run(method, func(t *testing.T) {
			req, err := http.NewRequest(method, d.url+"/v1/sandboxes/m/files?path=/workspace/x", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("status %d (%s), want 405", resp.StatusCode, body)
			}
			if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "PUT") {
				t.Errorf("Allow = %q", allow)
			}
		})
	}
	if sbs, _ := d.Client.List(context.Background()); len(sbs) != 0 {
		t.Errorf("a rejected request created a sandbox: %v", sbs)
	}
}

// rawExec starts an exec stream with a hand-made Connect request, so the
// test controls the connection itself.
type rawExec struct {
	conn net.Conn
	r    *bufio.Reader
	body io.Reader
}

func startRawExec(t *testing.T, d *daemon, req *hutchv1.ExecRequest) *rawExec {
	t.Helper()
	msg, err := protojson.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var env bytes.Buffer
	env.WriteByte(0)
	_ = binary.Write(&env, binary.BigEndian, uint32(len(msg)))
	env.Write(msg)
	addr := strings.TrimPrefix(d.url, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /hutch.v1.ProcessService/Exec HTTP/1.1\r\nHost: %s\r\nContent-Type: application/connect+json\r\nConnect-Protocol-Version: 1\r\nContent-Length: %d\r\n\r\n", addr, env.Len())
	if _, err := conn.Write(env.Bytes()); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("exec: status %d: %s", resp.StatusCode, b)
	}
	return &rawExec{conn: conn, r: r, body: resp.Body}
}

// next reads one event, failing the read if nothing arrives within idle;
// end is set on the end-of-stream message.
func (x *rawExec) next(idle time.Duration) (ev *hutchv1.ExecEvent, end []byte, err error) {
	_ = x.conn.SetReadDeadline(time.Now().Add(idle))
	var hdr [5]byte
	if _, err := io.ReadFull(x.body, hdr[:]); err != nil {
		return nil, nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
	if _, err := io.ReadFull(x.body, msg); err != nil {
		return nil, nil, err
	}
	if hdr[0]&2 != 0 {
		return nil, msg, nil
	}
	ev = &hutchv1.ExecEvent{}
	return ev, nil, protojson.Unmarshal(msg, ev)
}

func TestClientDisconnectKillsCommand(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	ctx := context.Background()
	tests := []struct {
		name string
		// stream runs `yes` and returns once it saw output and went away.
		stream func(t *testing.T, sandbox string)
	}{
		{"cancelled context", func(t *testing.T, sandbox string) {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			w := &cancelAfter{n: 1 << 20, cancel: cancel}
			_, err := d.Client.Exec(ctx, sandbox, client.Command{Argv: []string{"yes"}, Stdout: w})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err %v, want canceled", err)
			}
		}},
		{"connection closed", func(t *testing.T, sandbox string) {
			x := startRawExec(t, d, &hutchv1.ExecRequest{Sandbox: sandbox, Argv: []string{"yes"}})
			got := 0
			for got < 1<<20 {
				ev, end, err := x.next(10 * time.Second)
				if err != nil || end != nil {
					t.Fatalf("stream ended early: %v %s", err, end)
				}
				got += len(ev.GetStdout())
			}
			x.conn.Close()
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sandbox := fmt.Sprintf("dc%d", i)
			d.run(sandbox, "true")
			tt.stream(t, sandbox)
			testutil.Eventually(t, 5*time.Second, func() error {
				if left := procs(t, d, sandbox, "yes"); left != "" {
					return fmt.Errorf("yes still runs after the client left:\n%s", left)
				}
				return nil
			})
		})
	}
}

// cancelAfter cancels once n bytes were written to it.
type cancelAfter struct {
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	c.n -= len(p)
	if c.n <= 0 {
		c.cancel()
	}
	return len(p), nil
}

// A command quiet for longer than a client's idle read timeout still
// completes: the stream carries keep-alives meanwhile.
func TestQuietExecKeepsStreamAlive(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	d.run("quiet", "true")
	x := startRawExec(t, d, &hutchv1.ExecRequest{Sandbox: "quiet", Shell: "sleep 20; echo done"})
	var out bytes.Buffer
	var exit *hutchv1.ExecExit
	keepalives := 0
	for exit == nil {
		// 17 s > the agent's 15 s keep-alive interval, < the 20 s of silence.
		ev, end, err := x.next(17 * time.Second)
		if err != nil {
			t.Fatalf("stream idle past 17s or broken after %d keep-alives: %v", keepalives, err)
		}
		if end != nil {
			t.Fatalf("stream ended without exit: %s", end)
		}
		switch e := ev.Event.(type) {
		case *hutchv1.ExecEvent_Stdout:
			out.Write(e.Stdout)
		case *hutchv1.ExecEvent_Keepalive:
			keepalives++
		case *hutchv1.ExecEvent_Exit:
			exit = e.Exit
		}
	}
	if exit.Code != 0 || out.String() != "done\n" {
		t.Errorf("exit %d, stdout %q; want 0, done", exit.Code, out.String())
	}
	if keepalives == 0 {
		t.Error("no keep-alive during 20s of silence")
	}
}

func TestAPIKey(t *testing.T) {
	t.Parallel()
	d := newDaemonArgs(t, "k1", "--api-key", "k1")
	ctx := context.Background()

	t.Run("healthz is open", func(t *testing.T) {
		if err := client.New(d.url).Healthy(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("SDK without key", func(t *testing.T) {
		if _, err := client.New(d.url).List(ctx); !errors.Is(err, client.ErrUnauthenticated) {
			t.Fatalf("err %v, want unauthenticated", err)
		}
	})
	t.Run("SDK with wrong key", func(t *testing.T) {
		if _, err := client.New(d.url, client.WithToken("k2")).List(ctx); !errors.Is(err, client.ErrUnauthenticated) {
			t.Fatalf("err %v, want unauthenticated", err)
		}
	})
	t.Run("files endpoint without key", func(t *testing.T) {
		resp, err := http.Get(d.url + "/v1/sandboxes/x/files?path=" + url.QueryEscape("/etc/hostname"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	})
	tests := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"CLI ls without key", nil, []string{"ls"}, 1, "HUTCH_TOKEN"},
		{"CLI exec without key", nil, []string{"exec", "auth", "--", "echo", "in"}, 1, "HUTCH_TOKEN"},
		{"CLI exec with wrong key", []string{"HUTCH_TOKEN=k2"}, []string{"exec", "auth", "--", "echo", "in"}, 1, "HUTCH_TOKEN"},
		{"CLI exec with key", []string{"HUTCH_TOKEN=k1"}, []string{"exec", "auth", "--", "echo", "in"}, 0, ""},
		{"CLI ls with key", []string{"HUTCH_TOKEN=k1"}, []string{"ls"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := d.hutchEnv(tt.env, "", tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tt.wantCode, stderr)
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("stderr %q does not mention %q", stderr, tt.wantErr)
			}
			if tt.wantCode == 0 && tt.args[0] == "exec" && stdout != "in\n" {
				t.Errorf("stdout %q", stdout)
			}
		})
	}
	if sbs, err := d.Client.List(ctx); err != nil || len(sbs) != 1 {
		t.Errorf("List with key: %v %v, want the one sandbox the keyed CLI made", sbs, err)
	}
}
