"""Mount options and mounting inside a rootfs without ever leaving it.

Paths inside the container are resolved against an O_PATH descriptor of the rootfs as if
it were "/" (openat2 RESOLVE_IN_ROOT, or an equivalent walk one component at a time with
O_NOFOLLOW that interprets symlinks and ".." itself), missing parts are created through
directory descriptors, and every mount targets /proc/self/fd/N of the opened target, so
a symlink swapped in by the rootfs can never redirect a mount onto the host.

Everything here runs in the container's init, in its own mount namespace.
"""
import errno
import os
import stat

from pyrunc import syscalls as sc
from pyrunc.errors import MountError

MS_POSIXACL = 1 << 16
MS_I_VERSION = 1 << 23

# mount_setattr(2) attributes (<linux/mount.h>)
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40

# option -> (clears the flag, MS_* flag): runc's table (specconv), mount(8) semantics
FLAG_OPTIONS = {
    "acl": (False, MS_POSIXACL), "noacl": (True, MS_POSIXACL),
    "async": (True, sc.MS_SYNCHRONOUS), "sync": (False, sc.MS_SYNCHRONOUS),
    "atime": (True, sc.MS_NOATIME), "noatime": (False, sc.MS_NOATIME),
    "bind": (False, sc.MS_BIND), "rbind": (False, sc.MS_BIND | sc.MS_REC),
    "defaults": (False, 0),
    "dev": (True, sc.MS_NODEV), "nodev": (False, sc.MS_NODEV),
    "diratime": (True, sc.MS_NODIRATIME), "nodiratime": (False, sc.MS_NODIRATIME),
    "dirsync": (False, sc.MS_DIRSYNC),
    "exec": (True, sc.MS_NOEXEC), "noexec": (False, sc.MS_NOEXEC),
    "iversion": (False, MS_I_VERSION), "noiversion": (True, MS_I_VERSION),
    "lazytime": (False, sc.MS_LAZYTIME), "nolazytime": (True, sc.MS_LAZYTIME),
    "loud": (True, sc.MS_SILENT), "silent": (False, sc.MS_SILENT),
    "mand": (False, sc.MS_MANDLOCK), "nomand": (True, sc.MS_MANDLOCK),
    "relatime": (False, sc.MS_RELATIME), "norelatime": (True, sc.MS_RELATIME),
    "strictatime": (False, sc.MS_STRICTATIME), "nostrictatime": (True, sc.MS_STRICTATIME),
    "remount": (False, sc.MS_REMOUNT),
    "ro": (False, sc.MS_RDONLY), "rw": (True, sc.MS_RDONLY),
    "suid": (True, sc.MS_NOSUID), "nosuid": (False, sc.MS_NOSUID),
    "symfollow": (True, sc.MS_NOSYMFOLLOW), "nosymfollow": (False, sc.MS_NOSYMFOLLOW),
}
# recursive option -> (clears the attribute, MOUNT_ATTR_*), applied with mount_setattr(AT_RECURSIVE)
REC_OPTIONS = {
    "rro": (False, MOUNT_ATTR_RDONLY), "rrw": (True, MOUNT_ATTR_RDONLY),
    "rnosuid": (False, MOUNT_ATTR_NOSUID), "rsuid": (True, MOUNT_ATTR_NOSUID),
    "rnodev": (False, MOUNT_ATTR_NODEV), "rdev": (True, MOUNT_ATTR_NODEV),
    "rnoexec": (False, MOUNT_ATTR_NOEXEC), "rexec": (True, MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, MOUNT_ATTR_NODIRATIME), "rdiratime": (True, MOUNT_ATTR_NODIRATIME),
    "rrelatime": (False, MOUNT_ATTR_RELATIME), "rnorelatime": (True, MOUNT_ATTR_RELATIME),
    "rnoatime": (False, MOUNT_ATTR_NOATIME), "ratime": (True, MOUNT_ATTR_NOATIME),
    "rstrictatime": (False, MOUNT_ATTR_STRICTATIME), "rnostrictatime": (True, MOUNT_ATTR_STRICTATIME),
    "rnosymfollow": (False, MOUNT_ATTR_NOSYMFOLLOW), "rsymfollow": (True, MOUNT_ATTR_NOSYMFOLLOW),
}
PROPAGATION = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}

ATIME_ENUM = sc.MS_NOATIME | sc.MS_RELATIME | sc.MS_STRICTATIME
ATIME_FLAGS = ATIME_ENUM | sc.MS_NODIRATIME
# per-mount flags the kernel locks when a mount is inherited into a less privileged userns
LOCK_FLAGS = sc.MS_RDONLY | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_NOSUID | ATIME_FLAGS
# statfs f_flag (ST_*) -> MS_* (fs/statfs.c calculate_f_flags)
_ST_TO_MS = ((0x1, sc.MS_RDONLY), (0x2, sc.MS_NOSUID), (0x4, sc.MS_NODEV), (0x8, sc.MS_NOEXEC),
             (0x10, sc.MS_SYNCHRONOUS), (0x40, sc.MS_MANDLOCK), (0x400, sc.MS_NOATIME),
             (0x800, sc.MS_NODIRATIME), (0x1000, sc.MS_RELATIME), (0x2000, sc.MS_NOSYMFOLLOW))


