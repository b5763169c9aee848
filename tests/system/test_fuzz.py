"""Property-based fuzz of the runtime on generated input (issue 14): configs for
`validate` and `create`/`start`/`delete --force`, and process documents for
`exec --process`, made by mutating a valid busybox config.

Whatever the input, every command must exit 0 or print exactly one error line (well-formed
log lines only: no traceback, no "internal error"), within a time bound, and leave
nothing behind: no state under --root, no cgroup under the test's prefix, no process in
those cgroups, no mount under the test's tmp dir.

Size: PYRUNC_FUZZ_EXAMPLES (default 50 per test: ~20 s for this file here, well within
CI's ~60 s) sets the number of generated examples per test; each takes ~0.2-0.5 s, so
3,000 take 10-25 minutes a test:

    PYRUNC_FUZZ_EXAMPLES=3000 nice .venv/bin/python -m pytest -p no:cacheprovider \\
        --basetemp=/tmp/pt-fuzz tests/system/test_fuzz.py -x -q

By default the examples are the same at every run (derandomized); PYRUNC_FUZZ_SEED=N
draws others (any N, or "random"). A mutation cannot reach the host: the cgroupsPath,
linux.sysctl and linux.netDevices are never generated, and a config that would join a
namespace under /proc or lacks its own mount and uts namespaces is only validated.
"""
import copy
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, seed, settings
from hypothesis import strategies as st

from support.host import prefix_dirs

EXAMPLES = int(os.environ.get("PYRUNC_FUZZ_EXAMPLES", "50"))
_SEED = os.environ.get("PYRUNC_FUZZ_SEED")
TIMEOUT = 30  # seconds a command may take (create is ~30 ms; a loaded 2-core machine)

_FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                 derandomize=_SEED is None, print_blob=True,
                 suppress_health_check=list(HealthCheck))


def _seeded(f):
    if _SEED and _SEED != "random":
        return seed(int(_SEED))(f)
    return f


# ---------------------------------------------------------------------------
# values

NASTY_STRINGS = [
    "", " ", "\0", "a\0b", "/\0", "\ud800", "\udcff", "x\udfffy", "\t\r", "\n", "\x7f\x1b[2J",
    "\u2028", "\ufeff", "é", "/", "//", "/.", "/..", "../../..", "/../../../..", ".", "..",
    "/tmp", "/dev/fz", "/mnt/fz", "/proc/fz", "rootfs", "a" * 300, "/" + "a/" * 200,
    "%s%n", "{}", "[]", "null", "-1", "1e400", "=", "A=", "=B", "PATH=", "1:2", "0-1,a",
    "c", "b", "p", "u", "rwm", "bind", "rbind", "ro", "nosuid", "remount", "tmpfs", "proc",
    "CAP_SYS_ADMIN", "CAP_FOO", "RLIMIT_NOFILE", "RLIMIT_BAR", "SCMP_ACT_ERRNO",
    "SCMP_ACT_NOTIFY", "SCMP_ARCH_X86_64", "SCHED_FIFO", "MPOL_BIND", "LINUX",
    "IOPRIO_CLASS_RT", "private", "shared", "slave", "unbindable",
]
NASTY_INTS = [
    -1, 0, 1, 7, 255, 256, 1000, 4095, 4096, 65535, 65536, 2**20, 2**31 - 1, 2**31,
    2**32 - 1, 2**32, 2**53, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -2**31, -2**63, -2**63 - 1,
    -2**64, 10**30, 10**100,
]
NASTY_FLOATS = [0.5, -0.0, 1.0, 1e308, -1e308, 1e-300, 2.0**64]

strings = st.one_of(st.sampled_from(NASTY_STRINGS),
                    st.text(st.characters(exclude_categories=()), max_size=12))
ints = st.one_of(st.sampled_from(NASTY_INTS), st.integers(-2**70, 2**70))
scalars = st.one_of(strings, ints, st.sampled_from(NASTY_FLOATS), st.booleans(), st.none())


def _nested(depth):
    v = []
    for _ in range(depth):
        v = [v]
    return v


json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(strings, inner, max_size=4)),
    max_leaves=12,
) | st.sampled_from([_nested(200), {"a": _nested(60)}, [0] * 400, ["x"] * 400])


