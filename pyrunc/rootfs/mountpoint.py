"""Mounting one thing at a destination resolved inside the rootfs (mounts.open_in_root:
a symlink in the rootfs can never send a mount to the host): binds, filesystems, the
checks runc makes of targets under /proc, and what follows a mount (propagation,
read-only remounts)."""
import errno
import os
import stat

from pyrunc.native import constants as C
from pyrunc.rootfs import mounts
from pyrunc.rootfs.mounts import MountError, fd_path, open_in_root, why
from pyrunc.util.procfs import mountinfo


DEFAULT_MOUNT_FLAGS = C.MS_NOEXEC | C.MS_NOSUID | C.MS_NODEV


PROC_ROOT_INO = 1


VALID_PROC_MOUNTS = frozenset((
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
    "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
    "/proc/pressure/cpu", "/proc/pressure/io", "/proc/pressure/memory",
    "/proc/sys/kernel/ns_last_pid",
))


def clean_dest(dest):
    return os.path.normpath("/" + (dest or "").lstrip("/"))


def target(ctx, dest, create, what):
    try:
        return open_in_root(ctx.rootfd, dest, create)
    except OSError as e:
        raise MountError(f"{what}: mount point {dest}: {why(e)}") from None


def reopen(ctx, dest, what):
    return target(ctx, dest, None, what)


def check_proc(ctx, fd, dest, what, fstype=None, bind_src=None):
    """runc's checkProcMount on the resolved target: nothing over /proc but a procfs,
    nothing inside /proc but the few entries lxcfs emulates."""
    real = mounts.path_of(fd)
    rel = os.path.relpath(real, ctx.rootfs)
    if rel == ".." or rel.startswith("../"):
        raise MountError(f"{what}: mount point {dest} resolves outside the rootfs ({real})")
    if rel != "proc" and not rel.startswith("proc/"):
        return
    if rel == "proc":
        if bind_src is None and fstype == "proc":
            return
        if bind_src is not None and os.fstat(bind_src).st_ino == PROC_ROOT_INO \
                and fstype_of(bind_src) == "proc":
            return
        raise MountError(f"{what}: {dest} cannot be mounted because it is not of type proc")
    if "/" + rel in VALID_PROC_MOUNTS:
        return
    raise MountError(f"{what}: {dest} cannot be mounted because it is inside /proc")


def fstype_of(fd):
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            mnt_id = next(line.split()[1] for line in f if line.startswith("mnt_id:"))
        for info in mountinfo():
            if info["id"] == mnt_id:
                return info["fstype"]
    except (OSError, StopIteration):
        pass
    return None


def bind(ctx, dest, source, opts, what, idmap=None, src_fd=None, fallback=None):
    """fallback: the runtime's clone of the source (PreparedMounts.source),
    attached instead when the init (in a user namespace) cannot reach the source."""
    own = False
    if src_fd is None:
        src = source if os.path.isabs(source) else os.path.join(ctx.bundle, source)
        try:
            src_fd = os.open(src, os.O_PATH | os.O_CLOEXEC)
            own = True
        except OSError as e:
            if fallback is None or e.errno not in (errno.EACCES, errno.EPERM):
                raise MountError(f"{what}: source {src}: {e.strerror}") from None
            src_fd, idmap = fallback, fallback
    try:
        is_dir = stat.S_ISDIR(os.fstat(src_fd).st_mode)
        fd = target(ctx, dest, "dir" if is_dir else "file", what)
        try:
            check_proc(ctx, fd, dest, what, bind_src=src_fd)
            if idmap is not None:
                from pyrunc.rootfs import idmapped  # preimported (with spec.prepared_mounts)

                idmapped.attach(idmap, src_fd, fd, opts, what, "user" in ctx.nsmap)
            else:
                mounts.mount_fd(fd_path(src_fd), fd, None, C.MS_BIND | (opts.flags & C.MS_REC))
        finally:
            os.close(fd)
    finally:
        if own:
            os.close(src_fd)
    mounted(ctx, dest)
    after_mount(ctx, dest, opts, what, bind=True)


