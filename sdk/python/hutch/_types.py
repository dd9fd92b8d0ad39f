"""What calls return: plain dataclasses decoded from the wire's JSON."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._wire import enum, integer, parse_duration, timestamp, unb64


@dataclass
class ExecResult:
    """How a command ended and what it printed."""

    stdout: str
    stderr: str
    exit_code: int
    signal: str = ""  # e.g. "SIGKILL" when killed by a signal
    duration: float = 0.0  # seconds

    @property
    def success(self) -> bool:
        return self.exit_code == 0


@dataclass
class ExecEvent:
    """One event of exec_stream: ``type`` is "started", "stdout", "stderr" or "exit"."""

    type: str
    data: bytes = b""  # stdout and stderr
    exit_code: int | None = None  # exit
    signal: str = ""  # exit
    duration: float = 0.0  # exit, seconds
    id: str = ""  # started: the exec's id
    pid: int = 0  # started

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "ExecEvent | None":
        if "started" in d:
            s = d["started"]
            return cls("started", id=s.get("id", ""), pid=integer(s.get("pid")))
        if "stdout" in d:
            return cls("stdout", data=unb64(d["stdout"]))
        if "stderr" in d:
            return cls("stderr", data=unb64(d["stderr"]))
        if "exit" in d:
            e = d["exit"]
            return cls("exit", exit_code=integer(e.get("code")), signal=e.get("signal", ""),
                       duration=integer(e.get("durationMs")) / 1000)
        return None  # keep-alive


@dataclass
class Limits:
    cpu_millis: int = 0
    memory_bytes: int = 0
    pids: int = 0


@dataclass
class SandboxInfo:
    """A sandbox as the daemon reports it; ``state`` is "running", "sleeping", ..."""

    name: str
    id: str = ""
    state: str = ""
    image: str = ""
    runtime: str = ""
    created_at: datetime | None = None
    started_at: datetime | None = None
    limits: Limits = field(default_factory=Limits)
    reason: str = ""
    address: str = ""

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "SandboxInfo":
        lim = d.get("limits") or {}
        return cls(
            name=d.get("name", ""), id=d.get("id", ""), state=enum(d.get("state"), "STATE_"),
            image=d.get("image", ""), runtime=d.get("runtime", ""),
            created_at=timestamp(d.get("createdAt")), started_at=timestamp(d.get("startedAt")),
            limits=Limits(integer(lim.get("cpuMillis")), integer(lim.get("memoryBytes")), integer(lim.get("pids"))),
            reason=d.get("reason", ""), address=d.get("address", ""),
        )


@dataclass
class FileInfo:
    """A directory entry; ``type`` is "file", "directory", "symlink" or "other"."""

    name: str
    path: str
    type: str
    size: int = 0
    mode: int = 0
    modified_at: datetime | None = None
    target: str = ""

    @property
    def is_dir(self) -> bool:
        return self.type == "directory"

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "FileInfo":
        return cls(
            name=d.get("name", ""), path=d.get("path", ""), type=enum(d.get("type"), "FILE_TYPE_"),
            size=integer(d.get("size")), mode=integer(d.get("mode")),
            modified_at=timestamp(d.get("modifiedAt")), target=d.get("target", ""),
        )


@dataclass
class ProcessInfo:
    """A background process; ``status`` is "running", "exited", "killed" or "failed"."""

    id: str
    pid: int = 0
    status: str = ""
    argv: list[str] = field(default_factory=list)
    cwd: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None  # once ended; 128+n when killed by signal n
    signal: str = ""

    @property
    def running(self) -> bool:
        return self.status == "running"

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "ProcessInfo":
        status = enum(d.get("status"), "PROCESS_STATUS_")
        return cls(
            id=d.get("id", ""), pid=integer(d.get("pid")), status=status, argv=list(d.get("argv") or []),
            cwd=d.get("cwd", ""), started_at=timestamp(d.get("startedAt")), ended_at=timestamp(d.get("endedAt")),
            exit_code=None if status in ("running", "") else integer(d.get("exitCode")), signal=d.get("signal", ""),
        )


@dataclass
class LogEvent:
    """One event of a process's log stream: "stdout", "stderr" or "exit"."""

    type: str
    data: bytes = b""
    offset: int = 0
    truncated: bool = False
    process: ProcessInfo | None = None  # exit

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "LogEvent | None":
        for kind in ("stdout", "stderr"):
            if kind in d:
                c = d[kind]
                return cls(kind, data=unb64(c.get("data")), offset=integer(c.get("offset")), truncated=bool(c.get("truncated")))
        if "exit" in d:
            return cls("exit", process=ProcessInfo.from_wire(d["exit"]))
        return None