def same_kind(value):
    """A nasty value of the same JSON type as ``value`` (so that deep code runs)."""
    if isinstance(value, bool):
        return st.one_of(st.booleans(), scalars)
    if isinstance(value, int):
        return ints
    if isinstance(value, float):
        return st.sampled_from(NASTY_FLOATS)
    if isinstance(value, str):
        return strings
    if isinstance(value, list):
        return st.lists(json_values, max_size=3)
    if isinstance(value, dict):
        return st.dictionaries(strings, json_values, max_size=3)
    return json_values


# Parts a valid config may have that the base one lacks: inserted, then mutated like the
# rest, so that generated configs reach the code of each feature.
TEMPLATES = [
    (("hooks",), {stage: [{"path": "/bin/true", "args": ["true", "x"], "env": ["A=b"], "timeout": 5}]
                  for stage in ("prestart", "createRuntime", "createContainer",
                                "startContainer", "poststart", "poststop")}),
    (("linux", "devices"), [{"path": "/dev/fz0", "type": "c", "major": 1, "minor": 3,
                             "fileMode": 0o666, "uid": 0, "gid": 0}]),
    (("linux", "resources"), {
        "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swappiness": 10},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 100},
        "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 1, "minor": 3, "rate": 1000}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
        "devices": [{"allow": False, "access": "rwm"},
                    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
        "network": {"classID": 1, "priorities": [{"name": "lo", "priority": 1}]},
    }),
    (("mounts", 0), {"destination": "/mnt/fz", "type": "tmpfs", "source": "tmpfs",
                     "options": ["size=1m", "mode=755"]}),
    (("mounts", 0), {"destination": "/mnt/b", "type": "bind", "source": "rootfs/etc",
                     "options": ["rbind", "ro"]}),
    (("process", "rlimits"), [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024},
                              {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]),
    (("process", "scheduler"), {"policy": "SCHED_OTHER", "nice": 1}),
    (("process", "ioPriority"), {"class": "IOPRIO_CLASS_BE", "priority": 4}),
    (("process", "oomScoreAdj"), 100),
    (("process", "execCPUAffinity"), {"initial": "0", "final": "0"}),
    (("process", "user"), {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [5, 6]}),
    (("process", "consoleSize"), {"height": 24, "width": 80}),
    (("linux", "uidMappings"), [{"containerID": 0, "hostID": 100000, "size": 65536}]),
    (("linux", "gidMappings"), [{"containerID": 0, "hostID": 100000, "size": 65536}]),
    (("linux", "namespaces", 0), {"type": "user"}),
    (("linux", "namespaces", 0), {"type": "time"}),
    (("linux", "timeOffsets"), {"monotonic": {"secs": 10, "nanosecs": 5}}),
    (("linux", "seccomp"), {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                                          "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
    (("linux", "personality"), {"domain": "LINUX"}),
    (("linux", "memoryPolicy"), {"mode": "MPOL_BIND", "nodes": "0"}),
    (("linux", "maskedPaths", 0), "/etc/hostname"),
    (("linux", "readonlyPaths", 0), "/etc"),
    (("linux", "rootfsPropagation"), "private"),
    (("linux", "mountLabel"), ""),
    (("annotations",), {"org.example": "x"}),
    (("hostname",), "fz"),
    (("domainname",), "fz.example"),
]

# Where a generated value could reach the host: these are never mutated or inserted.
_PROTECTED = {("linux", "cgroupsPath"), ("linux", "sysctl"), ("linux", "netDevices")}


def _paths(doc, prefix=()):
    """Every path into ``doc`` (the root excluded)."""
    out = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for k, v in items:
        p = prefix + (k,)
        out.append(p)
        out.extend(_paths(v, p))
    return out


def _allowed(path):
    return not any(path[:len(p)] == p for p in _PROTECTED)


def _parent(doc, path):
    for k in path[:-1]:
        doc = doc[k]
    return doc


def _set(doc, path, value):
    """doc[path] = value, creating dicts on the way; a list index inserts."""
    for k in path[:-1]:
        if isinstance(doc, dict):
            doc = doc.setdefault(k, {}) if isinstance(doc.get(k, {}), (dict, list)) else None
        elif isinstance(doc, list) and isinstance(k, int) and k < len(doc):
            doc = doc[k]
        else:
            return
        if doc is None:
            return
    last = path[-1]
    if isinstance(doc, dict):
        doc[last] = value
    elif isinstance(doc, list):
        doc.insert(min(last, len(doc)) if isinstance(last, int) else len(doc), value)


def _diff(a, b, parts=()):
    """Lines "pointer: old -> new" where b differs from a (for failure reports)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in list(a) + [k for k in b if k not in a]:
            out += _diff(a.get(k, "<absent>"), b.get(k, "<absent>"), parts + (k,))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [line for i, (x, y) in enumerate(zip(a, b)) for line in _diff(x, y, parts + (i,))]
    if a == b and type(a) is type(b):
        return []
    return [f"/{'/'.join(map(str, parts))}: {a!r:.200} -> {b!r:.300}"]


def _keeps_host_safe(doc):
    """The config's namespaces still include a new mount and uts namespace."""
    linux = doc.get("linux") if isinstance(doc, dict) else None
    ns = linux.get("namespaces") if isinstance(linux, dict) else None
    if not isinstance(ns, list):
        return False
    types = {n.get("type"): n.get("path") for n in ns if isinstance(n, dict) and isinstance(n.get("type"), str)}
    return all(t in types and types[t] in (None, "") for t in ("mount", "uts")) and \
        not any(isinstance(n, dict) and isinstance(n.get("path"), str) and n["path"].startswith("/proc")
                for n in ns)


@st.composite
def mutated(draw, base, templates=()):
    """``base`` with 0-2 templates inserted, then 0-4 mutations (at least one without a
    template), half of them inside the inserted templates, most of them on leaves."""
    doc = copy.deepcopy(base)
    focus = []
    for _ in range(draw(st.integers(0, 2)) if templates else 0):
        path, value = draw(st.sampled_from(templates))
        _set(doc, path, copy.deepcopy(value))
        focus.append(path)
    for _ in range(draw(st.integers(0 if focus else 1, 4))):
        paths = [p for p in _paths(doc) if _allowed(p)]
        near = [p for p in paths if any(p[:len(f)] == f for f in focus)]
        if near and draw(st.booleans()):
            paths = near
        leaves = [p for p in paths if not isinstance(_parent(doc, p)[p[-1]], (dict, list))]
        if leaves and draw(st.integers(0, 3)):
            paths = leaves
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(doc, path)
        op = draw(st.sampled_from(["kind", "kind", "kind", "any", "drop", "extra", "dup"]))
        if op == "kind":
            parent[path[-1]] = copy.deepcopy(draw(same_kind(parent[path[-1]])))
        elif op == "any":
            parent[path[-1]] = copy.deepcopy(draw(json_values))
        elif op == "drop":
            del parent[path[-1]]
        elif op == "extra" and isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(strings)] = copy.deepcopy(draw(json_values))
        elif op == "dup" and isinstance(parent[path[-1]], list) and parent[path[-1]]:
            parent[path[-1]].append(copy.deepcopy(parent[path[-1]][0]))
    return doc


