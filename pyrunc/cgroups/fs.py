"""Helpers shared by the v1 and v2 cgroup managers.

Only light standard-library modules and pyrunc's own are imported: this module
is on the create hot path.
"""

import errno
import os
import time

from pyrunc.errors import CgroupError
from pyrunc import log
from pyrunc.util import procfs

MAX_UINT64 = (1 << 64) - 1

# Every cgroup v1 controller the kernel knows of (anything else in a cgroup
# mount's super options is a mount option such as "rw" or "clone_children").
V1_SUBSYSTEMS = frozenset((
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls",
    "net_prio", "blkio", "perf_event", "hugetlb", "pids", "rdma", "misc", "debug",
))


def error(controller, msg, err=None):
    return CgroupError(f"cgroup {controller}: {msg}", err)


def warn(msg):
    """A warning in runc's log format (--log/--log-format; json: held until the command
    succeeds, see pyrunc.log)."""
    log.warning(msg)


def note(msg):
    """What runc ignores silently (a value with no file on this cgroup version): --debug only."""
    log.debug(msg)


def _strerror(e):
    return os.strerror(e.errno) if e.errno else str(e)


# --------------------------------------------------------------------------
# file access


def write_file(controller, dirpath, name, value):
    """Write ``value`` to ``dirpath/name`` in one write(2), like runc.

    Errors become ``cgroup <controller>: writing "<value>" to <name>: <strerror>``.
    """
    data = value if isinstance(value, str) else str(value)
    try:
        fd = os.open(os.path.join(dirpath, name), os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except OSError as e:
        raise error(controller, f'writing "{data}" to {name}: {_strerror(e)}', e.errno) from None
    try:
        # surrogateescape: the bytes of a command-line value that is not UTF-8
        os.write(fd, data.encode("utf-8", "surrogateescape"))
    except OSError as e:
        raise error(controller, f'writing "{data}" to {name}: {_strerror(e)}', e.errno) from None
    except UnicodeEncodeError:
        raise error(controller, f'writing "{data}" to {name}: not valid text') from None
    finally:
        os.close(fd)


def read_file(dirpath, name):
    with open(os.path.join(dirpath, name), "rb") as f:
        return f.read().decode()


def try_read(dirpath, name):
    """File contents, or None if the file does not exist (ENOENT/ENODEV)."""
    try:
        return read_file(dirpath, name)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENODEV, errno.ENOTDIR):
            return None
        raise


def parse_uint(s):
    """runc's fscommon.ParseUint: "max" and overflow -> MAX_UINT64, negatives -> 0."""
    s = s.strip()
    if s == "max":
        return MAX_UINT64
    v = int(s)
    if v < 0:
        return 0
    return min(v, MAX_UINT64)


def read_uint(dirpath, name):
    """Unsigned value of a one-value file, None if the file does not exist."""
    s = try_read(dirpath, name)
    if s is None:
        return None
    try:
        return parse_uint(s)
    except ValueError:
        return None


def parse_flat_keyed(text):
    """ "key value" lines -> {key: uint}. Lines that do not parse are skipped."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue
        try:
            out[parts[0]] = parse_uint(parts[1])
        except ValueError:
            continue
    return out


def parse_range_list(s):
    """ "0-3,7" -> [0, 1, 2, 3, 7] (cpuset lists). Bad input -> []."""
    out = []
    for part in s.strip().split(","):
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = part.split("-", 1)
                out.extend(range(int(lo), int(hi) + 1))
            else:
                out.append(int(part))
        except ValueError:
            return []
    return out


# --------------------------------------------------------------------------
# paths


def clean_path(path):
    """runc's utils.CleanPath: lexically clean; relative paths cannot escape upwards."""
    if not path:
        return ""
    path = os.path.normpath(path)
    if not path.startswith("/"):
        path = os.path.normpath("/" + path)
        path = os.path.relpath(path, "/")
        if path == ".":
            return ""
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    return path


def parse_mountinfo(text):
    """Cgroup mounts in mountinfo: list of (mountpoint, root, fstype, super_options)."""
    return [(m["mountpoint"], m["root"], m["fstype"], m["super"].split(","))
            for m in procfs.parse_mountinfo(text, ("cgroup", "cgroup2"))]


def v1_mounts(mountinfo_text=None):
    """{subsystem: (mountpoint, root)} for the cgroup v1 hierarchies (first mount
    wins); a cgroup2 mount of a hybrid host has the key ""."""
    if mountinfo_text is None:
        mountinfo_text = procfs.read_text("/proc/self/mountinfo")
    out = {}
    for mnt, root, fstype, opts in parse_mountinfo(mountinfo_text):
        if fstype == "cgroup2":
            # Hybrid host: the (mostly empty) v2 hierarchy, joined as runc does.
            out.setdefault("", (mnt, root))
            continue
        for o in opts:
            if o in V1_SUBSYSTEMS or o.startswith("name="):
                out.setdefault(o, (mnt, root))
    return out


def own_cgroups(text=None):
    """/proc/self/cgroup -> {subsystem: path}; the cgroup v2 entry has the key ""."""
    if text is None:
        text = procfs.read_text("/proc/self/cgroup")
    return {c: path for ctrls, path in procfs.parse_cgroup(text) for c in ctrls or ("",)}


