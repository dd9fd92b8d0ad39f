package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/hutch-sh/hutch/client"
)

// Sessions keep shell state between execs, like a terminal, and are
// isolated from each other; through the CLI and the SDK.
func TestSessions(t *testing.T) {
	d := newDaemon(t)
	if out, stderr, code := d.hutch("", "session", "create", "sess", "--id", "dev"); code != 0 || out != "dev\n" {
		t.Fatalf("session create: %d %q %q", code, out, stderr)
	}
	steps := []struct {
		session string
		argv    []string
		want    string
	}{
		{"dev", []string{"mkdir", "-p", "/srv/app"}, ""},
		{"dev", []string{"cd", "/srv/app"}, ""},
		{"dev", []string{"pwd"}, "/srv/app\n"},
		{"dev", []string{"export", "GREETING=hello there"}, ""},
		{"dev", []string{"printenv", "GREETING"}, "hello there\n"},
		{"default", []string{"pwd"}, "/workspace\n"},
		{"default", []string{"sh", "-c", "echo ${GREETING:-unset}"}, "unset\n"},
	}
	for _, st := range steps {
		args := append([]string{"exec", "sess", "--session", st.session, "--"}, st.argv...)
		out, stderr, code := d.hutch("", args...)
		if code != 0 || out != st.want {
			t.Fatalf("%s %v: exit %d, %q (stderr %q), want %q", st.session, st.argv, code, out, stderr, st.want)
		}
	}
	if out, _, _ := d.hutch("", "session", "ls", "sess"); !strings.Contains(out, "dev") {
		t.Fatalf("session ls:\n%s", out)
	}
	ctx := context.Background()
	// Sandbox-wide env reaches plain execs; a session's own does not leak.
	if err := d.Client.SetEnv(ctx, "sess", "", map[string]string{"TEAM": "blue"}, nil); err != nil {
		t.Fatal(err)
	}
	if got := d.run("sess", "sh", "-c", "echo $TEAM ${GREETING:-none}"); got != "blue none\n" {
		t.Fatalf("env after SetEnv: %q", got)
	}
	if _, stderr, code := d.hutch("", "session", "rm", "sess", "dev"); code != 0 {
		t.Fatal(stderr)
	}
	// An exec in a removed session gets a fresh one under the id.
	var out strings.Builder
	st, err := d.Client.Exec(ctx, "sess", client.Command{Argv: []string{"pwd"}, Session: "dev", Stdout: &out})
	if err != nil || st.Code != 0 || out.String() != "/workspace\n" {
		t.Fatalf("exec in a removed session: %v %+v %q, want a new session in /workspace", err, st, out.String())
	}
}

// Sessions are got or created by id, as sandboxes by name: the first exec
// in session s1 creates it (and the sandbox), the next sees its cwd.
func TestSessionCreatedByExec(t *testing.T) {
	d := newDaemon(t)
	for _, st := range []struct {
		argv []string
		want string
	}{
		{[]string{"cd", "/tmp"}, ""},
		{[]string{"pwd"}, "/tmp\n"},
	} {
		args := append([]string{"exec", "--session", "s1", "ondemand", "--"}, st.argv...)
		out, stderr, code := d.hutch("", args...)
		if code != 0 || out != st.want {
			t.Fatalf("hutch %v: exit %d, %q (stderr %q), want exit 0 and %q", args, code, out, stderr, st.want)
		}
	}
	if out, _, _ := d.hutch("", "session", "ls", "ondemand"); !strings.Contains(out, "s1") {
		t.Fatalf("session ls does not list s1:\n%s", out)
	}
}
