"""pivot(): the init enters its rootfs: pivot_root (the old root made rslave and
detached), --no-pivot (the host's proc/sysfs unmounted, the rootfs moved onto / and
chrooted, as runc's msMoveRoot), or chroot without a mount namespace."""
import errno
import os
import stat

from pyrunc.errors import PyruncError
from pyrunc.native import constants as C
from pyrunc.native import syscalls as sc
from pyrunc.rootfs import mounts
from pyrunc.rootfs.mounts import why
from pyrunc.util.procfs import mountinfo


def pivot(ctx):
    try:
        if ctx.host_ns:
            # no mount namespace, nothing to pivot: runc's chroot()
            os.chdir(ctx.rootfs)
            os.chroot(".")
            os.chdir("/")
        elif ctx.no_pivot:
            _move_root(ctx)
        else:
            _pivot_root(ctx)
    except OSError as e:
        how = "chroot into" if ctx.host_ns else "--no-pivot: moving" if ctx.no_pivot else "pivot_root into"
        raise PyruncError(f"{how} rootfs {ctx.rootfs}: {why(e)}") from None
    finally:
        if ctx.rootfd is not None:
            os.close(ctx.rootfd)
            ctx.rootfd = None
    prop = ctx.propagation
    # (r)unbindable goes last (finalize): the read-only and masked paths are binds.
    if prop and prop not in ("private", "rprivate") and "unbindable" not in prop and not ctx.host_ns:
        try:
            # the rootfs mount only (config-linux.md); the r-forms' recursion is runc's
            # first step in prepare(), which binds below inherit
            sc.mount(None, "/", None, mounts.PROPAGATION[prop] & ~C.MS_REC)
        except OSError as e:
            raise PyruncError(f"linux.rootfsPropagation {prop}: {why(e)}") from None
    if ctx.setup_dev:
        _reopen_dev_null()
    cwd = (ctx.config.get("process") or {}).get("cwd")
    if cwd:
        try:
            os.makedirs(cwd, 0o755, exist_ok=True)  # inside the jail now: as runc, make it
        except OSError:
            pass  # the init reports a bad cwd when it changes into it


def _pivot_root(ctx):
    oldroot = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        newroot = os.open(ctx.rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fchdir(newroot)
        finally:
            os.close(newroot)
        # pivot_root(".", "."): the old root ends up stacked under the new one
        sc.pivot_root(".", ".")
        os.fchdir(oldroot)
    finally:
        os.close(oldroot)
    # unmounting the old root must not propagate anywhere, then detach it all
    sc.mount(None, ".", None, C.MS_SLAVE | C.MS_REC)
    sc.umount2(".", C.MNT_DETACH)
    os.chdir("/")


def _move_root(ctx):
    """--no-pivot (runc's msMoveRoot): the host's full proc and sysfs mounts are removed
    (or covered) first, so the kernel's "mount too revealing" check still holds and they
    stay out of reach; then the rootfs moves onto / and the process chroots into it."""
    rootfs = ctx.rootfs
    for info in mountinfo():
        mp = info["mountpoint"]
        if info["root"] != "/" or info["fstype"] not in ("proc", "sysfs") \
                or mp == rootfs or mp.startswith(rootfs + "/"):
            continue
        try:
            sc.mount(None, mp, None, C.MS_SLAVE | C.MS_REC)
        except OSError as e:
            if e.errno == errno.ENOENT:
                continue  # under something already unmounted
            raise
        try:
            sc.umount2(mp, C.MNT_DETACH)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EPERM):
                raise
            sc.mount("tmpfs", mp, "tmpfs", 0)
    os.chdir(rootfs)
    sc.mount(rootfs, "/", None, C.MS_MOVE)
    os.chroot(".")
    os.chdir("/")


def _reopen_dev_null():
    """stdio on the host's /dev/null is switched to the container's (runc's reOpenDevNull)."""
    try:
        fd = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return
    try:
        null = os.fstat(fd)
        if not stat.S_ISCHR(null.st_mode):
            return
        for i in range(3):
            try:
                st = os.fstat(i)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == null.st_rdev:
                os.dup2(fd, i, inheritable=True)
    finally:
        os.close(fd)
