"""Namespaces: types, joining by path (setns), unsharing, id mappings, time offsets."""
import _socket
import fcntl
import os
import stat
import sys

from pyrunc.errors import PyruncError
from pyrunc.native import constants as C
from pyrunc.native import syscalls as sc

# runtime-spec namespace type -> (clone flag, /proc/PID/ns name)
TYPES = {
    "user": (C.CLONE_NEWUSER, "user"),
    "ipc": (C.CLONE_NEWIPC, "ipc"),
    "uts": (C.CLONE_NEWUTS, "uts"),
    "network": (C.CLONE_NEWNET, "net"),
    "pid": (C.CLONE_NEWPID, "pid"),
    "mount": (C.CLONE_NEWNS, "mnt"),
    "cgroup": (C.CLONE_NEWCGROUP, "cgroup"),
    "time": (C.CLONE_NEWTIME, "time"),
}
# setns order: user first (caps in the namespaces it owns), mount last (paths stay valid).
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


def config_namespaces(config):
    """{type: path or None} from linux.namespaces."""
    return {ns["type"]: ns.get("path") or None
            for ns in (config.get("linux") or {}).get("namespaces") or ()}


def open_paths(nsmap):
    """Open the namespaces to join, before anything changes (errors name the path)."""
    fds = []
    for t in JOIN_ORDER:
        path = nsmap.get(t)
        if path:
            try:
                fds.append((t, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
            except OSError as e:
                raise PyruncError(f"opening {t} namespace {path}: {e.strerror}") from None
    return fds


def join(fds):
    for t, fd in fds:
        try:
            sc.setns(fd, TYPES[t][0])
        except OSError as e:
            raise PyruncError(f"joining {t} namespace: {e.strerror}") from None
        os.close(fd)


def unshare_flags(nsmap, exclude=()):
    flags = 0
    for t, path in nsmap.items():
        if path is None and t not in exclude:
            flags |= TYPES[t][0]
    return flags


def unshare_new(nsmap, exclude=()):
    """unshare(2) the config's new namespaces but those in exclude; a one-line error."""
    flags = unshare_flags(nsmap, exclude)
    if flags:
        try:
            sc.unshare(flags)
        except OSError as e:
            types = sorted(t for t, p in nsmap.items() if p is None and t not in exclude)
            raise PyruncError(f"unshare namespaces {types}: {e.strerror}") from None


def _map_text(mappings):
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in mappings)


def write_id_mappings(pid, linux, deny_setgroups=False):
    """Parent side: write /proc/PID/{uid,gid}_map for a child that unshared a user ns."""
    files = [("setgroups", "deny")] if deny_setgroups else []
    for kind in ("uid", "gid"):
        maps = linux.get(f"{kind}Mappings") or []
        if maps:
            files.append((f"{kind}_map", _map_text(maps)))
    for name, text in files:
        try:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(text)
        except OSError as e:
            raise PyruncError(f"user namespace: writing {name} {text.strip()!r}: "
                              f"{e.strerror}") from None


def write_time_offsets(offsets):
    """linux.timeOffsets {"monotonic": {"secs", "nanosecs"}, "boottime": ...}; before any fork."""
    lines = "".join(f"{clock} {o.get('secs', 0)} {o.get('nanosecs', 0)}\n"
                    for clock, o in offsets.items())
    try:
        with open("/proc/self/timens_offsets", "w") as f:
            f.write(lines)
    except OSError as e:
        raise PyruncError(f"writing time namespace offsets: {e.strerror}") from None


def loopback_up():
    """Bring lo up with one ioctl (SIOCSIFFLAGS) in a new network namespace."""
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        # struct ifreq (40 bytes): name[16], short flags
        flags = C.IFF_UP | C.IFF_LOOPBACK | C.IFF_RUNNING
        ifr = b"lo".ljust(16, b"\0") + flags.to_bytes(2, sys.byteorder) + bytes(22)
        fcntl.ioctl(s.fileno(), C.SIOCSIFFLAGS, ifr)
    finally:
        s.close()


def host_id(mappings, cid):
    """The host id that container id `cid` maps to, or None."""
    for m in mappings or ():
        if m["containerID"] <= cid < m["containerID"] + m["size"]:
            return m["hostID"] + cid - m["containerID"]
    return None


def give_stdio_to_container(linux, user):
    """With a new user namespace, let the container's user reopen its stdio (e.g.
    /dev/stdout) by giving it the pipes and sockets it inherits, as runc does. Never a
    device node or file: chowning the host's /dev/null or a tty would change it for
    everyone."""
    uid = host_id(linux.get("uidMappings"), user.get("uid", 0))
    gid = host_id(linux.get("gidMappings"), user.get("gid", 0))
    if uid is None or gid is None:
        return
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode):
            try:
                os.fchown(fd, uid, gid)
            except OSError:
                pass  # as runc: not fatal
