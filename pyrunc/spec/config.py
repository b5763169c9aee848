"""Reading a bundle's config.json.

Every failure is a one-line ``ConfigError`` naming the file; nothing here lets a
traceback reach the user.  Only the standard library is used (hot path).
"""

import os
import stat

from pyrunc.errors import ConfigError

CONFIG_NAME = "config.json"

# A real config.json is a few KiB; anything this large is a mistake (or an attack
# on the runtime's memory) and is refused before being parsed.
MAX_CONFIG_BYTES = 16 * 1024 * 1024


_CONTROL = {i: f"\\x{i:02x}" for i in list(range(0x20)) + [0x7F, 0x85, 0x2028, 0x2029]}
_CONTROL.update({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"})


def _error(message):
    """A ConfigError whose message is guaranteed to be one line (paths may hold anything)."""
    message = message.translate(_CONTROL)
    if not message.isascii():
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return ConfigError(message)


def _kind_of(value):
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def config_path(bundle_dir: str) -> str:
    return os.path.join(bundle_dir, CONFIG_NAME)


def load_config(bundle_dir: str) -> dict:
    """Read and parse ``<bundle_dir>/config.json``; the result is always a dict.

    Raises ConfigError (one line, naming the file) when the bundle or file is
    missing, unreadable, not a regular file, empty, too large, not UTF-8, not
    JSON, or not a JSON object.  Validation is done by pyrunc.spec.validate.
    """
    bundle_dir = os.fspath(bundle_dir)
    path = config_path(bundle_dir)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        if not os.path.isdir(bundle_dir):
            raise _error(f"bundle directory {bundle_dir} does not exist (looking for {path})") from None
        raise _error(f"{path}: no such file: the bundle has no {CONFIG_NAME}") from None
    except NotADirectoryError:
        raise _error(f"{path}: {bundle_dir} is not a directory") from None
    except (OSError, ValueError) as e:
        raise _error(f"{path}: cannot open: {_reason(e)}") from None
    try:
        try:
            st = os.fstat(fd)
        except OSError as e:
            raise _error(f"{path}: cannot stat: {_reason(e)}") from None
        if stat.S_ISDIR(st.st_mode):
            raise _error(f"{path}: is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise _error(f"{path}: is not a regular file")
        if st.st_size > MAX_CONFIG_BYTES:
            raise _error(f"{path}: file is too large ({_mib(st.st_size)}; the limit is {_mib(MAX_CONFIG_BYTES)})")
        chunks = []
        total = 0
        while True:
            try:
                chunk = os.read(fd, 1 << 20)
            except OSError as e:
                raise _error(f"{path}: cannot read: {_reason(e)}") from None
            if not chunk:
                break
            total += len(chunk)
            if total > MAX_CONFIG_BYTES:
                raise _error(f"{path}: file is too large (more than {_mib(MAX_CONFIG_BYTES)})")
            chunks.append(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    return parse_config(data, path)


def parse_config(data: bytes, path: str = CONFIG_NAME) -> dict:
    """Parse config.json bytes (``path`` is only used in messages)."""
    if not data.strip():
        raise _error(f"{path}: file is empty")
    if data.startswith(b"\xef\xbb\xbf"):
        raise _error(f"{path}: not valid JSON: starts with a UTF-8 byte order mark")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise _error(f"{path}: not valid UTF-8 at line {line} column {col} (byte {e.start})") from None
    from pyrunc.jsonutil import loads

    try:
        value = loads(text)
    except RecursionError:
        raise _error(f"{path}: not valid JSON: nested too deeply") from None
    except ValueError as e:
        if hasattr(e, "lineno"):  # json.JSONDecodeError
            raise _error(f"{path}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
        raise _error(f"{path}: not valid JSON: {_one_line(str(e))}") from None
    if not isinstance(value, dict):
        raise _error(f"{path}: must contain a JSON object, not {_kind_of(value)}")
    return value


def _reason(e):
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return _one_line(str(e)) or type(e).__name__


def _one_line(s):
    return " ".join(s.split())


def _mib(n):
    if n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MiB"
    return f"{n / (1024 * 1024):.1f} MiB"
