# Generated from _async_client.py by scripts/unasync.py: do not edit.
"""The client: sandboxes, commands, files, processes, code, watches, snapshots.

This file is the async client; _sync_client.py is generated from it by
scripts/unasync.py (edit this one and run the script: a test fails while
the two differ).
"""

from __future__ import annotations

import codecs
import json
import os
import re
from datetime import timedelta
from typing import Any, Iterator, Callable, Mapping, Sequence
from urllib.parse import quote

import httpx

from . import _rt_sync as rt
from ._errors import FailedPreconditionError, HutchError, UnavailableError, error_for_status
from ._types import (
    Backup, Changes, CodeContext, EgressEntry, ExecEvent, ExecResult, Execution, ExecutionError, FileInfo,
    GitCheckout, LogEvent, ProcessInfo, Result, SandboxInfo, SecretInfo, SessionInfo, SleepInfo, Snapshot,
    WatchEvent,
)
from ._wire import (
    STREAM_HEADERS, UNARY_HEADERS, Decoder, b64, compact, duration, envelope, integer, millis,
)

DEFAULT_URL = "http://127.0.0.1:7777"

Callback = Callable[[Any], Any]


def _command(command: str | Sequence[str]) -> dict[str, Any]:
    """A string runs through sh -c, a sequence directly."""
    return {"shell": command} if isinstance(command, str) else {"argv": list(command)}


class Hutch:
    """A client of one hutch daemon.

    ``url`` defaults to ``$HUTCH_URL`` (else http://127.0.0.1:7777) and
    ``token`` to ``$HUTCH_TOKEN``. Use it as a context manager, or call
    ``close()``, to release its connections.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        connect_timeout: float = 30.0,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.url = (url or os.environ.get("HUTCH_URL") or DEFAULT_URL).rstrip("/")
        token = token if token is not None else os.environ.get("HUTCH_TOKEN")
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        # Calls may block for long on purpose (exec, wait_for_port, git
        # clones); the daemon's keep-alives and its own timeouts bound them.
        self._http = http_client or httpx.Client(timeout=httpx.Timeout(None, connect=connect_timeout))
        self._own_http = http_client is None
        self.secrets = Secrets(self)
        self.snapshots = Snapshots(self)
        self.backups = Backups(self)

    def __enter__(self) -> "Hutch":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    def sandbox(
        self,
        name: str,
        *,
        image: str | None = None,
        type: str | None = None,
        env: Mapping[str, str] | None = None,
        policy: Mapping[str, Any] | str | None = None,
        sleep_after: float | timedelta | None = None,
        keep_alive: bool | None = None,
    ) -> "Sandbox":
        """A handle on the named sandbox, created (with these options) on first use.

        Options apply when the sandbox is created; ``env``, ``policy``,
        ``sleep_after`` and ``keep_alive`` are also set on one that exists.
        """
        return Sandbox(self, name, image=image, type=type, env=env, policy=policy,
                            sleep_after=sleep_after, keep_alive=keep_alive)

    def list(self) -> list[SandboxInfo]:
        d = self._unary("SandboxService/List", {})
        return [SandboxInfo.from_wire(s) for s in d.get("sandboxes") or []]

    def get(self, name: str) -> SandboxInfo:
        """Reports a sandbox without creating it: NotFoundError if it does not exist."""
        d = self._unary("SandboxService/Get", {"name": name})
        return SandboxInfo.from_wire(d.get("sandbox") or {})

    def healthy(self) -> bool:
        try:
            r = self._http.get(self.url + "/healthz", headers=self._auth)
        except httpx.TransportError:
            return False
        return r.status_code == 200

    # The wire.

    def _unary(self, method: str, msg: dict[str, Any]) -> dict[str, Any]:
        try:
            r = self._http.post(f"{self.url}/hutch.v1.{method}", content=json.dumps(compact(msg)),
                                      headers={**UNARY_HEADERS, **self._auth})
        except httpx.TransportError as e:
            raise UnavailableError(f"{method}: {e or type(e).__name__}") from e
        if r.status_code != 200:
            raise error_for_status(r.status_code, r.content)
        return r.json() if r.content else {}

    def _stream(self, method: str, msg: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Yields the messages of a server stream; raises the error it ends with,
        or UnavailableError if it breaks before its end."""
        dec = Decoder()
        try:
            with self._http.stream("POST", f"{self.url}/hutch.v1.{method}", content=envelope(compact(msg)),
                                         headers={**STREAM_HEADERS, **self._auth}) as r:
                if r.status_code != 200:
                    raise error_for_status(r.status_code, r.read())
                for chunk in r.iter_bytes():
                    for m in dec.feed(chunk):
                        yield m
                    if dec.ended:
                        break
        except httpx.TransportError as e:
            raise UnavailableError(f"{method}: {e or type(e).__name__}") from e
        dec.close(method)

    def _files_url(self, name: str) -> str:
        return f"{self.url}/v1/sandboxes/{quote(name, safe='')}/files"


