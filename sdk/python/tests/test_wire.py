"""The Connect JSON forms, without a daemon."""

import json
import struct
from datetime import timedelta

import pytest

from hutch import DeadlineExceededError, NotFoundError, UnavailableError
from hutch._errors import error_for_status
from hutch._wire import Decoder, duration, envelope, timestamp, unb64


def frame(flags: int, doc) -> bytes:
    body = json.dumps(doc).encode()
    return struct.pack(">BI", flags, len(body)) + body


def test_envelope_round_trips_through_the_decoder():
    env = envelope({"sandbox": "a", "argv": ["x"]})
    assert env[0] == 0 and struct.unpack(">I", env[1:5])[0] == len(env) - 5
    assert list(Decoder().feed(env)) == [{"sandbox": "a", "argv": ["x"]}]


def test_decoder_reassembles_messages_split_anywhere():
    data = frame(0, {"stdout": "aGkK"}) + frame(0, {"exit": {"code": 3}}) + frame(2, {})
    for size in (1, 2, 3, 7, len(data)):
        dec, got = Decoder(), []
        for i in range(0, len(data), size):
            got += dec.feed(data[i : i + size])
        assert got == [{"stdout": "aGkK"}, {"exit": {"code": 3}}] and dec.ended
        dec.close("exec")


def test_end_of_stream_error_is_typed():
    dec = Decoder()
    with pytest.raises(DeadlineExceededError) as e:
        list(dec.feed(frame(2, {"error": {"code": "deadline_exceeded", "message": "too slow"}})))
    assert str(e.value) == "too slow" and e.value.code == "deadline_exceeded"


def test_a_stream_without_its_end_broke():
    dec = Decoder()
    list(dec.feed(frame(0, {"keepalive": {}})))
    with pytest.raises(UnavailableError):
        dec.close("exec")


def test_http_errors():
    e = error_for_status(404, b'{"code":"not_found","message":"no such file"}')
    assert isinstance(e, NotFoundError) and e.message == "no such file"
    e = error_for_status(404, b"<html>proxy</html>")
    assert isinstance(e, NotFoundError) and "proxy" in str(e)
    assert error_for_status(418, b"").code == "unknown"
    assert error_for_status(400, b'{"code":"brand_new","message":"m"}').code == "brand_new"


def test_scalars():
    assert duration(1.5) == "1.5s" and duration(timedelta(minutes=10)) == "600s" and duration(None) is None
    assert unb64("aGk=") == b"hi" and unb64("aGk") == b"hi" and unb64("-_8=") == b"\xfb\xff"
    t = timestamp("2026-12-02T07:37:19.243728845Z")
    assert (t.year, t.microsecond, t.utcoffset()) == (2026, 243728, timedelta(0))
    assert timestamp("2026-12-02T07:37:19Z").second == 19