@dataclass
class SessionInfo:
    id: str
    cwd: str = ""
    created_at: datetime | None = None

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "SessionInfo":
        return cls(d.get("id", ""), d.get("cwd", ""), timestamp(d.get("createdAt")))


@dataclass
class GitCheckout:
    target_dir: str
    branch: str
    commit: str


@dataclass
class WatchEvent:
    """A change under a watched directory.

    ``type`` is "started" (the watch is live), "create", "modify", "delete",
    "move_from", "move_to", "attrib", "overflow" (events were lost) or
    "stopped" (the last event; ``reason`` says why).
    """

    type: str
    path: str = ""
    is_directory: bool = False
    timestamp: datetime | None = None
    cookie: int = 0
    old_path: str = ""
    version: str = ""
    reason: str = ""

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "WatchEvent":
        return cls(
            type=enum(d.get("type"), "WATCH_EVENT_TYPE_"), path=d.get("path", ""),
            is_directory=bool(d.get("isDirectory")), timestamp=timestamp(d.get("timestamp")),
            cookie=integer(d.get("cookie")), old_path=d.get("oldPath", ""), version=d.get("version", ""),
            reason=d.get("reason", ""),
        )


@dataclass
class Changes:
    """CheckChanges: ``status`` is "unchanged", "changed" or "resync"."""

    status: str
    paths: list[str] = field(default_factory=list)
    paths_complete: bool = False
    version: str = ""
    reason: str = ""

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "Changes":
        return cls(enum(d.get("status"), "CHANGE_STATUS_"), list(d.get("paths") or []),
                   bool(d.get("pathsComplete")), d.get("version", ""), d.get("reason", ""))


@dataclass
class CodeContext:
    """A persistent interpreter (python, javascript or typescript) in a sandbox."""

    id: str
    language: str = ""
    cwd: str = ""
    created_at: datetime | None = None
    running: bool = False
    pid: int = 0
    execution_count: int = 0
    default: bool = False

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "CodeContext":
        return cls(
            id=d.get("id", ""), language=d.get("language", ""), cwd=d.get("cwd", ""),
            created_at=timestamp(d.get("createdAt")), running=bool(d.get("running")), pid=integer(d.get("pid")),
            execution_count=integer(d.get("executionCount")), default=bool(d.get("default")),
        )


@dataclass
class Result:
    """A rich result of a cell: its value (``is_main_result``) or something it displayed.

    ``data`` is the MIME bundle; binary formats (png, jpeg) stay base64
    text, as in Jupyter: ``decode("image/png")`` gives the bytes.
    """

    data: dict[str, str] = field(default_factory=dict)
    is_main_result: bool = False

    text = property(lambda self: self.data.get("text/plain"))
    html = property(lambda self: self.data.get("text/html"))
    markdown = property(lambda self: self.data.get("text/markdown"))
    svg = property(lambda self: self.data.get("image/svg+xml"))
    png = property(lambda self: self.data.get("image/png"))
    jpeg = property(lambda self: self.data.get("image/jpeg"))
    latex = property(lambda self: self.data.get("text/latex"))
    javascript = property(lambda self: self.data.get("application/javascript"))

    @property
    def json(self) -> Any:
        """The application/json form, parsed; None when there is none."""
        s = self.data.get("application/json")
        return None if s is None else json.loads(s)

    def decode(self, mime: str) -> bytes:
        """The bytes of a base64-encoded binary format such as image/png."""
        if mime not in self.data:
            raise KeyError(f"result has no {mime}")
        return base64.b64decode(self.data[mime].strip())

    def formats(self) -> list[str]:
        return list(self.data)

    def __str__(self) -> str:
        return self.text or ""

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "Result":
        return cls(dict(d.get("data") or {}), not d.get("display", False))


