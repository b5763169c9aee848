"""linux.seccomp (config-linux.md "Seccomp") through libseccomp, with runc's semantics.

Two halves, split by fork:

- In the runtime, before it forks the container's processes (init.preimport_process),
  prepare() loads libseccomp.so.2 (cffi ABI mode, pyrunc._seccomp), builds the filter
  and exports it as a classic BPF program. Every config error surfaces here, as one
  PyruncError line naming the field. libseccomp is never needed after fork, so a
  container whose rootfs has no libseccomp (or, after pivot_root, no host at all)
  works, and the filter is only a bytes object until it is loaded.
- In the container process, load() hands that program to the kernel with seccomp(2)
  (SECCOMP_SET_MODE_FILTER plus the config's flags). process.prepare()/execute() call
  it as the last step before execve, so none of the runtime's own syscalls (cwd check,
  exec.fifo, closing fds) are filtered. Without process.noNewPrivileges loading needs
  CAP_SYS_ADMIN: the process keeps it in its effective set until then, and only its
  final capset(2) follows the filter (runc loads it before changing user and caps).
  A config without process.capabilities (nothing to restore the sets from) and a filter
  with SCMP_ACT_NOTIFY rules load before the start handshake (as runc's): the latter
  while the runtime is still there to pass the listener fd on.

runc's semantics kept: SCMP_ACT_KILL is KILL_THREAD; errnoRet and defaultErrnoRet
default to EPERM (also for SCMP_ACT_TRACE); a rule whose action equals the default
action is skipped; syscall names libseccomp does not know are skipped; conditions on
distinct arguments are ANDed in one rule, while several conditions on the same argument
become one rule each (ORed); SCMP_ACT_NOTIFY may be neither the default action nor used
for write(2); unknown or unsupported flags are skipped (SECCOMP_FILTER_FLAG_TSYNC is
meaningless for a single-threaded process and only kept for the kernel's checks).
Beyond runc with libseccomp 2.5: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV works on kernels
that have it (it is passed to seccomp(2) directly), with a notify listener only, as the
kernel requires.

SCMP_ACT_NOTIFY and listenerPath: the container process sends the listener fd it got
from seccomp(2) to the runtime over a socketpair made before fork; a thread of the
runtime (which knows the process's pid as the host sees it from SCM_CREDENTIALS)
connects to listenerPath and sends runc's ContainerProcessState JSON with the fd in
SCM_RIGHTS, one message per connection, then tells the process whether that worked.
"""
import errno
import os

from pyrunc.errors import PyruncError

LIBSECCOMP = "libseccomp.so.2"

# libseccomp's action values (seccomp.h); ERRNO and TRACE carry a 16-bit datum.
ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_ERRNO = 0x00050000
ACT_TRACE = 0x7FF00000
ACT_LOG = 0x7FFC0000
ACT_NOTIFY = 0x7FC00000
ACT_ALLOW = 0x7FFF0000
ACTIONS = {
    "SCMP_ACT_KILL": ACT_KILL_THREAD,  # runc: SCMP_ACT_KILL kills the thread
    "SCMP_ACT_KILL_PROCESS": ACT_KILL_PROCESS,
    "SCMP_ACT_KILL_THREAD": ACT_KILL_THREAD,
    "SCMP_ACT_TRAP": ACT_TRAP,
    "SCMP_ACT_ERRNO": ACT_ERRNO,
    "SCMP_ACT_TRACE": ACT_TRACE,
    "SCMP_ACT_ALLOW": ACT_ALLOW,
    "SCMP_ACT_LOG": ACT_LOG,
    "SCMP_ACT_NOTIFY": ACT_NOTIFY,
}
_WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
EPERM = 1

# enum scmp_compare
OPERATORS = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}

# seccomp(2) filter flags
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1 << 0,
    "SECCOMP_FILTER_FLAG_LOG": 1 << 1,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 1 << 2,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 1 << 5,
}
FLAG_NEW_LISTENER = 1 << 3
FLAG_TSYNC_ESRCH = 1 << 4
SECCOMP_SET_MODE_FILTER = 1
BPF_MAXINSNS = 4096

