package e2e

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/client"
)

// echoUpgrade is a server that answers any request with 101 and then echoes
// bytes: what a WebSocket server does after its handshake.
const echoUpgrade = `
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8100)); s.listen(4)
while True:
    c, _ = s.accept()
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = c.recv(4096)
        if not d: break
        buf += d
    if b"\r\n\r\n" not in buf:
        c.close(); continue
    c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    while True:
        d = c.recv(4096)
        if not d: break
        c.sendall(d)
    c.close()
`

// get fetches path from a preview URL through the daemon, the way a browser
// resolving *.localhost to this machine would.
func previewGet(t *testing.T, d *daemon, rawURL, path string) (int, string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, d.url+path, nil)
	req.Host = u.Host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPreviewURLs(t *testing.T) {
	d := newDaemon(t)
	ctx := context.Background()
	c := d.Client
	if err := c.WriteFile(ctx, "web", "/workspace/hello.txt", strings.NewReader("hello from the sandbox"), client.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Bound to loopback only inside the sandbox: still reachable.
	p, err := c.StartProcess(ctx, "web", []string{"python3", "-m", "http.server", "8000", "--bind", "127.0.0.1"}, client.ProcessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitForPort(ctx, "web", p.Id, 8000, client.PortOptions{HTTP: true}, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := d.hutch("", "expose", "web", "8000")
	if code != 0 {
		t.Fatalf("expose: %s", stderr)
	}
	u := strings.TrimSpace(out)
	if !regexp.MustCompile(`^http://8000-web-[a-z0-9]{16}\.localhost:\d+/$`).MatchString(u) {
		t.Fatalf("preview URL %q", u)
	}
	if again, _ := c.ExposePort(ctx, "web", 8000); again != u {
		t.Fatalf("exposing again gave %q, want the same %q", again, u)
	}
	if status, body := previewGet(t, d, u, "/hello.txt"); status != 200 || body != "hello from the sandbox" {
		t.Fatalf("preview GET: %d %q", status, body)
	}

	wrongToken := regexp.MustCompile(`-[a-z0-9]{16}\.`).ReplaceAllString(u, "-aaaaaaaaaaaaaaaa.")
	unexposed := strings.Replace(u, "http://8000-", "http://8001-", 1)
	for _, bad := range []string{wrongToken, unexposed, strings.Replace(u, "-web-", "-nope-", 1)} {
		if status, body := previewGet(t, d, bad, "/hello.txt"); status != 404 || !strings.Contains(body, "no such preview URL") {
			t.Errorf("%s: %d %q, want 404", bad, status, body)
		}
	}

	idle, err := c.ExposePort(ctx, "web", 9000)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := previewGet(t, d, idle, "/"); status != 502 || !strings.Contains(body, "nothing listens on port 9000") {
		t.Errorf("port with no server: %d %q", status, body)
	}
	if err := c.UnexposePort(ctx, "web", 9000); err != nil {
		t.Fatal(err)
	}
	if status, _ := previewGet(t, d, idle, "/"); status != 404 {
		t.Errorf("unexposed port: %d, want 404", status)
	}

	// Upgrades (WebSocket) tunnel through both ways.
	if _, err := c.StartProcess(ctx, "web", []string{"python3", "-c", echoUpgrade}, client.ProcessOptions{ID: "ws"}); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitForPort(ctx, "web", "ws", 8100, client.PortOptions{}, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	wsURL, _ := c.ExposePort(ctx, "web", 8100)
	wu, _ := url.Parse(wsURL)
	conn, err := net.Dial("tcp", strings.TrimPrefix(d.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(conn, "GET /chat HTTP/1.1\r\nHost: "+wu.Host+"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	_, _ = io.WriteString(conn, "ping over the tunnel")
	buf := make([]byte, len("ping over the tunnel"))
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping over the tunnel" {
		t.Fatalf("echo through the upgrade: %q %v", buf, err)
	}

	// A destroyed sandbox's URLs are dead for good, even if the name returns.
	if err := c.Delete(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	d.run("web", "true")
	if status, _ := previewGet(t, d, u, "/hello.txt"); status != 404 {
		t.Fatalf("after rm: %d, want 404", status)
	}
	if _, err := c.ExposePort(ctx, "web", 70000); err == nil {
		t.Fatal("port 70000 accepted")
	}
}
