"""The Connect protocol's JSON forms, without I/O: envelopes, durations, timestamps.

Unary calls are POSTs of ``application/json``; server streams are POSTs of
``application/connect+json`` whose bodies are 5-byte envelopes (a flags byte
and a big-endian length) around each message. The last envelope of a
response carries the end-of-stream flag and a JSON object with an ``error``
when the call failed. Field names are protojson's lowerCamelCase, int64
travels as a string, bytes as base64.
"""

from __future__ import annotations

import base64
import json
import struct
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from ._errors import HutchError, UnavailableError, error_for

UNARY_HEADERS = {"Content-Type": "application/json", "Connect-Protocol-Version": "1"}
STREAM_HEADERS = {"Content-Type": "application/connect+json", "Connect-Protocol-Version": "1"}

_FLAG_COMPRESSED = 1
_FLAG_END = 2
_MAX_MESSAGE = 64 << 20


def envelope(msg: dict[str, Any]) -> bytes:
    """Returns msg as the single enveloped message of a server-stream request."""
    body = json.dumps(msg, separators=(",", ":")).encode()
    return struct.pack(">BI", 0, len(body)) + body


class Decoder:
    """Splits a stream response body into messages.

    feed() takes bytes as they arrive and yields each complete message;
    after the end-of-stream envelope ``ended`` is set, and an error it
    carried is raised from feed().
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.ended = False

    def feed(self, data: bytes) -> Iterator[dict[str, Any]]:
        self._buf += data
        while len(self._buf) >= 5 and not self.ended:
            flags, n = struct.unpack_from(">BI", self._buf)
            if n > _MAX_MESSAGE:
                raise HutchError(f"stream message of {n} bytes is over the limit", code="resource_exhausted")
            if len(self._buf) < 5 + n:
                return
            payload = bytes(self._buf[5 : 5 + n])
            del self._buf[: 5 + n]
            if flags & _FLAG_COMPRESSED:
                raise HutchError("compressed stream message, but no compression was negotiated", code="internal")
            doc = json.loads(payload) if payload else {}
            if flags & _FLAG_END:
                self.ended = True
                err = doc.get("error")
                if err:
                    raise error_for(err.get("code", "unknown"), err.get("message", ""), err.get("details"))
                return
            yield doc

    def close(self, what: str) -> None:
        """Raises UnavailableError if the stream ended without its end-of-stream envelope."""
        if not self.ended:
            raise UnavailableError(f"{what}: the stream broke before it ended")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(s: str | None) -> bytes:
    if not s:
        return b""
    s = s.strip()
    # protojson writes standard base64 with padding; accept URL-safe and unpadded too.
    s += "=" * (-len(s) % 4)
    return base64.urlsafe_b64decode(s.replace("+", "-").replace("/", "_"))


def duration(seconds: float | timedelta | None) -> str | None:
    """A google.protobuf.Duration in its JSON form, e.g. ``"1.5s"``."""
    if seconds is None:
        return None
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def parse_duration(s: str | None) -> float | None:
    if not s:
        return None
    return float(s.rstrip("s"))


def millis(seconds: float | timedelta | None) -> int | None:
    if seconds is None:
        return None
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    return int(round(seconds * 1000))


def timestamp(s: str | None) -> datetime | None:
    """Parses an RFC 3339 timestamp as protojson writes it (nanoseconds, Z)."""
    if not s:
        return None
    s = s.replace("Z", "+00:00")
    # fromisoformat before 3.11 takes at most 6 fractional digits.
    if "." in s:
        head, rest = s.split(".", 1)
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        s = head + "." + rest[:i][:6].ljust(6, "0") + rest[i:]
    t = datetime.fromisoformat(s)
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def integer(v: Any) -> int:
    """An int64 (a string on the wire) or int32 field; 0 when unset."""
    return int(v) if v not in (None, "") else 0


def enum(v: str | None, prefix: str) -> str:
    """``"STATE_RUNNING"`` → ``"running"``; ``""`` for unset."""
    if not v or v.endswith("_UNSPECIFIED"):
        return ""
    return v[len(prefix):].lower() if v.startswith(prefix) else v.lower()


def compact(msg: dict[str, Any]) -> dict[str, Any]:
    """Drops fields left unset (None), as protojson omits zero values."""
    return {k: v for k, v in msg.items() if v is not None}