class Options:
    """A mount's `options` split the way runc does: MS_* flags to set and to clear,
    propagation changes, recursive attributes, extensions, and the rest as fs data."""

    __slots__ = ("flags", "cleared", "propagation", "data", "rec_set", "rec_clr",
                 "copyup", "idmap")

    def __init__(self, options=()):
        self.flags = self.cleared = self.rec_set = self.rec_clr = 0
        self.propagation, self.data = [], []
        self.copyup = False
        self.idmap = None  # None, "idmap" or "ridmap"
        for o in options or ():
            if o in FLAG_OPTIONS:
                clear, f = FLAG_OPTIONS[o]
                if clear:
                    self.flags &= ~f
                    self.cleared |= f
                else:
                    self.flags |= f
                    self.cleared &= ~f
            elif o in PROPAGATION:
                self.propagation.append(PROPAGATION[o])
            elif o in REC_OPTIONS:
                clear, a = REC_OPTIONS[o]
                if clear:
                    # clearing one atime mode means back to the default (relatime):
                    # mount_setattr wants the whole MOUNT_ATTR__ATIME mask cleared
                    self.rec_clr |= MOUNT_ATTR__ATIME if (a & MOUNT_ATTR__ATIME) else a
                    self.rec_set &= ~a
                else:
                    self.rec_set |= a
                    if a & MOUNT_ATTR__ATIME == a:  # atime modes (relatime is 0)
                        self.rec_clr |= MOUNT_ATTR__ATIME
                        if a == MOUNT_ATTR_RELATIME:
                            self.rec_set &= ~MOUNT_ATTR__ATIME
                    else:
                        self.rec_clr &= ~a
            elif o == "tmpcopyup":
                self.copyup = True
            elif o in ("idmap", "ridmap"):
                self.idmap = o
            else:
                self.data.append(o)

    @property
    def is_bind(self):
        return bool(self.flags & sc.MS_BIND)

    @property
    def recursive(self):
        return bool(self.flags & sc.MS_REC)

    def data_string(self):
        return ",".join(self.data)


def parse_options(options):
    return Options(options)


def statfs_flags(path_or_fd):
    """The MS_* flags a mount has now (from statfs), strictatime made explicit."""
    f_flag = os.statvfs(path_or_fd).f_flag
    flags = 0
    for st, ms in _ST_TO_MS:
        if f_flag & st:
            flags |= ms
    if not flags & ATIME_ENUM:
        flags |= sc.MS_STRICTATIME
    return flags


# ---------------------------------------------------------------------------------------
# resolution inside the rootfs

_RESOLVE = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS
_have_openat2 = True
_O_PATH = os.O_PATH | os.O_CLOEXEC


def fd_path(fd):
    """/proc/self/fd/N for a descriptor; a path is returned as it is."""
    return f"/proc/self/fd/{fd}" if isinstance(fd, int) else fd


def open_in_root(rootfd, path, create=None):
    """An O_PATH descriptor of `path` resolved as if `rootfd` were "/": absolute and
    relative symlinks and ".." stay inside. `create` ("dir" or "file") makes what is
    missing, parents as directories (0755). Raises OSError."""
    global _have_openat2
    rel = path.lstrip("/") or "."
    if _have_openat2:
        for _ in range(16):
            try:
                return sc.openat2(rootfd, rel, os.O_PATH, 0, _RESOLVE)
            except OSError as e:
                if e.errno == errno.EAGAIN:  # a rename raced with the lookup: retry
                    continue
                if e.errno in (errno.ENOSYS, errno.E2BIG):
                    _have_openat2 = False  # kernel < 5.6: walk it ourselves
                    break
                if e.errno == errno.ENOENT and create:
                    break
                raise
    return _walk(rootfd, rel, create)


def _walk(rootfd, rel, create):
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    stack = []  # O_PATH fds of the directories walked below the root
    links = 0
    retries = 0
    try:
        while parts:
            name = parts[0]
            if name == "..":
                parts.pop(0)
                if stack:
                    os.close(stack.pop())
                continue
            cur = stack[-1] if stack else rootfd
            last = len(parts) == 1
            try:
                fd = os.open(name, _O_PATH | os.O_NOFOLLOW, dir_fd=cur)
            except FileNotFoundError:
                retries += 1
                if not create or retries > 64:
                    raise
                try:
                    if last and create == "file":
                        os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
                                         | os.O_CLOEXEC, 0o644, dir_fd=cur))
                    else:
                        os.mkdir(name, 0o755, dir_fd=cur)
                except FileExistsError:
                    pass
                continue  # look at it again
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                try:
                    if links > 40:
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), rel)
                    target = os.readlink("", dir_fd=fd)
                finally:
                    os.close(fd)
                parts.pop(0)
                if target.startswith("/"):
                    while stack:
                        os.close(stack.pop())
                parts[0:0] = [p for p in target.split("/") if p not in ("", ".")]
                continue
            if not last and not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), rel)
            parts.pop(0)
            stack.append(fd)
        return stack.pop() if stack else os.dup(rootfd)
    finally:
        for fd in stack:
            os.close(fd)