def hugepage_sizes(sysfs="/sys/kernel/mm/hugepages"):
    """Page sizes the way runc names them: hugepages-2048kB -> "2MB"."""
    try:
        names = sorted(os.listdir(sysfs))
    except OSError:
        return []
    out = []
    for n in names:
        if not n.startswith("hugepages-") or not n.endswith("kB"):
            continue
        try:
            size = int(n[len("hugepages-"):-2]) * 1024
        except ValueError:
            continue
        out.append((size, _size_name(size)))
    return [name for _, name in sorted(out)]


def _size_name(size):
    units = ("B", "KB", "MB", "GB", "TB", "PB")
    i = 0
    v = float(size)
    while v >= 1024 and i < len(units) - 1:
        v /= 1024
        i += 1
    return f"{v:g}{units[i]}"


# --------------------------------------------------------------------------
# removal


def rmdir_created(created, leaves, timeout=1.0):
    """rmdir the directories in ``created``, deepest first; never any other.

    ``leaves`` are the container's own cgroup directories: sub-cgroups made inside
    one of them that we created (e.g. by the container in its own cgroup namespace)
    are removed first, as runc does. A created parent that still has other
    sub-cgroups (another container now shares it) is left in place without error.
    EBUSY on a directory without sub-cgroups (processes still draining) is retried
    with backoff for about ``timeout`` seconds.

    Returns (dirs that could not be removed, last error message or None).
    """
    leaves = set(leaves)
    ours = set(created)
    shared = set()
    pending = sorted(created, key=lambda p: p.count("/"), reverse=True)
    deadline = time.monotonic() + timeout
    delay = 0.005
    last_err = None
    while True:
        busy = []
        failed = []
        for d in pending:
            try:
                if d in leaves:
                    _remove_subcgroups(d)
                os.rmdir(d)
            except FileNotFoundError:
                continue
            except OSError as e:
                if (e.errno == errno.EBUSY and d not in leaves
                        and any(x not in ours or x in shared for x in _subdirs(d))):
                    shared.add(d)  # a shared parent: not ours to wait for
                    continue
                last_err = f"removing {d}: {_strerror(e)}"
                (busy if e.errno == errno.EBUSY else failed).append(d)
        if failed:
            return failed + busy, last_err
        if not busy:
            return [], None
        if time.monotonic() >= deadline:
            return busy, last_err
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
        pending = busy


def _subdirs(d):
    try:
        with os.scandir(d) as it:
            return [e.path for e in it if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _remove_subcgroups(d):
    for sub in _subdirs(d):
        _remove_subcgroups(sub)
        try:
            os.rmdir(sub)
        except FileNotFoundError:
            pass


def missing_dirs(leaves):
    """The directories from each (mount point, directory) pair's mount point down to
    the directory that do not exist, parents first, each once."""
    out = []
    for mnt, leaf in leaves:
        missing = []
        d = leaf
        below = mnt.rstrip("/") + "/"
        while d.startswith(below) and len(d) > len(below) and not os.access(d, os.F_OK):
            missing.append(d)
            d = d[:d.rindex("/")]
        out.extend(m for m in reversed(missing) if m not in out)
    return out


def make_dir(controller, path, created):
    """mkdir a cgroup directory (0755) unless it exists; one it made goes on `created`
    (what rmdir_created undoes)."""
    try:
        os.mkdir(path, 0o755)
        created.append(path)
    except FileExistsError:
        pass
    except OSError as e:
        raise error(controller, f"creating {path}: {os.strerror(e.errno)}", e.errno) from None


def write_procs(controller, dirpath, pid):
    """Write a pid to cgroup.procs, retrying EINVAL (task still in TASK_NEW) like runc."""
    for i in range(5):
        try:
            write_file(controller, dirpath, "cgroup.procs", str(pid))
            return
        except CgroupError as e:
            if e.errno != errno.EINVAL or i == 4:
                raise
            time.sleep(0.03)


def read_procs(dirpath, recursive=True):
    """All pids in cgroup.procs of ``dirpath`` (and its sub-cgroups)."""
    pids = []
    stack = [dirpath]
    while stack:
        d = stack.pop()
        s = try_read(d, "cgroup.procs")
        if s is None:
            continue
        pids.extend(int(x) for x in s.split())
        if recursive:
            stack.extend(_subdirs(d))
    return pids


def cpu_shares_to_weight(shares):
    """cgroup v1 cpu.shares [2..262144] -> v2 cpu.weight [1..10000].

    The formula of current runc (opencontainers/cgroups >= 0.0.3): a quadratic in
    log2(shares) mapping 2 -> 1, 1024 -> 100 (both defaults) and 262144 -> 10000.
    """
    import math

    if not shares:
        return 0
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    lg = math.log2(shares)
    exponent = (lg * lg + 125 * lg) / 612.0 - 7.0 / 34.0
    return int(math.ceil(10 ** exponent))


def blkio_weight_to_io_weight(w):
    """runc's ConvertBlkIOToIOWeightValue: [10..1000] -> [1..10000]."""
    if not w:
        return 0
    return 1 + (w - 10) * 9999 // 990
