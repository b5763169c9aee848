"""The one place for syscalls that Python's `os` lacks (cffi, compiled at install).

Every wrapper raises OSError(errno, "call(args): strerror") on failure.
"""
import errno
import os

from pyrunc._native import ffi, lib

# clone/unshare/setns flags
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount flags
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
MS_LAZYTIME = 0x2000000

MNT_FORCE = 1
MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8

# prctl
PR_SET_PDEATHSIG = 1
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# openat2 resolve flags
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# open_tree / move_mount / mount_setattr
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR_IDMAP = 0x100000


def _check(ret, call):
    if ret < 0:
        err = ffi.errno
        raise OSError(err, f"{call}: {os.strerror(err)}")
    return ret


def wipe_memory(addr, size):
    """Zero `size` bytes of this process's own memory at address `addr`."""
    ffi.memmove(ffi.cast("char *", addr), bytes(size), size)


def _b(s):
    return s.encode() if isinstance(s, str) else s


def mount(source, target, fstype, flags=0, data=None):
    d = _b(data) if data else ffi.NULL
    _check(
        lib.mount(_b(source) if source else ffi.NULL, _b(target),
                  _b(fstype) if fstype else ffi.NULL, flags, d),
        f"mount({source!s}, {target!s}, {fstype!s}, {flags:#x}, {data or ''})",
    )


def umount2(target, flags=0):
    _check(lib.umount2(_b(target), flags), f"umount2({target}, {flags})")


def pivot_root(new_root, put_old):
    _check(lib.pyrunc_pivot_root(_b(new_root), _b(put_old)), f"pivot_root({new_root}, {put_old})")


def unshare(flags):
    _check(lib.unshare(flags), f"unshare({flags:#x})")


def setns(fd, nstype=0):
    _check(lib.setns(fd, nstype), f"setns({fd}, {nstype:#x})")


def sethostname(name):
    b = _b(name)
    _check(lib.sethostname(b, len(b)), f"sethostname({name})")


def setdomainname(name):
    b = _b(name)
    _check(lib.setdomainname(b, len(b)), f"setdomainname({name})")


def personality(persona):
    return _check(lib.personality(persona), f"personality({persona:#x})")


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    return _check(lib.prctl(option, arg2, arg3, arg4, arg5), f"prctl({option}, {arg2})")


def child_subreaper():
    """Whether the calling process is a child subreaper (PR_GET_CHILD_SUBREAPER)."""
    out = ffi.new("int *")
    prctl(PR_GET_CHILD_SUBREAPER, int(ffi.cast("uintptr_t", out)))
    return out[0] != 0


def capget(pid=0):
    """(effective, permitted, inheritable) as 64-bit masks."""
    data = ffi.new("uint32_t[6]")
    _check(lib.pyrunc_capget(pid, data), "capget")
    return tuple(data[i] | (data[i + 1] << 32) for i in (0, 2, 4))


def capset(effective, permitted, inheritable, pid=0):
    data = ffi.new("uint32_t[6]")
    for i, mask in ((0, effective), (2, permitted), (4, inheritable)):
        data[i] = mask & 0xFFFFFFFF
        data[i + 1] = (mask >> 32) & 0xFFFFFFFF
    _check(lib.pyrunc_capset(pid, data), "capset")


def keyctl_join_session_keyring(name=None):
    return _check(lib.pyrunc_keyctl_join(_b(name) if name else ffi.NULL),
                  f"keyctl(JOIN_SESSION_KEYRING, {name})")


def ioprio_set(which, who, ioprio):
    _check(lib.pyrunc_ioprio_set(which, who, ioprio), f"ioprio_set({which}, {who}, {ioprio})")