def split_parent(path):
    """("/a/b/c") -> ("/a/b", "c"); the name is never "", "." or ".."."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or parts[-1] == "..":
        return None, None
    return "/" + "/".join(parts[:-1]), parts[-1]


def path_of(fd):
    try:
        return os.readlink(fd_path(fd))
    except OSError:
        return "?"


# ---------------------------------------------------------------------------------------
# errors

def why(e):
    """'call: strerror' from an OSError raised by pyrunc.syscalls (whose text is
    "call(args): strerror"), or just the strerror of one raised by os."""
    text = e.strerror or ""
    msg = os.strerror(e.errno) if e.errno else text
    if "(" in text and text.endswith(msg):
        return f"{text.split('(', 1)[0]}: {msg}"
    return msg or str(e)


def fail(what, e):
    raise MountError(f"{what}: {why(e) if isinstance(e, OSError) else e}") from None


def describe(source, dest, fstype):
    """What a mount is, for errors ("mount SRC to DEST (type T)", or "(bind)" without fstype)."""
    return f"mount {source or fstype or 'none'} to {dest} ({'type ' + fstype if fstype else 'bind'})"


# ---------------------------------------------------------------------------------------
# mounting through descriptors

def mount_fd(source, fd, fstype, flags, data=None):
    sc.mount(source, fd_path(fd), fstype, flags, data or None)


def set_propagation(fd, props):
    for p in props:
        sc.mount(None, fd_path(fd), None, p)


def set_rec_attr(fd, rec_set, rec_clr):
    if rec_set or rec_clr:
        sc.mount_setattr(fd, "", sc.AT_EMPTY_PATH | sc.AT_RECURSIVE, rec_set, rec_clr)


def remount_bind(fd, flags, cleared=0):
    """Apply per-mount flags to the bind mount at fd (MS_BIND|MS_REMOUNT), as runc does:
    first exactly the requested flags; if the kernel refuses (flags locked by a user
    namespace), again with the locked flags the mount has, unless the request clears one.
    With "remount" among the options the flags are applied on top of the current ones."""
    target = fd_path(fd)
    want = (flags & ~(sc.MS_REC | sc.MS_BIND | sc.MS_REMOUNT)) | sc.MS_BIND | sc.MS_REMOUNT
    if flags & sc.MS_REMOUNT:
        want |= statfs_flags(fd) & ~cleared & ~(ATIME_ENUM if flags & ATIME_ENUM else 0)
    try:
        sc.mount(None, target, None, want)
        return
    except OSError as e:
        if e.errno != errno.EPERM:
            raise
        first = e
    have = statfs_flags(fd)
    if have & cleared & LOCK_FLAGS:
        raise first
    if flags & ATIME_FLAGS and flags & ATIME_FLAGS != have & ATIME_FLAGS:
        raise first
    sc.mount(None, target, None, want | (have & LOCK_FLAGS))


def remount_readonly(fd, keep_all=False):
    """Make the mount at fd (or path) read-only keeping its locked flags, or all of them."""
    have = statfs_flags(fd)
    keep = have if keep_all else have & LOCK_FLAGS
    sc.mount(None, fd_path(fd), None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | keep)


# ---------------------------------------------------------------------------------------
# idmapped mounts

def userns_fd(uid_mappings, gid_mappings):
    """A descriptor of a new, empty user namespace with the given mappings, made by a
    short-lived child (open_tree + mount_setattr(MOUNT_ATTR_IDMAP) need one)."""
    r, w = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: unshare, tell our pid (as the host's /proc sees it), wait
        code = 1
        try:
            os.close(w)
            os.close(r2)
            sc.unshare(sc.CLONE_NEWUSER)
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
    flags = sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC | sc.AT_EMPTY_PATH
    if recursive_bind:
        flags |= sc.AT_RECURSIVE
    tree = sc.open_tree(src_fd, "", flags)
    try:
        ns = userns_fd(uid_mappings, gid_mappings)
        try:
            sc.mount_setattr(tree, "", sc.AT_EMPTY_PATH | (sc.AT_RECURSIVE if recursive_idmap else 0),
                             MOUNT_ATTR_IDMAP, 0, 0, ns)
        finally:
            os.close(ns)
    except BaseException:
        os.close(tree)
        raise
    return tree


def cloned_tree(path, recursive):
    """A detached bind-mount tree of path (open_tree OPEN_TREE_CLONE), an fd."""
    flags = sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC
    return sc.open_tree(-100, path, flags | (sc.AT_RECURSIVE if recursive else 0))  # AT_FDCWD


def attach_tree(tree_fd, target_fd):
    sc.move_mount(tree_fd, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)


# ---------------------------------------------------------------------------------------
# tmpcopyup

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
