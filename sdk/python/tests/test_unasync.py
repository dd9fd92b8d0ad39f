"""The sync client is generated from the async one: the committed file must be fresh."""

import pathlib
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "unasync.py"


def test_sync_client_is_generated_from_async_client():
    r = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
