"""Reading a bundle's config.json.

Every failure is a one-line ``ConfigError`` naming the file; nothing here lets a
traceback reach the user.  Only the standard library is used (hot path).
"""

import os
import stat

from pyrunc.errors import ConfigError, one_line
from pyrunc.util.jsonutil import loads
from pyrunc.config.problems import pointer

CONFIG_NAME = "config.json"

# A real config.json is a few KiB; anything this large is a mistake (or an attack
# on the runtime's memory) and is refused before being parsed.
MAX_CONFIG_BYTES = 16 * 1024 * 1024


def _error(message):
    """A ConfigError whose message is guaranteed to be one line (paths may hold anything)."""
    return ConfigError(one_line(message))


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


def load_config(bundle_dir: str, surrogates=None) -> dict:
    """Read and parse ``<bundle_dir>/config.json``; the result is always a dict.

    Raises ConfigError (one line, naming the file) when the bundle or file is
    missing, unreadable, not a regular file, empty, too large, not UTF-8, not
    JSON, or not a JSON object.  Validation is done by pyrunc.config.validate.
    ``surrogates``: see parse_config.
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
    return parse_config(_read(fd, path), path, surrogates)


def load_json_object(path: str, surrogates=None) -> dict:
    """load_config for any JSON object file (exec --process): a dict, or a one-line
    ConfigError naming the file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except (OSError, ValueError) as e:
        raise _error(f"{path}: cannot open: {_reason(e)}") from None
    return parse_config(_read(fd, path), path, surrogates)


def _read(fd, path):
    """The bytes of the open file ``fd`` (closed here), refused beyond MAX_CONFIG_BYTES."""
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
    return b"".join(chunks)


def parse_config(data: bytes, path: str = CONFIG_NAME, surrogates=None) -> dict:
    """Parse config.json bytes (``path`` is only used in messages).

    Lone UTF-16 surrogates ("\\ud800": JSON allows them, Unicode text cannot hold them)
    become U+FFFD, as Go's decoder (runc) reads them; the JSON pointer of each string
    holding one is appended to the list ``surrogates`` when given (validate reports them).
    """
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
    # Surrogates only come from \u escapes (the text is valid UTF-8): look only then.
    if "\\ud" in text or "\\uD" in text:
        value = _no_surrogates(value, (), surrogates if surrogates is not None else [])
    return value


def _fix(s):
    return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in s)


def _has_surrogate(s):
    return not s.isascii() and any("\ud800" <= c <= "\udfff" for c in s)


def _no_surrogates(value, parts, found):
    """``value`` with lone surrogates replaced (iteratively: any depth the parser took)."""
    root = [value]
    stack = [(root, 0, parts)]
    while stack:
        container, key, where = stack.pop()
        v = container[key]
        if isinstance(v, str):
            if _has_surrogate(v):
                found.append(pointer(*where))
                container[key] = _fix(v)
        elif isinstance(v, list):
            stack.extend((v, i, where + (i,)) for i in range(len(v)))
        elif isinstance(v, dict):
            if any(_has_surrogate(k) for k in v):
                for k in [k for k in v if _has_surrogate(k)]:
                    found.append(pointer(*where, k))
                    v[_fix(k)] = v.pop(k)
            stack.extend((v, k, where + (k,)) for k in v)
    return root[0]


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
