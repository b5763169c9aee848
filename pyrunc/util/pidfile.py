"""--pid-file: what create and exec write for conmon and containerd."""
import os

from pyrunc.errors import PyruncError


def write_pid_file(path, pid):
    """The decimal pid, no newline, via temp file + rename (conmon and containerd parse it)."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, str(pid).encode())
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError as e:
        raise PyruncError(f"writing pid file {path}: {e.strerror}") from None
