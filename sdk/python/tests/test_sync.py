"""The sync client against a real daemon."""

from __future__ import annotations

import threading
import urllib.parse

import httpx
import pytest
from conftest import unique

from hutch import (
    AlreadyExistsError, DeadlineExceededError, ExecResult, FailedPreconditionError, Hutch, HutchError, InvalidArgumentError,
    NotFoundError,
)


def test_exec_exit_code_and_output(sb):
    r = sb.exec("echo hi; echo err >&2; exit 3")
    assert isinstance(r, ExecResult)
    assert (r.stdout, r.stderr, r.exit_code, r.success) == ("hi\n", "err\n", 3, False)
    r = sb.exec(["sh", "-c", 'printf "%s|" "$@"', "sh", "a b", "c"])  # a list is argv: no shell splitting
    assert r.success and r.stdout == "a b|c|"


def test_exec_cwd_env_and_callbacks(sb):
    out, err = [], []
    r = sb.exec("pwd; echo $K; echo oops >&2", cwd="/tmp", env={"K": "v 1"}, on_stdout=out.append,
                on_stderr=err.append)
    assert r.stdout == "/tmp\nv 1\n"
    assert "".join(out) == r.stdout and "".join(err) == "oops\n"


def test_exec_callbacks_see_output_live(sb):
    seen = threading.Event()
    times = []

    def on_stdout(s):
        times.append(s)
        seen.set()

    # The first line arrives before the command ends: the callback must see it then.
    r = sb.exec("echo first; sleep 1; echo second", on_stdout=on_stdout)
    assert r.stdout == "first\nsecond\n" and times[0] == "first\n"


def test_exec_stdin(sb):
    assert sb.exec("cat", stdin="hello\n").stdout == "hello\n"
    big = bytes(range(256)) * 8192  # 2 MiB, more than one chunk
    r = sb.exec("sha256sum | cut -d' ' -f1", stdin=big)
    import hashlib

    assert r.stdout.strip() == hashlib.sha256(big).hexdigest()


def test_exec_timeout_raises_deadline_exceeded(sb):
    with pytest.raises(DeadlineExceededError) as e:
        sb.exec("sleep 30", timeout=0.5)
    assert e.value.code == "deadline_exceeded" and isinstance(e.value, HutchError)


def test_exec_stream(sb):
    events = list(sb.exec_stream("echo a; sleep 0.1; echo b >&2; exit 4"))
    types = [e.type for e in events]
    assert types[0] == "started" and types[-1] == "exit"
    assert b"".join(e.data for e in events if e.type == "stdout") == b"a\n"
    assert "".join(e.text for e in events if e.type == "stderr") == "b\n"
    assert events[-1].exit_code == 4


def test_exec_stream_left_early_kills_the_command(sb):
    for ev in sb.exec_stream("echo ready; sleep 300; touch /tmp/should-not-exist"):
        if ev.type == "stdout":
            break
    # The stream is closed: nothing of that command runs any more.
    r = sb.exec("sleep 0.5; pgrep -f 'sleep [3]00' || echo gone")
    assert r.stdout.strip() == "gone"


def test_typed_errors(hutch: Hutch, sb):
    with pytest.raises(InvalidArgumentError) as e:
        hutch.sandbox("Not_A_Name").exec("true")
    assert e.value.code == "invalid_argument" and "a-z" in str(e.value)
    with pytest.raises(NotFoundError):
        hutch.get(unique("missing"))
    with pytest.raises(NotFoundError):
        hutch.sandbox(unique("missing")).info()
    with pytest.raises(NotFoundError) as e:
        sb.files.read("/workspace/no/such/file")
    assert e.value.code == "not_found"
    with pytest.raises(NotFoundError):
        sb.get_process("no-such-process")


