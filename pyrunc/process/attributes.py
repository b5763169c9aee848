"""Process attributes applied by the init (and exec) just before execve: user/groups,
capabilities, env and executable lookup, the seccomp filter's load; prepare() and
execute() run them in order (the kernel's per-process settings, rlimits to CPU
affinity, are in limits.py).
"""
import os
# _signal, not signal: the signal module builds enums (enum costs ~7 ms to import).
import _signal as signal

from pyrunc.errors import PyruncError
from pyrunc.native import constants as C
from pyrunc.native import syscalls as sc
from pyrunc.process.limits import (set_cpu_affinity, set_io_priority, set_memory_policy,
                                   set_oom_score_adj, set_personality, set_rlimits,
                                   set_scheduler)
from pyrunc.linux.capabilities import CAPABILITIES, last_cap, usable_mask

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def leave_runtime_environment(env):
    """Container side, first thing after the fork from the runtime: the caller's
    environment (an engine's secrets) must not reach the container. The block the kernel
    shows as /proc/PID/environ (a container with CAP_SYS_PTRACE may read it) is wiped;
    os.environ becomes the process's env, which is what runc's init has (and so what
    createContainer/startContainer hooks without an env see)."""
    fd = os.open("/proc/self/stat", os.O_RDONLY | os.O_CLOEXEC)
    try:
        stat = os.read(fd, 4096)
    finally:
        os.close(fd)
    fields = stat[stat.rindex(b")") + 2:].split()
    start, end = int(fields[47]), int(fields[48])  # env_start, env_end: proc(5) fields 50, 51
    if 0 < start < end:
        sc.wipe_memory(start, end - start)
    os.environ.clear()
    for entry in env or ():
        key, sep, value = entry.partition("=")
        if key and sep and "\0" not in entry:
            os.environ[key] = value


def env_value(env, key):
    prefix = key + "="
    for e in env:
        if e.startswith(prefix):
            return e[len(prefix):]
    return None


def lookup_executable(arg0, env):
    """Resolve args[0] in the container's root (after pivot_root) as Go's exec.LookPath."""
    if "/" in arg0:
        try:
            st = os.stat(arg0)
        except OSError as e:
            raise PyruncError(f'exec: "{arg0}": stat {arg0}: {e.strerror.lower()}') from None
        if not (st.st_mode & 0o111) or (st.st_mode & 0o170000) == 0o040000:
            raise PyruncError(f'exec: "{arg0}": permission denied')
        return arg0
    path = env_value(env, "PATH")
    for d in (path if path is not None else DEFAULT_PATH).split(":"):
        cand = os.path.join(d or ".", arg0)
        try:
            st = os.stat(cand)
        except OSError:
            continue
        if (st.st_mode & 0o170000) == 0o100000 and st.st_mode & 0o111:
            return cand
    raise PyruncError(f'exec: "{arg0}": executable file not found in $PATH')


def home_for(uid):
    try:
        with open("/etc/passwd") as f:
            for line in f:
                p = line.rstrip("\n").split(":")
                if len(p) >= 6 and p[2] == str(uid):
                    return p[5] or "/"
    except OSError:
        pass
    return "/"


def caps_mask(names):
    """Capabilities this host cannot grant are left out (the runtime warned about them
    before fork: capabilities.ignored_warning)."""
    return usable_mask(names)[0]


