"""The kernel's per-process settings of config.json's process (config.md "POSIX process"
and config-linux.md): rlimits, oomScoreAdj, scheduler, ioPriority, memory policy,
personality, CPU affinity; applied by attributes.prepare() in the container process.
"""
import os

from pyrunc.errors import PyruncError
from pyrunc.native import constants as C
from pyrunc.native import syscalls as sc


def parse_cpu_list(text):
    """'0-3,7' -> {0,1,2,3,7}"""
    out = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            out.update(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            raise PyruncError(f"invalid cpu/node list {text!r}") from None
    return out


def set_rlimits(rlimits):
    for rl in rlimits or ():
        name = rl["type"]
        res = C.RLIMITS.get(name)
        if res is None:
            raise PyruncError(f"process.rlimits: unknown rlimit type {name!r}")
        try:
            sc.setrlimit(res, rl["soft"], rl["hard"])
        except (OSError, ValueError, OverflowError) as e:
            raise PyruncError(f"process.rlimits: setting {name} to soft={rl['soft']} "
                              f"hard={rl['hard']}: {getattr(e, 'strerror', None) or e}") from None


def set_oom_score_adj(value):
    try:
        _write_own_proc_file("oom_score_adj", str(value))
    except OSError as e:
        raise PyruncError(f"process.oomScoreAdj: writing {value}: {e.strerror}") from None


def _write_own_proc_file(name, text):
    """Write /proc/self/NAME. A non-dumpable process's /proc files belong to the host's
    root, which a user-namespaced root is not: then be dumpable just for the open."""
    try:
        fd = os.open(f"/proc/self/{name}", os.O_WRONLY | os.O_CLOEXEC)
    except PermissionError:
        if sc.prctl(C.PR_GET_DUMPABLE) != 0:
            raise
        sc.prctl(C.PR_SET_DUMPABLE, 1)
        try:
            fd = os.open(f"/proc/self/{name}", os.O_WRONLY | os.O_CLOEXEC)
        finally:
            sc.prctl(C.PR_SET_DUMPABLE, 0)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def set_scheduler(s):
    policy = C.SCHED_POLICIES.get(s.get("policy"))
    if policy is None:
        raise PyruncError(f"process.scheduler: unknown policy {s.get('policy')!r}")
    flags = 0
    for f in s.get("flags") or ():
        if f not in C.SCHED_FLAGS:
            raise PyruncError(f"process.scheduler: unknown flag {f!r}")
        flags |= C.SCHED_FLAGS[f]
    try:
        sc.sched_setattr(0, policy, flags, s.get("nice", 0), s.get("priority", 0),
                         s.get("runtime", 0), s.get("deadline", 0), s.get("period", 0))
    except OSError as e:
        raise PyruncError(f"process.scheduler: {e.strerror}") from None


def set_io_priority(p):
    cls = C.IOPRIO_CLASSES.get(p.get("class"))
    if cls is None:
        raise PyruncError(f"process.ioPriority: unknown class {p.get('class')!r}")
    try:
        sc.ioprio_set(1, 0, (cls << 13) | p.get("priority", 0))  # IOPRIO_WHO_PROCESS, self
    except OSError as e:
        raise PyruncError(f"process.ioPriority: {e.strerror}") from None


def set_memory_policy(mp):
    mode = C.MPOL_MODES.get(mp.get("mode"))
    if mode is None:
        raise PyruncError(f"linux.memoryPolicy: invalid mode {mp.get('mode')!r}")
    for f in mp.get("flags") or ():
        if f not in C.MPOL_FLAGS:
            raise PyruncError(f"linux.memoryPolicy: invalid flag {f!r}")
        mode |= C.MPOL_FLAGS[f]
    nodes = parse_cpu_list(mp.get("nodes") or "")
    try:
        sc.set_mempolicy(mode, sorted(nodes))
    except OSError as e:
        raise PyruncError(f"linux.memoryPolicy: set_mempolicy({mp.get('mode')}, "
                          f"nodes={mp.get('nodes', '')!r}): {e.strerror}") from None


def set_personality(p):
    dom = C.PERSONALITY_DOMAINS.get(p.get("domain"))
    if dom is None:
        raise PyruncError(f"linux.personality: unknown domain {p.get('domain')!r}")
    try:
        sc.personality(dom)
    except OSError as e:
        raise PyruncError(f"linux.personality: {e.strerror}") from None


def set_cpu_affinity(cpus, what):
    try:
        os.sched_setaffinity(0, parse_cpu_list(cpus))
    except OSError as e:
        raise PyruncError(f"process.execCPUAffinity.{what} {cpus!r}: {e.strerror}") from None
