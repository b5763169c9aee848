"""Semantic checks of a process object (config.json's process, exec --process), and the
helpers all semantic checks share; ``check_process`` is exec's check of its process.

Only the standard library at the top: exec imports this module (not semantic.py)."""
from pyrunc.spec.problems import one_line, pointer, show, sort_problems

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


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _list(x):
    return x if isinstance(x, list) else []


def _typed_entries(entries):
    """(index, type, index of an earlier entry of the same type or None) for the dict
    entries of a list that have a string "type"."""
    seen = {}
    for i, entry in enumerate(_list(entries)):
        t = entry.get("type") if isinstance(entry, dict) else None
        if isinstance(t, str):
            yield i, t, seen.get(t)
            seen.setdefault(t, i)


def _dict(x):
    return x if isinstance(x, dict) else {}


class _Problems:
    def __init__(self):
        self.items = []

    def add(self, parts, message):
        self.items.append(one_line(f"{pointer(*parts)}: {message}"))


def _abs_path(p, parts, value, what="must be an absolute path", allow_empty=False):
    """Absolute path check shared by several fields (strings only)."""
    if not isinstance(value, str):
        return
    if value == "":
        if not allow_empty:
            p.add(parts, "must not be empty")
        return
    if "\0" in value:
        p.add(parts, "must not contain a NUL byte")
    elif not value.startswith("/"):
        p.add(parts, f"{show(value)} {what}")


def parse_id_list(text):
    """Whether ``text`` is a list like ``0-3,7`` (empty allowed)."""
    text = text.strip()
    if not text:
        return True
    for item in text.split(","):
        item = item.strip()
        lo, dash, hi = item.partition("-")
        lo, hi = lo.strip(), hi.strip()
        if not (lo.isascii() and lo.isdigit()) or len(lo) > 9:
            return False
        if dash and (not (hi.isascii() and hi.isdigit()) or len(hi) > 9 or int(hi) < int(lo)):
            return False
    return True


def add_process_problems(proc, P, p):
    """Problems of a process object at pointer parts P (config.json's, or exec's)."""
    if not isinstance(proc, dict):
        return
    cwd = proc.get("cwd")
    _abs_path(p, P + ("cwd",), cwd)

    if "args" not in proc:
        p.add(P, '"args" is required: it must contain at least one entry')
    elif isinstance(proc["args"], list):
        args = proc["args"]
        if not args:
            p.add(P + ("args",), "must contain at least one entry")
        elif args[0] == "":
            p.add(P + ("args", 0), "the program to run must not be empty")
        for i, a in enumerate(args):
            if isinstance(a, str) and "\0" in a:
                p.add(P + ("args", i), "must not contain a NUL byte")

    for i, e in enumerate(_list(proc.get("env"))):
        if not isinstance(e, str):
            continue
        name, eq, _ = e.partition("=")
        if "\0" in e:
            p.add(P + ("env", i), "must not contain a NUL byte")
        elif not eq or not name:
            p.add(P + ("env", i), f"{show(e)} is not of the form NAME=value")

    user = proc.get("user")
    if isinstance(user, dict):
        for key in ("uid", "gid"):
            if key not in user:
                p.add(P + ("user",), f'"{key}" is required')
            elif user[key] == _NO_ID and _is_int(user[key]):
                p.add(P + ("user", key), _NO_ID_WHY)
        for i, g in enumerate(_list(user.get("additionalGids"))):
            if g == _NO_ID and _is_int(g):
                p.add(P + ("user", "additionalGids", i), _NO_ID_WHY)

    for i, t, first in _typed_entries(proc.get("rlimits")):
        if first is not None:
            p.add(P + ("rlimits", i, "type"), f"duplicate rlimit {show(t)} (also at index {first})")
        elif t not in _RLIMITS and t.startswith("RLIMIT_"):
            p.add(P + ("rlimits", i, "type"), f"unknown rlimit {show(t)}")
    for i, rl in enumerate(_list(proc.get("rlimits"))):
        soft, hard = (rl.get("soft"), rl.get("hard")) if isinstance(rl, dict) else (None, None)
        if _is_int(soft) and _is_int(hard) and soft > hard:
            p.add(P + ("rlimits", i), f"soft limit {soft} is greater than the hard limit {hard}")

    oom = proc.get("oomScoreAdj")
    if _is_int(oom) and not -1000 <= oom <= 1000:
        p.add(P + ("oomScoreAdj",), f"{oom} is outside -1000 to 1000")

    iop = proc.get("ioPriority")
    if isinstance(iop, dict):
        if "priority" not in iop:
            p.add(P + ("ioPriority",), '"priority" is required')
        elif _is_int(iop["priority"]) and not 0 <= iop["priority"] <= 7:
            p.add(P + ("ioPriority", "priority"), f"{iop['priority']} is outside 0 (highest) to 7 (lowest)")

    _check_scheduler(proc.get("scheduler"), P + ("scheduler",), p)

    aff = proc.get("execCPUAffinity")
    if isinstance(aff, dict):
        for key in ("initial", "final"):
            v = aff.get(key)
            if isinstance(v, str) and not parse_id_list(v):
                p.add(P + ("execCPUAffinity", key), f"{show(v)} is not a CPU list such as 0-3,7")


def _check_scheduler(s, parts, p):
    if not isinstance(s, dict):
        return
    policy = s.get("policy")
    nice = s.get("nice")
    if _is_int(nice) and not -20 <= nice <= 19:
        p.add(parts + ("nice",), f"{nice} is outside -20 to 19")
    if not isinstance(policy, str):
        return
    prio = s.get("priority")
    if _is_int(prio):
        if policy in ("SCHED_FIFO", "SCHED_RR"):
            if not 1 <= prio <= 99:
                p.add(parts + ("priority",), f"{prio} is outside 1 to 99 for {policy}")
        elif prio != 0:
            p.add(parts + ("priority",), f"must be 0 for {show(policy)} (only SCHED_FIFO and SCHED_RR use a priority)")
    values = {k: s.get(k) for k in _DEADLINE_FIELDS if _is_int(s.get(k))}
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


def process_problems(proc) -> list:
    """Problems of a process document (exec --process), pointers from its root."""
    p = _Problems()
    add_process_problems(proc, (), p)
    return sort_problems(p.items)


def check_process(proc, source):
    """Raise a one-line ConfigError when the process document ``proc`` (exec --process)
    is invalid: the schema of config.json's process (the compiled check; jsonschema only
    to word the error) and its semantic checks. As create does with a config, a document
    that fails them gets runc's reading of it first (spec/compat.py: nulls unset, a
    missing uid or gid 0 ...; changed in place) and is checked again."""
    if _valid(proc):
        return
    from pyrunc import log
    from pyrunc.spec.compat import runc_compat

    for note in runc_compat({"process": proc}):
        if note.startswith("/process/"):
            log.debug(f"runc compatibility: {note.removeprefix('/process')}")
    problems = process_problems(proc)
    from pyrunc.spec._schema_checks import CHECKS

    if not CHECKS["process"](proc):
        from pyrunc.spec.validate import schema_problems

        problems = schema_problems(proc, "process") + problems
    if problems:
        from pyrunc.errors import ConfigError

        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(f"{source}: {problems[0]}{more}")


def _valid(proc):
    from pyrunc.spec._schema_checks import CHECKS  # fastschema's output for specs/

    return CHECKS["process"](proc) and not process_problems(proc)
