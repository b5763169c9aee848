"""Idmapped bind mounts (mount options idmap/ridmap, or uidMappings/gidMappings on a mount).

Two sides:
- the runtime, before it forks the container's processes, makes every idmapped bind
  mount of the config as a detached tree (prepare_idmapped_mounts): with a user
  namespace the init has no privilege over the host's filesystems any more, so
  mount_setattr(MOUNT_ATTR_IDMAP) must happen there; the trees are kept in a
  PreparedMounts, which crosses fork in init.InitSpec; the init, a forked child,
  attaches them (PreparedMounts.tree), and each side closes its copies (close());
- the init, for an idmapped bind mount the runtime did not prepare, works out the
  mappings (mappings) and makes the tree itself (detached_tree).

With a user namespace the runtime also clones the source of every other bind mount
(prepare_bind_sources): the init, once in the user namespace, may not reach a source
the host's root can (a 0700 parent, say); it then attaches the runtime's tree
(PreparedMounts.source), as current runc does with open_tree(2) mount sources.
"""
import errno
import os

from pyrunc.native import constants as C
from pyrunc.native import syscalls as sc
from pyrunc.rootfs import mounts
from pyrunc.rootfs.mounts import MountError, why


def mappings(linux, nsmap, m, opts, what):
    """(uid_mappings, gid_mappings, recursive_idmap) of mount m: its own mappings, else
    the container's user namespace's (linux.uidMappings/gidMappings)."""
    uid_maps, gid_maps = m.get("uidMappings"), m.get("gidMappings")
    if bool(uid_maps) != bool(gid_maps):
        raise MountError(f"{what}: uidMappings and gidMappings must be given together")
    if not uid_maps:
        if "user" not in nsmap:
            raise MountError(f"{what}: {opts.idmap or 'idmap'} needs uidMappings/gidMappings or a user namespace")
        uid_maps, gid_maps = linux.get("uidMappings"), linux.get("gidMappings")
        if not uid_maps or not gid_maps:
            raise MountError(f"{what}: {opts.idmap or 'idmap'} needs uidMappings/gidMappings "
                             f"(on the mount or in linux)")
    return uid_maps, gid_maps, opts.idmap == "ridmap"


def detached_tree(src_fd, opts, idmap, what, in_userns=False):
    """A detached bind-mount tree of src_fd with the mappings idmap (from mappings()) applied."""
    uid_maps, gid_maps, recursive_idmap = idmap
    try:
        return idmapped_tree(src_fd, opts.recursive, recursive_idmap, uid_maps, gid_maps)
    except OSError as e:
        if in_userns:
            raise MountError(f"{what}: idmapped mount inside a user namespace: {why(e)} (the "
                             f"runtime must prepare it before entering the user namespace)") from None
        if e.errno in (errno.ENOSYS, errno.EINVAL, errno.EPERM, errno.EOPNOTSUPP):
            raise MountError(f"{what}: idmapped mount not possible here ({why(e)}): it needs "
                             f"Linux >= 5.12, a filesystem that supports idmapped mounts and "
                             f"privilege over the source mount") from None
        raise


class PreparedMounts:
    """Detached trees the runtime made before it forked the container's processes, by
    index in config["mounts"]: idmapped trees, and plain clones of bind sources."""

    __slots__ = ("trees", "sources")

    def __init__(self):
        self.trees = {}  # index -> fd of the idmapped tree
        self.sources = {}  # index -> fd of the clone of the source

    def tree(self, index):
        return self.trees.get(index)

    def source(self, index):
        return self.sources.get(index)

    def close(self):
        """Runtime side, after the fork (and on failure), and the init once it has
        attached them: this process's copies go."""
        for fd in (*self.trees.values(), *self.sources.values()):
            try:
                os.close(fd)
            except OSError:
                pass
        self.trees.clear()
        self.sources.clear()


def prepare_bind_sources(config, bundle, prepared):
    """Runtime side, before fork, for a container with a user namespace: a detached
    clone (open_tree) of each bind mount's source that is not idmapped. A source that
    cannot be cloned is left to the init (which names the error)."""
    for i, m in enumerate(config.get("mounts") or ()):
        opts = mounts.Options(m.get("options"))
        if not (opts.is_bind or m.get("type") == "bind") or mounts.wants_idmap(m) or i in prepared.trees:
            continue
        source = m.get("source") or ""
        src = source if os.path.isabs(source) else os.path.join(bundle, source)
        try:
            prepared.sources[i] = cloned_tree(src, opts.recursive)
        except OSError:
            continue


