"""Linux capability names <-> numbers (linux/capability.h), and the host's last cap.

Imports only errors, log and native.constants (pure Python), and native.syscalls when
it asks the host: it is on the create/exec hot path.
"""

from pyrunc.errors import ConfigError
from pyrunc.native import constants as C
from pyrunc import log

# Kernel numbering, in order (index == capability number).
_NAMES = (
    "CAP_CHOWN",  # 0
    "CAP_DAC_OVERRIDE",  # 1
    "CAP_DAC_READ_SEARCH",  # 2
    "CAP_FOWNER",  # 3
    "CAP_FSETID",  # 4
    "CAP_KILL",  # 5
    "CAP_SETGID",  # 6
    "CAP_SETUID",  # 7
    "CAP_SETPCAP",  # 8
    "CAP_LINUX_IMMUTABLE",  # 9
    "CAP_NET_BIND_SERVICE",  # 10
    "CAP_NET_BROADCAST",  # 11
    "CAP_NET_ADMIN",  # 12
    "CAP_NET_RAW",  # 13
    "CAP_IPC_LOCK",  # 14
    "CAP_IPC_OWNER",  # 15
    "CAP_SYS_MODULE",  # 16
    "CAP_SYS_RAWIO",  # 17
    "CAP_SYS_CHROOT",  # 18
    "CAP_SYS_PTRACE",  # 19
    "CAP_SYS_PACCT",  # 20
    "CAP_SYS_ADMIN",  # 21
    "CAP_SYS_BOOT",  # 22
    "CAP_SYS_NICE",  # 23
    "CAP_SYS_RESOURCE",  # 24
    "CAP_SYS_TIME",  # 25
    "CAP_SYS_TTY_CONFIG",  # 26
    "CAP_MKNOD",  # 27
    "CAP_LEASE",  # 28
    "CAP_AUDIT_WRITE",  # 29
    "CAP_AUDIT_CONTROL",  # 30
    "CAP_SETFCAP",  # 31
    "CAP_MAC_OVERRIDE",  # 32
    "CAP_MAC_ADMIN",  # 33
    "CAP_SYSLOG",  # 34
    "CAP_WAKE_ALARM",  # 35
    "CAP_BLOCK_SUSPEND",  # 36
    "CAP_AUDIT_READ",  # 37
    "CAP_PERFMON",  # 38
    "CAP_BPF",  # 39
    "CAP_CHECKPOINT_RESTORE",  # 40
)

#: name -> number, e.g. CAPABILITIES["CAP_KILL"] == 5
CAPABILITIES = {name: num for num, name in enumerate(_NAMES)}

#: the highest capability this table knows (CAP_CHECKPOINT_RESTORE)
CAP_LAST_CAP = len(_NAMES) - 1

_CAP_LAST_CAP_FILE = "/proc/sys/kernel/cap_last_cap"
_last_cap = None


def cap_number(name):
    """Number of capability ``name`` ("CAP_SYS_ADMIN" -> 21).

    Raises ConfigError naming the capability when it is not a known "CAP_XXX" name.
    """
    try:
        return CAPABILITIES[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown capability {name!r}") from None


def cap_name(number):
    """Name of capability ``number`` (21 -> "CAP_SYS_ADMIN"); ValueError if unknown."""
    if isinstance(number, int) and 0 <= number <= CAP_LAST_CAP:
        return _NAMES[number]
    raise ValueError(f"unknown capability number {number!r}")


def known_names():
    """All capability names this table knows, in kernel (numeric) order."""
    return list(_NAMES)


def to_mask(names):
    """Bit mask (bit n == capability n) of an iterable of capability names."""
    mask = 0
    for name in names:
        mask |= 1 << cap_number(name)
    return mask


CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


def usable_mask(names):
    """(mask, ignored): the bit mask of the names this host can grant, and the names it
    cannot (unknown, or beyond the kernel's last_cap). config.md "Linux Process": such
    capabilities are logged as a warning, they do not fail the container."""
    mask, ignored = 0, []
    top = last_cap()
    for name in names or ():
        num = CAPABILITIES.get(name) if isinstance(name, str) else None
        if num is None or num > top:
            ignored.append(name)
        else:
            mask |= 1 << num
    return mask, ignored


def lacking(caps):
    """The names of a process.capabilities object this process could not give a child
    of its own (config.md "Linux Process": a runtime "in a restricted environment with
    limited capabilities", e.g. Docker's --privileged where root lacks some): bounding
    beyond its bounding set, effective/permitted/ambient beyond its permitted set,
    inheritable beyond its permitted and inheritable sets (capset(2)'s rules)."""
    from pyrunc.native import syscalls as sc

    _, perm, inh = sc.capget()
    top = last_cap()
    bnd = 0
    for c in range(top + 1):
        if sc.prctl(C.PR_CAPBSET_READ, c):
            bnd |= 1 << c
    have = {"bounding": bnd, "effective": perm, "permitted": perm, "inheritable": perm | inh,
            "ambient": perm}
    out = set()
    for kind in CAP_SETS:
        for n in caps.get(kind) or ():
            num = CAPABILITIES.get(n) if isinstance(n, str) else None
            if num is not None and num <= top and not have[kind] >> num & 1:
                out.add(n)
    return out


def warn_ignored(caps, userns=False):
    """Runtime side, before fork: log the capabilities of a process.capabilities object
    that cannot be mapped or granted here as one warning (runc's words); the container
    side leaves them out. `userns`: the process runs in a user namespace, where it holds
    every capability (so only unknown names and those beyond last_cap are lacking)."""
    bad = set()
    for kind in CAP_SETS:
        bad.update(str(n) for n in usable_mask(caps.get(kind))[1])
    if not userns:
        bad.update(lacking(caps))
    if bad:
        log.warning("process.capabilities: ignoring unknown or unavailable capabilities: "
                    f"[{' '.join(sorted(bad))}]")


def last_cap():
    """The host kernel's highest capability number (/proc/sys/kernel/cap_last_cap).

    Read once and cached (read it before pivot_root if /proc will go away). Falls
    back to CAP_LAST_CAP when the file cannot be read.
    """
    global _last_cap
    if _last_cap is None:
        try:
            with open(_CAP_LAST_CAP_FILE, "rb") as f:
                value = int(f.read().strip())
        except (OSError, ValueError):
            value = CAP_LAST_CAP
        _last_cap = value
    return _last_cap
