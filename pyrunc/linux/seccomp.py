"""linux.seccomp (config-linux.md "Seccomp") through libseccomp, with runc's semantics.

Two halves, split by fork:

- In the runtime, before it forks the container's processes (init.preimport_process),
  prepare() loads libseccomp.so.2 (dlopen'ed through pyrunc.native), builds the filter
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

SCMP_ACT_NOTIFY and listenerPath: the runtime's side is in seccomp_notify.py.
"""
import errno
import os

from pyrunc.errors import PyruncError
from pyrunc.native import constants as C
from pyrunc.native import syscalls as sc

LIBSECCOMP = "libseccomp.so.2"

ACTIONS = {
    "SCMP_ACT_KILL": C.SCMP_ACT_KILL_THREAD,  # runc: SCMP_ACT_KILL kills the thread
    "SCMP_ACT_KILL_PROCESS": C.SCMP_ACT_KILL_PROCESS,
    "SCMP_ACT_KILL_THREAD": C.SCMP_ACT_KILL_THREAD,
    "SCMP_ACT_TRAP": C.SCMP_ACT_TRAP,
    "SCMP_ACT_ERRNO": C.SCMP_ACT_ERRNO,
    "SCMP_ACT_TRACE": C.SCMP_ACT_TRACE,
    "SCMP_ACT_ALLOW": C.SCMP_ACT_ALLOW,
    "SCMP_ACT_LOG": C.SCMP_ACT_LOG,
    "SCMP_ACT_NOTIFY": C.SCMP_ACT_NOTIFY,
}
_WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
OPERATORS = C.SCMP_CMP
# the seccomp(2) filter flags a config may name
FLAGS = {name: getattr(C, name) for name in (
    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")}

_U64 = (1 << 64) - 1

_flag_support = {}  # this kernel's answers (flag_supported), not a container's state


class Filter:
    """A compiled filter: what the container process needs to load it. Made by the
    runtime before fork (prepare), it crosses fork in the container side's plan
    (init.InitSpec.seccomp, or exec's helper arguments) and is loaded by process.prepare
    or, as the last step before execve, process.execute."""

    __slots__ = ("source", "bpf", "flags", "notify", "sock", "listener")

    def __init__(self, source, bpf, flags, notify):
        self.source = source
        self.bpf = bpf
        self.flags = flags
        self.notify = notify
        self.sock = None  # our end of the socketpair to the runtime's forwarder
        self.listener = None


# --- libseccomp --------------------------------------------------------------------------


def _load_libseccomp():
    try:
        sc.libseccomp_open()  # once per process (the C side keeps the handle)
    except OSError as e:
        raise PyruncError(f"linux.seccomp: cannot load {LIBSECCOMP} (is libseccomp "
                          f"installed?): {e.strerror}") from None


def libseccomp_version():
    """(major, minor, micro) of the libseccomp loaded, or None if it cannot be loaded."""
    try:
        _load_libseccomp()
    except PyruncError:
        return None
    return sc.libseccomp_version()


def flag_supported(flag_bits):
    """Does this kernel accept the seccomp(2) filter flag(s)? (runc's probe: the kernel
    checks the flags before it reads the program, so a NULL program fails with EFAULT
    exactly when the flags are fine)."""
    if flag_bits not in _flag_support:
        probe = flag_bits
        if probe & C.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV:
            probe |= C.SECCOMP_FILTER_FLAG_NEW_LISTENER  # the kernel takes it with a listener only
        try:
            sc.seccomp_set_mode_filter(probe, None)
            ok = False  # (cannot succeed without a program)
        except OSError as e:
            ok = e.errno == errno.EFAULT
        _flag_support[flag_bits] = ok
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
        return act | errno.EPERM
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


def _add_rule(ctx, action, nr, conds, where, name):
    rc = sc.scmp_rule_add(ctx, action, nr, conds)
    if rc < 0:
        raise PyruncError(f"{where}: adding the rule for {_quote(name)}: {os.strerror(-rc)}")


def _arch_token(name, where):
    if not isinstance(name, str) or not name.startswith("SCMP_ARCH_"):
        raise PyruncError(f"{where}: unknown architecture {_quote(name)}")
    token = sc.scmp_arch_resolve_name(name[len("SCMP_ARCH_"):].lower())
    if not token:
        raise PyruncError(f"{where}: architecture {name} is not known to libseccomp "
                          + ".".join(map(str, sc.libseccomp_version())))
    return token


def compile(cfg, where="linux.seccomp", warn=None):  # noqa: A001 - the module's verb
    """Build the filter for a linux.seccomp object; returns a Filter (bpf bytes)."""
    if not isinstance(cfg, dict):
        raise PyruncError(f"{where}: must be an object")
    _load_libseccomp()
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
    ctx = sc.scmp_init(default)
    if ctx is None:
        raise PyruncError(f"{where}.defaultAction: {default_name} is not supported by "
                          "this kernel or libseccomp")
    try:
        for j, arch in enumerate(cfg.get("architectures") or ()):
            rc = sc.scmp_arch_add(ctx, _arch_token(arch, f"{where}.architectures[{j}]"))
            if rc < 0 and rc != -errno.EEXIST:  # the native one is always there
                raise PyruncError(f"{where}.architectures[{j}]: adding {arch}: {os.strerror(-rc)}")
        if len(syscalls) > 32:
            sc.scmp_attr_set(ctx, C.SCMP_FLTATR_CTL_OPTIMIZE, 2)  # binary tree, as runc; best effort
        for w, names, action, condsets, is_notify in rules:
            if action == default:
                continue  # runc: redundant, skipped
            for name in names:
                nr = sc.scmp_syscall_resolve_name(name)
                if nr == -1:  # __NR_SCMP_ERROR: unknown to libseccomp, skipped as by runc
                    continue
                for conds in condsets:
                    _add_rule(ctx, action, nr, conds, w, name)
                notify = notify or is_notify
        bpf = _export(ctx)
    finally:
        sc.scmp_release(ctx)
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
            if flag_supported(bit | C.SECCOMP_FILTER_FLAG_TSYNC_ESRCH):
                flags |= bit | C.SECCOMP_FILTER_FLAG_TSYNC_ESRCH  # the kernel wants ESRCH with a listener
            continue
        if flag_supported(bit):
            flags |= bit
        elif warn:
            warn(f"{where}.flags[{j}]: {name} is not supported by this kernel: skipped")
    if notify:
        flags |= C.SECCOMP_FILTER_FLAG_NEW_LISTENER
    return Filter(cfg, bpf, flags, notify)


def _export(ctx):
    fd = os.memfd_create("pyrunc-seccomp", os.MFD_CLOEXEC)
    try:
        rc = sc.scmp_export_bpf(ctx, fd)
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
    if len(data) // 8 > C.BPF_MAXINSNS:
        raise PyruncError(f"linux.seccomp: the filter has {len(data) // 8} BPF instructions; "
                          f"the kernel takes at most {C.BPF_MAXINSNS} (fewer rules or "
                          "architectures)")
    return data


# --- the runtime side ------------------------------------------------------------------------


def prepare(cfg, state=None, warn=None):
    """In the runtime, before fork: compile cfg for the container process about to be
    made; returns the Filter it will load. state (runtime.md "State" of the container)
    is needed with a notify listener."""
    filt = compile(cfg, warn=warn)
    if filt.notify:
        from pyrunc.linux import seccomp_notify

        filt.sock = seccomp_notify.start_forwarder(cfg, state or {})
        filt.listener = cfg.get("listenerPath")
    return filt


# --- the container side ----------------------------------------------------------------------


def require_prepared(filt, cfg):
    """In the container process: the filter for cfg must have been made before fork."""
    if filt is None or filt.source is not cfg:
        raise PyruncError("linux.seccomp: the filter was not prepared by the runtime "
                          "before the container was entered (internal error)")


def load(filt):
    """seccomp(SECCOMP_SET_MODE_FILTER) with the prepared program; with a notify
    listener, pass the fd to the runtime and wait until it reached the agent."""
    try:
        ret = sc.seccomp_set_mode_filter(filt.flags, filt.bpf)
    except OSError as e:
        raise PyruncError(f"linux.seccomp: loading the filter ({len(filt.bpf) // 8} "
                          f"instructions, flags {filt.flags:#x}): {os.strerror(e.errno)}") from None
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
