"""A real daemon for the SDK's tests: started once per session from HUTCH_BIN
(default: bin/ of this checkout) with the image cache HUTCH_CACHE (default
/var/cache/hutch), on a free port and a fresh data dir, and stopped after.

The daemon needs root; without it the tests skip, except under CI=true where
they fail (a suite that passes without running proves nothing)."""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Iterator

import httpx
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "sdk" / "python"))

from hutch import Hutch  # noqa: E402


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why} (CI=true: not skipping)")
    pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mounts_under(path: str) -> list[str]:
    with open("/proc/self/mounts") as f:
        return [line.split()[1] for line in f if line.split()[1].startswith(path)]


@contextlib.contextmanager
def launch_daemon(*extra: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Runs `hutch serve` on a free port and a fresh data dir; yields its URL.
    On the way out it destroys every sandbox, stops the daemon and checks
    that no mount is left under the data dir."""
    if os.geteuid() != 0:
        _unavailable("the daemon needs root")
    binary = pathlib.Path(os.environ.get("HUTCH_BIN") or ROOT / "bin") / "hutch"
    cache = os.environ.get("HUTCH_CACHE") or "/var/cache/hutch"
    if not binary.exists():
        _unavailable(f"no {binary}: run make build")
    if not os.path.isdir(cache):
        _unavailable(f"no image cache in {cache}: run make image")
    data = tempfile.mkdtemp(prefix="hutch-py-data-")
    log = tempfile.TemporaryFile()
    addr = f"127.0.0.1:{_free_port()}"
    proc = subprocess.Popen([str(binary), "serve", "--listen", addr, "--data", data, "--cache", cache, *extra],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    url = f"http://{addr}"

    def output() -> str:
        log.seek(0)
        return log.read().decode(errors="replace")[-4000:]

    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            pytest.fail(f"the daemon exited before it was healthy:\n{output()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the daemon was not healthy within 60s:\n{output()}")
        time.sleep(0.05)
    try:
        yield url
    finally:
        token = (env or {}).get("HUTCH_API_KEYS", "").split(",")[0] or None
        with Hutch(url=url, token=token) as h:
            for s in h.list():
                h.sandbox(s.name).destroy()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        left = _mounts_under(data)
        shutil.rmtree(data, ignore_errors=True)
        log.close()
        assert not left, f"mounts left behind by the daemon: {left}"


@pytest.fixture(scope="session")
def daemon_url() -> Iterator[str]:
    with launch_daemon() as url:
        yield url


@pytest.fixture(scope="session")
def hutch(daemon_url: str):
    with Hutch(url=daemon_url) as h:
        yield h


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def sb(hutch: Hutch):
    """A sandbox shared by a module's tests, destroyed after them."""
    s = hutch.sandbox(unique("py"))
    yield s
    s.destroy()
