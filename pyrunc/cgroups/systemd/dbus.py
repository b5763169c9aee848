"""A minimal D-Bus client: method calls, their replies and signals over a unix socket,
in the D-Bus wire format (little-endian), for the systemd cgroup driver only.

Why not a library: jeepney (pure Python) costs ~12 ms of imports (typing, enum, re,
socket, selectors), dbus-next/dbus-fast ~40-50 ms (asyncio), dbus-python ~12 ms plus a C
extension; this module imports nothing beyond builtins (`_socket`, not `socket`, which
imports enum) and costs ~1 ms (docs/SYSTEMD.md has the measurements). It is imported
only by pyrunc.cgroups.systemd.driver, i.e. only for containers of the systemd driver.

Values: basic types as Python ints/bools/floats/str (o and g are str too), `ay` as
bytes, arrays as lists, dicts (a{..}) as dicts, structs as tuples, a variant as a
(signature, value) pair when sent and as its bare value when received.
"""
import os
import time

import _socket
from _struct import pack, unpack_from

SYSTEM_BUS = "/run/dbus/system_bus_socket"

_METHOD_CALL, _METHOD_RETURN, _ERROR, _SIGNAL = 1, 2, 3, 4
_FIXED = {"y": (1, "B"), "b": (4, "I"), "n": (2, "h"), "q": (2, "H"), "i": (4, "i"),
          "u": (4, "I"), "x": (8, "q"), "t": (8, "Q"), "d": (8, "d"), "h": (4, "I")}
_ALIGN = dict({k: v[0] for k, v in _FIXED.items()}, s=4, o=4, g=1, a=4, v=1, **{"(": 8, "{": 8})


class DBusError(Exception):
    """An error reply (``name`` is the D-Bus error name) or a broken connection."""

    def __init__(self, name, message):
        super().__init__(f"{message} ({name})" if message else name)
        self.name = name
        self.message = message


def _type_end(sig, i):
    """Index just past the single complete type starting at sig[i]."""
    c = sig[i]
    if c == "a":
        return _type_end(sig, i + 1)
    if c in "({":
        close = ")" if c == "(" else "}"
        i += 1
        while sig[i] != close:
            i = _type_end(sig, i)
        return i + 1
    if c in _ALIGN:
        return i + 1
    raise ValueError(f"invalid D-Bus signature {sig!r}")


def split_signature(sig):
    out, i = [], 0
    while i < len(sig):
        j = _type_end(sig, i)
        out.append(sig[i:j])
        i = j
    return out


# -- marshalling ----------------------------------------------------------------------