class Sandbox:
    """A named sandbox. Every call creates it on first use (get-or-create)."""

    def __init__(self, hutch: Hutch, name: str, *, image: str | None = None, type: str | None = None,
                 env: Mapping[str, str] | None = None, policy: Mapping[str, Any] | str | None = None,
                 sleep_after: float | timedelta | None = None, keep_alive: bool | None = None) -> None:
        self.hutch = hutch
        self.name = name
        self._image, self._type, self._env = image, type, dict(env) if env else None
        self._policy, self._sleep_after, self._keep_alive = policy, sleep_after, keep_alive
        self._ready = False
        self.files = Files(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def _ensure(self) -> None:
        if not self._ready:
            self.create()

    def create(self) -> SandboxInfo:
        """Creates the sandbox if it does not exist and applies this handle's options."""
        d = self.hutch._unary("SandboxService/Create",
                                    {"name": self.name, "image": self._image, "instanceType": self._type})
        info = SandboxInfo.from_wire(d.get("sandbox") or {})
        if self._image and not d.get("created") and info.image != self._image:
            raise FailedPreconditionError(
                f"sandbox {self.name!r} already exists with image {info.image!r}, not {self._image!r} (destroy it first)")
        self._configure()
        return info

    def start(self, *, snapshot: str | Snapshot | None = None) -> SandboxInfo:
        """Creates the sandbox, from a snapshot's disk when one is given."""
        if snapshot is None:
            return self.create()
        sid = snapshot.id if isinstance(snapshot, Snapshot) else snapshot
        d = self.hutch._unary("SnapshotService/Fork", {"snapshot": sid, "newNames": [self.name]})
        self._configure()
        return SandboxInfo.from_wire((d.get("sandboxes") or [{}])[0])

    def _configure(self) -> None:
        if self._policy is not None:
            self._set_policy(self._policy)
        if self._sleep_after is not None or self._keep_alive is not None:
            self.hutch._unary("SnapshotService/ConfigureSleep", {
                "name": self.name, "sleepAfter": duration(self._sleep_after), "keepAlive": self._keep_alive})
        if self._env:
            self.hutch._unary("ProcessService/SetEnv", {"sandbox": self.name, "set": self._env})
        self._ready = True

    def info(self) -> SandboxInfo:
        """Reports the sandbox without creating it: NotFoundError if it does not exist."""
        return self.hutch.get(self.name)

    def destroy(self) -> None:
        """Stops the sandbox and removes everything it had."""
        self.hutch._unary("SandboxService/Delete", {"name": self.name})
        self._ready = False

    # Commands.

    def exec(
        self,
        command: str | Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | timedelta | None = None,
        stdin: Any = None,
        on_stdout: Callback | None = None,
        on_stderr: Callback | None = None,
        session: str | None = None,
    ) -> ExecResult:
        """Runs a command to completion: a string runs through ``sh -c``, a list directly.

        ``on_stdout``/``on_stderr`` get output as it arrives (str). ``stdin``
        is str, bytes, a binary file or an iterable of bytes. A timeout
        kills the process tree and raises DeadlineExceededError.
        """
        out, err = bytearray(), bytearray()
        douts = codecs.getincrementaldecoder("utf-8")("replace")
        derrs = codecs.getincrementaldecoder("utf-8")("replace")
        exit_ev = ExecEvent("exit", exit_code=0)
        for ev in self.exec_stream(command, cwd=cwd, env=env, timeout=timeout, stdin=stdin, session=session):
            if ev.type == "stdout":
                out += ev.data
                s = douts.decode(ev.data)
                if s:
                    rt.call(on_stdout, s)
            elif ev.type == "stderr":
                err += ev.data
                s = derrs.decode(ev.data)
                if s:
                    rt.call(on_stderr, s)
            elif ev.type == "exit":
                exit_ev = ev
                for cb, dec in ((on_stdout, douts), (on_stderr, derrs)):
                    s = dec.decode(b"", final=True)
                    if s:
                        rt.call(cb, s)
        # exec_stream raised if the stream ended without an exit event.
        return ExecResult(out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                          exit_ev.exit_code or 0, exit_ev.signal, exit_ev.duration)

    def exec_stream(
        self,
        command: str | Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | timedelta | None = None,
        stdin: Any = None,
        session: str | None = None,
    ) -> Iterator[ExecEvent]:
        """Runs a command and yields its events as they happen: "started" (with the
        exec's ``id``), "stdout" and "stderr" (``data`` bytes, ``text``), and
        last "exit" (``exit_code``). Leaving the loop early kills the command."""
        self._ensure()
        req = {"sandbox": self.name, "cwd": cwd, "env": dict(env) if env else None, "timeoutMs": millis(timeout),
               "session": session, **_command(command)}
        if stdin is not None:
            req["stdin"] = True
        pump: rt.Task | None = None
        exited = False
        try:
            for m in self.hutch._stream("ProcessService/Exec", req):
                ev = ExecEvent.from_wire(m)
                if ev is None:
                    continue
                if ev.type == "started" and stdin is not None:
                    pump = rt.Task(self._pump_stdin, ev.id, stdin)
                if ev.type == "exit":
                    exited = True
                yield ev
            if not exited:
                raise UnavailableError(f"exec in {self.name!r}: the stream ended without an exit status")
        finally:
            if pump is not None:
                if exited:
                    try:
                        pump.join()
                    except HutchError:
                        pass  # the command ended before reading all its input
                else:
                    pump.cancel()

    def _pump_stdin(self, exec_id: str, data: Any) -> None:
        for chunk in rt.chunks(data):
            self.hutch._unary("ProcessService/WriteStdin", {"sandbox": self.name, "id": exec_id, "data": b64(chunk)})
        self.hutch._unary("ProcessService/WriteStdin", {"sandbox": self.name, "id": exec_id, "eof": True})

    def signal(self, exec_id: str, signal: str) -> None:
        """Sends a signal (e.g. "SIGINT") to a running exec's process group."""
        self.hutch._unary("ProcessService/Signal", {"sandbox": self.name, "id": exec_id, "signal": signal})

    def set_env_vars(self, env: Mapping[str, str], *, unset: Sequence[str] | None = None) -> None:
        """Sets (and unsets) variables every later command, process and session sees."""
        self._ensure()
        self.hutch._unary("ProcessService/SetEnv",
                                {"sandbox": self.name, "set": dict(env), "unset": list(unset) if unset else None})

    def git_checkout(self, url: str, *, branch: str | None = None, depth: int | None = None,
                           target_dir: str | None = None, timeout: float | timedelta | None = None) -> GitCheckout:
        """Clones a repository (into /workspace/<name> by default)."""
        self._ensure()
        d = self.hutch._unary("ProcessService/GitCheckout", {
            "sandbox": self.name, "url": url, "branch": branch, "depth": depth, "targetDir": target_dir,
            "timeoutMs": millis(timeout)})
        return GitCheckout(d.get("targetDir", ""), d.get("branch", ""), d.get("commit", ""))

    # Background processes.

    def start_process(self, command: str | Sequence[str], *, cwd: str | None = None,
                            env: Mapping[str, str] | None = None, id: str | None = None) -> "Process":
        """Starts a background process and returns at once."""
        self._ensure()
        req = {"sandbox": self.name, "id": id, "cwd": cwd, "env": dict(env) if env else None, **_command(command)}
        d = self.hutch._unary("ProcessService/StartProcess", req)
        return Process(self, ProcessInfo.from_wire(d))

    def processes(self) -> list["Process"]:
        self._ensure()
        d = self.hutch._unary("ProcessService/ListProcesses", {"sandbox": self.name})
        return [Process(self, ProcessInfo.from_wire(p)) for p in d.get("processes") or []]

    def get_process(self, id: str) -> "Process":
        self._ensure()
        d = self.hutch._unary("ProcessService/GetProcess", {"sandbox": self.name, "id": id})
        return Process(self, ProcessInfo.from_wire(d))

    def kill_all_processes(self) -> int:
        self._ensure()
        d = self.hutch._unary("ProcessService/KillAllProcesses", {"sandbox": self.name})
        return integer(d.get("killed"))

    # Ports.

    def expose_port(self, port: int) -> str:
        """Gives a port a preview URL and returns it (the same URL when asked again)."""
        self._ensure()
        d = self.hutch._unary("SandboxService/ExposePort", {"name": self.name, "port": port})
        return d.get("url", "")

    def unexpose_port(self, port: int) -> None:
        self.hutch._unary("SandboxService/UnexposePort", {"name": self.name, "port": port})

    def exposed_ports(self) -> dict[int, str]:
        d = self.hutch._unary("SandboxService/ListExposedPorts", {"name": self.name})
        return {integer(p.get("port")): p.get("url", "") for p in d.get("ports") or []}

    # Sessions.

    def create_session(self, *, id: str | None = None, cwd: str | None = None,
                             env: Mapping[str, str] | None = None) -> "Session":
        """Starts a shell session whose cwd, exports and functions persist between execs."""
        self._ensure()
        d = self.hutch._unary("ProcessService/CreateSession",
                                    {"sandbox": self.name, "id": id, "cwd": cwd, "env": dict(env) if env else None})
        return Session(self, d.get("id", ""))

    def session(self, id: str) -> "Session":
        """A handle on a session by id; execs in it create it on first use ("default" always exists)."""
        return Session(self, id)

    def sessions(self) -> list[SessionInfo]:
        self._ensure()
        d = self.hutch._unary("ProcessService/ListSessions", {"sandbox": self.name})
        return [SessionInfo.from_wire(s) for s in d.get("sessions") or []]

    # Code interpreter.

    def create_code_context(self, language: str = "python", *, id: str | None = None, cwd: str | None = None,
                                  env: Mapping[str, str] | None = None) -> CodeContext:
        """Creates a persistent python, javascript or typescript context."""
        self._ensure()
        d = self.hutch._unary("CodeService/CreateCodeContext", {
            "sandbox": self.name, "id": id, "language": language, "cwd": cwd, "env": dict(env) if env else None})
        return CodeContext.from_wire(d)

    def code_contexts(self) -> list[CodeContext]:
        self._ensure()
        d = self.hutch._unary("CodeService/ListCodeContexts", {"sandbox": self.name})
        return [CodeContext.from_wire(c) for c in d.get("contexts") or []]

    def delete_code_context(self, context: str | CodeContext) -> None:
        cid = context.id if isinstance(context, CodeContext) else context
        self.hutch._unary("CodeService/DeleteCodeContext", {"sandbox": self.name, "id": cid})

    def interrupt_code(self, context: str | CodeContext) -> bool:
        """Stops the context's running cell, keeping its state; False if none ran."""
        cid = context.id if isinstance(context, CodeContext) else context
        d = self.hutch._unary("CodeService/InterruptCode", {"sandbox": self.name, "context": cid})
        return bool(d.get("interrupted"))

    def run_code(
        self,
        code: str,
        language: str | None = None,
        context: str | CodeContext | None = None,
        *,
        on_stdout: Callback | None = None,
        on_stderr: Callback | None = None,
        on_result: Callback | None = None,
        on_error: Callback | None = None,
        timeout: float | timedelta | None = None,
    ) -> Execution:
        """Runs a cell and returns what it did; errors the cell raised are in ``.error``.

        Without ``context`` it runs in the default context of ``language``
        (python when not given). Callbacks see output as it is printed.
        """
        self._ensure()
        cid = context.id if isinstance(context, CodeContext) else context
        if language is None:
            language = context.language if isinstance(context, CodeContext) else (None if cid else "python")
        ex = Execution()
        done = False
        for m in self.hutch._stream("CodeService/RunCode", {
                "sandbox": self.name, "code": code, "context": cid, "language": language, "timeoutMs": millis(timeout)}):
            if "started" in m:
                ex.context = m["started"].get("context", "")
                ex.state_lost = bool(m["started"].get("stateLost"))
            elif "stdout" in m:
                ex.logs.stdout.append(m["stdout"])
                rt.call(on_stdout, m["stdout"])
            elif "stderr" in m:
                ex.logs.stderr.append(m["stderr"])
                rt.call(on_stderr, m["stderr"])
            elif "result" in m:
                r = Result.from_wire(m["result"])
                ex.results.append(r)
                rt.call(on_result, r)
            elif "error" in m:
                ex.error = ExecutionError.from_wire(m["error"])
                rt.call(on_error, ex.error)
            elif "done" in m:
                dn = m["done"]
                ex.status = (dn.get("status") or "").removeprefix("CODE_STATUS_").lower()
                ex.execution_count = integer(dn.get("executionCount"))
                ex.duration = integer(dn.get("durationMs")) / 1000
                ex.message = dn.get("message", "")
                done = True
        if not done:
            raise UnavailableError(f"run code in {self.name!r}: the stream ended before the cell was done")
        return ex

    # Watching files.

    def watch(self, path: str = "/workspace", *, recursive: bool = True, include: Sequence[str] | None = None,
                    exclude: Sequence[str] | None = None, default_excludes: bool = True) -> Iterator[WatchEvent]:
        """Yields changes under a directory: first "started" (the watch is live),
        then "create", "modify", "delete", "move_from", "move_to", "attrib" or
        "overflow", and last "stopped" if the watch ends on the sandbox's side."""
        self._ensure()
        for m in self.hutch._stream("WatchService/Watch", self._watch_req(path, recursive, include, exclude,
                                                                                default_excludes)):
            for e in m.get("events") or []:
                ev = WatchEvent.from_wire(e)
                if ev.type == "keepalive":
                    continue
                yield ev
                if ev.type == "stopped":
                    return

    def check_changes(self, path: str, since: str, *, recursive: bool = True,
                            include: Sequence[str] | None = None, exclude: Sequence[str] | None = None,
                            default_excludes: bool = True) -> Changes:
        """Whether anything changed under path since a version seen on a watch with the same filters."""
        req = self._watch_req(path, recursive, include, exclude, default_excludes)
        req["since"] = since
        return Changes.from_wire(self.hutch._unary("WatchService/CheckChanges", req))

    def _watch_req(self, path: str, recursive: bool, include: Sequence[str] | None,
                   exclude: Sequence[str] | None, default_excludes: bool) -> dict[str, Any]:
        return {"sandbox": self.name, "path": path, "nonRecursive": not recursive or None,
                "include": list(include) if include else None, "exclude": list(exclude) if exclude else None,
                "noDefaultExcludes": not default_excludes or None}

    # Sleep, snapshots, forks, backups.

    def sleep(self) -> SleepInfo:
        """Stops its processes and frees memory; disk, env and ports stay; the next call wakes it."""
        return SleepInfo.from_wire(self.hutch._unary("SnapshotService/Sleep", {"name": self.name}))

    def configure_sleep(self, *, sleep_after: float | timedelta | None = None, keep_alive: bool | None = None,
                              persist: bool | None = None) -> SleepInfo:
        self._ensure()
        return SleepInfo.from_wire(self.hutch._unary("SnapshotService/ConfigureSleep", {
            "name": self.name, "sleepAfter": duration(sleep_after), "keepAlive": keep_alive,
            "persistAcrossSessions": persist}))

    def sleep_info(self) -> SleepInfo:
        return SleepInfo.from_wire(self.hutch._unary("SnapshotService/GetSleep", {"name": self.name}))

    def snapshot(self, *, ttl: float | timedelta | None = None) -> Snapshot:
        """Captures the sandbox's disk; it keeps running."""
        self._ensure()
        return Snapshot.from_wire(self.hutch._unary("SnapshotService/CreateSnapshot",
                                                          {"name": self.name, "ttl": duration(ttl)}))

    def fork(self, name: str | Sequence[str], *, count: int | None = None, snapshot: str | Snapshot | None = None,
                   sleep_after: float | timedelta | None = None,
                   keep_alive: bool | None = None) -> "Sandbox | list[Sandbox]":
        """New sandboxes with this one's disk (now, or of ``snapshot``).

        ``fork("copy")`` returns one sandbox; ``fork("copy", count=4)``
        returns copy-1 … copy-4, and a list of names returns those.
        """
        self._ensure()
        if isinstance(name, str):
            names = [f"{name}-{i}" for i in range(1, count + 1)] if count is not None else [name]
        else:
            names = list(name)
        sid = snapshot.id if isinstance(snapshot, Snapshot) else snapshot
        d = self.hutch._unary("SnapshotService/Fork", {
            "name": self.name, "newNames": names, "snapshot": sid, "sleepAfter": duration(sleep_after),
            "keepAlive": keep_alive})
        forks = []
        for s in d.get("sandboxes") or []:
            sb = Sandbox(self.hutch, s.get("name", ""))
            sb._ready = True
            forks.append(sb)
        return forks if count is not None or not isinstance(name, str) else forks[0]

    def create_backup(self, dir: str = "/workspace", *, name: str | None = None,
                            excludes: Sequence[str] | None = None, gitignore: bool = False,
                            ttl: float | timedelta | None = None) -> Backup:
        """Archives a directory into the daemon's blob store."""
        self._ensure()
        return Backup.from_wire(self.hutch._unary("BackupService/CreateBackup", {
            "sandbox": self.name, "dir": dir, "name": name, "excludes": list(excludes) if excludes else None,
            "gitignore": gitignore or None, "ttl": duration(ttl)}))

    def restore_backup(self, backup: str | Backup, *, dir: str | None = None) -> int:
        """Replaces a directory's contents with a backup's; returns the number of files."""
        self._ensure()
        bid = backup.id if isinstance(backup, Backup) else backup
        d = self.hutch._unary("BackupService/RestoreBackup", {"id": bid, "sandbox": self.name, "dir": dir})
        return integer(d.get("files"))

    # Egress.

    def set_policy(self, policy: Mapping[str, Any] | str | None = None, *, internet: bool | None = None,
                         allow: Sequence[str] | None = None, deny: Sequence[str] | None = None,
                         rules: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
        """Replaces the egress policy (a dict or JSON text, or its fields as
        keywords) and returns it as the daemon stored it."""
        self._ensure()
        if policy is None:
            policy = compact({"internet": internet, "allow": allow and list(allow), "deny": deny and list(deny),
                              "rules": rules and [dict(r) for r in rules]})
        return self._set_policy(policy)

    def _set_policy(self, policy: Mapping[str, Any] | str) -> dict[str, Any]:
        text = policy if isinstance(policy, str) else json.dumps(dict(policy))
        d = self.hutch._unary("EgressService/SetPolicy", {"sandbox": self.name, "policy": text, "create": True})
        return json.loads(d.get("policy") or "{}")

    def get_policy(self) -> dict[str, Any]:
        d = self.hutch._unary("EgressService/GetPolicy", {"sandbox": self.name})
        return json.loads(d.get("policy") or "{}")

    def egress_log(self, limit: int | None = None) -> list[EgressEntry]:
        d = self.hutch._unary("EgressService/EgressLog", {"sandbox": self.name, "limit": limit})
        return [EgressEntry.from_wire(e) for e in d.get("entries") or []]


class Files:
    """Files of a sandbox. Relative paths are relative to /workspace."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sb = sandbox

    def write(self, path: str, data: str | bytes | Any, *, mode: int | None = None, parents: bool = True,
                    append: bool = False) -> None:
        """Writes a file (atomically replaced unless appending); data is str,
        bytes, a binary file or an iterable of bytes, streamed."""
        sb = self._sb
        sb._ensure()
        params = {"path": path}
        if mode is not None:
            params["mode"] = format(mode, "o")
        if parents:
            params["parents"] = "1"
        if append:
            params["append"] = "1"
        body: Any = data.encode() if isinstance(data, str) else data
        if not isinstance(body, (bytes, bytearray)):
            body = rt.chunks(body)
        try:
            r = sb.hutch._http.put(sb.hutch._files_url(sb.name), params=params, content=body,
                                         headers={"Content-Type": "application/octet-stream", **sb.hutch._auth})
        except httpx.TransportError as e:
            raise UnavailableError(f"write {sb.name}:{path}: {e or type(e).__name__}") from e
        if r.status_code != 200:
            raise error_for_status(r.status_code, r.content)

    def read(self, path: str, *, encoding: str = "utf-8") -> Any:
        """Reads a file: text by default, bytes with ``encoding="bytes"``."""
        sb = self._sb
        sb._ensure()
        try:
            r = sb.hutch._http.get(sb.hutch._files_url(sb.name), params={"path": path}, headers=sb.hutch._auth)
        except httpx.TransportError as e:
            raise UnavailableError(f"read {sb.name}:{path}: {e or type(e).__name__}") from e
        if r.status_code != 200:
            raise error_for_status(r.status_code, r.content)
        return r.content if encoding == "bytes" else r.content.decode(encoding)

    def stream(self, path: str, *, chunk_size: int | None = None) -> Iterator[bytes]:
        """Yields a file's bytes as they arrive, for files too big to hold in memory."""
        sb = self._sb
        sb._ensure()
        try:
            with sb.hutch._http.stream("GET", sb.hutch._files_url(sb.name), params={"path": path},
                                             headers=sb.hutch._auth) as r:
                if r.status_code != 200:
                    raise error_for_status(r.status_code, r.read())
                for chunk in r.iter_bytes(chunk_size):
                    yield chunk
        except httpx.TransportError as e:
            raise UnavailableError(f"read {sb.name}:{path}: {e or type(e).__name__}") from e

    def list(self, path: str = "/workspace", *, recursive: bool = False, hidden: bool = True) -> list[FileInfo]:
        self._sb._ensure()
        d = self._sb.hutch._unary("FileService/ListDir", {"sandbox": self._sb.name, "path": path,
                                                                "recursive": recursive, "excludeHidden": not hidden})
        return [FileInfo.from_wire(e) for e in d.get("entries") or []]

    def stat(self, path: str) -> FileInfo | None:
        """Describes a path; None when nothing is there."""
        self._sb._ensure()
        d = self._sb.hutch._unary("FileService/Stat", {"sandbox": self._sb.name, "path": path})
        return FileInfo.from_wire(d.get("info") or {}) if d.get("exists") else None

    def exists(self, path: str) -> bool:
        return self.stat(path) is not None

    def mkdir(self, path: str, *, parents: bool = True, mode: int | None = None) -> None:
        self._sb._ensure()
        self._sb.hutch._unary("FileService/MakeDir", {"sandbox": self._sb.name, "path": path,
                                                            "parents": parents, "mode": mode})

    def remove(self, path: str, *, recursive: bool = False) -> None:
        self._sb._ensure()
        self._sb.hutch._unary("FileService/Remove", {"sandbox": self._sb.name, "path": path,
                                                           "recursive": recursive})

    def rename(self, src: str, dst: str, *, overwrite: bool = False) -> None:
        self._sb._ensure()
        self._sb.hutch._unary("FileService/Rename", {"sandbox": self._sb.name, "from": src, "to": dst,
                                                           "overwrite": overwrite})


class Process:
    """A background process; ``info`` is what was last heard of it."""

    def __init__(self, sandbox: Sandbox, info: ProcessInfo) -> None:
        self.sandbox = sandbox
        self.info = info

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, pid={self.pid}, status={self.status!r})"

    id = property(lambda self: self.info.id)
    pid = property(lambda self: self.info.pid)
    status = property(lambda self: self.info.status)
    exit_code = property(lambda self: self.info.exit_code)

    def refresh(self) -> ProcessInfo:
        self.info = ProcessInfo.from_wire(self.sandbox.hutch._unary(
            "ProcessService/GetProcess", {"sandbox": self.sandbox.name, "id": self.id}))
        return self.info

    def _wait(self, cond: dict[str, Any], timeout: float | timedelta | None) -> dict[str, Any]:
        d = self.sandbox.hutch._unary("ProcessService/WaitProcess", {
            "sandbox": self.sandbox.name, "id": self.id, "timeoutMs": millis(timeout), **cond})
        if d.get("process"):
            self.info = ProcessInfo.from_wire(d["process"])
        return d

    def wait_for_log(self, pattern: str | re.Pattern[str], *, timeout: float | timedelta | None = 60.0) -> str:
        """Waits for a line of output matching pattern (RE2 syntax; lines already printed count); returns it."""
        d = self._wait({"log": pattern.pattern if isinstance(pattern, re.Pattern) else pattern}, timeout)
        return d.get("line", "")

    def wait_for_port(self, port: int, *, mode: str = "tcp", path: str | None = None,
                            status: tuple[int, int] | None = None,
                            timeout: float | timedelta | None = 60.0) -> None:
        """Waits until the port accepts connections (``mode="http"``: answers HTTP
        on path with a status in range, 200-399 by default)."""
        cond = {"port": port, "mode": mode, "path": path}
        if status is not None:
            cond["statusMin"], cond["statusMax"] = status
        self._wait({"port": compact(cond)}, timeout)

    def wait_for_exit(self, *, timeout: float | timedelta | None = 60.0) -> ProcessInfo:
        """Waits until the process ends and returns its final info."""
        self._wait({"exit": True}, timeout)
        return self.info

    def kill(self, signal: str | None = None, *, grace: float | timedelta | None = None) -> ProcessInfo:
        """Signals the process tree (SIGTERM, then SIGKILL after grace) and returns once it is gone."""
        self.info = ProcessInfo.from_wire(self.sandbox.hutch._unary("ProcessService/KillProcess", {
            "sandbox": self.sandbox.name, "id": self.id, "signal": signal, "graceMs": millis(grace)}))
        return self.info

    def logs(self) -> tuple[str, str]:
        """The output kept so far, as (stdout, stderr)."""
        out, err = bytearray(), bytearray()
        for ev in self.stream_logs(follow=False):
            if ev.type == "stdout":
                out += ev.data
            elif ev.type == "stderr":
                err += ev.data
        return out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def stream_logs(self, *, follow: bool = True, from_now: bool = False) -> Iterator[LogEvent]:
        """Yields output ("stdout"/"stderr" events), then, with follow, live output
        until the process ends ("exit" with its final info)."""
        for m in self.sandbox.hutch._stream("ProcessService/ProcessLogs", {
                "sandbox": self.sandbox.name, "id": self.id, "follow": follow, "fromNow": from_now}):
            ev = LogEvent.from_wire(m)
            if ev is None:
                continue
            if ev.process is not None:
                self.info = ev.process
            yield ev


class Session:
    """A shell session: cd, exports and functions persist between its execs."""

    def __init__(self, sandbox: Sandbox, id: str) -> None:
        self.sandbox = sandbox
        self.id = id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r})"

    def exec(self, command: str | Sequence[str], **kw: Any) -> ExecResult:
        return self.sandbox.exec(command, session=self.id, **kw)

    def exec_stream(self, command: str | Sequence[str], **kw: Any) -> Iterator[ExecEvent]:
        return self.sandbox.exec_stream(command, session=self.id, **kw)

    def set_env_vars(self, env: Mapping[str, str], *, unset: Sequence[str] | None = None) -> None:
        self.sandbox.hutch._unary("ProcessService/SetEnv", {
            "sandbox": self.sandbox.name, "session": self.id, "set": dict(env), "unset": list(unset) if unset else None})

    def delete(self) -> None:
        self.sandbox.hutch._unary("ProcessService/DeleteSession", {"sandbox": self.sandbox.name, "id": self.id})


