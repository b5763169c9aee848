"""The ``pyrunc spec`` template: what ``runc spec`` (1.1) writes.

Deliberate differences from runc: ``ociVersion`` is the runtime-spec version pyrunc
implements and ``hostname`` is "pyrunc"; and ``pyrunc spec`` writes a linux.seccomp
profile (default_seccomp(): the one docker, podman and containerd pass with every
container), which ``runc spec`` leaves out. default_config() without seccomp=True is
runc's template exactly. Everything else, including key order and the tab-indented JSON
without a trailing newline, is runc's.
"""

import errno
import os

from pyrunc.errors import PyruncError
from pyrunc.native import constants as C

#: runtime-spec version written as ociVersion (== features' ociVersionMax)
OCI_VERSION = "1.3.0"

CONFIG_FILE = "config.json"

_DEFAULT_CAPS = ("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")


def _mount(destination, type_, source, options=None):
    m = {"destination": destination, "type": type_, "source": source}
    if options is not None:
        m["options"] = list(options)
    return m


def default_config(rootless: bool = False, seccomp: bool = False, cgroupns=None) -> dict:
    """A fresh config.json document as ``runc spec [--rootless]`` writes it; with
    ``seccomp`` also linux.seccomp = default_seccomp() (what ``pyrunc spec`` writes).
    ``cgroupns`` (default: whether this host is cgroup v2, as runc's specconv.Example
    decides) adds a cgroup namespace after the others (before the rootless user one).

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
    if cgroupns is None:
        from pyrunc.cgroups.base import is_unified

        cgroupns = is_unified()
    if cgroupns:
        namespaces.append("cgroup")
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
    if seccomp:
        linux["seccomp"] = default_seccomp()  # runc's key order: after namespaces/devices
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


def default_config_json(rootless: bool = False, seccomp: bool = True) -> str:
    """``dumps_config(default_config(rootless, seccomp))``: the exact bytes ``pyrunc spec``
    writes (with the default seccomp profile)."""
    return dumps_config(default_config(rootless, seccomp))


def write_default_config(bundle_dir=".", rootless: bool = False, seccomp: bool = True) -> str:
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

    data = default_config_json(rootless, seccomp).encode()
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


# ---------------------------------------------------------------------------------------
# The default seccomp profile
#
# Equivalent in effect to the profile docker, podman and containerd pass with every
# container (moby's profiles/seccomp/default.json) resolved, as those engines resolve it,
# for this template's capabilities (CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE, so
# none of the capability-gated groups) and the host's architecture. An allow-list:
# - everything not listed fails with EPERM (defaultErrnoRet 1);
# - socket(2) for any family but AF_VSOCK (40);
# - personality(2) only for PER_LINUX, PER_LINUX32, UNAME26 (and with LINUX32), query;
# - clone(2) without any CLONE_NEW* namespace flag (mask 0x7E020000), and clone3(2)
#   fails with ENOSYS so that libcs fall back to clone(2), whose flags can be checked;
# - mount, unshare, setns, bpf, ptrace-free kernels' module/keyring/clock/reboot calls,
#   and the like stay denied. A config that adds capabilities should carry its own
#   profile (the engines generate one per container).

_SECCOMP_ALLOWED = """
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect
copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old
epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir
fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr
flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync
ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat getcpu getcwd getdents
getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32
getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname
getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch
inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents
io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit
io_uring_enter io_uring_register io_uring_setup ipc kill landlock_add_rule
landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat
listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise
membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2
mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget
msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat
_newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc
pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64
process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead
readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages
removexattr rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction
rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam
sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32
setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority
setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32
setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid
setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4
sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statx
symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create
timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat
utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
"""

# Allowed on kernels >= 4.8 (where seccomp can no longer be bypassed with ptrace).
_SECCOMP_ALLOWED_4_8 = ("process_vm_readv", "process_vm_writev", "ptrace")

# uname -m -> (the filter's architectures, the arch-specific syscalls it allows)
_SECCOMP_ARCHES = {
    "x86_64": (("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
               ("arch_prctl", "modify_ldt")),
    "i686": (("SCMP_ARCH_X86",), ("modify_ldt",)),
    "i386": (("SCMP_ARCH_X86",), ("modify_ldt",)),
    "aarch64": (("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"),
                ("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
                 "cacheflush", "set_tls")),
    "armv7l": (("SCMP_ARCH_ARM",),
               ("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
                "cacheflush", "set_tls")),
    "mips64": (("SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"), ()),
    "mips64el": (("SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"), ()),
    "ppc64le": (("SCMP_ARCH_PPC64LE",), ("sync_file_range2", "swapcontext")),
    "s390x": (("SCMP_ARCH_S390X", "SCMP_ARCH_S390"),
              ("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr")),
    "riscv64": (("SCMP_ARCH_RISCV64",), ("riscv_flush_icache",)),
}

_PERSONALITIES = (C.PER_LINUX, C.PER_LINUX32, C.UNAME26, C.UNAME26 | C.PER_LINUX32, C.PERSONALITY_QUERY)
_CLONE_NAMESPACE_FLAGS = (C.CLONE_NEWNS | C.CLONE_NEWCGROUP | C.CLONE_NEWUTS | C.CLONE_NEWIPC | C.CLONE_NEWUSER
                          | C.CLONE_NEWPID | C.CLONE_NEWNET)  # == 0x7E020000, as runc's


def _kernel_at_least(major, minor):
    parts = []
    for piece in os.uname().release.split(".")[:2]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        parts.append(int(digits or 0))
    return tuple(parts + [0, 0])[:2] >= (major, minor)


def default_seccomp(machine=None) -> dict:
    """The linux.seccomp object ``pyrunc spec`` writes (see the comment above), for
    ``machine`` (``uname -m``; default: this host's)."""
    machine = machine or os.uname().machine
    arches, arch_calls = _SECCOMP_ARCHES.get(machine, ((), ()))
    allowed = _SECCOMP_ALLOWED.split()
    if _kernel_at_least(4, 8):
        allowed += _SECCOMP_ALLOWED_4_8
    rules = [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]
    rules.append({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": C.AF_VSOCK, "op": "SCMP_CMP_NE"}]})
    for persona in _PERSONALITIES:
        rules.append({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": persona, "op": "SCMP_CMP_EQ"}]})
    if arch_calls:
        rules.append({"names": list(arch_calls), "action": "SCMP_ACT_ALLOW"})
    # s390's clone takes the flags as its second argument
    clone_flags_arg = 1 if machine.startswith("s390") else 0
    rules.append({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": clone_flags_arg, "value": _CLONE_NAMESPACE_FLAGS,
                            "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]})
    rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS})
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1}
    if arches:
        profile["architectures"] = list(arches)
    profile["syscalls"] = rules
    return profile