class _Writer:
    __slots__ = ("buf",)

    def __init__(self):
        self.buf = bytearray()

    def pad(self, n):
        self.buf += bytes(-len(self.buf) % n)

    def put(self, t, v):
        c = t[0]
        if c in _FIXED:
            size, fmt = _FIXED[c]
            self.pad(size)
            self.buf += pack("<" + fmt, int(v) if c == "b" else v)
        elif c in "so":
            b = v.encode()
            self.pad(4)
            self.buf += pack("<I", len(b)) + b + b"\0"
        elif c == "g":
            b = v.encode()
            self.buf += bytes((len(b),)) + b + b"\0"
        elif c == "v":
            vsig, val = v
            self.put("g", vsig)
            self.put(vsig, val)
        elif c == "(":
            self.pad(8)
            for et, ev in zip(split_signature(t[1:-1]), v, strict=True):
                self.put(et, ev)
        elif c == "a":
            et = t[1:]
            self.pad(4)
            at = len(self.buf)
            self.buf += b"\0\0\0\0"
            self.pad(_ALIGN[et[0]])
            start = len(self.buf)
            if et == "y":
                self.buf += v
            elif et[0] == "{":
                kt, vt = split_signature(et[1:-1])
                for k, x in v.items():
                    self.pad(8)
                    self.put(kt, k)
                    self.put(vt, x)
            else:
                for x in v:
                    self.put(et, x)
            self.buf[at:at + 4] = pack("<I", len(self.buf) - start)
        else:
            raise ValueError(f"cannot marshal D-Bus type {t!r}")

    def put_all(self, sig, values):
        for t, v in zip(split_signature(sig), values, strict=True):
            self.put(t, v)


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf, pos=0):
        self.buf = buf
        self.pos = pos

    def pad(self, n):
        self.pos += -self.pos % n

    def get(self, t):
        c = t[0]
        if c in _FIXED:
            size, fmt = _FIXED[c]
            self.pad(size)
            (v,) = unpack_from("<" + fmt, self.buf, self.pos)
            self.pos += size
            return bool(v) if c == "b" else v
        if c in "so":
            self.pad(4)
            (n,) = unpack_from("<I", self.buf, self.pos)
            s = bytes(self.buf[self.pos + 4:self.pos + 4 + n]).decode()
            self.pos += 5 + n
            return s
        if c == "g":
            n = self.buf[self.pos]
            s = bytes(self.buf[self.pos + 1:self.pos + 1 + n]).decode()
            self.pos += 2 + n
            return s
        if c == "v":
            return self.get(self.get("g"))
        if c == "(":
            self.pad(8)
            return tuple(self.get(et) for et in split_signature(t[1:-1]))
        if c == "a":
            et = t[1:]
            self.pad(4)
            (n,) = unpack_from("<I", self.buf, self.pos)
            self.pos += 4
            self.pad(_ALIGN[et[0]])
            end = self.pos + n
            if et == "y":
                self.pos = end
                return bytes(self.buf[end - n:end])
            if et[0] == "{":
                kt, vt = split_signature(et[1:-1])
                out = {}
                while self.pos < end:
                    self.pad(8)
                    k = self.get(kt)
                    out[k] = self.get(vt)
                return out
            out = []
            while self.pos < end:
                out.append(self.get(et))
            return out
        raise ValueError(f"cannot unmarshal D-Bus type {t!r}")


class Message:
    __slots__ = ("type", "serial", "fields", "body")

    def __init__(self, mtype, serial, fields, body):
        self.type, self.serial, self.fields, self.body = mtype, serial, fields, body

    # header field codes: 1 path, 2 interface, 3 member, 4 error name, 5 reply serial,
    # 6 destination, 7 sender, 8 signature
    path = property(lambda self: self.fields.get(1))
    interface = property(lambda self: self.fields.get(2))
    member = property(lambda self: self.fields.get(3))
    error_name = property(lambda self: self.fields.get(4))
    reply_serial = property(lambda self: self.fields.get(5))


def encode_message(mtype, serial, fields, sig="", args=(), flags=0):
    """fields: [(code, signature, value)]."""
    body = _Writer()
    if sig:
        body.put_all(sig, args)
        fields = list(fields) + [(8, "g", sig)]
    w = _Writer()
    w.buf += pack("<BBBBII", ord("l"), mtype, flags, 1, len(body.buf), serial)
    w.put("a(yv)", [(code, (fsig, val)) for code, fsig, val in fields])
    w.pad(8)
    return bytes(w.buf + body.buf)


def decode_message(buf):
    """(Message, bytes used) or (None, 0) when buf holds less than one message."""
    if len(buf) < 16:
        return None, 0
    if buf[0] != ord("l"):
        raise DBusError("org.freedesktop.DBus.Error.InvalidArgs", "big-endian message (not supported)")
    mtype, _flags, _ver, body_len, serial, fields_len = unpack_from("<xBBBIII", buf, 0)
    hdr_end = 16 + fields_len
    body_start = hdr_end + (-hdr_end % 8)
    total = body_start + body_len
    if len(buf) < total:
        return None, 0
    r = _Reader(buf, 12)
    fields = {code: val for code, val in r.get("a(yv)")}
    sig = fields.get(8, "")
    body = ()
    if sig:
        br = _Reader(memoryview(buf)[body_start:total])
        body = tuple(br.get(t) for t in split_signature(sig))
    return Message(mtype, serial, fields, body), total


