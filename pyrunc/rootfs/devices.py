"""Device nodes in the container's /dev (config-linux.md "Devices", "Default Devices").

Runs in the init before pivot_root: every path is resolved inside the rootfs with
mounts.open_in_root and created through directory descriptors.
"""
import errno
import os
import stat

from pyrunc.rootfs import mounts
from pyrunc.errors import DeviceError
from pyrunc.native import constants as C
from pyrunc.native import syscalls as sc

# path, type, major, minor (runc's default devices: mode 0666, owner 0:0)
DEFAULT_DEVICES = (
    ("/dev/null", "c", 1, 3), ("/dev/zero", "c", 1, 5), ("/dev/full", "c", 1, 7),
    ("/dev/random", "c", 1, 8), ("/dev/urandom", "c", 1, 9), ("/dev/tty", "c", 5, 0),
)
_IFMT = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
          ("stderr", "/proc/self/fd/2"))


def device_list(linux):
    """The default devices, then linux.devices (which override a default of the same path).
    Each: dict(path, type, major, minor, fileMode, uid, gid, configured)."""
    devs = {}
    for path, t, major, minor in DEFAULT_DEVICES:
        devs[path] = {"path": path, "type": t, "major": major, "minor": minor,
                      "fileMode": 0o666, "uid": 0, "gid": 0, "configured": False}
    for d in linux.get("devices") or ():
        path = os.path.normpath("/" + d["path"].lstrip("/"))
        if d.get("type") not in _IFMT:
            raise DeviceError(f"linux.devices {d.get('path')}: type {d.get('type')!r} is not one of c, b, u, p")
        if d["type"] != "p" and ("major" not in d or "minor" not in d):
            raise DeviceError(f"linux.devices {d['path']}: major and minor are required for type {d['type']}")
        devs[path] = {"path": path, "type": d["type"], "major": d.get("major", 0),
                      "minor": d.get("minor", 0),
                      "fileMode": d["fileMode"] if d.get("fileMode") is not None else 0o666,
                      "uid": d.get("uid") or 0, "gid": d.get("gid") or 0, "configured": True}
    return list(devs.values())


def setup(ctx):
    """Device nodes, /dev/ptmx -> pts/ptmx and the /dev/fd, stdio, core symlinks."""
    bind = ctx.new_userns or _in_userns()
    for d in device_list(ctx.linux):
        if d["path"] == "/dev/ptmx":
            continue  # always the symlink to the container's devpts
        create_device(ctx.rootfd, d, bind)
    try:
        devfd = mounts.open_in_root(ctx.rootfd, "/dev", create="dir")
    except OSError as e:
        raise DeviceError(f"setting up /dev: {mounts.why(e)}") from None
    try:
        try:
            os.unlink("ptmx", dir_fd=devfd)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            os.rmdir("ptmx", dir_fd=devfd)
        links = list(_LINKS)
        if os.path.exists("/proc/kcore"):
            links.append(("core", "/proc/kcore"))
        links.append(("ptmx", "pts/ptmx"))
        for name, target in links:
            try:
                os.symlink(target, name, dir_fd=devfd)
            except FileExistsError:
                pass
    except OSError as e:
        raise DeviceError(f"setting up /dev symlinks: {e.strerror}") from None
    finally:
        os.close(devfd)


def _in_userns():
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() != ["0", "0", "4294967295"]
    except OSError:
        return False


def create_device(rootfd, d, bind):
    path = d["path"]
    parent, name = mounts.split_parent(path)
    if name is None:
        raise DeviceError(f"device {path}: not a file path")
    try:
        pfd = mounts.open_in_root(rootfd, parent, create="dir")
    except OSError as e:
        raise DeviceError(f"device {path}: creating {parent}: {mounts.why(e)}") from None
    try:
        if not bind:
            try:
                _mknod(pfd, name, d)
                return
            except PermissionError:
                pass  # no CAP_MKNOD (or a userns we did not make): bind it as runc does
        _bind_device(rootfd, pfd, name, d)
    finally:
        os.close(pfd)


def _mknod(pfd, name, d):
    path = d["path"]
    ifmt = _IFMT[d["type"]]
    mode = d["fileMode"] & 0o7777
    rdev = os.makedev(d["major"], d["minor"]) if d["type"] != "p" else 0
    old = os.umask(0)
    try:
        os.mknod(name, mode | ifmt, rdev, dir_fd=pfd)
    except FileExistsError:
        st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        same = stat.S_IFMT(st.st_mode) == ifmt and (d["type"] == "p" or st.st_rdev == rdev)
        if not same and d["configured"]:
            raise DeviceError(f"linux.devices {path}: a different file already exists there "
                              f"(want {d['type']} {d['major']}:{d['minor']})") from None
        return  # as runc: an existing node is kept
    except PermissionError:
        raise
    except OSError as e:
        raise DeviceError(f"device {path}: mknod: {e.strerror}") from None
    finally:
        os.umask(old)
    try:
        os.chown(name, d["uid"], d["gid"], dir_fd=pfd, follow_symlinks=False)
    except OSError as e:
        raise DeviceError(f"device {path}: chown {d['uid']}:{d['gid']}: {e.strerror}") from None


def _bind_device(rootfd, pfd, name, d):
    path = d["path"]
    try:
        src = os.open(path, os.O_PATH | os.O_CLOEXEC)  # the host's node of the same path
    except OSError as e:
        raise DeviceError(f"device {path}: bind mount from the host: {e.strerror}") from None
    try:
        try:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o644, dir_fd=pfd))
        except FileExistsError:
            pass
        dst = mounts.open_in_root(rootfd, path)
        try:
            if stat.S_ISDIR(os.fstat(dst).st_mode):
                raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
            sc.mount(mounts.fd_path(src), mounts.fd_path(dst), None, C.MS_BIND)
        finally:
            os.close(dst)
    except OSError as e:
        raise DeviceError(f"device {path}: bind mount from the host: {mounts.why(e)}") from None
    finally:
        os.close(src)
