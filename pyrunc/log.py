"""runc-style logging: to --log FILE (default stderr) in text or json lines.

json: {"level":"error","msg":"...","time":"2006-01-02T15:04:05Z"} (containerd reads the
last error line of the file; podman parses the whole file as one JSON document).
"""
import os
import sys
import time

from pyrunc.errors import one_line

_path = None
_fd = None  # the --log file, opened by open_file()
_format = "text"
_debug = False
_pending = []  # json --log: warnings held until the command ends (see finish())
LEVELS = ("debug", "info", "warning", "error")


def setup(path=None, fmt="text", debug=False):
    global _path, _format, _debug
    _path, _format, _debug = path, fmt, debug


def open_file():
    """Open the --log file now, as runc does before any command runs: a path that cannot
    be opened fails the command at once (an error on stderr), even one that would log
    nothing. Returns False then."""
    global _fd, _path
    if not _path or _fd is not None:
        return True
    try:
        _fd = os.open(_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        path, _path = _path, None
        _write("error", f"opening the --log file {path}: {e.strerror}")
        return False
    return True


def _line(level, msg):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if _format == "json":
        from pyrunc.util.jsonutil import dumps

        # One line in the message too: engines show it to users (containerd: the last
        # error line's msg) and it may quote anything from a config or argv.
        return dumps({"level": level, "msg": one_line(msg), "time": now}) + "\n"
    # As logrus' %q: backslash and quote escaped, then control characters (whatever a
    # message quotes from a config or argv, the line stays one line).
    esc = one_line(msg.replace("\\", "\\\\").replace('"', '\\"'))
    return f'time="{now}" level={level} msg="{esc}"\n'


def _write(level, msg):
    # json: the encoder escapes control characters and lone surrogates itself.
    line = _line(level, msg).encode("utf-8", "backslashreplace")
    if _path:
        fd = _fd
        if fd is None:
            try:
                fd = os.open(_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError:
                fd = None
        if fd is not None:
            try:
                os.write(fd, line)
                return True
            except OSError:
                pass  # a full or failing log file: the line still goes to stderr
            finally:
                if fd is not _fd:
                    os.close(fd)
    try:
        os.write(2, line)
    except OSError:
        pass
    return False


def error(msg):
    """One line in the log; with a --log file, the plain message on stderr too (as runc)."""
    if _write("error", msg):
        try:
            os.write(2, (one_line(msg) + "\n").encode())
        except OSError:
            pass


def warning(msg):
    if _format == "json" and _path:
        _pending.append(msg)
    else:
        _write("warning", msg)


def finish(failed):
    """End of a command. podman parses a failed command's --log file as one JSON
    document: then only the error line is written; otherwise the held warnings are."""
    if not failed:
        for msg in _pending:
            _write("warning", msg)
    _pending.clear()


def debug(msg):
    if _debug:
        _write("debug", msg)


def is_debug():
    return _debug


def flush():
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