@dataclass
class Logs:
    """Output of a cell, in chunks as printed."""

    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


@dataclass
class ExecutionError:
    """What a cell raised: ``name`` (e.g. ZeroDivisionError), ``value`` and the traceback."""

    name: str
    value: str
    traceback: str = ""
    line: int = 0

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "ExecutionError":
        return cls(d.get("name", ""), d.get("value", ""), "\n".join(d.get("traceback") or []), integer(d.get("line")))


@dataclass
class Execution:
    """What a cell did. ``status`` is "ok", "error", "interrupted", "timeout" or "kernel_died"."""

    results: list[Result] = field(default_factory=list)
    logs: Logs = field(default_factory=Logs)
    error: ExecutionError | None = None
    status: str = ""
    execution_count: int = 0
    duration: float = 0.0
    message: str = ""
    context: str = ""
    state_lost: bool = False

    @property
    def text(self) -> str | None:
        """The text/plain form of the cell's value, None when it has none."""
        for r in self.results:
            if r.is_main_result:
                return r.text
        return None

    @property
    def stdout(self) -> str:
        return "".join(self.logs.stdout)

    @property
    def stderr(self) -> str:
        return "".join(self.logs.stderr)


@dataclass
class Snapshot:
    id: str
    sandbox: str = ""
    image: str = ""
    layer: str = ""
    size: int = 0
    created_at: datetime | None = None
    expires_at: datetime | None = None
    used_by: list[str] = field(default_factory=list)

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "Snapshot":
        return cls(
            id=d.get("id", ""), sandbox=d.get("sandbox", ""), image=d.get("image", ""), layer=d.get("layer", ""),
            size=integer(d.get("size")), created_at=timestamp(d.get("createdAt")),
            expires_at=timestamp(d.get("expiresAt")), used_by=list(d.get("usedBy") or []),
        )


@dataclass
class Backup:
    id: str
    name: str = ""
    sandbox: str = ""
    dir: str = ""
    size: int = 0
    digest: str = ""
    created_at: datetime | None = None
    expires_at: datetime | None = None

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "Backup":
        return cls(
            id=d.get("id", ""), name=d.get("name", ""), sandbox=d.get("sandbox", ""), dir=d.get("dir", ""),
            size=integer(d.get("size")), digest=d.get("digest", ""),
            created_at=timestamp(d.get("createdAt")), expires_at=timestamp(d.get("expiresAt")),
        )


@dataclass
class SleepInfo:
    name: str
    sleeping: bool = False
    sleep_after: float | None = None  # seconds
    keep_alive: bool = False
    sleeps_at: datetime | None = None
    active: int = 0
    persist_across_sessions: bool = False

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "SleepInfo":
        return cls(
            name=d.get("name", ""), sleeping=bool(d.get("sleeping")), sleep_after=parse_duration(d.get("sleepAfter")),
            keep_alive=bool(d.get("keepAlive")), sleeps_at=timestamp(d.get("sleepsAt")), active=integer(d.get("active")),
            persist_across_sessions=bool(d.get("persistAcrossSessions")),
        )


@dataclass
class SecretInfo:
    name: str
    scope: list[str] = field(default_factory=list)


@dataclass
class EgressEntry:
    time: datetime | None
    proto: str
    host: str
    port: int
    allowed: bool
    rule: str = ""
    addr: str = ""
    method: str = ""
    path: str = ""
    status: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    error: str = ""

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "EgressEntry":
        return cls(
            time=timestamp(d.get("time")), proto=d.get("proto", ""), host=d.get("host", ""), port=integer(d.get("port")),
            allowed=bool(d.get("allowed")), rule=d.get("rule", ""), addr=d.get("addr", ""), method=d.get("method", ""),
            path=d.get("path", ""), status=integer(d.get("status")), bytes_out=integer(d.get("bytesOut")),
            bytes_in=integer(d.get("bytesIn")), error=d.get("error", ""),
        )
