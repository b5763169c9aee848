"""Semantic checks of a process object: config.json's process, and exec --process's
document (exec imports only this module of the checks; see config/validate.py)."""
from pyrunc.config.problems import (Problems, abs_path, as_list, is_int, parse_id_list, show,
                                  sort_problems, typed_entries)

_RLIMITS = frozenset(
    "RLIMIT_" + n
    for n in (
        "AS CORE CPU DATA FSIZE LOCKS MEMLOCK MSGQUEUE NICE NOFILE NPROC RSS RTPRIO RTTIME SIGPENDING STACK".split()
    )
)


_DEADLINE_FIELDS = ("runtime", "deadline", "period")
# (uid_t)-1: setresuid(2) and setresgid(2) read it as "leave this id alone", so the
# process would keep the runtime's ids (root). runc refuses ids beyond 2147483647.
_NO_ID = 0xFFFFFFFF
_NO_ID_WHY = "4294967295 is (uid_t)-1, which the kernel reads as \"no change\" (the process would stay root)"


def add_process_problems(proc, P, p):
    """Problems of a process object at pointer parts P (config.json's, or exec's)."""
    if not isinstance(proc, dict):
        return
    abs_path(p, P + ("cwd",), proc.get("cwd"))
    _check_args(proc, P, p)
    _check_env(proc.get("env"), P + ("env",), p)
    _check_user(proc.get("user"), P + ("user",), p)
    _check_rlimits(proc.get("rlimits"), P + ("rlimits",), p)
    _check_priorities(proc, P, p)
    _check_scheduler(proc.get("scheduler"), P + ("scheduler",), p)
    _check_affinity(proc.get("execCPUAffinity"), P + ("execCPUAffinity",), p)


def _check_args(proc, P, p):
    if "args" not in proc:
        p.add(P, '"args" is required: it must contain at least one entry')
        return
    args = proc["args"]
    if not isinstance(args, list):
        return
    if not args:
        p.add(P + ("args",), "must contain at least one entry")
    elif args[0] == "":
        p.add(P + ("args", 0), "the program to run must not be empty")
    for i, a in enumerate(args):
        if isinstance(a, str) and "\0" in a:
            p.add(P + ("args", i), "must not contain a NUL byte")


def _check_env(env, parts, p):
    for i, e in enumerate(as_list(env)):
        if not isinstance(e, str):
            continue
        name, eq, _ = e.partition("=")
        if "\0" in e:
            p.add(parts + (i,), "must not contain a NUL byte")
        elif not eq or not name:
            p.add(parts + (i,), f"{show(e)} is not of the form NAME=value")


def _check_user(user, parts, p):
    if not isinstance(user, dict):
        return
    for key in ("uid", "gid"):
        if key not in user:
            p.add(parts, f'"{key}" is required')
        elif user[key] == _NO_ID and is_int(user[key]):
            p.add(parts + (key,), _NO_ID_WHY)
    for i, g in enumerate(as_list(user.get("additionalGids"))):
        if g == _NO_ID and is_int(g):
            p.add(parts + ("additionalGids", i), _NO_ID_WHY)


def _check_rlimits(rlimits, parts, p):
    for i, t, first in typed_entries(rlimits):
        if first is not None:
            p.add(parts + (i, "type"), f"duplicate rlimit {show(t)} (also at index {first})")
        elif t not in _RLIMITS and t.startswith("RLIMIT_"):
            p.add(parts + (i, "type"), f"unknown rlimit {show(t)}")
    for i, rl in enumerate(as_list(rlimits)):
        soft, hard = (rl.get("soft"), rl.get("hard")) if isinstance(rl, dict) else (None, None)
        if is_int(soft) and is_int(hard) and soft > hard:
            p.add(parts + (i,), f"soft limit {soft} is greater than the hard limit {hard}")


def _check_priorities(proc, P, p):
    """oomScoreAdj and ioPriority."""
    oom = proc.get("oomScoreAdj")
    if is_int(oom) and not -1000 <= oom <= 1000:
        p.add(P + ("oomScoreAdj",), f"{oom} is outside -1000 to 1000")
    iop = proc.get("ioPriority")
    if isinstance(iop, dict):
        if "priority" not in iop:
            p.add(P + ("ioPriority",), '"priority" is required')
        elif is_int(iop["priority"]) and not 0 <= iop["priority"] <= 7:
            p.add(P + ("ioPriority", "priority"), f"{iop['priority']} is outside 0 (highest) to 7 (lowest)")


def _check_scheduler(s, parts, p):
    if not isinstance(s, dict):
        return
    policy = s.get("policy")
    nice = s.get("nice")
    if is_int(nice) and not -20 <= nice <= 19:
        p.add(parts + ("nice",), f"{nice} is outside -20 to 19")
    if not isinstance(policy, str):
        return
    prio = s.get("priority")
    if is_int(prio):
        if policy in ("SCHED_FIFO", "SCHED_RR"):
            if not 1 <= prio <= 99:
                p.add(parts + ("priority",), f"{prio} is outside 1 to 99 for {policy}")
        elif prio != 0:
            p.add(parts + ("priority",), f"must be 0 for {show(policy)} (only SCHED_FIFO and SCHED_RR use a priority)")
    values = {k: s.get(k) for k in _DEADLINE_FIELDS if is_int(s.get(k))}
    if policy != "SCHED_DEADLINE":
        for k, v in values.items():
            if v != 0:
                p.add(parts + (k,), f"is only used by SCHED_DEADLINE, not {show(policy)}")
    else:
        rt, dl, per = values.get("runtime", 0), values.get("deadline", 0), values.get("period", 0)
        if dl and rt > dl:
            p.add(parts + ("runtime",), f"runtime {rt} is greater than deadline {dl}")
        if per and dl and dl > per:
            p.add(parts + ("deadline",), f"deadline {dl} is greater than period {per}")


def _check_affinity(aff, parts, p):
    if not isinstance(aff, dict):
        return
    for key in ("initial", "final"):
        v = aff.get(key)
        if isinstance(v, str) and not parse_id_list(v):
            p.add(parts + (key,), f"{show(v)} is not a CPU list such as 0-3,7")


def process_problems(proc) -> list:
    """Problems of a process document (exec --process), pointers from its root."""
    p = Problems()
    add_process_problems(proc, (), p)
    return sort_problems(p.items)
