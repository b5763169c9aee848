"""start (runtime.md "Operations: Start"): open exec.fifo, then the poststart hooks."""
import os

# _signal, not signal: the signal module builds enums (enum costs ~7 ms to import).
import _signal as signal
import select

from pyrunc.container.state import EXEC_FIFO, open_container
from pyrunc.errors import HookError, PyruncError


def start(root, cid, container=None):
    """Start a created container. container: the one create(to_start=True) returned."""
    c = container if container is not None else open_container(root, cid)
    fifo_fd, c.start_fd = c.start_fd, None
    try:
        lockfd = c.store.lock(cid)
    except BaseException:
        if fifo_fd is not None:
            os.close(fifo_fd)
        raise
    try:
        # With run's fifo, create has just returned: its init may already have exec'd
        # and exited (a zombie counts as stopped); the fifo tells whether it started.
        status = c.status() if fifo_fd is None else "created"
        if status != "created":
            if status == "stopped":
                raise PyruncError("cannot start a container that has stopped")
            raise PyruncError(f"cannot start an already {status} container")
        try:
            fd, fifo_fd = fifo_fd, None  # _open_exec_fifo owns (and closes) it from here
            _open_exec_fifo(c, fd)
            if c.has_hooks("poststart"):
                from pyrunc.process.hooks import run_hooks

                run_hooks(c.config, "poststart", c.hook_state("running"))
        except HookError:
            # runtime.md "Lifecycle" steps 7 and 9: a failing startContainer or poststart
            # hook stops the container, which is then destroyed (steps 12, 13).
            from pyrunc.container.delete import destroy, wait_gone
            from pyrunc.container.kill import kill_all

            kill_all(c, signal.SIGKILL)
            wait_gone(c)
            destroy(c)
            raise
    finally:
        os.close(lockfd)
        if fifo_fd is not None:
            os.close(fifo_fd)
    return c


def _open_exec_fifo(c, fd=None):
    """Open exec.fifo for reading (fd: already open, and now owned here): the init,
    blocked opening it for writing, writes a byte and execs the user process. A pidfd
    catches an init that died meanwhile."""
    path = os.path.join(c.dir, EXEC_FIFO)
    # The pidfd first: once the fifo is open the process may exec, exit and be reaped
    # by a subreaper (conmon, containerd's shim) at once.
    try:
        pidfd = os.pidfd_open(c.record["init_pid"])
    except ProcessLookupError:
        if fd is not None:
            os.close(fd)
        raise PyruncError("cannot start a container that has stopped") from None
    try:
        if fd is None:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        os.close(pidfd)
        raise
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        p.register(pidfd, select.POLLIN)
        while True:
            events = dict(p.poll())
            if fd not in events and pidfd not in events:
                continue
            # Read the fifo even if the init has exited: a byte there means it started.
            # (No POLLHUP before the init opens its end: Linux reports HUP only after
            # a writer came and went.)
            try:
                data = os.read(fd, 1)
            except BlockingIOError:
                data = b""
            if data == b"0":
                os.unlink(path)
                return
            if data == b"E":
                msg = b""
                while chunk := _read_when_ready(fd):
                    msg += chunk
                raise HookError(msg.decode(errors="replace") or "startContainer hook failed")
            if data or pidfd in events or events.get(fd, 0) & select.POLLHUP:
                raise PyruncError("container init exited before start")
    finally:
        os.close(pidfd)
        os.close(fd)


def _read_when_ready(fd, timeout=5.0):
    if not select.select([fd], [], [], timeout)[0]:
        return b""
    return os.read(fd, 4096)