# -- connection -----------------------------------------------------------------------

class Connection:
    """One authenticated connection (EXTERNAL auth). ``bus``: True on a message bus
    (Hello, AddMatch), False on a peer-to-peer socket such as systemd's private one."""

    def __init__(self, path, *, bus=True, timeout=30.0):
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        self.timeout = timeout
        self.serial = 0
        self.rbuf = bytearray()
        self.pending = []  # messages read while waiting for another (signals)
        self.unique_name = None
        try:
            self.sock.settimeout(timeout)
            self.sock.connect(path)
            uid = str(os.geteuid()).encode().hex()
            # Pipelined, as sd-bus does: the server answers OK, then reads BEGIN.
            self.sock.sendall(b"\0AUTH EXTERNAL " + uid.encode() + b"\r\nBEGIN\r\n")
            line = self._read_line(time.monotonic() + timeout)
            if not line.startswith(b"OK "):
                raise DBusError("org.freedesktop.DBus.Error.AuthFailed",
                                f"{path}: authentication refused ({line.decode(errors='replace')})")
            if bus:
                (self.unique_name,) = self.call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                                "org.freedesktop.DBus", "Hello")
        except OSError as e:
            self.sock.close()
            raise DBusError("org.freedesktop.DBus.Error.NoServer",
                            f"{path}: {os.strerror(e.errno) if e.errno else e}") from None
        except BaseException:
            self.sock.close()
            raise

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise DBusError("org.freedesktop.DBus.Error.Timeout", "timed out waiting for a reply")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            raise DBusError("org.freedesktop.DBus.Error.Timeout", "timed out waiting for a reply") from None
        if not chunk:
            raise DBusError("org.freedesktop.DBus.Error.Disconnected", "connection closed by the peer")
        self.rbuf += chunk

    def _read_line(self, deadline):
        while b"\r\n" not in self.rbuf:
            self._recv(deadline)
        line, _, rest = bytes(self.rbuf).partition(b"\r\n")
        self.rbuf = bytearray(rest)
        return line

    def _read_message(self, deadline):
        while True:
            msg, used = decode_message(self.rbuf)
            if msg is not None:
                del self.rbuf[:used]
                return msg
            self._recv(deadline)

    def send(self, dest, path, iface, member, sig="", args=(), *, flags=0):
        self.serial += 1
        fields = [(1, "o", path), (3, "s", member)]
        if iface:
            fields.append((2, "s", iface))
        if dest:
            fields.append((6, "s", dest))
        self.sock.settimeout(self.timeout)
        self.sock.sendall(encode_message(_METHOD_CALL, self.serial, fields, sig, args, flags))
        return self.serial

    def call(self, dest, path, iface, member, sig="", args=(), timeout=None):
        """A method call; returns the reply's body (a tuple), raises DBusError."""
        serial = self.send(dest, path, iface, member, sig, args)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            msg = self._read_message(deadline)
            if msg.type in (_METHOD_RETURN, _ERROR) and msg.reply_serial == serial:
                if msg.type == _ERROR:
                    text = msg.body[0] if msg.body and isinstance(msg.body[0], str) else ""
                    raise DBusError(msg.error_name or "org.freedesktop.DBus.Error.Failed", text)
                return msg.body
            if msg.type == _SIGNAL:
                self.pending.append(msg)
            # else: a call to us (not expected) or a stale reply: ignored

    def wait_signal(self, match, timeout=None):
        """The first signal for which match(msg) is true (looked for among those that
        came while waiting for replies first)."""
        for i, msg in enumerate(self.pending):
            if match(msg):
                return self.pending.pop(i)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            msg = self._read_message(deadline)
            if msg.type == _SIGNAL:
                if match(msg):
                    return msg
                self.pending.append(msg)