def mounted(ctx, dest):
    """After a mount on the container's "/" (runc takes a bind there): later mounts, and
    pivot_root, go on top of it, so the root descriptor is the new mount's."""
    if clean_dest(dest) == "/":
        fd = os.open(ctx.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        os.close(ctx.rootfd)
        ctx.rootfd = fd


def after_mount(ctx, dest, opts, what, bind=False, fd=None):
    own = fd is None
    if own:
        fd = reopen(ctx, dest, what)
    try:
        mounts.set_propagation(fd, opts.propagation)
        if bind and (opts.flags & ~(C.MS_BIND | C.MS_REC | C.MS_REMOUNT) or opts.cleared):
            mounts.remount_bind(fd, opts.flags, opts.cleared)
        try:
            mounts.set_rec_attr(fd, opts.rec_set, opts.rec_clr)
        except OSError as e:
            if e.errno == errno.ENOSYS:
                raise MountError(f"{what}: recursive mount options need mount_setattr "
                                 f"(Linux >= 5.12): {why(e)}") from None
            raise
    finally:
        if own:
            os.close(fd)


def mount_fs(ctx, dest, fstype, source, opts, what):
    flags = opts.flags
    data = list(opts.data)
    clean = clean_dest(dest)
    if fstype in ("proc", "sysfs"):
        fd = pseudo_fs_target(ctx, dest, fstype, what)
    else:
        existed = True
        try:
            fd = open_in_root(ctx.rootfd, dest)
        except FileNotFoundError:
            existed = False
            fd = target(ctx, dest, "dir", what)
        except OSError as e:
            raise MountError(f"{what}: mount point {dest}: {why(e)}") from None
        if fstype == "tmpfs" and existed:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):  # keep the directory's mode unless mode= says otherwise
                data.insert(0, f"mode={stat.S_IMODE(st.st_mode):04o}")
    try:
        if fstype not in ("tmpfs", "mqueue"):  # as runc: those may cover a part of /proc
            check_proc(ctx, fd, dest, what, fstype=fstype)
        if fstype == "sysfs" and not ctx.new_netns:
            flags |= C.MS_RDONLY  # the host's network namespace: read-only, as runc
        if ctx.mount_label and ctx.selinux and fstype not in ("proc", "sysfs", "mqueue"):
            data.append(f'context="{ctx.mount_label}"')
        ro_later = bool(flags & C.MS_RDONLY) and (fstype == "tmpfs" or clean == "/dev")
        if ro_later:
            flags &= ~C.MS_RDONLY  # files are made in it first; finalize() makes it read-only
        copy_from = None
        if opts.copyup:
            if fstype != "tmpfs":
                raise MountError(f"{what}: tmpcopyup is for tmpfs mounts only")
            copy_from = os.open(fd_path(fd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            try:
                mounts.mount_fd(source or fstype or "none", fd, fstype or None, flags, ",".join(data))
                mounted(ctx, dest)
            except OSError as e:
                if fstype == "sysfs" and e.errno == errno.EPERM:
                    # a user namespace without its own network namespace cannot mount sysfs:
                    # bind the host's /sys (recursively read-only) instead
                    bind(ctx, dest, "/sys", mounts.Options(["rbind", "nosuid", "nodev", "noexec", "ro", "rro"]),
                          what)
                    return
                raise
            if copy_from is not None:
                nfd = reopen(ctx, dest, what)
                try:
                    dst = os.open(fd_path(nfd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                    try:
                        copy_tree(copy_from, dst)
                    except OSError as e:
                        raise MountError(f"{what}: tmpcopyup: {e.strerror} ({e.filename or ''})") from None
                    finally:
                        os.close(dst)
                finally:
                    os.close(nfd)
        finally:
            if copy_from is not None:
                os.close(copy_from)
    finally:
        os.close(fd)
    after_mount(ctx, dest, opts, what)
    if ro_later:
        ctx.ro_later.append(dest)


def pseudo_fs_target(ctx, dest, fstype, what):
    """proc and sysfs go on an ordinary directory: the last component may not be a
    symlink (runc refuses those too), the parents are resolved inside the rootfs."""
    parent, name = mounts.split_parent(dest)
    if name is None:
        raise MountError(f"{what}: {fstype} cannot be mounted on {dest}")
    pfd = target(ctx, parent, "dir", what)
    try:
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                raise MountError(f"{what}: filesystem {fstype} must be mounted on an ordinary "
                                 f"directory ({dest} is not one)")
        except FileNotFoundError:
            os.mkdir(name, 0o755, dir_fd=pfd)
        return os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=pfd)
    except OSError as e:
        raise MountError(f"{what}: mount point {dest}: {why(e)}") from None
    finally:
        os.close(pfd)


def copy_tree(src_dirfd, dst_dirfd):
    """Copy the content of one directory into another (both real directory fds), keeping
    type, mode, owner and times; never follows a symlink."""
    for entry in os.scandir(src_dirfd):
        name = entry.name
        st = entry.stat(follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=dst_dirfd)
            s = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_dirfd)
            d = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dst_dirfd)
            try:
                copy_tree(s, d)
            finally:
                os.close(s)
                os.close(d)
        elif stat.S_ISREG(mode):
            s = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=src_dirfd)
            if not stat.S_ISREG(os.fstat(s).st_mode):  # swapped under us: skip it
                os.close(s)
                continue
            d = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                        0o600, dir_fd=dst_dirfd)
            try:
                while True:
                    n = os.sendfile(d, s, None, 1 << 20)
                    if n == 0:
                        break
            finally:
                os.close(s)
                os.close(d)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src_dirfd), name, dir_fd=dst_dirfd)
        else:  # fifo, socket, device
            os.mknod(name, mode, st.st_rdev, dir_fd=dst_dirfd)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_dirfd, follow_symlinks=False)
        if not stat.S_ISLNK(mode):
            os.chmod(name, stat.S_IMODE(mode), dir_fd=dst_dirfd)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dirfd, follow_symlinks=False)