def set_user_and_caps(user, caps, warn=None, keep_extra=0):
    """Bounding set, groups, gid, uid, then the capability sets (config.md "User",
    config-linux "capabilities"). caps None means: keep the current sets.

    keep_extra: capability bits left in the effective and permitted sets beyond the
    config's (CAP_SYS_ADMIN, for a seccomp filter loaded later without no_new_privs).
    Returns the final (effective, permitted, inheritable) masks to set once that is done
    (set_final_caps), or None if nothing was kept."""
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    for what, n in (("uid", uid), ("gid", gid)):
        # Validation refuses these; a last guard: -1 would mean "no change" (stay root).
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n < 0xFFFFFFFF:
            raise PyruncError(f"process.user.{what}: {n!r} is not a uid/gid (0 to 4294967294)")
    if caps is not None:
        # what we hold bounds what we can grant (the runtime warned about the rest)
        _, held, held_inh = sc.capget()
        keep = caps_mask(caps.get("bounding"))
        for c in range(last_cap() + 1):
            if not keep & (1 << c):
                try:
                    sc.prctl(C.PR_CAPBSET_DROP, c)
                except OSError as e:
                    raise PyruncError(f"dropping capability {c} from the bounding set: "
                                      f"{e.strerror}") from None
    sc.prctl(C.PR_SET_KEEPCAPS, 1)
    try:
        os.setgroups(list(user.get("additionalGids") or ()))
    except OSError as e:
        # setgroups is denied in a user namespace whose setgroups file says "deny"
        if user.get("additionalGids"):
            raise PyruncError(f"process.user.additionalGids: setgroups: {e.strerror}") from None
    try:
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as e:
        raise PyruncError(f"process.user: setting uid {uid} gid {gid}: {e.strerror}") from None
    sc.prctl(C.PR_SET_KEEPCAPS, 0)
    if caps is None:
        return None
    eff, perm, inh = (caps_mask(caps.get(k)) for k in ("effective", "permitted", "inheritable"))
    eff, perm, inh = eff & held, perm & held, inh & (held | held_inh)
    # (an effective set beyond the permitted one fails here, at create, as without extra)
    extra = keep_extra & held & ~(eff & perm) if not eff & ~perm else 0
    try:
        sc.capset(eff | extra, perm | extra, inh)
    except OSError as e:
        raise PyruncError(f"process.capabilities: {e.strerror}") from None
    for n in caps.get("ambient") or ():
        num = CAPABILITIES.get(n) if isinstance(n, str) else None
        if num is None or num > last_cap():
            continue  # the runtime warned about it
        try:
            if not perm & inh & (1 << num):  # what the kernel checks, on the final sets
                raise OSError(1, "Operation not permitted")
            sc.prctl(C.PR_CAP_AMBIENT, C.PR_CAP_AMBIENT_RAISE, num)
        except OSError as e:
            # As runc: a warning, since runc's own default spec asks for ambient caps
            # that are not inheritable.
            if warn:
                warn(f"process.capabilities.ambient: cannot raise {n}: {e.strerror} "
                     "(an ambient capability must be permitted and inheritable)")
    return (eff, perm, inh) if extra else None


def set_final_caps(masks):
    """The capability sets set_user_and_caps left wider (keep_extra), now final."""
    try:
        sc.capset(*masks)
    except OSError as e:
        raise PyruncError(f"process.capabilities: {e.strerror}") from None


