"""The ``pyrunc features`` document (runtime-spec features.md, features-linux.md).

Truthful about this build on this host: seccomp is reported enabled only when
libseccomp.so.2 can be loaded, AppArmor/SELinux only when the host has them, idmap
mounts only on kernels with mount_setattr(2) (5.12). Key order is runc's.

Nothing heavy at import time; libseccomp is loaded by features() only.
"""

import json
import os

import pyrunc
from pyrunc.linux.capabilities import known_names
from pyrunc.config.default import OCI_VERSION
from pyrunc.cgroups.fs import v1_mounts
from pyrunc.cgroups import base

OCI_VERSION_MIN = "1.0.0"
OCI_VERSION_MAX = OCI_VERSION

ANNOTATION_VERSION = "io.github.pyrunc.version"
# This host's cgroups (features-linux.md makes linux.cgroup the runtime's implementation
# status, "irrelevant to the cgroup version of the host"; what applies here goes here):
# the hierarchy ("v2", "hybrid", "v1" or "none"), the manager and driver pyrunc uses on
# it, and how device rules are enforced ("ebpf", "v1 devices controller" or "none: why").
ANNOTATION_CGROUP_HOST = "io.github.pyrunc.cgroup.host"
ANNOTATION_CGROUP_MANAGER = "io.github.pyrunc.cgroup.manager"
ANNOTATION_CGROUP_DEVICES = "io.github.pyrunc.cgroup.devices"
ANNOTATION_CGROUP_SYSTEMD = "io.github.pyrunc.cgroup.systemd"
ANNOTATION_LIBSECCOMP_VERSION = "io.github.pyrunc.libseccomp.version"
# runc's key for the same value (the libseccomp project's namespace): tools reading
# runc's features document find it under this name.
ANNOTATION_LIBSECCOMP_VERSION_RUNC = "io.github.seccomp.libseccomp.version"

HOOKS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")

# runc's list (mount(2) flags, propagation, recursive mount_setattr(2) attributes,
# tmpcopyup), which is also the runtime-spec's example. Sorted.
MOUNT_OPTIONS = (
    "acl", "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
    "iversion", "lazytime", "loud", "mand", "noacl", "noatime", "nodev", "nodiratime",
    "noexec", "noiversion", "nolazytime", "nomand", "norelatime", "nostrictatime",
    "nosuid", "nosymfollow", "private", "ratime", "rbind", "rdev", "rdiratime",
    "relatime", "remount", "rexec", "rnoatime", "rnodev", "rnodiratime", "rnoexec",
    "rnorelatime", "rnostrictatime", "rnosuid", "rnosymfollow", "ro", "rprivate",
    "rrelatime", "rro", "rrw", "rshared", "rslave", "rstrictatime", "rsuid",
    "rsymfollow", "runbindable", "rw", "shared", "silent", "slave", "strictatime",
    "suid", "symfollow", "sync", "tmpcopyup", "unbindable",
)

NAMESPACES = ("cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts")

SECCOMP_ACTIONS = (
    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
)

SECCOMP_OPERATORS = (
    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE",
)

# Architectures libseccomp 2.5 knows; 2.6 adds the ones in _SECCOMP_ARCHS_2_6.
_SECCOMP_ARCHS_2_5 = (
    "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64", "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64",
)
_SECCOMP_ARCHS_2_6 = ("SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB")

# flag -> (libseccomp version that can set it, kernel version that accepts it). pyrunc
# exports the filter from libseccomp and passes the flags to seccomp(2) itself
# (pyrunc.linux.seccomp), so only the kernel matters.
_SECCOMP_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": ((0, 0, 0), (3, 17)),
    "SECCOMP_FILTER_FLAG_LOG": ((0, 0, 0), (4, 14)),
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": ((0, 0, 0), (4, 17)),
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": ((0, 0, 0), (5, 19)),
}
# actions libseccomp only knows from some version on (the others: all versions)
_SECCOMP_ACTIONS_SINCE = {
    "SCMP_ACT_KILL_PROCESS": (2, 4, 0),
    "SCMP_ACT_LOG": (2, 4, 0),
    "SCMP_ACT_NOTIFY": (2, 5, 0),
}

# linux.memoryPolicy modes and flags pyrunc.process.attributes applies (set_mempolicy(2)). Sorted.
MEMORY_POLICY_MODES = (
    "MPOL_BIND", "MPOL_DEFAULT", "MPOL_INTERLEAVE", "MPOL_LOCAL", "MPOL_PREFERRED",
    "MPOL_PREFERRED_MANY", "MPOL_WEIGHTED_INTERLEAVE",
)
MEMORY_POLICY_FLAGS = ("MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES")


def kernel_version():
    """(major, minor) of the running kernel, (0, 0) if unparseable."""
    release = os.uname().release
    parts = []
    for piece in release.split(".")[:2]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    while len(parts) < 2:
        parts.append(0)
    return tuple(parts)


