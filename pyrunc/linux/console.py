"""Console: a pty made inside the container, its master sent over --console-socket
with one SCM_RIGHTS message (as runc; conmon and containerd's shim receive it)."""
import fcntl
import os
import socket
import struct

from pyrunc.errors import PyruncError
from pyrunc.native.constants import TIOCGPTN, TIOCGWINSZ, TIOCSCTTY, TIOCSPTLCK, TIOCSWINSZ
from pyrunc.native import constants as C


def connect_socket(path):
    """Runtime side: connect to the console socket before forking the init."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise PyruncError(f"connecting to console socket {path}: {e.strerror}") from None
    return s


def open_pty(ptmx="/dev/ptmx"):
    """Open a new pty from the container's devpts: (master_fd, slave_fd, slave_path)."""
    try:
        master = os.open(ptmx, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise PyruncError(f"opening {ptmx} for the console: {e.strerror}") from None
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, struct.pack("I", 0)))[0]
    path = f"/dev/pts/{n}"
    slave = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    return master, slave, path


def set_size(fd, size):
    if size:
        fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", size.get("height", 0),
                                                size.get("width", 0), 0, 0))


def send_master(sock, master, name="/dev/ptmx"):
    socket.send_fds(sock, [name.encode()], [master])


def make_controlling(slave):
    """dup the slave onto 0, 1, 2 and make it the controlling terminal (after setsid)."""
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    fcntl.ioctl(0, TIOCSCTTY, 0)


def setup_in_container(sock, size, bind_console=False):
    """In the container (after pivot_root): a new pty from its devpts, the master sent
    over the console socket, the slave as stdio and controlling terminal."""
    master, slave, _ = open_pty()
    set_size(slave, size)
    if bind_console:
        from pyrunc.native import syscalls as sc

        try:
            if not os.path.exists("/dev/console"):
                os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
            sc.mount(f"/proc/self/fd/{slave}", "/dev/console", None, C.MS_BIND)
        except OSError:
            pass  # a read-only /dev: the pty still works
    send_master(sock, master)
    os.close(master)
    sock.close()
    make_controlling(slave)
    os.close(slave)


class Proxy:
    """`run` in the foreground with process.terminal and no --console-socket (as runc):
    receive the pty master ourselves and copy it to and from our own stdio, with our
    terminal in raw mode."""

    def __init__(self):
        self.ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.master = None
        self.saved = None
        self.threads = []

    def receive(self):
        self.theirs.close()
        _, fds, _, _ = socket.recv_fds(self.ours, 4096, 1)
        self.ours.close()
        if not fds:
            raise PyruncError("console: no pty received from the container")
        self.master = fds[0]
        if os.isatty(0):
            self.resize()

    def resize(self):
        if os.isatty(0) and self.master is not None:
            try:
                fcntl.ioctl(self.master, TIOCSWINSZ, fcntl.ioctl(0, TIOCGWINSZ, b"\0" * 8))
            except OSError:
                pass

    def start(self):
        import threading

        if os.isatty(0):
            import termios
            import tty

            self.saved = termios.tcgetattr(0)
            tty.setraw(0)
        for src, dst in ((0, self.master), (self.master, 1)):
            t = threading.Thread(target=self._copy, args=(src, dst), daemon=True)
            t.start()
            self.threads.append(t)

    @staticmethod
    def _copy(src, dst):
        while True:
            try:
                data = os.read(src, 65536)
            except OSError:
                return  # EIO on the master: every slave end is closed
            if not data:
                return
            try:
                while data:
                    data = data[os.write(dst, data):]
            except OSError:
                return

    def finish(self):
        """After the process exited: drain its output, restore our terminal."""
        if len(self.threads) > 1:
            self.threads[1].join(2.0)
        if self.saved is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, self.saved)
        if self.master is not None:
            os.close(self.master)
