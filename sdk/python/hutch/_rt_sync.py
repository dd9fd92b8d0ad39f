"""What differs between the async client and the generated sync one: threads here."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator

CHUNK = 256 << 10


def call(cb: Callable[..., Any] | None, *args: Any) -> None:
    """Calls a user callback."""
    if cb is not None:
        cb(*args)


class Task:
    """Work running beside a stream (stdin being fed while output is read)."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self._err: BaseException | None = None
        self._cancelled = False

        def run() -> None:
            try:
                fn(*args)
            except BaseException as e:  # noqa: BLE001 - handed to join()
                self._err = e

        self._t = threading.Thread(target=run, daemon=True)
        self._t.start()

    def join(self) -> None:
        self._t.join()
        if self._err is not None and not self._cancelled:
            raise self._err

    def cancel(self) -> None:
        # A thread cannot be stopped; its next call fails once the stream is gone.
        self._cancelled = True


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def chunks(data: Any) -> Iterator[bytes]:
    """Yields data (str, bytes, a binary file or an iterable of bytes) in chunks."""
    if isinstance(data, str):
        data = data.encode()
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data)
        for i in range(0, len(data), CHUNK):
            yield data[i : i + CHUNK]
        return
    if hasattr(data, "read"):
        while True:
            b = data.read(CHUNK)
            if not b:
                return
            yield b.encode() if isinstance(b, str) else b
    for b in data:
        yield b.encode() if isinstance(b, str) else bytes(b)