class Secrets:
    """Secrets live in the daemon only; egress rules inject them ({{secret:NAME}})."""

    def __init__(self, hutch: Hutch) -> None:
        self._h = hutch

    def set(self, name: str, value: str, *, scope: Sequence[str] | None = None) -> None:
        """Stores or rotates a secret; scope, globs over sandbox names, limits who may use it."""
        self._h._unary("EgressService/SetSecret", {"name": name, "value": value,
                                                        "scope": list(scope) if scope else None})

    def delete(self, name: str) -> None:
        self._h._unary("EgressService/DeleteSecret", {"name": name})

    def list(self) -> list[SecretInfo]:
        d = self._h._unary("EgressService/ListSecrets", {})
        if d.get("secrets"):
            return [SecretInfo(s.get("name", ""), list(s.get("scope") or [])) for s in d["secrets"]]
        return [SecretInfo(n) for n in d.get("names") or []]


class Snapshots:
    def __init__(self, hutch: Hutch) -> None:
        self._h = hutch

    def list(self, sandbox: str | None = None) -> list[Snapshot]:
        d = self._h._unary("SnapshotService/ListSnapshots", {"sandbox": sandbox})
        return [Snapshot.from_wire(s) for s in d.get("snapshots") or []]

    def delete(self, snapshot: str | Snapshot) -> None:
        """Deletes a snapshot; FailedPreconditionError while sandboxes stand on it."""
        sid = snapshot.id if isinstance(snapshot, Snapshot) else snapshot
        self._h._unary("SnapshotService/DeleteSnapshot", {"id": sid})


class Backups:
    def __init__(self, hutch: Hutch) -> None:
        self._h = hutch

    def list(self) -> list[Backup]:
        d = self._h._unary("BackupService/ListBackups", {})
        return [Backup.from_wire(b) for b in d.get("backups") or []]

    def delete(self, backup: str | Backup) -> None:
        bid = backup.id if isinstance(backup, Backup) else backup
        self._h._unary("BackupService/DeleteBackup", {"id": bid})