def prepare_idmapped_mounts(config, bundle, prepared):
    """Runtime side, before fork: make the idmapped bind mounts of config as detached
    trees, into prepared (a PreparedMounts); the container's init (a forked child)
    attaches them. A no-op without them."""
    linux = config.get("linux") or {}
    nsmap = {ns["type"]: ns.get("path") or None for ns in linux.get("namespaces") or ()}
    for i, m in enumerate(config.get("mounts") or ()):
        opts = mounts.Options(m.get("options"))
        if not (opts.is_bind or m.get("type") == "bind"):
            continue
        if not mounts.wants_idmap(m):
            continue
        source = m.get("source") or ""
        what = mounts.describe(source, m["destination"], "")
        idmap = mappings(linux, nsmap, m, opts, what)
        src = source if os.path.isabs(source) else os.path.join(bundle, source)
        try:
            src_fd = os.open(src, os.O_PATH | os.O_CLOEXEC)
        except OSError as e:
            prepared.close()
            raise MountError(f"{what}: source {src}: {e.strerror}") from None
        try:
            prepared.trees[i] = detached_tree(src_fd, opts, idmap, what)
        except OSError as e:
            prepared.close()
            mounts.fail(what, e)
        except BaseException:
            prepared.close()
            raise
        finally:
            os.close(src_fd)


# --- detached trees (open_tree, mount_setattr with a user namespace, move_mount) ---------


def userns_fd(uid_mappings, gid_mappings):
    """A descriptor of a new, empty user namespace with the given mappings, made by a
    short-lived child (open_tree + mount_setattr(C.MOUNT_ATTR_IDMAP) need one)."""
    r, w = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: unshare, tell our pid (as the host's /proc sees it), wait
        code = 1
        try:
            os.close(w)
            os.close(r2)
            sc.unshare(C.CLONE_NEWUSER)
            os.write(w2, os.readlink("/proc/self").encode())
            os.read(r, 1)
            code = 0
        except BaseException:  # noqa: BLE001 - the parent sees an empty read
            pass
        os._exit(code)
    os.close(r)
    os.close(w2)
    try:
        hostpid = os.read(r2, 32).decode()
        if not hostpid:
            raise OSError(errno.EPERM, "unshare(CLONE_NEWUSER) failed in the helper process")
        for name, maps in (("uid_map", uid_mappings), ("gid_map", gid_mappings)):
            text = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)
            with open(f"/proc/{hostpid}/{name}", "w") as f:
                f.write(text)
        return os.open(f"/proc/{hostpid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(r2)
        os.close(w)
        os.waitpid(pid, 0)


def idmapped_tree(src_fd, recursive_bind, recursive_idmap, uid_mappings, gid_mappings):
    """A detached bind-mount tree of src_fd with the mapping applied (an fd)."""
    flags = C.OPEN_TREE_CLONE | C.OPEN_TREE_CLOEXEC | C.AT_EMPTY_PATH
    if recursive_bind:
        flags |= C.AT_RECURSIVE
    tree = sc.open_tree(src_fd, "", flags)
    try:
        ns = userns_fd(uid_mappings, gid_mappings)
        try:
            sc.mount_setattr(tree, "", C.AT_EMPTY_PATH | (C.AT_RECURSIVE if recursive_idmap else 0),
                             C.MOUNT_ATTR_IDMAP, 0, 0, ns)
        finally:
            os.close(ns)
    except BaseException:
        os.close(tree)
        raise
    return tree


def cloned_tree(path, recursive):
    """A detached bind-mount tree of path (open_tree OPEN_TREE_CLONE), an fd."""
    flags = C.OPEN_TREE_CLONE | C.OPEN_TREE_CLOEXEC
    return sc.open_tree(-100, path, flags | (C.AT_RECURSIVE if recursive else 0))  # AT_FDCWD


def attach(idmap, src_fd, target_fd, opts, what, in_userns):
    """Mount src_fd idmapped on target_fd: idmap is a tree the runtime made (an fd, from
    prepare_idmapped_mounts) or mappings() to make one with here."""
    if isinstance(idmap, int):
        attach_tree(idmap, target_fd)
        return
    tree = detached_tree(src_fd, opts, idmap, what, in_userns)
    try:
        attach_tree(tree, target_fd)
    finally:
        os.close(tree)


def attach_tree(tree_fd, target_fd):
    sc.move_mount(tree_fd, "", target_fd, "", C.MOVE_MOUNT_F_EMPTY_PATH | C.MOVE_MOUNT_T_EMPTY_PATH)