def test_files_round_trip(sb):
    f = sb.files
    f.write("/workspace/t/a.txt", "héllo\n")  # parents are created
    assert f.read("/workspace/t/a.txt") == "héllo\n"
    blob = bytes(range(256)) * 3
    f.write("t/b.bin", blob)  # relative to /workspace
    assert f.read("/workspace/t/b.bin", encoding="bytes") == blob
    big = bytes(range(256)) * 20000  # 5 MB, streamed both ways
    f.write("t/big.bin", iter([big[:1000], big[1000:]]))
    assert b"".join(f.stream("t/big.bin")) == big
    f.remove("t/big.bin")
    f.write("t/a.txt", "more", append=True)
    assert f.read("t/a.txt") == "héllo\nmore"
    f.mkdir("/workspace/t/sub/deep")
    assert f.exists("/workspace/t/sub/deep") and not f.exists("/workspace/t/nope")
    names = {e.name: e for e in f.list("/workspace/t")}
    assert set(names) == {"a.txt", "b.bin", "sub"}
    assert names["sub"].is_dir and names["b.bin"].size == len(blob) and names["b.bin"].type == "file"
    assert {e.path for e in f.list("/workspace/t", recursive=True)} >= {"/workspace/t/sub/deep"}
    f.rename("/workspace/t/a.txt", "/workspace/t/sub/c.txt")
    assert not f.exists("t/a.txt") and f.read("t/sub/c.txt").startswith("héllo")
    f.write("t/mode.sh", "#!/bin/sh\necho run\n", mode=0o755)
    assert f.stat("t/mode.sh").mode & 0o777 == 0o755
    assert sb.exec("./t/mode.sh").stdout == "run\n"
    f.remove("/workspace/t", recursive=True)
    assert not f.exists("/workspace/t")


def test_process_port_and_preview(hutch: Hutch, daemon_url: str, sb):
    sb.files.write("/workspace/site/index.html", "<h1>from the sandbox</h1>")
    p = sb.start_process("python3 -m http.server 8123", cwd="/workspace/site", id="web")
    assert p.id == "web" and p.status == "running" and p.pid > 0
    p.wait_for_port(8123, mode="http")
    url = sb.expose_port(8123)
    assert url.startswith("http://8123-") and sb.expose_port(8123) == url
    assert sb.exposed_ports()[8123] == url
    # *.localhost resolves to loopback in browsers, not always in libc: dial
    # the daemon and name the preview in the Host header.
    u = urllib.parse.urlsplit(url)
    r = httpx.get(daemon_url + "/", headers={"Host": u.netloc})
    assert r.status_code == 200 and "from the sandbox" in r.text
    assert "GET / " in p.wait_for_log(r'"GET / HTTP/1\.1" 200')
    assert [x.id for x in sb.processes()] == ["web"]
    info = p.kill()
    assert info.status == "killed" and info.signal == "SIGTERM" and p.exit_code == 143
    assert p.wait_for_exit().status == "killed"
    _, stderr = p.logs()
    assert '"GET / HTTP/1.1" 200' in stderr


def test_process_wait_for_log_and_exit(sb):
    p = sb.start_process(["sh", "-c", "echo listening on 4242; sleep 0.3; exit 7"])
    assert p.wait_for_log(r"listening on (\d+)") == "listening on 4242"
    assert p.wait_for_exit(timeout=30).exit_code == 7
    with pytest.raises(FailedPreconditionError):
        p.wait_for_log("never printed", timeout=5)  # it ended first


def test_run_code(sb):
    out = []
    ex = sb.run_code("print('hello'); 6 * 7", language="python", on_stdout=out.append)
    assert "".join(out) == "hello\n" and ex.logs.stdout == ["hello\n"] and ex.stdout == "hello\n"
    assert ex.text == "42" and ex.results[0].text == "42" and ex.results[0].is_main_result
    assert ex.error is None and ex.status == "ok"

    ex = sb.run_code("1 / 0")
    assert ex.error is not None and ex.error.name == "ZeroDivisionError" and ex.status == "error"
    assert "division by zero" in ex.error.value and "ZeroDivisionError" in ex.error.traceback

    ctx = sb.create_code_context(language="python")
    sb.run_code("x = 41", context=ctx)
    assert sb.run_code("x + 1", context=ctx).text == "42"
    assert sb.run_code("'x' in globals()").text == "False"  # the default context is another one
    ex = sb.run_code("from IPython.display import HTML, display\ndisplay(HTML('<b>hi</b>'))", context=ctx.id)
    assert ex.results[0].html == "<b>hi</b>" and not ex.results[0].is_main_result and ex.text is None


