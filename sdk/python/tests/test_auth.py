"""A daemon with API keys: the token (argument or HUTCH_TOKEN) goes with every
kind of call, and its absence is UnauthenticatedError."""

import asyncio

import pytest
from conftest import launch_daemon, unique

from hutch import AsyncHutch, Hutch, UnauthenticatedError

KEY = "py-sdk-test-key-0123456789"


@pytest.fixture(scope="module")
def keyed_url():
    # The key comes from the environment, so it never shows in ps.
    with launch_daemon(env={"HUTCH_API_KEYS": KEY}) as url:
        yield url


def test_token_is_sent_with_every_kind_of_call(keyed_url, monkeypatch):
    monkeypatch.setenv("HUTCH_URL", keyed_url)
    monkeypatch.setenv("HUTCH_TOKEN", KEY)
    with Hutch() as h:  # both from the environment
        sb = h.sandbox(unique("py-auth"))
        assert sb.exec("echo ok").stdout == "ok\n"  # unary create + stream
        sb.files.write("a.txt", "x")  # plain HTTP
        assert sb.files.read("a.txt") == "x"
        sb.destroy()


def test_missing_or_wrong_token_is_unauthenticated(keyed_url, monkeypatch):
    monkeypatch.delenv("HUTCH_TOKEN", raising=False)
    with Hutch(url=keyed_url) as h:
        with pytest.raises(UnauthenticatedError):
            h.list()
        with pytest.raises(UnauthenticatedError):
            h.sandbox(unique("py-auth")).exec("true")
    with Hutch(url=keyed_url, token="wrong") as h:
        with pytest.raises(UnauthenticatedError):
            h.sandbox(unique("py-auth")).files.read("/etc/hostname")

    async def main():
        async with AsyncHutch(url=keyed_url) as h:
            sb = h.sandbox(unique("py-auth"))
            sb._ready = True  # skip the get-or-create call: the stream itself must be refused
            with pytest.raises(UnauthenticatedError):
                async for _ in sb.exec_stream("true"):
                    pass

    asyncio.run(main())