# ---------------------------------------------------------------------------
# running commands and checking what they print and leave

_TEXT_LINE = re.compile(r'time="[^"]*" level=(error|warning|info|debug) msg="(?:[^"\\\n]|\\.)*"')


def _lines(text):
    return text.splitlines() if text else []


def check_output(p, what, json_log=None, allow_stdout=False):
    """exit 0 with no error line, or non-zero with exactly one; only well-formed lines."""
    err = p.stderr
    assert "Traceback" not in err and "Traceback" not in p.stdout, f"{what}: traceback\n{err}"
    assert "internal error" not in err, f"{what}: {err}"
    errors = []
    for line in _lines(err):
        if json_log is not None:
            errors.append(line)  # with --log, stderr holds the plain error message
            continue
        if line.startswith("note: "):  # validate's notes
            continue
        m = _TEXT_LINE.fullmatch(line)
        assert m, f"{what}: malformed stderr line {line!r}\n{err}"
        if m.group(1) == "error":
            errors.append(line)
    if json_log is not None and os.path.exists(json_log):
        with open(json_log) as f:
            for line in f:
                entry = json.loads(line)
                assert set(entry) == {"level", "msg", "time"}, line
                assert "\n" not in entry["msg"], line
                assert "internal error" not in entry["msg"], line
        os.unlink(json_log)
    if p.returncode == 0:
        assert not errors, f"{what}: exit 0 but {errors}"
    else:
        assert len(errors) == 1, f"{what}: exit {p.returncode} with {len(errors)} error lines:\n{err}"
    if not allow_stdout:
        assert not p.stdout.strip() or p.returncode == 0, f"{what}: stdout {p.stdout!r}"


