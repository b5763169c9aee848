"""The init pipe (pyrunc.process.channel): named message types, errors as exceptions."""
import socket

import pytest

from pyrunc.errors import HookError, InitError
from pyrunc.process import channel

pytestmark = pytest.mark.unit


@pytest.fixture
def pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    yield a, b
    a.close()
    b.close()


def test_a_message_arrives_with_its_type_and_fields(pair):
    a, b = pair
    channel.send(a, channel.PID, pid=42)
    assert channel.recv(b, channel.PID) == {"t": "pid", "pid": 42}


def test_an_unknown_type_is_refused_before_it_is_sent(pair):
    a, b = pair
    with pytest.raises(ValueError, match="no message type 'redy'"):
        channel.send(a, "redy")
    channel.send(a, channel.READY)
    assert channel.recv(b)["t"] == channel.READY  # nothing else was sent


def test_the_wrong_type_and_the_errors_raise(pair):
    a, b = pair
    channel.send(a, channel.OK)
    with pytest.raises(InitError, match="expected 'go', got 'ok'"):
        channel.recv(b, channel.GO)
    channel.send(a, channel.ERROR, msg="pivot_root: EINVAL")
    with pytest.raises(InitError, match="pivot_root: EINVAL"):
        channel.recv(b)
    channel.send(a, channel.ERROR, msg="startContainer hook #0", kind="hook")
    with pytest.raises(HookError):
        channel.recv(b)
    a.close()
    with pytest.raises(InitError, match="exited before it was ready"):
        channel.recv(b)