# enum scmp_filter_attr
_ATTR_CTL_OPTIMIZE = 8

_U64 = (1 << 64) - 1
SECCOMP_FD_NAME = "seccompFd"  # runtime-spec's name of the fd in ContainerProcessState
OCI_VERSION = "1.3.0"

_lib = None  # (ffi, libseccomp, libc) once loaded
_flag_support = {}
_pending = None  # the Filter the next container process set up here loads (set before fork)


class Filter:
    """A compiled filter: what the container process needs to load it."""

    __slots__ = ("source", "bpf", "flags", "nr_seccomp", "notify", "sock", "listener")

    def __init__(self, source, bpf, flags, nr_seccomp, notify):
        self.source = source
        self.bpf = bpf
        self.flags = flags
        self.nr_seccomp = nr_seccomp
        self.notify = notify
        self.sock = None  # our end of the socketpair to the runtime's forwarder
        self.listener = None


# --- libseccomp --------------------------------------------------------------------------


def _libs():
    global _lib
    if _lib is None:
        from pyrunc._seccomp import ffi

        try:
            lib = ffi.dlopen(LIBSECCOMP)
        except OSError as e:
            raise PyruncError(f"linux.seccomp: cannot load {LIBSECCOMP} (is libseccomp "
                              f"installed?): {e}") from None
        _lib = (ffi, lib, ffi.dlopen(None))
    return _lib


def libseccomp_version():
    """(major, minor, micro) of the libseccomp loaded, or None if it cannot be loaded."""
    try:
        _, lib, _ = _libs()
    except PyruncError:
        return None
    v = lib.seccomp_version()
    return (v.major, v.minor, v.micro)


def _syscall_nr(name):
    _, lib, _ = _libs()
    return lib.seccomp_syscall_resolve_name(name.encode())


def _seccomp_syscall(nr, op, flags, ptr):
    """The raw seccomp(2) syscall; returns (result, errno)."""
    ffi, _, libc = _libs()
    ret = libc.syscall(nr, ffi.cast("long", op), ffi.cast("long", flags), ptr)
    return ret, (ffi.errno if ret < 0 else 0)