def reset_signals():
    """Python ignores SIGPIPE/SIGXFSZ and handles SIGINT: give the container defaults."""
    for s in range(1, signal.NSIG):
        if s in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(s, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


class Prepared:
    """What is left to do at execve once process attributes are applied."""

    __slots__ = ("path", "args", "env", "final_cpus", "final_caps", "seccomp")

    def __init__(self, path, args, env, final_cpus, final_caps=None, seccomp=None):
        self.path, self.args, self.env, self.final_cpus = path, args, env, final_cpus
        self.final_caps = final_caps  # set after the seccomp filter (set_user_and_caps)
        self.seccomp = seccomp  # the seccomp.Filter still to load, if any


def prepare(proc, linux, listen_fds=0, warn=None, seccomp_filter=None):
    """Apply process attributes in the order runc does (standard_init_linux.go), up to but
    not including execve; the executable is looked up now so that a missing one fails
    create (or exec), not start. seccomp_filter: linux.seccomp as the runtime compiled
    it before fork (init.preimport_process)."""
    sec = linux.get("seccomp")
    filt = None
    if sec:
        from pyrunc.linux import seccomp  # imported by preimport_process, before any pivot_root

        seccomp.require_prepared(seccomp_filter, sec)
        filt = seccomp_filter
    if proc.get("apparmorProfile"):
        from pyrunc.linux.lsm import apparmor

        apparmor.apply(proc["apparmorProfile"])
    if "oomScoreAdj" in proc:
        set_oom_score_adj(proc["oomScoreAdj"])
    set_rlimits(proc.get("rlimits"))
    if linux.get("personality"):
        set_personality(linux["personality"])
    if proc.get("scheduler"):
        set_scheduler(proc["scheduler"])
    if proc.get("ioPriority"):
        set_io_priority(proc["ioPriority"])
    if linux.get("memoryPolicy"):
        set_memory_policy(linux["memoryPolicy"])
    aff = proc.get("execCPUAffinity") or {}
    if aff.get("initial"):
        set_cpu_affinity(aff["initial"], "initial")
    user = proc.get("user") or {}
    env = list(proc.get("env") or ())
    if env_value(env, "HOME") is None:
        env.append("HOME=" + home_for(user.get("uid", 0)))
    # Socket activation (as runc): the runtime's $LISTEN_FDS fds come first after stdio
    # (then the --preserve-fds ones), and the process is told it owns them.
    if listen_fds:
        env = [e for e in env if not e.startswith(("LISTEN_FDS=", "LISTEN_PID="))]
        env += [f"LISTEN_FDS={listen_fds}", "LISTEN_PID=1"]
    args = proc.get("args") or []
    if not args:
        raise PyruncError("process.args must not be empty")
    path = lookup_executable(args[0], env)
    nnp = proc.get("noNewPrivileges")
    if nnp:
        sc.prctl(C.PR_SET_NO_NEW_PRIVS, 1)
    if proc.get("selinuxLabel"):
        from pyrunc.linux.lsm import selinux

        selinux.set_exec_label(proc["selinuxLabel"])
    caps = proc.get("capabilities")
    keep_extra = 0
    if sec and not nnp:
        # Without no_new_privs, loading the filter needs CAP_SYS_ADMIN: kept in the
        # effective set until then (the final sets follow the filter, as the last step
        # before execve), where runc loads it before changing user and capabilities.
        if caps is None:
            seccomp.load(filt)  # sets left as they are: nothing to restore
            filt = None
        else:
            keep_extra = 1 << CAPABILITIES["CAP_SYS_ADMIN"]
    final_caps = set_user_and_caps(user, caps, warn=warn, keep_extra=keep_extra)
    os.umask(user.get("umask", 0o022))
    cwd = proc.get("cwd") or "/"
    try:
        os.chdir(cwd)
    except OSError as e:
        raise PyruncError(f"process.cwd {cwd}: {e.strerror}") from None
    try:
        os.getcwd()  # CVE-2024-21626 class: getcwd(2) fails for a cwd outside our root
    except OSError:
        raise PyruncError(f"process.cwd {cwd}: the working directory is outside the container's "
                          "root (possible container breakout detected)") from None
    if filt is not None and filt.notify:  # while the runtime is there to pass the fd on
        seccomp.load(filt)
        filt = None
        if final_caps is not None:
            set_final_caps(final_caps)
            final_caps = None
    return Prepared(path, args, env, aff.get("final"), final_caps, filt)


def _max_fd():
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (ValueError, OSError):
        return 1024


def execute(prep, preserve_fds):
    """Close every descriptor but stdio and the preserved ones, restore signal defaults,
    execve. Never returns."""
    if prep.final_cpus:
        set_cpu_affinity(prep.final_cpus, "final")
    first = 3 + preserve_fds
    for fd in range(3, first):
        os.set_inheritable(fd, True)
    os.closerange(first, _max_fd())
    reset_signals()
    env = dict(e.split("=", 1) if "=" in e else (e, "") for e in prep.env)
    if prep.seccomp is not None:
        from pyrunc.linux import seccomp  # imported by preimport_process, before any pivot_root

        # The last steps before execve (config-linux.md "Seccomp"): nothing the runtime
        # still does (cwd check, exec.fifo, closing fds, signals) runs under the filter.
        seccomp.load(prep.seccomp)
    if prep.final_caps is not None:
        set_final_caps(prep.final_caps)
    os.execve(prep.path, prep.args, env)
