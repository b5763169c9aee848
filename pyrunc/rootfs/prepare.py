"""The container's root filesystem, run by the init inside its new mount namespace:
prepare() (propagation, rootfs bind, mounts, devices), then (createContainer hooks),
pivot(), and after hostname/console/sysctl finalize() (read-only tmpfs and /dev,
readonly paths, masked paths, read-only root: pyrunc.rootfs.finalize). Idmapped bind
mounts (and the detached trees the runtime prepares for them before fork) are in
pyrunc.rootfs.idmapped (they reach the init in RootfsContext.prepared_mounts).

Safety rules kept everywhere:
- before anything is mounted, the whole mount tree of the new namespace is made rprivate
  (or rslave when the rootfs propagation asks for slave/shared), so no mount or unmount
  made here ever propagates back to the host;
- every destination is resolved inside the rootfs (mounts.open_in_root: openat2
  RESOLVE_IN_ROOT or an O_NOFOLLOW walk) and mounted through /proc/self/fd/N, so a
  symlink in the rootfs (absolute, or ../../..) can never send a mount to the host;
- pivot_root detaches the old root (made rslave first), --no-pivot unmounts the host's
  proc/sysfs, moves the rootfs onto / and chroots, as runc does.

Everything the init needs after pivot_root is imported here, at module level.
"""
import errno
import os
import stat

from pyrunc.errors import PyruncError
from pyrunc.linux import sysctl
from pyrunc.rootfs import devices, finalize, idmapped, mounts
from pyrunc.rootfs.mounts import MountError, fd_path, open_in_root, why
from pyrunc.native import constants as C
from pyrunc.native import syscalls as sc

__all__ = ["RootfsContext", "prepare", "mount_one", "pivot"]

# The init runs these after pivot_root, where nothing can be imported any more: imported
# above, before it (pyrunc.process.init's preimport() imports this module before fork).
USED_AFTER_PIVOT = (mounts, finalize, sysctl)

PROPAGATION = mounts.PROPAGATION
DEFAULT_MOUNT_FLAGS = C.MS_NOEXEC | C.MS_NOSUID | C.MS_NODEV
PROC_ROOT_INO = 1
# entries of /proc a mount may cover (lxcfs emulates them): runc's list
VALID_PROC_MOUNTS = frozenset((
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
    "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
    "/proc/pressure/cpu", "/proc/pressure/io", "/proc/pressure/memory",
    "/proc/sys/kernel/ns_last_pid",
))


class RootfsContext:
    def __init__(self, config, bundle, no_pivot=False, new_userns=False, new_netns=False,
                 host_ns=False, prepared_mounts=None):
        self.config = config
        # idmapped.PreparedMounts: the runtime's trees (made before fork), or None
        self.prepared_mounts = prepared_mounts
        self.host_ns = host_ns  # no mount namespace: mounts in the runtime's, then chroot
        self.bundle = bundle
        root = config.get("root") or {}
        self.rootfs = os.path.realpath(os.path.join(bundle, root.get("path") or "rootfs"))
        self.readonly = bool(root.get("readonly"))
        self.no_pivot = no_pivot
        self.new_userns = new_userns
        self.new_netns = new_netns
        self.linux = config.get("linux") or {}
        self.nsmap = {ns["type"]: ns.get("path") or None for ns in self.linux.get("namespaces") or ()}
        self.new_cgroupns = "cgroup" in self.nsmap and self.nsmap["cgroup"] is None
        # config/compat.py keeps runc's r-forms (rshared, ...) under a private key
        self.propagation = self.linux.get("_rootfsPropagation") or self.linux.get("rootfsPropagation") or ""
        self.mount_label = self.linux.get("mountLabel") or ""
        self.selinux = os.path.exists("/sys/fs/selinux/enforce")
        self.setup_dev = not any(
            (mounts.Options(m.get("options")).is_bind or m.get("type") == "bind")
            and _clean(m.get("destination", "")) == "/dev"
            for m in config.get("mounts") or ())
        self.rootfd = None
        self.ro_later = []  # container paths to make read-only in finalize()
        self.debug = None  # optional callable(msg) for debug notes (set by the init)

    def note(self, msg):
        if self.debug:
            try:
                self.debug(msg)
            except Exception:  # noqa: BLE001 - a debug note never fails the container
                pass


