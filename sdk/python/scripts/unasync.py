#!/usr/bin/env python3
"""Generates hutch/_sync_client.py from hutch/_async_client.py.

The sync client is the async one with the async keywords taken out and
asyncio swapped for threads (hutch/_rt_sync.py), so the two can never drift
apart. With --check it exits 1 if the committed file is stale.
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "hutch"

RULES = [
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\bawait ", ""),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\b__aiter__\b", "__iter__"),
    (r"\b__anext__\b", "__next__"),
    (r"\baclose\b", "close"),
    (r"\baread\b", "read"),
    (r"\baiter_bytes\b", "iter_bytes"),
    (r"\bStopAsyncIteration\b", "StopIteration"),
    (r"\b_rt_async\b", "_rt_sync"),
    # AsyncHutch → Hutch, AsyncIterator → Iterator, httpx.AsyncClient → httpx.Client, ...
    (r"\bAsync([A-Z]\w*)", r"\1"),
]

HEADER = (
    "# Generated from _async_client.py by scripts/unasync.py: do not edit.\n"
)


def generate() -> str:
    src = (ROOT / "_async_client.py").read_text()
    for pat, rep in RULES:
        src = re.sub(pat, rep, src)
    return HEADER + src


def main() -> int:
    out = generate()
    target = ROOT / "_sync_client.py"
    if "--check" in sys.argv[1:]:
        if not target.exists() or target.read_text() != out:
            print(f"{target} is stale: run {sys.argv[0]}", file=sys.stderr)
            return 1
        return 0
    target.write_text(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