def libseccomp_version():
    """libseccomp's (major, minor, micro) if libseccomp.so.2 loads, else None.

    (0, 0, 0) when it loads but cannot tell its version (older than 2.3).
    """
    try:
        from pyrunc.native import syscalls

        syscalls.libseccomp_open()
    except (ImportError, OSError):
        return None
    return syscalls.libseccomp_version()


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def apparmor_enabled():
    return os.path.isdir("/sys/kernel/security/apparmor") and _read(
        "/sys/module/apparmor/parameters/enabled"
    ).startswith(b"Y")


def selinux_enabled():
    return os.path.exists("/sys/fs/selinux/enforce")


def cgroup_host():
    """{annotation: value} for this host's cgroups (see ANNOTATION_CGROUP_*)."""
    out = _cgroupfs_host()
    # The systemd driver (--systemd-cgroup) needs a running systemd (sd_booted(3)'s test).
    out[ANNOTATION_CGROUP_SYSTEMD] = ("available (systemd is running)" if os.path.isdir("/run/systemd/system")
                                      else "unavailable: systemd is not running on this host")
    return out


def _cgroupfs_host():
    if base.is_unified():
        from pyrunc.cgroups.v2 import ebpf

        try:
            ebpf.probe()
            devices = "ebpf"
        except OSError as e:
            devices = f"none: cannot load a device program ({e.strerror})"
        return {ANNOTATION_CGROUP_HOST: "v2", ANNOTATION_CGROUP_MANAGER: "cgroupfs v2",
                ANNOTATION_CGROUP_DEVICES: devices}

    try:
        mounts = v1_mounts()
    except OSError:
        mounts = {}
    if not [k for k in mounts if k]:
        return {ANNOTATION_CGROUP_HOST: "none", ANNOTATION_CGROUP_MANAGER: "none",
                ANNOTATION_CGROUP_DEVICES: "none: no cgroup hierarchy"}
    return {ANNOTATION_CGROUP_HOST: "hybrid" if "" in mounts else "v1",
            ANNOTATION_CGROUP_MANAGER: "cgroupfs v1",
            ANNOTATION_CGROUP_DEVICES: "v1 devices controller" if "devices" in mounts
            else "none: no devices hierarchy"}


def _package_version():
    try:
        version = getattr(pyrunc, "__version__", None)
        if version:
            return str(version)
    except ImportError:
        pass
    try:
        from importlib.metadata import version

        return version("pyrunc")
    except Exception:
        return "unknown"


def _seccomp(libseccomp, kernel):
    if libseccomp is None:
        return {"enabled": False}
    archs = _SECCOMP_ARCHS_2_5
    if libseccomp >= (2, 6, 0):
        archs = tuple(sorted(archs + _SECCOMP_ARCHS_2_6))
    supported = sorted(
        flag
        for flag, (lib_min, kernel_min) in _SECCOMP_FLAGS.items()
        if libseccomp >= lib_min and kernel >= kernel_min
    )
    return {
        "enabled": True,
        # (0, 0, 0): version unknown (libseccomp < 2.3): none of the newer actions
        "actions": [a for a in SECCOMP_ACTIONS if libseccomp >= _SECCOMP_ACTIONS_SINCE.get(a, (0, 0, 0))],
        "operators": list(SECCOMP_OPERATORS),
        "archs": list(archs),
        "knownFlags": sorted(_SECCOMP_FLAGS),
        "supportedFlags": supported,
    }


def features() -> dict:
    """The features document of this build on this host (a fresh dict)."""
    kernel = kernel_version()
    libseccomp = libseccomp_version()
    annotations = {ANNOTATION_VERSION: _package_version()}
    annotations.update(cgroup_host())
    if libseccomp is not None and libseccomp != (0, 0, 0):
        v = "%d.%d.%d" % libseccomp
        annotations[ANNOTATION_LIBSECCOMP_VERSION] = v
        annotations[ANNOTATION_LIBSECCOMP_VERSION_RUNC] = v
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": list(HOOKS),
        "mountOptions": list(MOUNT_OPTIONS),
        "linux": {
            "namespaces": list(NAMESPACES),
            "capabilities": known_names(),
            # implemented: v2 with its eBPF device programs, the systemd driver (not the
            # user's systemd: rootless); what this host has is in the annotations
            "cgroup": {"v1": True, "v2": True, "systemd": True, "systemdUser": False, "rdma": True},
            "seccomp": _seccomp(libseccomp, kernel),
            "apparmor": {"enabled": apparmor_enabled()},
            "selinux": {"enabled": selinux_enabled()},
            "intelRdt": {"enabled": False},
            "memoryPolicy": {"modes": list(MEMORY_POLICY_MODES), "flags": list(MEMORY_POLICY_FLAGS)},
            "mountExtensions": {"idmap": {"enabled": kernel >= (5, 12)}},
            "netDevices": {"enabled": True},
        },
        "annotations": dict(sorted(annotations.items())),
    }


def features_json() -> str:
    """features() as ``runc features`` prints it: 4-space indent.

    No trailing newline: print() it (runc's output ends with one newline).
    """
    return json.dumps(features(), indent=4, ensure_ascii=False)
