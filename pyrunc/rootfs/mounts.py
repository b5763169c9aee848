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

from pyrunc.errors import MountError
from pyrunc.native import constants as C
from pyrunc.native import syscalls as sc

# option -> (clears the flag, MS_* flag): runc's table (specconv), mount(8) semantics
FLAG_OPTIONS = {
    "acl": (False, C.MS_POSIXACL), "noacl": (True, C.MS_POSIXACL),
    "async": (True, C.MS_SYNCHRONOUS), "sync": (False, C.MS_SYNCHRONOUS),
    "atime": (True, C.MS_NOATIME), "noatime": (False, C.MS_NOATIME),
    "bind": (False, C.MS_BIND), "rbind": (False, C.MS_BIND | C.MS_REC),
    "defaults": (False, 0),
    "dev": (True, C.MS_NODEV), "nodev": (False, C.MS_NODEV),
    "diratime": (True, C.MS_NODIRATIME), "nodiratime": (False, C.MS_NODIRATIME),
    "dirsync": (False, C.MS_DIRSYNC),
    "exec": (True, C.MS_NOEXEC), "noexec": (False, C.MS_NOEXEC),
    "iversion": (False, C.MS_I_VERSION), "noiversion": (True, C.MS_I_VERSION),
    "lazytime": (False, C.MS_LAZYTIME), "nolazytime": (True, C.MS_LAZYTIME),
    "loud": (True, C.MS_SILENT), "silent": (False, C.MS_SILENT),
    "mand": (False, C.MS_MANDLOCK), "nomand": (True, C.MS_MANDLOCK),
    "relatime": (False, C.MS_RELATIME), "norelatime": (True, C.MS_RELATIME),
    "strictatime": (False, C.MS_STRICTATIME), "nostrictatime": (True, C.MS_STRICTATIME),
    "remount": (False, C.MS_REMOUNT),
    "ro": (False, C.MS_RDONLY), "rw": (True, C.MS_RDONLY),
    "suid": (True, C.MS_NOSUID), "nosuid": (False, C.MS_NOSUID),
    "symfollow": (True, C.MS_NOSYMFOLLOW), "nosymfollow": (False, C.MS_NOSYMFOLLOW),
}
# recursive option -> (clears the attribute, MOUNT_ATTR_*), applied with mount_setattr(AT_RECURSIVE)
REC_OPTIONS = {
    "rro": (False, C.MOUNT_ATTR_RDONLY), "rrw": (True, C.MOUNT_ATTR_RDONLY),
    "rnosuid": (False, C.MOUNT_ATTR_NOSUID), "rsuid": (True, C.MOUNT_ATTR_NOSUID),
    "rnodev": (False, C.MOUNT_ATTR_NODEV), "rdev": (True, C.MOUNT_ATTR_NODEV),
    "rnoexec": (False, C.MOUNT_ATTR_NOEXEC), "rexec": (True, C.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, C.MOUNT_ATTR_NODIRATIME), "rdiratime": (True, C.MOUNT_ATTR_NODIRATIME),
    "rrelatime": (False, C.MOUNT_ATTR_RELATIME), "rnorelatime": (True, C.MOUNT_ATTR_RELATIME),
    "rnoatime": (False, C.MOUNT_ATTR_NOATIME), "ratime": (True, C.MOUNT_ATTR_NOATIME),
    "rstrictatime": (False, C.MOUNT_ATTR_STRICTATIME), "rnostrictatime": (True, C.MOUNT_ATTR_STRICTATIME),
    "rnosymfollow": (False, C.MOUNT_ATTR_NOSYMFOLLOW), "rsymfollow": (True, C.MOUNT_ATTR_NOSYMFOLLOW),
}
PROPAGATION = {
    "private": C.MS_PRIVATE, "rprivate": C.MS_PRIVATE | C.MS_REC,
    "shared": C.MS_SHARED, "rshared": C.MS_SHARED | C.MS_REC,
    "slave": C.MS_SLAVE, "rslave": C.MS_SLAVE | C.MS_REC,
    "unbindable": C.MS_UNBINDABLE, "runbindable": C.MS_UNBINDABLE | C.MS_REC,
}

ATIME_ENUM = C.MS_NOATIME | C.MS_RELATIME | C.MS_STRICTATIME
ATIME_FLAGS = ATIME_ENUM | C.MS_NODIRATIME
# per-mount flags the kernel locks when a mount is inherited into a less privileged userns
LOCK_FLAGS = C.MS_RDONLY | C.MS_NODEV | C.MS_NOEXEC | C.MS_NOSUID | ATIME_FLAGS


IDMAP_OPTIONS = ("idmap", "ridmap")


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
                    # mount_setattr wants the whole C.MOUNT_ATTR__ATIME mask cleared
                    self.rec_clr |= C.MOUNT_ATTR__ATIME if (a & C.MOUNT_ATTR__ATIME) else a
                    self.rec_set &= ~a
                else:
                    self.rec_set |= a
                    if a & C.MOUNT_ATTR__ATIME == a:  # atime modes (relatime is 0)
                        self.rec_clr |= C.MOUNT_ATTR__ATIME
                        if a == C.MOUNT_ATTR_RELATIME:
                            self.rec_set &= ~C.MOUNT_ATTR__ATIME
                    else:
                        self.rec_clr &= ~a
            elif o == "tmpcopyup":
                self.copyup = True
            elif o in IDMAP_OPTIONS:
                self.idmap = o
            else:
                self.data.append(o)

    @property
    def is_bind(self):
        return bool(self.flags & C.MS_BIND)

    @property
    def recursive(self):
        return bool(self.flags & C.MS_REC)

    def data_string(self):
        return ",".join(self.data)


def wants_idmap(m):
    """Whether mount m asks for an idmapped mount: its own mappings, or an idmap/ridmap
    option."""
    return bool(m.get("uidMappings") or m.get("gidMappings")) or \
        any(o in IDMAP_OPTIONS for o in m.get("options") or ())


def has_idmapped_mounts(config):
    return any(wants_idmap(m) for m in config.get("mounts") or ())


def parse_options(options):
    return Options(options)


def statfs_flags(path_or_fd):
    """The MS_* flags a mount has now (from statfs), strictatime made explicit."""
    f_flag = os.statvfs(path_or_fd).f_flag
    flags = 0
    for st, ms in C.ST_TO_MS:
        if f_flag & st:
            flags |= ms
    if not flags & ATIME_ENUM:
        flags |= C.MS_STRICTATIME
    return flags


# ---------------------------------------------------------------------------------------
# resolution inside the rootfs

_RESOLVE = C.RESOLVE_IN_ROOT | C.RESOLVE_NO_MAGICLINKS
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
    """'call: strerror' from an OSError raised by pyrunc.native.syscalls (whose text is
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
        sc.mount_setattr(fd, "", C.AT_EMPTY_PATH | C.AT_RECURSIVE, rec_set, rec_clr)


def remount_bind(fd, flags, cleared=0):
    """Apply per-mount flags to the bind mount at fd (MS_BIND|MS_REMOUNT), as runc does:
    first exactly the requested flags; if the kernel refuses (flags locked by a user
    namespace), again with the locked flags the mount has, unless the request clears one.
    With "remount" among the options the flags are applied on top of the current ones."""
    target = fd_path(fd)
    want = (flags & ~(C.MS_REC | C.MS_BIND | C.MS_REMOUNT)) | C.MS_BIND | C.MS_REMOUNT
    if flags & C.MS_REMOUNT:
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
    sc.mount(None, fd_path(fd), None, C.MS_BIND | C.MS_REMOUNT | C.MS_RDONLY | keep)
