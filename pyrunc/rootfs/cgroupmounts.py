"""A config's `cgroup` mount: on cgroup v1 a tmpfs with each of the init's hierarchies
(mounted afresh with a new cgroup namespace, else bound from the host's), on v2 a
cgroup2 mount (or a bind of the init's own cgroup without a new cgroup namespace)."""
import errno
import os

from pyrunc.native import constants as C
from pyrunc.native import syscalls as sc
from pyrunc.rootfs import mounts
from pyrunc.rootfs.mounts import MountError
from pyrunc.rootfs.mountpoint import DEFAULT_MOUNT_FLAGS, after_mount, bind, mount_fs, reopen, target
from pyrunc.util.procfs import mountinfo, own_cgroups


def mount_cgroup(ctx, dest, source, opts, what):
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return _cgroup2(ctx, dest, source, opts, what)
    own = own_cgroups()
    seen, binds = set(), []
    for info in mountinfo(("cgroup",)):
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
    mount_fs(ctx, dest, "tmpfs", "tmpfs", tmpfs_opts, what)
    if ctx.new_cgroupns:
        _cgroup_mounts(ctx, dest, binds, opts, what)
    else:
        _cgroup_binds(ctx, dest, binds, opts, what)
    # co-mounted controllers (e.g. cpu,cpuacct): one symlink per controller, as runc
    dfd = reopen(ctx, dest, what)
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
        fd = target(ctx, sub, "dir", sub_what)
        try:
            mounts.mount_fd("systemd" if "name=systemd" in subsys else "cgroup", fd, "cgroup", flags, data)
        except OSError as e:
            mounts.fail(sub_what, e)
        finally:
            os.close(fd)
        popts = mounts.Options()
        popts.propagation = list(opts.propagation)
        after_mount(ctx, sub, popts, sub_what)


def _cgroup_binds(ctx, dest, binds, opts, what):
    """Bind each host hierarchy at dest/<name> with the cgroup mount's flags and
    propagation (runc's per-subsystem binds). dest is a fresh tmpfs of ours: its entries
    are made and used by name, without the symlink-safe walk a rootfs path needs."""
    dfd = reopen(ctx, dest, what)
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
        return mount_fs(ctx, dest, "cgroup2", source or "cgroup", opts, what)
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EBUSY):
            raise
    # a user namespace without its own cgroup namespace cannot mount cgroup2: bind it
    src = "/sys/fs/cgroup"
    if ctx.new_cgroupns:
        path = own_cgroups().get(frozenset())
        if path:
            src = os.path.normpath("/sys/fs/cgroup/" + path.lstrip("/"))
    bopts = mounts.Options()
    bopts.flags = C.MS_BIND | C.MS_REC | opts.flags
    bopts.cleared = opts.cleared
    bopts.propagation = list(opts.propagation)
    bind(ctx, dest, src, bopts, what)
