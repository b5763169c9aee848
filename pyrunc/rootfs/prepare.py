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

Everything the init needs after pivot_root is imported here, at module level, but for
what only some configs use (pyrunc.linux.sysctl, pyrunc.rootfs.idmapped: pyrunc.process.init's
preimport() imports those when the config asks for them). The steps' other modules:
mountpoint.py (one mount at a resolved target), cgroupmounts.py, pivot.py, finalize.py;
pyrunc.util.procfs reads /proc/self/mountinfo and cgroup.
"""
import os

from pyrunc.errors import PyruncError
from pyrunc.rootfs import cgroupmounts, devices, finalize, mounts, pivot
from pyrunc.rootfs.mountpoint import bind, clean_dest, mount_fs
from pyrunc.rootfs.mounts import MountError, why
from pyrunc.native import constants as C
from pyrunc.native import syscalls as sc

__all__ = ["RootfsContext", "prepare", "mount_one"]

# The init runs these after pivot_root, where nothing can be imported any more: imported
# above, before it (pyrunc.process.init's preimport() imports this module before fork,
# and pyrunc.linux.sysctl and pyrunc.rootfs.idmapped when the config uses them).
USED_AFTER_PIVOT = (mounts, finalize, pivot)

PROPAGATION = mounts.PROPAGATION


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
            and clean_dest(m.get("destination", "")) == "/dev"
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
            if idmap is None and mounts.wants_idmap(m):
                from pyrunc.rootfs import idmapped  # preimported (with spec.prepared_mounts)

                idmap = idmapped.mappings(ctx.linux, ctx.nsmap, m, opts, what)
            bind(ctx, dest, source, opts, what, idmap,
                  fallback=prepared.source(index) if prepared is not None else None)
        elif mounts.wants_idmap(m):
            raise MountError(f"{what}: idmapped mounts are supported for bind mounts only")
        elif fstype == "cgroup":
            cgroupmounts.mount_cgroup(ctx, dest, source, opts, what)
        else:
            mount_fs(ctx, dest, fstype, source, opts, what)
    except MountError:
        raise
    except OSError as e:
        mounts.fail(what, e)
