"""Messages between the runtime and the container's init over a SOCK_SEQPACKET socketpair.

Each message is one JSON object whose "t" key is one of the types below; send() takes
no other.
"""
import _socket

from pyrunc.errors import HookError, InitError
from pyrunc.util.jsonutil import dumps, loads
from pyrunc import log

# runtime -> container side
GO = "go"          # proceed (the runtime has done its part: cgroups, id mappings ...)
OK = "ok"          # the step the container side asked for is done
# container side -> runtime
USERNS = "userns"  # stage-1 is in its new user namespace: write its id mappings
PID = "pid"        # stage-1 (or exec's helper) reports the pid of the process it forked
HOOKS = "hooks"    # run prestart and createRuntime (runtime.md "Lifecycle" steps 3-4)
READY = "ready"    # the init waits on exec.fifo: create is done
ERROR = "error"    # "msg" (and "kind": "hook" for a hook's failure); the side gives up
WARN = "warn"      # "msg" for the runtime's log
DEBUG = "debug"    # "msg" for the runtime's log at debug level
TYPES = frozenset((GO, OK, USERNS, PID, HOOKS, READY, ERROR, WARN, DEBUG))


def pair():
    # _socket, not socket: the socket module costs ~4 ms of imports on the create path.

    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)


def send(sock, t, **kw):
    if t not in TYPES:
        raise ValueError(f"init pipe: no message type {t!r}")
    kw["t"] = t
    sock.send(dumps(kw).encode())


def recv(sock, expect=None):
    """Next message; raises InitError for "error" messages or EOF (init died)."""
    try:
        data = sock.recv(1 << 16)
    except ConnectionResetError:
        # The peer exited with a message of ours unread: the kernel reports ECONNRESET
        # once, before the messages it had sent us (its error, typically).
        data = sock.recv(1 << 16)
    if not data:
        raise InitError("container init exited before it was ready")
    msg = loads(data)
    if msg["t"] == ERROR:
        if msg.get("kind") == "hook":
            raise HookError(msg["msg"])
        raise InitError(msg["msg"])
    if expect and msg["t"] != expect:
        raise InitError(f"init pipe: expected {expect!r}, got {msg['t']!r}")
    return msg


def recv_logged(sock, expect=None):
    """recv(), logging the container side's "warn"/"debug" messages on the way."""
    while True:
        msg = recv(sock)
        if msg["t"] in (WARN, DEBUG):
            (log.warning if msg["t"] == WARN else log.debug)(msg["msg"])
            continue
        if expect and msg["t"] != expect:
            raise InitError(f"init pipe: expected {expect!r}, got {msg['t']!r}")
        return msg


def raise_pending_error(sock):
    """After a failed step towards the container side (e.g. placing a process that has
    already died in a cgroup): if it reported an error, raise that one instead."""
    import select

    while select.select([sock], [], [], 0)[0]:
        recv_logged(sock)  # raises InitError for an "error" message or EOF


def recv_eof(sock):
    """Wait for the peer to close its end (close-on-exec: it exec'd); an "error"
    message instead raises InitError."""
    data = sock.recv(1 << 16)
    if data:
        msg = loads(data)
        if msg["t"] == ERROR:
            raise InitError(msg["msg"])
        raise InitError(f"init pipe: unexpected message {msg['t']!r}")