class Fuzzer:
    def __init__(self, rt):
        self.rt = rt
        self.log = str(rt.tmp / "log.json")

    def cmd(self, *args, json_log=False, what=None, allow_stdout=False):
        extra = ["--log-format", "json", "--log", self.log] if json_log else []
        t0 = time.monotonic()
        try:
            p = self.rt.cmd(*extra, *args, check=False, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{args[0]} took more than {TIMEOUT} s")
        p.elapsed = time.monotonic() - t0
        try:
            check_output(p, what or args[0], self.log if json_log else None, allow_stdout)
        except AssertionError as e:
            if "internal error" in str(e) and args[0] in ("validate", "create"):
                # The same command with --debug, for the traceback (not for exec, start,
                # delete: their state has moved on).
                d = self.rt.cmd("--debug", *args[:-1], f"{args[-1]}-debug" if args[0] == "create"
                                else args[-1], check=False, timeout=TIMEOUT)
                self.rt.cmd("delete", "--force", f"{args[-1]}-debug", check=False)
                raise AssertionError(f"{e}\n--debug: {d.stderr[-3000:]}") from None
            raise
        return p

    def leftovers(self, keep_cgroup=None, grace=2.0):
        """What the commands left: state dirs, cgroups, processes, mounts (then removed).
        A killed process may still be on its way out: give it ``grace`` seconds."""
        end = time.monotonic() + grace
        while True:
            found = self._scan(keep_cgroup)
            if not found or time.monotonic() > end:
                break
            time.sleep(0.05)
        if found:
            self._clean(found)
        return found

    def _scan(self, keep_cgroup):
        rt = self.rt
        found = []
        if os.path.isdir(rt.root):
            found += [f"state {n}" for n in os.listdir(rt.root)]
        for d in prefix_dirs(rt.cgroup_prefix):
            for top, dirs, _ in os.walk(d, onerror=lambda e: None):
                found += [f"cgroup {Path(top) / n}" for n in dirs
                          if n != keep_cgroup and Path(top).name != keep_cgroup]
        marker = rt.cgroup_prefix + "/"
        for pid in (n for n in os.listdir("/proc") if n.isdigit()):
            try:
                cg = Path(f"/proc/{pid}/cgroup").read_text()
                zombie = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
            except (OSError, IndexError):
                continue
            if marker in cg and not zombie and not (keep_cgroup and f"{marker}{keep_cgroup}\n" in cg):
                found.append(f"process {pid}")
        tmp = str(rt.tmp) + "/"
        with open("/proc/self/mountinfo") as f:
            found += [f"mount {line.split()[4]}" for line in f if line.split()[4].startswith(tmp)]
        return found

    def _clean(self, found):
        rt = self.rt
        for item in found:
            kind, _, what = item.partition(" ")
            if kind == "process":
                try:
                    os.kill(int(what), signal.SIGKILL)
                except OSError:
                    pass
        for item in reversed(found):
            kind, _, what = item.partition(" ")
            if kind == "mount":
                subprocess.run(["umount", "-l", what], check=False)
        for name in os.listdir(rt.root) if os.path.isdir(rt.root) else ():
            rt.cmd("delete", "--force", name, check=False)
        rt.cleanup()


def _write(path, doc):
    # json.dumps writes lone surrogates as \udXXX escapes: valid JSON text.
    Path(path).write_text(json.dumps(doc))


@pytest.fixture
def fuzzer(rt):
    return Fuzzer(rt)


def _base_config(rt):
    b = rt.bundle(["true"], name="base")
    config = rt.config(b)
    return b, config


# ---------------------------------------------------------------------------
# the tests

def test_fuzz_config(fuzzer):
    """validate, create, start and delete --force on generated configs."""
    rt = fuzzer.rt
    base_bundle, base = _base_config(rt)
    rootfs = base_bundle / "rootfs"

    @_FUZZ
    @_seeded
    @given(doc=mutated(base, TEMPLATES), json_log=st.booleans())
    def run_one(doc, json_log):
        changed = "; ".join(_diff(base, doc))
        note("changed: " + changed)
        try:
            _run_config(doc, json_log)
        except AssertionError as e:  # the example, also where hypothesis shows none
            raise AssertionError(f"{e}\nchanged: {changed}") from None

    def _run_config(doc, json_log):
        bundle = Path(tempfile.mkdtemp(dir=rt.tmp, prefix="fz-"))
        try:
            # Each bundle gets its own rootfs (hard links: a container may write to it).
            subprocess.run(["cp", "-al", str(rootfs), str(bundle / "rootfs")], check=True)
            _write(bundle / "config.json", doc)
            fuzzer.cmd("validate", "--bundle", bundle, json_log=json_log, allow_stdout=True)
            if not _keeps_host_safe(doc):
                return
            cid = f"fz-{uuid.uuid4().hex[:8]}"
            p = fuzzer.cmd("create", "--bundle", bundle, cid, json_log=json_log)
            if p.returncode == 0:
                fuzzer.cmd("start", cid, json_log=json_log)
            d = fuzzer.cmd("delete", "--force", cid, json_log=json_log)
            assert d.returncode == 0, d.stderr
            left = fuzzer.leftovers()
            assert not left, f"left behind: {left}"
        finally:
            fuzzer.leftovers(grace=0)  # after a failure: the next example starts clean
            subprocess.run(["rm", "-rf", "--one-file-system", str(bundle)], check=False)

    run_one()


def _base_process(config):
    proc = copy.deepcopy(config["process"])
    proc["args"] = ["/bin/true"]
    proc["user"] = {"uid": 0, "gid": 0, "additionalGids": [1]}
    proc["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}]
    proc["env"] = ["PATH=/bin", "HOME=/"]
    return proc


def test_fuzz_exec_process(fuzzer):
    """exec --process with generated process documents in one running container."""
    rt = fuzzer.rt
    b = rt.bundle(["sleep", "100000"], name="target")
    base = _base_process(rt.config(b))
    cid = "fz-target"
    rt.run(cid, b, "--detach")
    init = rt.state(cid)["pid"]
    own = rt.config(b)["linux"]["cgroupsPath"].split("/", 1)[1]
    pf = rt.tmp / "process.json"

    @_FUZZ
    @_seeded
    @given(doc=mutated(base), json_log=st.booleans(), detach=st.booleans())
    def run_one(doc, json_log, detach):
        changed = "; ".join(_diff(base, doc))
        note("changed: " + changed)
        try:
            _run_exec(doc, json_log, detach)
        except AssertionError as e:  # the example, also where hypothesis shows none
            raise AssertionError(f"{e}\nchanged: {changed}") from None

    def _run_exec(doc, json_log, detach):
        _write(pf, doc)
        args = ["exec", "--process", pf] + (["--detach"] if detach else []) + [cid]
        try:
            fuzzer.cmd(*args, json_log=json_log)
            # Whatever exec started has ended: only the init is in the container's cgroup.
            end = time.monotonic() + 5
            while True:
                procs = set(_cgroup_pids(rt, own))
                if procs <= {init} or time.monotonic() > end:
                    break
                time.sleep(0.05)
            assert procs <= {init}, f"exec left processes {procs - {init}}"
            assert Path(f"/proc/{init}").exists(), "the container's init died"
        finally:
            for pid in set(_cgroup_pids(rt, own)) - {init}:  # the next example starts clean
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    try:
        run_one()
    finally:
        rt.cmd("delete", "--force", cid, check=False)
    left = fuzzer.leftovers()
    assert not left, f"left behind: {left}"


def _cgroup_pids(rt, own):
    for d in prefix_dirs(rt.cgroup_prefix):
        f = d / own / "cgroup.procs"
        if f.exists():
            return [int(x) for x in f.read_text().split()]
    return []