def test_watch_sees_a_created_file(sb):
    sb.files.mkdir("/workspace/watched")
    seen = []
    for ev in sb.watch("/workspace/watched", include=["*.txt"]):
        seen.append(ev)
        if ev.type == "started":
            sb.files.write("/workspace/watched/new.txt", "x")  # the watch is live: this cannot be missed
        elif ev.path == "/workspace/watched/new.txt":
            break
    assert seen[0].type == "started" and seen[0].version
    assert seen[-1].type in ("create", "move_to", "modify")
    assert sb.check_changes("/workspace/watched", seen[-1].version, include=["*.txt"]).status == "unchanged"


def test_sessions_keep_cwd_and_env(sb):
    s = sb.create_session(cwd="/tmp")
    s.exec("mkdir -p d && cd d && export QUUX=1")
    r = s.exec("pwd; echo $QUUX")
    assert r.stdout == "/tmp/d\n1\n"
    assert sb.exec("pwd").stdout == "/workspace\n"  # other execs are not in the session
    assert s.id in [x.id for x in sb.sessions()]
    s.delete()


def test_sandbox_options_env_and_sleep(hutch: Hutch):
    sb = hutch.sandbox(unique("py-opts"), type="lite", env={"GREETING": "hey"}, sleep_after=120)
    try:
        assert sb.exec("echo $GREETING").stdout == "hey\n"
        info = sb.sleep_info()
        assert info.sleep_after == 120 and not info.sleeping
        sb.set_env_vars({"OTHER": "o"})
        assert sb.exec("echo $GREETING$OTHER").stdout == "heyo\n"
        sb.files.write("keep.txt", "kept")
        assert sb.sleep().sleeping
        assert sb.info().state == "sleeping"
        assert sb.exec("cat keep.txt").stdout == "kept"  # the next call wakes it, disk intact
    finally:
        sb.destroy()
    with pytest.raises(NotFoundError):
        sb.info()


def test_snapshot_fork_and_backup(hutch: Hutch):
    sb = hutch.sandbox(unique("py-snap"))
    made = []
    try:
        sb.files.write("state.txt", "v1")
        snap = sb.snapshot()
        assert snap.id and snap.sandbox == sb.name
        copies = sb.fork(unique("py-fork"), count=2)
        made += copies
        assert len(copies) == 2 and all(c.files.read("state.txt") == "v1" for c in copies)
        later = hutch.sandbox(unique("py-from"))
        made.append(later)
        later.start(snapshot=snap)
        assert later.files.read("state.txt") == "v1"
        assert snap.id in [s.id for s in hutch.snapshots.list(sb.name)]

        b = sb.create_backup("/workspace")
        sb.files.write("state.txt", "v2")
        assert sb.restore_backup(b) >= 1 and sb.files.read("state.txt") == "v1"
        hutch.backups.delete(b)
    finally:
        for c in made:
            c.destroy()
        sb.destroy()


def test_secrets_and_policy(hutch: Hutch, sb):
    name = "PY_SDK_TOKEN"
    hutch.secrets.set(name, "s3cret", scope=[sb.name])
    try:
        assert any(s.name == name and s.scope == [sb.name] for s in hutch.secrets.list())
        p = sb.set_policy(internet=False, allow=["example.com"],
                          rules=[{"host": "example.com", "headers": {"X-Token": "{{secret:%s}}" % name}}])
        assert p["allow"] == ["example.com"] and p["internet"] is False
        assert sb.get_policy() == p
        with pytest.raises(InvalidArgumentError):
            sb.set_policy({"internet": "maybe"})
    finally:
        hutch.secrets.delete(name)
        sb.set_policy({"internet": True})


def test_git_checkout(sb):
    head = sb.exec("mkdir -p /srv/origin && cd /srv/origin && git init -q -b main && echo x > f && git add f && "
                   "git -c user.email=a@b.c -c user.name=n commit -qm one && git rev-parse HEAD").stdout.strip()
    co = sb.git_checkout("file:///srv/origin", depth=1)
    assert (co.target_dir, co.branch, co.commit) == ("/workspace/origin", "main", head)
    assert sb.files.read("/workspace/origin/f") == "x\n"
    with pytest.raises(AlreadyExistsError):
        sb.git_checkout("file:///srv/origin")  # the target is not empty
    with pytest.raises(NotFoundError):
        sb.git_checkout("file:///srv/origin", branch="no-such-branch", target_dir="/workspace/other")
