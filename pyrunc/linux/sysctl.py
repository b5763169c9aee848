"""linux.sysctl with the namespace checks runc makes (config-linux.md "Sysctl").

A sysctl is accepted only when it belongs to a namespace the container does not share
with the runtime:
- kernel.msgmax, msgmnb, msgmni, sem, shmall, shmmax, shmmni, shm_rmid_forced and
  fs.mqueue.*: an ipc namespace (new, or joined by path);
- net.*: a network namespace other than the runtime's;
- kernel.domainname: a uts namespace; kernel.hostname is refused as runc does (it would
  contradict the `hostname` field, which is the way to set it);
everything else is refused. Keys may also use sysctl(8)'s slash form
(net/ipv4/conf/eth0.100/forwarding). validate(config) runs in the runtime (it can tell a joined
namespace from its own); apply() runs in the container's init after pivot_root.
"""
import errno
import os

from pyrunc.errors import SysctlError
from pyrunc.native import constants as C

IPC_SYSCTLS = frozenset((
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
    "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
))
_SWAP = str.maketrans("/.", "./")
_NS_FILE = {"network": "net", "ipc": "ipc", "uts": "uts"}


def _is_own_ns(nstype, path):
    """Whether the namespace at `path` is the calling process's own (the "host" one)."""
    try:
        a = os.stat(path)
        b = os.stat(f"/proc/self/ns/{_NS_FILE[nstype]}")
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def normalize(key):
    """sysctl(8)'s slash form (a '/' before any '.') -> the dotted form."""
    for ch in key:
        if ch == ".":
            return key
        if ch == "/":
            return key.translate(_SWAP)
    return key


def proc_path(key):
    """/proc/sys file of a sysctl key (dotted or slash form)."""
    return "/proc/sys/" + normalize(key).translate(_SWAP)  # in the dotted form "/" is a "."


def path_parts(key):
    """The file name components under /proc/sys, or None when one is ".." (in the dotted
    form "//"): such a key would leave the namespaced subtree its prefix names, e.g.
    net.//.kernel.core_pattern (the "cr8escape" class). Empty and "." components name
    nothing and are dropped, as the kernel's path walk drops them for runc."""
    parts = []
    for part in normalize(key).split("."):
        part = part.replace("/", ".")
        if part == ".." or "\0" in part:
            return None
        if part not in ("", "."):
            parts.append(part)
    return parts



def problem(key, separate):
    """Why sysctl `key` may not be set (runc's rules), or None. separate(nstype) tells
    whether the container has a namespace of that type other than the runtime's."""
    if path_parts(key) is None:
        return 'is not a sysctl name (a ".." component leaves its namespace\'s subtree)'
    key = normalize(key)  # runc's rules match the name as written, prefix or whole
    if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
        if separate("ipc"):
            return None
        return 'needs the container\'s own IPC namespace ("ipc" in linux.namespaces)'
    if key.startswith("net."):
        if separate("network"):
            return None
        return 'needs the container\'s own network namespace ("network" in linux.namespaces)'
    if key in ("kernel.hostname", "kernel.domainname"):
        if not separate("uts"):
            return 'needs the container\'s own UTS namespace ("uts" in linux.namespaces)'
        if key == "kernel.hostname":
            return 'conflicts with the "hostname" field; set that instead'
        return None
    return "is not namespaced: it cannot be set for a container"


def check(sysctls, nsmap, hostname=None, compare_host=False):
    """Raise SysctlError for the first sysctl the namespaces do not allow.
    nsmap: {type: path or None (new)} as namespaces.config_namespaces() returns."""

    def separate(nstype):
        if nstype not in nsmap:
            return False
        path = nsmap[nstype]
        return path is None or not (compare_host and _is_own_ns(nstype, path))

    for key in sysctls or {}:
        why = problem(key, separate)
        if why:
            raise SysctlError(f"linux.sysctl {normalize(key)}: {why}")


def validate(config):
    """Runtime side, before the container starts (joined namespaces compared with ours)."""
    linux = config.get("linux") or {}
    sysctls = linux.get("sysctl")
    if not sysctls:
        return
    nsmap = {ns["type"]: ns.get("path") or None for ns in linux.get("namespaces") or ()}
    check(sysctls, nsmap, config.get("hostname"), compare_host=True)


def apply(sysctls, nsmap, hostname=None):
    """Container side (the init, after pivot_root, in its namespaces): check, then write
    /proc/sys/<key with dots as slashes>."""
    if not sysctls:
        return
    check(sysctls, nsmap, hostname)
    base = None
    try:
        for key, value in sysctls.items():
            path, parts = proc_path(key), path_parts(key)
            if parts is None:
                raise SysctlError(f"linux.sysctl {key}: is not a sysctl name")
            try:
                if base is None:
                    base = os.open("/proc/sys", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                fd = _open_beneath(base, "/".join(parts))
            except OSError as e:
                raise SysctlError(f"linux.sysctl {key}={value}: open {path}: {e.strerror}") from None
            _write(fd, key, value, path)
    finally:
        if base is not None:
            os.close(base)


def _open_beneath(base, rel):
    """Open /proc/sys/<rel> for writing without leaving /proc/sys nor following links
    (check() already refused "..": this is the second line of defence)."""
    from pyrunc.native import syscalls as sc

    try:
        return sc.openat2(base, rel, os.O_WRONLY, 0, C.RESOLVE_BENEATH | C.RESOLVE_NO_SYMLINKS |
                          C.RESOLVE_NO_MAGICLINKS)
    except OSError as e:
        if e.errno not in (errno.ENOSYS, errno.E2BIG):  # kernel < 5.6 has no openat2
            raise
    return os.open(rel, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=base)


def _write(fd, key, value, path):
    try:
        os.write(fd, str(value).encode())
    except OSError as e:
        raise SysctlError(f"linux.sysctl {key}={value}: write {path}: {e.strerror}") from None
    finally:
        os.close(fd)
