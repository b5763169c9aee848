"""The ``pyrunc spec`` template: what ``runc spec`` (1.1) writes.

Deliberate differences from runc: ``ociVersion`` is the runtime-spec version pyrunc
implements and ``hostname`` is "pyrunc". Everything else, including key order and the
tab-indented JSON without a trailing newline, is runc's.
"""

import os

from pyrunc.errors import PyruncError

#: runtime-spec version written as ociVersion (== features' ociVersionMax)
OCI_VERSION = "1.3.0"

CONFIG_FILE = "config.json"

_DEFAULT_CAPS = ("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")


def _mount(destination, type_, source, options=None):
    m = {"destination": destination, "type": type_, "source": source}
    if options is not None:
        m["options"] = list(options)
    return m


def default_config(rootless: bool = False) -> dict:
    """A fresh config.json document as ``runc spec [--rootless]`` writes it.

    Keys are in runc's (Go struct) order. With ``rootless``: no network namespace, a
    user namespace mapping container root to the current euid/egid, /sys rbind-mounted
    from the host, no uid=/gid= mount options, no linux.resources.
    """
    caps = list(_DEFAULT_CAPS)
    mounts = [
        _mount("/proc", "proc", "proc"),
        _mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        _mount("/dev/pts", "devpts", "devpts",
               ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
        _mount("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
        _mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        _mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
        _mount("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "relatime", "ro"]),
    ]
    namespaces = ["pid", "network", "ipc", "uts", "mount"]
    linux = {}
    if rootless:
        namespaces = [ns for ns in namespaces if ns not in ("network", "user")] + ["user"]
        linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
        fixed = []
        for m in mounts:
            if m["destination"] == "/sys":
                fixed.append(_mount("/sys", "none", "/sys", ["rbind", "nosuid", "noexec", "nodev", "ro"]))
                continue
            if "options" in m:
                m["options"] = [o for o in m["options"] if not o.startswith(("uid=", "gid="))]
            fixed.append(m)
        mounts = fixed
    else:
        linux["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    linux["namespaces"] = [{"type": ns} for ns in namespaces]
    linux["maskedPaths"] = [
        "/proc/acpi",
        "/proc/asound",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/sys/firmware",
        "/proc/scsi",
    ]
    linux["readonlyPaths"] = [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ]
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": list(caps),
                "effective": list(caps),
                "permitted": list(caps),
                "ambient": list(caps),
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "pyrunc",
        "mounts": mounts,
        "linux": linux,
    }


def dumps_config(config: dict) -> str:
    """Serialize a config the way ``runc spec`` does: tab indent, no trailing newline."""
    import json

    return json.dumps(config, indent="\t", ensure_ascii=False)


def default_config_json(rootless: bool = False) -> str:
    """``dumps_config(default_config(rootless))``: the exact bytes ``pyrunc spec`` writes."""
    return dumps_config(default_config(rootless))


def write_default_config(bundle_dir=".", rootless: bool = False) -> str:
    """Write the default config.json into ``bundle_dir`` and return its path.

    Refuses (PyruncError "File config.json exists. Remove it first", runc's wording)
    when config.json already exists, also as a dangling symlink. The file appears
    atomically and complete (temp file + link(2)); its mode is 0666 minus the umask,
    as runc's.
    """
    bundle_dir = os.fspath(bundle_dir)
    target = os.path.join(bundle_dir, CONFIG_FILE)
    exists_error = f"File {CONFIG_FILE} exists. Remove it first"
    if not os.path.isdir(bundle_dir):
        if os.path.lexists(bundle_dir):
            raise PyruncError(f"bundle {bundle_dir}: not a directory")
        raise PyruncError(f"bundle {bundle_dir}: no such file or directory")
    if os.path.lexists(target):
        raise PyruncError(exists_error)

    data = default_config_json(rootless).encode()
    tmp = os.path.join(bundle_dir, f".{CONFIG_FILE}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except OSError as e:
        raise PyruncError(f"open {target}: {e.strerror}") from None
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            # link(2) never replaces: a config.json created meanwhile is not clobbered.
            os.link(tmp, target)
        except FileExistsError:
            raise PyruncError(exists_error) from None
        except OSError:
            # Filesystems without hard links: rename (re-checked, tiny window).
            if os.path.lexists(target):
                raise PyruncError(exists_error) from None
            os.rename(tmp, target)
    except PyruncError:
        raise
    except OSError as e:
        raise PyruncError(f"write {target}: {e.strerror}") from None
    finally:
        try:
            os.unlink(tmp)  # gone already after a successful rename
        except OSError:
            pass
    _fsync_dir(bundle_dir)
    return target


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
