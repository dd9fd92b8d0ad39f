"""The async client against a real daemon: the same core calls, with await.

Each test runs its own event loop with asyncio.run (pytest-asyncio is not
needed)."""

from __future__ import annotations

import asyncio
import urllib.parse

import httpx
import pytest
from conftest import unique

from hutch import AsyncHutch, DeadlineExceededError, InvalidArgumentError, NotFoundError


def run(daemon_url, fn):
    async def main():
        async with AsyncHutch(url=daemon_url) as h:
            sb = h.sandbox(unique("py-async"))
            try:
                await fn(h, sb)
            finally:
                await sb.destroy()

    asyncio.run(main())


def test_exec_stdin_callbacks_and_stream(daemon_url):
    async def t(h, sb):
        got = []

        async def on_stdout(s):  # coroutine callbacks are awaited
            got.append(s)

        r = await sb.exec("echo hi; echo err >&2; exit 3", on_stdout=on_stdout, on_stderr=got.append)
        assert (r.stdout, r.stderr, r.exit_code, r.success) == ("hi\n", "err\n", 3, False)
        assert sorted(got) == ["err\n", "hi\n"]
        assert (await sb.exec(["cat"], stdin=b"from stdin")).stdout == "from stdin"
        events = [ev async for ev in sb.exec_stream("echo a; exit 5")]
        assert events[-1].type == "exit" and events[-1].exit_code == 5
        assert b"".join(e.data for e in events if e.type == "stdout") == b"a\n"
        # Many execs at once over one client.
        rs = await asyncio.gather(*(sb.exec(f"echo {i}") for i in range(8)))
        assert [r.stdout for r in rs] == [f"{i}\n" for i in range(8)]
        with pytest.raises(DeadlineExceededError):
            await sb.exec("sleep 30", timeout=0.5)

    run(daemon_url, t)


def test_errors_and_files(daemon_url):
    async def t(h, sb):
        with pytest.raises(InvalidArgumentError):
            await h.sandbox("-bad").exec("true")
        with pytest.raises(NotFoundError):
            await h.get(unique("missing"))
        with pytest.raises(NotFoundError):
            await sb.files.read("/nope")
        blob = bytes(range(256))
        await sb.files.write("/workspace/x/b.bin", blob)
        await sb.files.write("/workspace/x/a.txt", "text")
        assert await sb.files.read("/workspace/x/b.bin", encoding="bytes") == blob
        assert await sb.files.read("/workspace/x/a.txt") == "text"
        assert sorted(e.name for e in await sb.files.list("/workspace/x")) == ["a.txt", "b.bin"]
        await sb.files.rename("/workspace/x/a.txt", "/workspace/x/c.txt")
        await sb.files.remove("/workspace/x/b.bin")
        assert await sb.files.exists("/workspace/x/c.txt") and not await sb.files.exists("/workspace/x/b.bin")

    run(daemon_url, t)


def test_process_preview_and_code(daemon_url):
    async def t(h, sb):
        p = await sb.start_process("python3 -m http.server 8124")
        await p.wait_for_port(8124, mode="http")
        url = await sb.expose_port(8124)
        u = urllib.parse.urlsplit(url)
        async with httpx.AsyncClient() as c:
            r = await c.get(daemon_url + "/", headers={"Host": u.netloc})
        assert r.status_code == 200 and "Directory listing" in r.text
        assert (await p.kill()).status == "killed"

        out = []
        ex = await sb.run_code("print('hey'); 6 * 7", on_stdout=out.append)
        assert out == ["hey\n"] and ex.text == "42"
        ex = await sb.run_code("raise ValueError('no')")
        assert ex.error.name == "ValueError" and ex.error.value == "no"
        ctx = await sb.create_code_context(language="python")
        await sb.run_code("y = 1", context=ctx)
        assert (await sb.run_code("y + 1", context=ctx)).text == "2"

    run(daemon_url, t)


def test_watch_and_sessions(daemon_url):
    async def t(h, sb):
        await sb.files.mkdir("/workspace/w")
        async for ev in sb.watch("/workspace/w"):
            if ev.type == "started":
                await sb.files.write("/workspace/w/f.txt", "x")
            elif ev.path == "/workspace/w/f.txt":
                break
        s = await sb.create_session()
        await s.exec("cd /tmp")
        assert (await s.exec("pwd")).stdout == "/tmp\n"

    run(daemon_url, t)