def flag_supported(flag_bits):
    """Does this kernel accept the seccomp(2) filter flag(s)? (runc's probe: the kernel
    checks the flags before it reads the program, so a NULL program fails with EFAULT
    exactly when the flags are fine)."""
    if flag_bits not in _flag_support:
        ffi, _, _ = _libs()
        nr = _syscall_nr("seccomp")
        probe = flag_bits
        if probe & FLAGS["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]:
            probe |= FLAG_NEW_LISTENER  # the kernel takes it with a listener only
        _, err = _seccomp_syscall(nr, SECCOMP_SET_MODE_FILTER, probe, ffi.NULL)
        _flag_support[flag_bits] = err == errno.EFAULT
    return _flag_support[flag_bits]


# --- building the filter --------------------------------------------------------------------


def _quote(v):
    import json

    return json.dumps(v) if isinstance(v, str) else repr(v)


def _uint(value, where, limit=_U64):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise PyruncError(f"{where}: {_quote(value)} is not an integer from 0 to {limit}")
    return value


def _action(name, errno_ret, where, errno_where):
    if name not in ACTIONS:
        raise PyruncError(f"{where}: unknown action {_quote(name)}")
    act = ACTIONS[name]
    if errno_ret is not None:
        if name not in _WITH_ERRNO:
            raise PyruncError(f"{errno_where}: {name} does not return an errno "
                              "(only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)")
        return act | _uint(errno_ret, errno_where, 0xFFFF)
    if name in _WITH_ERRNO:
        return act | EPERM
    return act


def _conditions(args, where):
    """runc's matchCall: [[cond, ...], ...] -- one rule per inner list."""
    conds = []
    per_index = {}
    for j, a in enumerate(args):
        w = f"{where}.args[{j}]"
        if not isinstance(a, dict):
            raise PyruncError(f"{w}: must be an object")
        index = _uint(a.get("index"), f"{w}.index", 5)
        op = a.get("op")
        if op not in OPERATORS:
            raise PyruncError(f"{w}.op: unknown operator {_quote(op)}")
        value = _uint(a.get("value"), f"{w}.value")
        two = _uint(a.get("valueTwo", 0), f"{w}.valueTwo")
        conds.append((index, OPERATORS[op], value, two))
        per_index[index] = per_index.get(index, 0) + 1
    if any(n > 1 for n in per_index.values()):
        # runc: several conditions on one argument cannot be ANDed by libseccomp; each
        # becomes a rule of its own (so they are ORed).
        return [[c] for c in conds]
    return [conds]


def _add_rule(ffi, lib, ctx, action, nr, conds, where, name):
    arr = ffi.NULL
    if conds:
        arr = ffi.new("struct scmp_arg_cmp[]", len(conds))
        for k, (index, op, a, b) in enumerate(conds):
            arr[k].arg, arr[k].op, arr[k].datum_a, arr[k].datum_b = index, op, a, b
    rc = lib.seccomp_rule_add_array(ctx, action, nr, len(conds), arr)
    if rc < 0:
        raise PyruncError(f"{where}: adding the rule for {_quote(name)}: {os.strerror(-rc)}")


def _arch_token(lib, name, where):
    if not isinstance(name, str) or not name.startswith("SCMP_ARCH_"):
        raise PyruncError(f"{where}: unknown architecture {_quote(name)}")
    token = lib.seccomp_arch_resolve_name(name[len("SCMP_ARCH_"):].lower().encode())
    if not token:
        v = lib.seccomp_version()
        raise PyruncError(f"{where}: architecture {name} is not known to libseccomp "
                          f"{v.major}.{v.minor}.{v.micro}")
    return token


def compile(cfg, where="linux.seccomp", warn=None):  # noqa: A001 - the module's verb
    """Build the filter for a linux.seccomp object; returns a Filter (bpf bytes)."""
    if not isinstance(cfg, dict):
        raise PyruncError(f"{where}: must be an object")
    ffi, lib, _ = _libs()
    default_name = cfg.get("defaultAction")
    if default_name == "SCMP_ACT_NOTIFY":
        raise PyruncError(f"{where}.defaultAction: SCMP_ACT_NOTIFY cannot be the default action")
    default = _action(default_name, cfg.get("defaultErrnoRet"), f"{where}.defaultAction",
                      f"{where}.defaultErrnoRet")
    syscalls = cfg.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise PyruncError(f"{where}.syscalls: must be an array")
    # Check every rule before libseccomp sees anything: errors name the rule.
    rules = []
    notify = False
    for i, rule in enumerate(syscalls):
        w = f"{where}.syscalls[{i}]"
        if not isinstance(rule, dict):
            raise PyruncError(f"{w}: must be an object")
        names = rule.get("names")
        if not isinstance(names, list) or not names or \
                not all(isinstance(n, str) and n for n in names):
            raise PyruncError(f"{w}.names: must be a non-empty array of syscall names")
        act_name = rule.get("action")
        action = _action(act_name, rule.get("errnoRet"), w if act_name not in ACTIONS
                         else f"{w}.action", f"{w}.errnoRet")
        if act_name == "SCMP_ACT_NOTIFY":
            if not cfg.get("listenerPath"):
                raise PyruncError(f"{w}.action: SCMP_ACT_NOTIFY needs {where}.listenerPath")
            if "write" in names:
                # runc: the process must still be able to write to pass the fd on
                raise PyruncError(f"{w}: SCMP_ACT_NOTIFY cannot be used for the write syscall")
        args = rule.get("args") or []
        if not isinstance(args, list):
            raise PyruncError(f"{w}.args: must be an array")
        rules.append((w, names, action, _conditions(args, w) if args else [[]],
                      act_name == "SCMP_ACT_NOTIFY"))
    ctx = lib.seccomp_init(default)
    if ctx == ffi.NULL:
        raise PyruncError(f"{where}.defaultAction: {default_name} is not supported by "
                          "this kernel or libseccomp")
    try:
        for j, arch in enumerate(cfg.get("architectures") or ()):
            rc = lib.seccomp_arch_add(ctx, _arch_token(lib, arch, f"{where}.architectures[{j}]"))
            if rc < 0 and rc != -errno.EEXIST:  # the native one is always there
                raise PyruncError(f"{where}.architectures[{j}]: adding {arch}: {os.strerror(-rc)}")
        if len(syscalls) > 32:
            lib.seccomp_attr_set(ctx, _ATTR_CTL_OPTIMIZE, 2)  # binary tree, as runc; best effort
        for w, names, action, condsets, is_notify in rules:
            if action == default:
                continue  # runc: redundant, skipped
            for name in names:
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                if nr == -1:  # __NR_SCMP_ERROR: unknown to libseccomp, skipped as by runc
                    continue
                for conds in condsets:
                    _add_rule(ffi, lib, ctx, action, nr, conds, w, name)
                notify = notify or is_notify
        bpf = _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)
    flags = 0
    for j, name in enumerate(cfg.get("flags") or ()):
        bit = FLAGS.get(name)
        if bit is None:
            if warn:
                warn(f"{where}.flags[{j}]: unknown flag {_quote(name)} skipped")
            continue
        if bit == FLAGS["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"] and not notify:
            continue  # only meaningful (and only accepted) with a notify listener
        if bit == FLAGS["SECCOMP_FILTER_FLAG_TSYNC"] and notify:
            if flag_supported(bit | FLAG_TSYNC_ESRCH):
                flags |= bit | FLAG_TSYNC_ESRCH  # the kernel wants ESRCH with a listener
            continue
        if flag_supported(bit):
            flags |= bit
        elif warn:
            warn(f"{where}.flags[{j}]: {name} is not supported by this kernel: skipped")
    if notify:
        flags |= FLAG_NEW_LISTENER
    return Filter(cfg, bpf, flags, _syscall_nr("seccomp"), notify)