def _clean(dest):
    return os.path.normpath("/" + (dest or "").lstrip("/"))


# ---------------------------------------------------------------------------------------
# prepare

def _parent_mount_private(path):
    """Make the mount holding `path` private if it is shared (runc's
    rootfsParentMountPrivate): pivot_root refuses a shared parent, and the rootfs bind
    would be a peer of the host's mount."""
    best, shared = "", False
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            lines = f.read().decode("utf-8", "surrogateescape").splitlines()
    except OSError:
        return
    for line in lines:
        fields = line.split(" ")
        if len(fields) < 7:
            continue
        mp = fields[4]
        if "\\" in mp:
            mp = mp.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
        if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
            best = mp
            shared = any(o.startswith("shared:") for o in fields[6:fields.index("-")] if o)
    if best and shared:
        try:
            sc.mount(None, best, None, C.MS_PRIVATE)
        except OSError as e:
            raise PyruncError(f"making {best} (holding the rootfs) private: {why(e)}") from None


def prepare(ctx):
    prop = ctx.propagation
    if prop and prop not in PROPAGATION:
        raise PyruncError(f"linux.rootfsPropagation {prop!r}: not one of {', '.join(PROPAGATION)}")
    # As runc's prepareRoot: / (recursively by default) as rootfsPropagation says, or
    # rslave, so that a bind mount's source keeps that propagation (Kubernetes'
    # Bidirectional/HostToContainer volumes rely on it: "rshared"/"rslave" binds stay
    # peers/slaves of the host's mount); then the mount holding the rootfs made private
    # when it is shared, so that the rootfs bind and all mounted in it stay here.
    # (r)unbindable: runc fails binding the rootfs under an unbindable "/" (EINVAL); the
    # spec text wants an unbindable rootfs mount: rprivate here, unbindable after pivot_root.
    # Without a mount namespace this is the host's: only the rootfs bind is made private
    # (below); runc changes the host's / and the rootfs's parent mount too.
    first = (PROPAGATION[prop] if "unbindable" not in prop else C.MS_PRIVATE | C.MS_REC) if prop \
        else C.MS_SLAVE | C.MS_REC
    try:
        if not ctx.host_ns:
            sc.mount(None, "/", None, first)
    except OSError as e:
        raise PyruncError(f"making / {prop or 'rslave'} in the container's mount namespace: {why(e)}") from None
    if (not first & C.MS_REC or first & C.MS_SHARED) and not ctx.host_ns:
        _parent_mount_private(ctx.rootfs)
    if not os.path.isdir(ctx.rootfs):
        raise PyruncError(f"root.path {ctx.rootfs}: not a directory" if os.path.exists(ctx.rootfs)
                          else f"root.path {ctx.rootfs}: no such directory")
    if ctx.rootfs == "/":
        raise PyruncError("root.path must not be the host's /")
    try:
        sc.mount(ctx.rootfs, ctx.rootfs, None, C.MS_BIND | C.MS_REC)
        if ctx.host_ns:  # what is mounted under it stays out of the host's peer groups
            sc.mount(None, ctx.rootfs, None, C.MS_PRIVATE | C.MS_REC)
        ctx.rootfd = os.open(ctx.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise PyruncError(f"bind-mounting root.path {ctx.rootfs} onto itself: {why(e)}") from None
    if ctx.mount_label and not ctx.selinux:
        ctx.note(f"linux.mountLabel {ctx.mount_label!r} ignored: SELinux is not enabled")
    for i, m in enumerate(ctx.config.get("mounts") or ()):
        mount_one(ctx, m, i)
    if ctx.setup_dev:
        devices.setup(ctx)
    if ctx.prepared_mounts is not None:
        ctx.prepared_mounts.close()  # attached by now; the init's copies go


def mount_one(ctx, m, index=None):
    dest = m["destination"]
    if not dest.startswith("/"):
        dest = "/" + dest  # relative destinations are relative to / (deprecated)
    fstype = m.get("type") or ""
    source = m.get("source") or ""
    opts = mounts.Options(m.get("options"))
    what = mounts.describe(source, dest, "" if (opts.is_bind or fstype == "bind") else fstype)
    try:
        if opts.is_bind or fstype == "bind":
            prepared = ctx.prepared_mounts
            idmap = prepared.tree(index) if prepared is not None else None
            if idmap is None and idmapped.wanted(m, opts):
                idmap = idmapped.mappings(ctx.linux, ctx.nsmap, m, opts, what)
            _bind(ctx, dest, source, opts, what, idmap,
                  fallback=prepared.source(index) if prepared is not None else None)
        elif idmapped.wanted(m, opts):
            raise MountError(f"{what}: idmapped mounts are supported for bind mounts only")
        elif fstype == "cgroup":
            _cgroup(ctx, dest, source, opts, what)
        else:
            _fs(ctx, dest, fstype, source, opts, what)
    except MountError:
        raise
    except OSError as e:
        mounts.fail(what, e)


def _target(ctx, dest, create, what):
    try:
        return open_in_root(ctx.rootfd, dest, create)
    except OSError as e:
        raise MountError(f"{what}: mount point {dest}: {why(e)}") from None


def _reopen(ctx, dest, what):
    return _target(ctx, dest, None, what)


def _check_proc(ctx, fd, dest, what, fstype=None, bind_src=None):
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
                and _fstype_of(bind_src) == "proc":
            return
        raise MountError(f"{what}: {dest} cannot be mounted because it is not of type proc")
    if "/" + rel in VALID_PROC_MOUNTS:
        return
    raise MountError(f"{what}: {dest} cannot be mounted because it is inside /proc")


def _fstype_of(fd):
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            mnt_id = next(line.split()[1] for line in f if line.startswith("mnt_id:"))
        for info in _mountinfo():
            if info["id"] == mnt_id:
                return info["fstype"]
    except (OSError, StopIteration):
        pass
    return None


def _bind(ctx, dest, source, opts, what, idmap=None, src_fd=None, fallback=None):
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
        fd = _target(ctx, dest, "dir" if is_dir else "file", what)
        try:
            _check_proc(ctx, fd, dest, what, bind_src=src_fd)
            if isinstance(idmap, int):  # a tree the runtime made (prepare_idmapped_mounts)
                mounts.attach_tree(idmap, fd)
            elif idmap is not None:
                tree = idmapped.detached_tree(src_fd, opts, idmap, what, "user" in ctx.nsmap)
                try:
                    mounts.attach_tree(tree, fd)
                finally:
                    os.close(tree)
            else:
                mounts.mount_fd(fd_path(src_fd), fd, None, C.MS_BIND | (opts.flags & C.MS_REC))
        finally:
            os.close(fd)
    finally:
        if own:
            os.close(src_fd)
    _mounted(ctx, dest)
    _after_mount(ctx, dest, opts, what, bind=True)


def _mounted(ctx, dest):
    """After a mount on the container's "/" (runc takes a bind there): later mounts, and
    pivot_root, go on top of it, so the root descriptor is the new mount's."""
    if _clean(dest) == "/":
        fd = os.open(ctx.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        os.close(ctx.rootfd)
        ctx.rootfd = fd


def _after_mount(ctx, dest, opts, what, bind=False, fd=None):
    own = fd is None
    if own:
        fd = _reopen(ctx, dest, what)
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


def _fs(ctx, dest, fstype, source, opts, what):
    flags = opts.flags
    data = list(opts.data)
    clean = _clean(dest)
    if fstype in ("proc", "sysfs"):
        fd = _pseudo_fs_target(ctx, dest, fstype, what)
    else:
        existed = True
        try:
            fd = open_in_root(ctx.rootfd, dest)
        except FileNotFoundError:
            existed = False
            fd = _target(ctx, dest, "dir", what)
        except OSError as e:
            raise MountError(f"{what}: mount point {dest}: {why(e)}") from None
        if fstype == "tmpfs" and existed:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):  # keep the directory's mode unless mode= says otherwise
                data.insert(0, f"mode={stat.S_IMODE(st.st_mode):04o}")
    try:
        if fstype not in ("tmpfs", "mqueue"):  # as runc: those may cover a part of /proc
            _check_proc(ctx, fd, dest, what, fstype=fstype)
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
                _mounted(ctx, dest)
            except OSError as e:
                if fstype == "sysfs" and e.errno == errno.EPERM:
                    # a user namespace without its own network namespace cannot mount sysfs:
                    # bind the host's /sys (recursively read-only) instead
                    _bind(ctx, dest, "/sys", mounts.Options(["rbind", "nosuid", "nodev", "noexec", "ro", "rro"]),
                          what)
                    return
                raise
            if copy_from is not None:
                nfd = _reopen(ctx, dest, what)
                try:
                    dst = os.open(fd_path(nfd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                    try:
                        mounts.copy_tree(copy_from, dst)
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
    _after_mount(ctx, dest, opts, what)
    if ro_later:
        ctx.ro_later.append(dest)


def _pseudo_fs_target(ctx, dest, fstype, what):
    """proc and sysfs go on an ordinary directory: the last component may not be a
    symlink (runc refuses those too), the parents are resolved inside the rootfs."""
    parent, name = mounts.split_parent(dest)
    if name is None:
        raise MountError(f"{what}: {fstype} cannot be mounted on {dest}")
    pfd = _target(ctx, parent, "dir", what)
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


# ---------------------------------------------------------------------------------------
# cgroup mounts

def _unescape(s):
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def _mountinfo():
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            a, b = left.split(), right.split()
            out.append({"id": a[0], "root": _unescape(a[3]), "mountpoint": _unescape(a[4]),
                        "fstype": b[0], "source": b[1] if len(b) > 1 else "",
                        "super": b[2] if len(b) > 2 else ""})
    return out


def _own_cgroups():
    """{frozenset(controllers): path} from /proc/self/cgroup (the init is in its cgroups)."""
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            parts = line.rstrip("\n").split(":", 2)
            if len(parts) == 3:
                own[frozenset(c for c in parts[1].split(",") if c)] = parts[2]
    return own


def _cgroup(ctx, dest, source, opts, what):
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return _cgroup2(ctx, dest, source, opts, what)
    own = _own_cgroups()
    seen, binds = set(), []
    for info in _mountinfo():
        if info["fstype"] != "cgroup":
            continue
        mp = info["mountpoint"]
        if mp == ctx.rootfs or mp.startswith(ctx.rootfs + "/"):
            continue
        subsys = frozenset(o for o in info["super"].split(",")
                           if o not in ("rw", "ro") and (o.startswith("name=") or "=" not in o)
                           and o not in ("xattr", "noprefix", "clone_children", "cpuset_v2_mode",
                                         "favordynmods", "nsdelegate", "memory_recursiveprot"))
        if not subsys or subsys in seen:
            continue
        seen.add(subsys)
        path = own.get(subsys)
        if path is None:
            continue
        rel = os.path.relpath(path, info["root"])
        if rel == ".." or rel.startswith("../"):
            raise MountError(f"{what}: the container's {','.join(sorted(subsys))} cgroup {path} "
                             f"is not under the host's mount of it ({info['root']} at {mp})")
        binds.append((os.path.basename(mp), os.path.normpath(os.path.join(mp, rel)), subsys))
    tmpfs_opts = mounts.Options(["nosuid", "nodev", "noexec", "mode=755"])
    tmpfs_opts.propagation = list(opts.propagation)
    _fs(ctx, dest, "tmpfs", "tmpfs", tmpfs_opts, what)
    if ctx.new_cgroupns:
        _cgroup_mounts(ctx, dest, binds, opts, what)
    else:
        _cgroup_binds(ctx, dest, binds, opts, what)
    # co-mounted controllers (e.g. cpu,cpuacct): one symlink per controller, as runc
    dfd = _reopen(ctx, dest, what)
    try:
        for name, _, _ in binds:
            if "," in name:
                for c in name.split(","):
                    try:
                        os.symlink(name, c, dir_fd=dfd)
                    except FileExistsError:
                        pass
    finally:
        os.close(dfd)
    if opts.flags & C.MS_RDONLY:
        ctx.ro_later.append(dest)


def _cgroup_mounts(ctx, dest, binds, opts, what):
    """With a new cgroup namespace: each hierarchy mounted afresh at dest/<name>."""
    base = dest.rstrip("/")
    for name, src, subsys in binds:
        sub = f"{base}/{name}"
        sub_what = f"{what}: {name}"
        flags = DEFAULT_MOUNT_FLAGS | (opts.flags & C.MS_RDONLY)
        data = ",".join(sorted(subsys))
        fd = _target(ctx, sub, "dir", sub_what)
        try:
            mounts.mount_fd("systemd" if "name=systemd" in subsys else "cgroup", fd, "cgroup", flags, data)
        except OSError as e:
            mounts.fail(sub_what, e)
        finally:
            os.close(fd)
        popts = mounts.Options()
        popts.propagation = list(opts.propagation)
        _after_mount(ctx, sub, popts, sub_what)


def _cgroup_binds(ctx, dest, binds, opts, what):
    """Bind each host hierarchy at dest/<name> with the cgroup mount's flags and
    propagation (runc's per-subsystem binds). dest is a fresh tmpfs of ours: its entries
    are made and used by name, without the symlink-safe walk a rootfs path needs."""
    dfd = _reopen(ctx, dest, what)
    try:
        for name, src, _ in binds:
            at = f"/proc/self/fd/{dfd}/{name}"
            try:
                os.mkdir(name, 0o755, dir_fd=dfd)
                sc.mount(src, at, None, C.MS_BIND | C.MS_REC)
                mounts.set_propagation(at, opts.propagation)
                if opts.flags & ~(C.MS_BIND | C.MS_REC | C.MS_REMOUNT) or opts.cleared:
                    mounts.remount_bind(at, opts.flags, opts.cleared)
            except OSError as e:
                mounts.fail(f"{what}: {name}", e)
    finally:
        os.close(dfd)


def _cgroup2(ctx, dest, source, opts, what):
    try:
        return _fs(ctx, dest, "cgroup2", source or "cgroup", opts, what)
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EBUSY):
            raise
    # a user namespace without its own cgroup namespace cannot mount cgroup2: bind it
    src = "/sys/fs/cgroup"
    if ctx.new_cgroupns:
        path = _own_cgroups().get(frozenset())
        if path:
            src = os.path.normpath("/sys/fs/cgroup/" + path.lstrip("/"))
    bopts = mounts.Options()
    bopts.flags = C.MS_BIND | C.MS_REC | opts.flags
    bopts.cleared = opts.cleared
    bopts.propagation = list(opts.propagation)
    _bind(ctx, dest, src, bopts, what)


# ---------------------------------------------------------------------------------------
# pivot

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
            sc.mount(None, "/", None, PROPAGATION[prop] & ~C.MS_REC)
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
    for info in _mountinfo():
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
