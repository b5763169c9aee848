"""The container's root filesystem, run by the init inside its new mount namespace:
prepare() (propagation, rootfs bind, mounts, devices), then (createContainer hooks),
pivot(), and after hostname/console finalize() (readonly/masked paths, readonly root).
"""
import os

from pyrunc import syscalls as sc
from pyrunc.errors import PyruncError

# option -> (clear, flags)
_FLAGS = {
    "ro": (False, sc.MS_RDONLY), "rw": (True, sc.MS_RDONLY),
    "nosuid": (False, sc.MS_NOSUID), "suid": (True, sc.MS_NOSUID),
    "nodev": (False, sc.MS_NODEV), "dev": (True, sc.MS_NODEV),
    "noexec": (False, sc.MS_NOEXEC), "exec": (True, sc.MS_NOEXEC),
    "sync": (False, sc.MS_SYNCHRONOUS), "async": (True, sc.MS_SYNCHRONOUS),
    "dirsync": (False, sc.MS_DIRSYNC),
    "remount": (False, sc.MS_REMOUNT),
    "mand": (False, sc.MS_MANDLOCK), "nomand": (True, sc.MS_MANDLOCK),
    "atime": (True, sc.MS_NOATIME), "noatime": (False, sc.MS_NOATIME),
    "diratime": (True, sc.MS_NODIRATIME), "nodiratime": (False, sc.MS_NODIRATIME),
    "relatime": (False, sc.MS_RELATIME), "norelatime": (True, sc.MS_RELATIME),
    "strictatime": (False, sc.MS_STRICTATIME), "nostrictatime": (True, sc.MS_STRICTATIME),
    "silent": (False, sc.MS_SILENT), "loud": (True, sc.MS_SILENT),
    "bind": (False, sc.MS_BIND), "rbind": (False, sc.MS_BIND | sc.MS_REC),
    "lazytime": (False, sc.MS_LAZYTIME), "nolazytime": (True, sc.MS_LAZYTIME),
}
_PROPAGATION = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}
_DEFAULT_DEVICES = (  # name, major, minor
    ("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9),
    ("tty", 5, 0),
)


class RootfsContext:
    def __init__(self, config, bundle, no_pivot=False, new_userns=False, new_netns=False):
        self.config = config
        root = config.get("root") or {}
        self.rootfs = os.path.realpath(os.path.join(bundle, root.get("path", "rootfs")))
        self.readonly = bool(root.get("readonly"))
        self.no_pivot = no_pivot
        self.new_userns = new_userns
        self.new_netns = new_netns
        self.linux = config.get("linux") or {}


def parse_options(options):
    """-> (flags, propagation flags list, data string)"""
    flags, prop, data = 0, [], []
    for o in options or ():
        if o in _FLAGS:
            clear, f = _FLAGS[o]
            flags = flags & ~f if clear else flags | f
        elif o in _PROPAGATION:
            prop.append(_PROPAGATION[o])
        else:
            data.append(o)
    return flags, prop, ",".join(data)


def _target(ctx, dest):
    # TODO(rootfs issue): resolve without following symlinks out of the rootfs.
    return os.path.join(ctx.rootfs, dest.lstrip("/"))


def _make_target(path, source_is_file):
    if os.path.lexists(path):
        return
    os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
    if source_is_file:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
    else:
        os.makedirs(path, 0o755, exist_ok=True)


def mount_one(ctx, m):
    dest = m["destination"]
    target = _target(ctx, dest)
    fstype = m.get("type") or ""
    flags, prop, data = parse_options(m.get("options"))
    source = m.get("source") or fstype
    is_bind = bool(flags & sc.MS_BIND) or fstype == "bind"
    try:
        if is_bind:
            src = source if os.path.isabs(source) else os.path.join(os.getcwd(), source)
            _make_target(target, not os.path.isdir(src))
            sc.mount(src, target, None, sc.MS_BIND | (flags & sc.MS_REC))
            remount = flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
            if remount:
                sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | remount)
        else:
            _make_target(target, False)
            if fstype == "sysfs" and not ctx.new_netns:
                flags |= sc.MS_RDONLY  # runc: sysfs of the host's network ns is read-only
            if fstype == "cgroup":
                flags |= sc.MS_RDONLY
                # TODO(rootfs issue): v1 controllers bind-mounted per subsystem.
                fstype, source, data = "tmpfs", "tmpfs", "mode=755"
            sc.mount(source, target, fstype, flags, data or None)
        for p in prop:
            sc.mount(None, target, None, p)
    except OSError as e:
        raise PyruncError(f"mounting {source} to {dest} (type {fstype or 'bind'}): "
                          f"{e.strerror}") from None


def _setup_dev(ctx):
    dev = os.path.join(ctx.rootfs, "dev")
    if not os.path.isdir(dev):
        return
    for name, major, minor in _DEFAULT_DEVICES:
        path = os.path.join(dev, name)
        if os.path.lexists(path):
            continue
        if ctx.new_userns:
            _make_target(path, True)
            sc.mount(f"/dev/{name}", path, None, sc.MS_BIND)
        else:
            os.mknod(path, 0o666 | 0o020000, os.makedev(major, minor))
            os.chmod(path, 0o666)
    for link, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
                         ("ptmx", "pts/ptmx")):
        path = os.path.join(dev, link)
        if not os.path.lexists(path):
            os.symlink(target, path)


def prepare(ctx):
    prop = ctx.linux.get("rootfsPropagation") or "rprivate"
    sc.mount(None, "/", None, _PROPAGATION.get(prop, sc.MS_PRIVATE | sc.MS_REC))
    if not os.path.isdir(ctx.rootfs):
        raise PyruncError(f"root.path {ctx.rootfs}: no such directory")
    sc.mount(ctx.rootfs, ctx.rootfs, None, sc.MS_BIND | sc.MS_REC)
    for m in ctx.config.get("mounts") or ():
        mount_one(ctx, m)
    _setup_dev(ctx)


def pivot(ctx):
    os.chdir(ctx.rootfs)
    if ctx.no_pivot:
        sc.mount(ctx.rootfs, "/", None, sc.MS_MOVE)
        os.chroot(".")
    else:
        # pivot_root(".", ".") stacks the old root under the new one; detach it.
        sc.pivot_root(".", ".")
        sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
        sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")


def finalize(ctx):
    for p in ctx.linux.get("readonlyPaths") or ():
        if os.path.exists(p):
            sc.mount(p, p, None, sc.MS_BIND | sc.MS_REC)
            sc.mount(None, p, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC)
    for p in ctx.linux.get("maskedPaths") or ():
        if os.path.isdir(p):
            sc.mount("tmpfs", p, "tmpfs", sc.MS_RDONLY)
        elif os.path.exists(p):
            sc.mount("/dev/null", p, None, sc.MS_BIND)
    if ctx.readonly:
        sc.mount(None, "/", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)
