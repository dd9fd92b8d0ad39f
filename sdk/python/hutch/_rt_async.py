"""What differs between the async client and the generated sync one: asyncio here."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, AsyncIterator, Callable

from . import _rt_sync


async def call(cb: Callable[..., Any] | None, *args: Any) -> None:
    """Calls a user callback, awaiting it if it is a coroutine function."""
    if cb is None:
        return
    r = cb(*args)
    if inspect.isawaitable(r):
        await r


class Task:
    """Work running beside a stream (stdin being fed while output is read)."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self._t = asyncio.ensure_future(fn(*args))

    async def join(self) -> None:
        await self._t

    def cancel(self) -> None:
        self._t.cancel()


async def sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def chunks(data: Any) -> AsyncIterator[bytes]:
    """Yields data (str, bytes, a binary file, or an iterable or async iterable of bytes) in chunks."""
    if hasattr(data, "__aiter__"):
        async for b in data:
            yield b.encode() if isinstance(b, str) else bytes(b)
        return
    for b in _rt_sync.chunks(data):
        yield b