def _export(lib, ctx):
    fd = os.memfd_create("pyrunc-seccomp", os.MFD_CLOEXEC)
    try:
        rc = lib.seccomp_export_bpf(ctx, fd)
        if rc < 0:
            raise PyruncError(f"linux.seccomp: exporting the filter: {os.strerror(-rc)}")
        size = os.fstat(fd).st_size
        os.lseek(fd, 0, os.SEEK_SET)
        data = b""
        while len(data) < size:
            chunk = os.read(fd, size - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    if not data or len(data) % 8:
        raise PyruncError("linux.seccomp: libseccomp exported an empty or malformed filter")
    if len(data) // 8 > BPF_MAXINSNS:
        raise PyruncError(f"linux.seccomp: the filter has {len(data) // 8} BPF instructions; "
                          f"the kernel takes at most {BPF_MAXINSNS} (fewer rules or "
                          "architectures)")
    return data


# --- the runtime side ------------------------------------------------------------------------


def prepare(cfg, state=None, warn=None):
    """In the runtime, before fork: compile cfg for the container process about to be
    made. state (runtime.md "State" of the container) is needed with a notify listener."""
    global _pending
    _pending = None
    filt = compile(cfg, warn=warn)
    if filt.notify:
        filt.sock = _start_forwarder(cfg, state or {})
        filt.listener = cfg.get("listenerPath")
    _pending = filt
    return filt


def reset():
    """Forget a filter prepared for an earlier container (library use)."""
    global _pending
    _pending = None


def _start_forwarder(cfg, state):
    import socket
    import struct  # noqa: F401 - the container process's _hand_over cannot import it later
    import threading

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    # The kernel then tells us the sender's pid, in our pid namespace: the container
    # process's pid "as seen by the runtime", which the process itself cannot know.
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    t = threading.Thread(target=_forward, name="pyrunc-seccomp-notify", daemon=True,
                         args=(ours, cfg["listenerPath"], cfg.get("listenerMetadata") or "",
                               dict(state)))
    t.start()
    return theirs


def container_process_state(pid, metadata, state):
    """runc's specs.ContainerProcessState, key order and omitempty included."""
    doc = {"ociVersion": OCI_VERSION, "fds": [SECCOMP_FD_NAME], "pid": pid}
    if metadata:
        doc["metadata"] = metadata
    st = {"ociVersion": state.get("ociVersion") or OCI_VERSION, "id": state.get("id", ""),
          "status": state.get("status", "")}
    if state.get("pid"):
        st["pid"] = state["pid"]
    st["bundle"] = state.get("bundle", "")
    if state.get("annotations"):
        st["annotations"] = state["annotations"]
    doc["state"] = st
    return doc


def send_to_listener(path, doc, fd):
    """Connect to the agent's socket, send the JSON with fd in SCM_RIGHTS, close."""
    import json
    import socket
    import struct

    data = json.dumps(doc, separators=(",", ":")).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as s:
        s.connect(path)
        sent = s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))])
        while sent < len(data):  # a stream: the rest without the fd (config-linux.md)
            sent += s.send(data[sent:])


