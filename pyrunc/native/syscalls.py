"""The syscall wrappers: every call into C goes through here (the one cffi module,
pyrunc.native._lowlevel). The values they take are named in pyrunc.native.constants.

Every wrapper raises OSError(errno, "call(args): strerror") on failure. CALLS names
them all: pyrunc.native.fake stands in for exactly these in unit tests.
"""
import errno
import os

from pyrunc.native.constants import CLONE_INTO_CGROUP, PR_GET_CHILD_SUBREAPER

try:
    from pyrunc.native._lowlevel import ffi, lib
except ImportError as e:  # not built: only pyrunc.native.fake can stand in (unit tests)
    class _NotBuilt:
        def __getattr__(self, name, why=str(e)):
            raise ImportError(f"pyrunc.native._lowlevel is not built ({why}): "
                              "install pyrunc (pip install .), or use pyrunc.native.fake")

    ffi = lib = _NotBuilt()

def _check(ret, call):
    if ret < 0:
        err = ffi.errno
        raise OSError(err, f"{call}: {os.strerror(err)}")
    return ret


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
    call = f"clone3({flags:#x}{'' if cgroup_fd is None else f' | {CLONE_INTO_CGROUP:#x}'})"
    if _clone3_missing:  # ENOSYS once (an old kernel, a seccomp profile): not again
        raise OSError(errno.ENOSYS, f"{call}: {os.strerror(errno.ENOSYS)}")
    try:
        return _check(lib.pyrunc_clone_fork(flags, -1 if cgroup_fd is None else cgroup_fd), call)
    except OSError as e:
        _clone3_missing = e.errno == errno.ENOSYS
        raise


def setrlimit(resource, soft, hard):
    """prlimit64 on this process; soft/hard as uint64 (2**64-1 is RLIM_INFINITY)."""
    _check(lib.pyrunc_setrlimit(resource, soft, hard), f"setrlimit({resource}, {soft}, {hard})")


# bpf(2): cgroup v2 device programs (pyrunc.cgroups.v2.ebpf)


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


def inotify_init():
    return _check(lib.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK), "inotify_init1")


def inotify_add_watch(fd, path, mask):
    return _check(lib.inotify_add_watch(fd, _b(path), mask), f"inotify_add_watch({path})")


def fstatfs_type(fd):
    """statfs(2)'s f_type of the filesystem fd is on."""
    out = ffi.new("uint64_t *")
    _check(lib.pyrunc_fstatfs_type(fd, out), f"fstatfs({fd})")
    return out[0]


def seccomp_set_mode_filter(flags, bpf):
    """seccomp(SECCOMP_SET_MODE_FILTER, flags) with bpf (classic BPF, 8 bytes an
    instruction); returns the listener fd with SECCOMP_FILTER_FLAG_NEW_LISTENER, else 0.
    bpf None only checks the flags: the kernel fails with EFAULT past them."""
    if bpf is None:
        ret = lib.pyrunc_seccomp_filter(flags, ffi.NULL, 0)
    else:
        ret = lib.pyrunc_seccomp_filter(flags, ffi.from_buffer(bpf), len(bpf) // 8)
    return _check(ret, f"seccomp(SECCOMP_SET_MODE_FILTER, {flags:#x})")


# libseccomp.so.2, dlopen'ed by the C side on first use (pyrunc.linux.seccomp only)


def libseccomp_open():
    """Load libseccomp.so.2 (once); OSError(ENOENT, why) if it cannot be."""
    if lib.pyrunc_scmp_open() < 0:
        raise OSError(errno.ENOENT, ffi.string(lib.pyrunc_scmp_error()).decode(errors="replace"))


def libseccomp_version():
    """(major, minor, micro), or (0, 0, 0) for a libseccomp too old to tell (< 2.3)."""
    v = ffi.new("unsigned int[3]")
    if lib.pyrunc_scmp_version(v) < 0:
        return (0, 0, 0)
    return (v[0], v[1], v[2])


def scmp_init(default_action):
    """A new filter context, or None (the default action is not supported)."""
    ctx = lib.pyrunc_scmp_init(default_action)
    return None if ctx == ffi.NULL else ctx


def scmp_release(ctx):
    lib.pyrunc_scmp_release(ctx)


# These return libseccomp's result: 0, or a negative errno (no OSError).
def scmp_attr_set(ctx, attr, value):
    return lib.pyrunc_scmp_attr_set(ctx, attr, value)


def scmp_arch_resolve_name(name):
    """The arch token of name (libseccomp's spelling: "x86_64"), or 0."""
    return lib.pyrunc_scmp_arch_resolve_name(_b(name))


def scmp_arch_add(ctx, token):
    return lib.pyrunc_scmp_arch_add(ctx, token)


def scmp_syscall_resolve_name(name):
    """The syscall number of name, or -1 (__NR_SCMP_ERROR) when libseccomp does not know it."""
    return lib.pyrunc_scmp_syscall_resolve_name(_b(name))


def scmp_rule_add(ctx, action, nr, conds):
    """conds: [(arg index, SCMP_CMP_* value, datum_a, datum_b), ...] ANDed."""
    arr = ffi.NULL
    if conds:
        arr = ffi.new("struct pyrunc_scmp_arg[]", len(conds))
        for k, (index, op, a, b) in enumerate(conds):
            arr[k].arg, arr[k].op, arr[k].datum_a, arr[k].datum_b = index, op, a, b
    return lib.pyrunc_scmp_rule_add_array(ctx, action, nr, len(conds), arr)


def scmp_export_bpf(ctx, fd):
    return lib.pyrunc_scmp_export_bpf(ctx, fd)


def wipe_memory(addr, size):
    """Zero `size` bytes of this process's own memory at address `addr`."""
    ffi.memmove(ffi.cast("char *", addr), bytes(size), size)


# What pyrunc.native.fake stands in for: every wrapper above.
CALLS = tuple(name for name, value in globals().items()
              if not name.startswith("_") and callable(value) and
              getattr(value, "__module__", None) == __name__)
