"""The container's rootfs after pivot_root (and hostname/console/sysctl), run by the init:
finalize() makes read-only what prepare() left writable to fill (read-only tmpfs mounts,
a read-only /dev), applies linux.readonlyPaths and linux.maskedPaths, then root.readonly.

This runs inside the jail: everything it needs is imported at module level, and
pyrunc.rootfs.prepare imports this module, before pivot_root.
"""
import errno
import os
import stat

from pyrunc.rootfs import mounts
from pyrunc.errors import PyruncError
from pyrunc.rootfs.mounts import fd_path, open_in_root, why
from pyrunc.native import constants as C
from pyrunc.native import syscalls as sc


def finalize(ctx):
    """ctx: the pyrunc.rootfs.prepare.RootfsContext prepare() and pivot() were given."""
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        via_proc = os.path.exists(fd_path(root))
        res = _Resolver(root, via_proc)
        for dest in ctx.ro_later:
            try:
                with res.open(dest) as t:
                    mounts.remount_readonly(t.target, keep_all=True)
            except OSError as e:
                raise PyruncError(f"remounting {dest} read-only: {why(e)}") from None
        for p in ctx.linux.get("readonlyPaths") or ():
            _readonly_path(res, p)
        for p in ctx.linux.get("maskedPaths") or ():
            _mask_path(ctx, res, p)
        if ctx.readonly:
            try:
                with res.open("/") as t:
                    mounts.remount_readonly(t.target, keep_all=True)
            except OSError as e:
                raise PyruncError(f"root.readonly: remounting / read-only: {why(e)}") from None
        if "unbindable" in ctx.propagation:  # after the binds above (see rootfs.pivot)
            try:
                sc.mount(None, "/", None, C.MS_UNBINDABLE)  # the rootfs mount (config-linux.md)
            except OSError as e:
                raise PyruncError(f"linux.rootfsPropagation {ctx.propagation}: {why(e)}") from None
    finally:
        os.close(root)


class _Target:
    def __init__(self, target, fd=None):
        self.target, self.fd = target, fd

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)


class _Resolver:
    """After pivot_root: container paths to mount targets, through /proc/self/fd when the
    container has a /proc (no symlink games), else the plain path (we are inside the
    jail already, so nothing can lead out of it)."""

    def __init__(self, rootfd, via_proc):
        self.rootfd, self.via_proc = rootfd, via_proc

    def open(self, path):
        if self.via_proc:
            fd = open_in_root(self.rootfd, path)
            return _Target(fd_path(fd), fd)
        os.stat(path)
        return _Target(path)


def _readonly_path(res, p):
    try:
        with res.open(p) as t:
            sc.mount(t.target, t.target, None, C.MS_BIND | C.MS_REC)
        with res.open(p) as t:
            mounts.remount_readonly(t.target, keep_all=True)
            if t.fd is not None:  # submounts too, where the kernel can
                try:
                    mounts.set_rec_attr(t.fd, C.MOUNT_ATTR_RDONLY, 0)
                except OSError:
                    pass
    except FileNotFoundError:
        return
    except OSError as e:
        if e.errno == errno.ENOENT:
            return
        raise PyruncError(f"linux.readonlyPaths {p}: {why(e)}") from None


def _mask_path(ctx, res, p):
    try:
        with res.open(p) as t:
            st = os.stat(t.target)
            if stat.S_ISDIR(st.st_mode):
                data = f'context="{ctx.mount_label}"' if ctx.mount_label and ctx.selinux else None
                sc.mount("tmpfs", t.target, "tmpfs", C.MS_RDONLY, data)
            else:
                sc.mount("/dev/null", t.target, None, C.MS_BIND)
    except FileNotFoundError:
        return
    except OSError as e:
        if e.errno == errno.ENOENT:
            return
        raise PyruncError(f"linux.maskedPaths {p}: {why(e)}") from None