def _forward(sock, path, metadata, state):
    """The runtime's thread: one fd from the container process to the listener."""
    import socket
    import struct

    fd = None
    try:
        msg, anc, _, _ = sock.recvmsg(64, socket.CMSG_SPACE(struct.calcsize("i")) +
                                      socket.CMSG_SPACE(struct.calcsize("3i")))
        pid = 0
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fd = struct.unpack("i", data[:4])[0]
            elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("3i", data[:12])[0]
        if not msg or fd is None:
            return  # the process died (EOF) or sent nothing usable
        if state.get("status") == "creating":
            state["pid"] = pid  # the init: the state's pid is the process's own
        reply = b"ok"
        try:
            send_to_listener(path, container_process_state(pid, metadata, state), fd)
        except OSError as e:
            reply = (f"linux.seccomp.listenerPath {path}: sending the seccomp fd to the "
                     f"agent: {e.strerror or e}").encode()
        sock.send(reply)
    except OSError:
        pass
    finally:
        if fd is not None:
            os.close(fd)
        sock.close()


# --- the container side ----------------------------------------------------------------------


def require_prepared(cfg):
    """In the container process: the filter for cfg must have been made before fork."""
    if _pending is None or _pending.source is not cfg:
        raise PyruncError("linux.seccomp: the filter was not prepared by the runtime "
                          "before the container was entered (internal error)")


def pending():
    return _pending is not None


def load_before_caps(no_new_privs):
    """Without no_new_privs a filter loads only while CAP_SYS_ADMIN is held: now."""
    if _pending is not None and not no_new_privs:
        load()


def load_if_listener():
    """A filter with a notify listener loads while the runtime is still there; True if
    it did."""
    if _pending is not None and _pending.notify:
        load()
        return True
    return False


def load():
    """seccomp(SECCOMP_SET_MODE_FILTER) with the prepared program; with a notify
    listener, pass the fd to the runtime and wait until it reached the agent."""
    global _pending
    filt, _pending = _pending, None
    if filt is None:
        return
    ffi, _, _ = _libs()
    n = len(filt.bpf) // 8
    prog = ffi.new("struct sock_filter[]", n)
    ffi.memmove(prog, filt.bpf, len(filt.bpf))
    fprog = ffi.new("struct sock_fprog *")
    fprog.len = n
    fprog.filter = prog
    ret, err = _seccomp_syscall(filt.nr_seccomp, SECCOMP_SET_MODE_FILTER, filt.flags, fprog)
    if ret < 0:
        raise PyruncError(f"linux.seccomp: loading the filter ({n} instructions, flags "
                          f"{filt.flags:#x}): {os.strerror(err)}")
    if filt.notify:
        _hand_over(filt, ret)


def _hand_over(filt, fd):
    import socket
    import struct

    sock = filt.sock
    try:
        try:
            sock.sendmsg([b"seccomp"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))])
            reply = sock.recv(4096)
        except OSError as e:
            raise PyruncError(f"linux.seccomp.listenerPath {filt.listener}: passing the "
                              f"seccomp fd to the runtime: {e.strerror}") from None
    finally:
        os.close(fd)
        sock.close()
    if reply != b"ok":
        raise PyruncError(reply.decode(errors="replace") or
                          f"linux.seccomp.listenerPath {filt.listener}: the runtime did not "
                          "pass the seccomp fd on")
