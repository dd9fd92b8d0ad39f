"""Python SDK for hutch, sandboxes for AI agents.

    from hutch import Hutch

    sb = Hutch().sandbox("agent-47")          # created on first use
    r = sb.exec("echo hi")                    # ExecResult(stdout, stderr, exit_code)
    sb.files.write("/workspace/a.txt", "abc")
    print(sb.run_code("6*7").text)            # 42

``AsyncHutch`` has the same surface with ``await`` and ``async for``.
It speaks the daemon's Connect JSON protocol directly; its only dependency is httpx.
"""

from ._async_client import (
    AsyncBackups, AsyncFiles, AsyncHutch, AsyncProcess, AsyncSandbox, AsyncSecrets, AsyncSession, AsyncSnapshots,
)
from ._errors import (
    AbortedError, AlreadyExistsError, CanceledError, DataLossError, DeadlineExceededError, FailedPreconditionError,
    HutchError, InternalError, InvalidArgumentError, NotFoundError, OutOfRangeError, PermissionDeniedError,
    ResourceExhaustedError, UnauthenticatedError, UnavailableError, UnimplementedError, UnknownError,
)
from ._sync_client import Backups, Files, Hutch, Process, Sandbox, Secrets, Session, Snapshots
from ._types import (
    Backup, Changes, CodeContext, EgressEntry, ExecEvent, ExecResult, Execution, ExecutionError, FileInfo,
    GitCheckout, Limits, LogEvent, Logs, ProcessInfo, Result, SandboxInfo, SecretInfo, SessionInfo, SleepInfo,
    Snapshot, WatchEvent,
)

__version__ = "0.1.0"

__all__ = [
    "Hutch", "Sandbox", "Files", "Process", "Session", "Secrets", "Snapshots", "Backups",
    "AsyncHutch", "AsyncSandbox", "AsyncFiles", "AsyncProcess", "AsyncSession", "AsyncSecrets", "AsyncSnapshots",
    "AsyncBackups",
    "HutchError", "CanceledError", "UnknownError", "InvalidArgumentError", "DeadlineExceededError", "NotFoundError",
    "AlreadyExistsError", "PermissionDeniedError", "ResourceExhaustedError", "FailedPreconditionError",
    "AbortedError", "OutOfRangeError", "UnimplementedError", "InternalError", "UnavailableError", "DataLossError",
    "UnauthenticatedError",
    "ExecResult", "ExecEvent", "SandboxInfo", "Limits", "FileInfo", "ProcessInfo", "LogEvent", "SessionInfo",
    "GitCheckout", "WatchEvent", "Changes", "CodeContext", "Result", "Logs", "ExecutionError", "Execution",
    "Snapshot", "Backup", "SleepInfo", "SecretInfo", "EgressEntry",
]