def set_mempolicy(mode, nodes):
    """nodes: iterable of NUMA node numbers (empty for MPOL_DEFAULT/LOCAL)."""
    nodes = list(nodes)
    if nodes:
        words = max(nodes) // 64 + 1
        mask = ffi.new("unsigned long[]", words)
        for n in nodes:
            mask[n // 64] |= 1 << (n % 64)
        _check(lib.pyrunc_set_mempolicy(mode, mask, words * 64 + 1), f"set_mempolicy({mode:#x})")
    else:
        _check(lib.pyrunc_set_mempolicy(mode, ffi.NULL, 0), f"set_mempolicy({mode:#x})")


def sched_setattr(pid, policy, flags=0, nice=0, priority=0, runtime=0, deadline=0, period=0):
    _check(lib.pyrunc_sched_setattr(pid, policy, flags, nice, priority, runtime, deadline, period),
           f"sched_setattr(policy={policy})")


def openat2(dirfd, path, flags, mode=0, resolve=0):
    return _check(lib.pyrunc_openat2(dirfd, _b(path), flags | os.O_CLOEXEC, mode, resolve),
                  f"openat2({path})")


def open_tree(dirfd, path, flags):
    return _check(lib.pyrunc_open_tree(dirfd, _b(path), flags), f"open_tree({path})")


def move_mount(from_dirfd, from_path, to_dirfd, to_path, flags):
    _check(lib.pyrunc_move_mount(from_dirfd, _b(from_path), to_dirfd, _b(to_path), flags),
           f"move_mount({from_path}, {to_path})")


def mount_setattr(dirfd, path, flags, attr_set=0, attr_clr=0, propagation=0, userns_fd=0):
    _check(lib.pyrunc_mount_setattr(dirfd, _b(path), flags, attr_set, attr_clr, propagation,
                                    userns_fd), f"mount_setattr({path})")


_clone3_missing = False


def clone_fork(flags=0, cgroup_fd=None):
    """os.fork() by clone3: the child in new namespaces (CLONE_NEW* flags) and, with
    cgroup_fd (an O_PATH fd of a cgroup v2 directory), born in that cgroup."""
    global _clone3_missing
    call = f"clone3({flags:#x}{'' if cgroup_fd is None else ', CLONE_INTO_CGROUP'})"
    if _clone3_missing:  # ENOSYS once (an old kernel, a seccomp profile): not again
        raise OSError(errno.ENOSYS, f"{call}: {os.strerror(errno.ENOSYS)}")
    try:
        return _check(lib.pyrunc_clone_fork(flags, -1 if cgroup_fd is None else cgroup_fd), call)
    except OSError as e:
        _clone3_missing = e.errno == errno.ENOSYS
        raise


# RLIMIT_* of Linux's generic ABI (x86, arm, riscv, ...; not alpha, mips, sparc).
RLIMITS = {name: i for i, name in enumerate((
    "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS",
    "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME"))}


def setrlimit(resource, soft, hard):
    """prlimit64 on this process; soft/hard as uint64 (2**64-1 is RLIM_INFINITY)."""
    _check(lib.pyrunc_setrlimit(resource, soft, hard), f"setrlimit({resource}, {soft}, {hard})")


# bpf(2): cgroup v2 device programs (pyrunc.cgroups.ebpf)
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6  # attach type
BPF_F_ALLOW_MULTI = 0x2


def bpf_prog_load(prog_type, insns, license="Apache", log_size=0):
    """Load a program (insns: the encoded struct bpf_insn array); returns its fd. With
    log_size the verifier's log is in the error message."""
    if len(insns) % 8:
        raise ValueError("bpf instructions are 8 bytes each")
    buf = ffi.from_buffer(insns)
    log = ffi.new("char[]", log_size) if log_size else ffi.NULL
    lic = ffi.new("char[]", _b(license))
    fd = lib.pyrunc_bpf_prog_load(prog_type, buf, len(insns) // 8, lic, log, log_size)
    if fd < 0:
        err = ffi.errno
        detail = ffi.string(log).decode(errors="replace").strip() if log_size else ""
        raise OSError(err, f"bpf(BPF_PROG_LOAD): {os.strerror(err)}"
                      + (f" (verifier: {detail})" if detail else ""))
    return fd


def bpf_prog_attach(target_fd, prog_fd, attach_type, flags=0):
    _check(lib.pyrunc_bpf_prog_attach(target_fd, prog_fd, attach_type, flags),
           f"bpf(BPF_PROG_ATTACH, type {attach_type}, flags {flags:#x})")


def bpf_prog_detach(target_fd, prog_fd, attach_type):
    _check(lib.pyrunc_bpf_prog_detach(target_fd, prog_fd, attach_type),
           f"bpf(BPF_PROG_DETACH, type {attach_type})")


def bpf_prog_query(target_fd, attach_type):
    """Ids of the programs attached to target_fd (a cgroup directory) itself."""
    size = 64
    for _ in range(10):
        ids = ffi.new("uint32_t[]", size)
        cnt = ffi.new("uint32_t *", size)
        if lib.pyrunc_bpf_prog_query(target_fd, attach_type, ids, cnt) == 0:
            return [ids[i] for i in range(cnt[0])]
        err = ffi.errno
        if err != errno.ENOSPC:
            raise OSError(err, f"bpf(BPF_PROG_QUERY, type {attach_type}): {os.strerror(err)}")
        size = max(cnt[0], size * 2)  # more were attached meanwhile
    raise OSError(errno.ENOSPC, f"bpf(BPF_PROG_QUERY, type {attach_type}): list keeps growing")


def bpf_prog_get_fd_by_id(prog_id):
    return _check(lib.pyrunc_bpf_prog_get_fd_by_id(prog_id), f"bpf(BPF_PROG_GET_FD_BY_ID, {prog_id})")


IN_MODIFY = 0x2


def inotify_init():
    return _check(lib.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK), "inotify_init1")


def inotify_add_watch(fd, path, mask):
    return _check(lib.inotify_add_watch(fd, _b(path), mask), f"inotify_add_watch({path})")
