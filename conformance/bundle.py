"""Busybox bundles and the helpers the conformance cases use to drive a runtime.

Nothing here depends on a particular runtime: config.json is written by
:func:`default_config` (not by ``runc spec``), the runtime is only driven through
its runc-compatible command line (``--root R create --bundle B --pid-file F ID``,
``start``, ``state``, ``kill``, ``delete``).

Every case gets a :class:`Ctx`: a private temp dir (bundles, ``--root`` state dir,
the runtime's stdio files), a random cgroup leaf under the test-only relative
``linux.cgroupsPath`` prefix :data:`CGROUP_PREFIX`, and a cleanup that deletes every
container the case created (``delete --force``), kills by pid only processes of
its own containers that survived that, removes leftover test cgroups and lazily
unmounts anything a runtime leaked under the temp dir. Whatever cleanup had to
fix is reported as a problem, which fails the case.
"""
from __future__ import annotations

import ctypes
import errno
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

BUSYBOX = os.environ.get("BUSYBOX") or shutil.which("busybox") or "/bin/busybox"
HOST_SH = "/bin/sh"
CGROUP_PREFIX = "pyrunc-conformance"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
OCI_VERSION = "1.0.2"
# seconds for one runtime invocation and for waiting on a container state
OP_TIMEOUT = float(os.environ.get("CONFORMANCE_TIMEOUT", "20"))
WAIT_TIMEOUT = float(os.environ.get("CONFORMANCE_WAIT", "10"))
KEEP_TMP = os.environ.get("CONFORMANCE_KEEP") == "1"
STATUSES = ("creating", "created", "running", "stopped")
SAFE_ID = re.compile(r"^[A-Za-z0-9_+.-]+$")


# --------------------------------------------------------------------------- outcomes

class CaseFailed(AssertionError):
    """The runtime did not do what the clause requires (one-line reason)."""


class CaseSkipped(Exception):
    """The case cannot run here (missing host feature...)."""


def fail(msg: str):
    raise CaseFailed(msg)


def expect(cond, msg: str):
    if not cond:
        raise CaseFailed(msg)


def skip(msg: str):
    raise CaseSkipped(msg)


# --------------------------------------------------------------------------- rootfs + config

_applets: list[str] | None = None


def busybox_applets() -> list[str]:
    """Applet paths relative to / (``bin/sh``, ``usr/bin/env``...) of the host busybox."""
    global _applets
    if _applets is None:
        if not os.path.isfile(BUSYBOX):
            raise CaseSkipped(f"busybox not found at {BUSYBOX} (apt-get install busybox-static)")
        out = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True, check=True).stdout
        _applets = [line.strip().lstrip("/") for line in out.splitlines() if line.strip()]
    return _applets


PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "tester:x:1000:1000:tester:/home/tester:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = "root:x:0:\ntty:x:5:\ntester:x:1000:\nnogroup:x:65534:\n"


def make_rootfs(rootfs: Path) -> Path:
    """A static-busybox root filesystem: /bin/busybox + applet symlinks, the usual
    directories, a minimal /etc/passwd and /etc/group, and /out (mode 0777) where
    container programs write what the cases observe."""
    rootfs = Path(rootfs)
    for d, mode in (("bin", 0o755), ("sbin", 0o755), ("usr/bin", 0o755), ("usr/sbin", 0o755),
                    ("proc", 0o555), ("dev", 0o755), ("sys", 0o555), ("tmp", 0o1777),
                    ("etc", 0o755), ("root", 0o700), ("home/tester", 0o755), ("run", 0o755),
                    ("var", 0o755), ("mnt", 0o755), ("out", 0o777)):
        p = rootfs / d
        p.mkdir(parents=True, exist_ok=True)
        os.chmod(p, mode)
    os.chown(rootfs / "home/tester", 1000, 1000)
    shutil.copy2(BUSYBOX, rootfs / "bin/busybox")
    for applet in busybox_applets():
        link = rootfs / applet
        if applet == "bin/busybox" or os.path.lexists(link):
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink("/bin/busybox", link)
    (rootfs / "etc/passwd").write_text(PASSWD)
    (rootfs / "etc/group").write_text(GROUP)
    return rootfs


def default_mounts() -> list[dict]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
    ]


def default_config(args, *, cgroups_path: str, cwd: str = "/", env=None) -> dict:
    """The cases' base config.json (a dict): terminal false, the given args, root user,
    default capabilities, namespaces pid/ipc/uts/mount/network, the usual /proc /dev
    /dev/pts /dev/shm /dev/mqueue /sys mounts, devices cgroup deny-all, and a
    relative (test-only) cgroupsPath."""
    caps = list(DEFAULT_CAPS)
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": list(env) if env is not None else [f"PATH={DEFAULT_PATH}"],
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": list(caps), "permitted": list(caps)},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "mounts": default_mounts(),
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "cgroupsPath": cgroups_path,
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        },
    }


class Bundle:
    """A bundle dir: ``config`` is the dict written to config.json by :meth:`save`
    (``Ctx.create`` saves it), ``rootfs`` the root filesystem, ``out`` its /out."""

    def __init__(self, path: Path, config: dict):
        self.path = Path(path)
        self.config = config
        self.rootfs = self.path / "rootfs"
        self.out = self.rootfs / "out"

    @property
    def process(self) -> dict:
        return self.config["process"]

    @property
    def linux(self) -> dict:
        return self.config["linux"]

    def save(self):
        tmp = self.path / "config.json.tmp"
        tmp.write_text(json.dumps(self.config, indent=2))
        os.replace(tmp, self.path / "config.json")

    def out_file(self, name: str) -> Path:
        return self.out / name

    def read_out(self, name: str, default=None) -> str | None:
        try:
            return (self.out / name).read_text()
        except FileNotFoundError:
            return default

    def add_file(self, path_in_rootfs: str, content: str, mode: int = 0o644) -> Path:
        p = self.rootfs / path_in_rootfs.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
        os.chmod(p, mode)
        return p

    def add_hook(self, kind: str, path: str, args=None, env=None, timeout=None):
        hook = {"path": str(path)}
        if args is not None:
            hook["args"] = list(args)
        if env is not None:
            hook["env"] = list(env)
        if timeout is not None:
            hook["timeout"] = timeout
        self.config.setdefault("hooks", {}).setdefault(kind, []).append(hook)
        return hook


# --------------------------------------------------------------------------- host helpers

def proc_stat(pid: int):
    """(state letter, starttime) of pid, or None if it does not exist."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], int(fields[19])


def pid_alive(pid: int, starttime: int | None = None) -> bool:
    """True if pid exists, is not a zombie and (if given) has that start time."""
    st = proc_stat(pid)
    if st is None or st[0] in "ZXx":
        return False
    return starttime is None or st[1] == starttime


def exe_of(pid) -> str:
    """readlink /proc/PID/exe, or '' if it cannot be read."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def ns_id(pid="self", kind="mnt") -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def _unescape_mountinfo(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def mounts_under(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = _unescape_mountinfo(line.split()[4])
            if mp.startswith(prefix) or mp == prefix[:-1]:
                found.append(mp)
    return found


_libc = None


def umount_lazy(path: str) -> bool:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc.umount2(os.fsencode(path), 2) == 0  # MNT_DETACH


def cgroup_hierarchies() -> dict[str, str]:
    """Map /proc/<pid>/cgroup hierarchy keys ('memory', 'cpu,cpuacct', 'name=systemd',
    '' for v2) to their mount points in this mount namespace."""
    mounts: dict[str, str] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _src, superopts = (right.split() + ["", "", ""])[:3]
            mp = _unescape_mountinfo(left.split()[4])
            if fstype == "cgroup2":
                mounts.setdefault("", mp)
            elif fstype == "cgroup":
                opts = set(superopts.split(","))
                for key in _own_cgroups():
                    if key and set(key.split(",")) <= opts:
                        mounts.setdefault(key, mp)
    return mounts


def read_proc_cgroup(pid="self") -> dict[str, str]:
    out = {}
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            out[parts[1]] = parts[2]
    return out


_own_cg = None


def _own_cgroups() -> dict[str, str]:
    global _own_cg
    if _own_cg is None:
        _own_cg = read_proc_cgroup("self")
    return _own_cg


def cgroup_candidates(rel: str) -> list[Path]:
    """Where a runtime may put relative cgroupsPath ``rel``: under the runtime's own
    cgroup (runc's interpretation) or under each hierarchy's root."""
    out = []
    own = _own_cgroups()
    for key, mp in cgroup_hierarchies().items():
        base = own.get(key, "/")
        for parent in {base, "/"}:
            out.append(Path(mp) / parent.lstrip("/") / rel)
    return out


def remove_cgroup_tree(top: Path, problems: list[str], killed: set[int]):
    """Kill (by pid) processes left in a test-only cgroup and rmdir it bottom-up."""
    for dirpath, _dirs, _files in os.walk(top, topdown=False):
        try:
            pids = [int(x) for x in Path(dirpath, "cgroup.procs").read_text().split()]
        except OSError:
            pids = []
        for pid in pids:
            killed.add(pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 2
        while True:
            try:
                os.rmdir(dirpath)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    problems.append(f"cannot remove cgroup {dirpath}: {e.strerror}")
                    break
                time.sleep(0.02)


def remove_empty_prefix_dirs():
    """rmdir the (empty) CGROUP_PREFIX parents once all cases ran."""
    for key, mp in cgroup_hierarchies().items():
        for parent in {_own_cgroups().get(key, "/"), "/"}:
            try:
                os.rmdir(Path(mp) / parent.lstrip("/") / CGROUP_PREFIX)
            except OSError:
                pass


def leftover_prefix_dirs() -> list[str]:
    out = []
    for key, mp in cgroup_hierarchies().items():
        for parent in {_own_cgroups().get(key, "/"), "/"}:
            p = Path(mp) / parent.lstrip("/") / CGROUP_PREFIX
            if p.is_dir():
                out.append(str(p))
    return out


# --------------------------------------------------------------------------- runtime driver

class Result:
    def __init__(self, argv, rc, out_path: Path, err_path: Path, duration: float):
        self.argv = argv
        self.rc = rc
        self.out_path = out_path
        self.err_path = err_path
        self.duration = duration

    @property
    def ok(self) -> bool:
        return self.rc == 0

    @property
    def out(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def err(self) -> str:
        return self.err_path.read_text(errors="replace")

    def reason(self) -> str:
        """The last non-empty stderr (or stdout) line, shortened: why it failed."""
        for text in (self.err, self.out):
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            if lines:
                line = lines[-1]
                m = re.search(r'msg="((?:[^"\\]|\\.)*)"', line)
                if m:
                    line = m.group(1).replace('\\"', '"')
                return line if len(line) <= 160 else line[:157] + "..."
        return f"exit {self.rc}, no output"

    def __repr__(self):
        return f"<Result {' '.join(self.argv)} rc={self.rc}>"


class Runtime:
    """Runs ``BINARY --root ROOT ARGS...`` with stdin /dev/null and stdout/stderr in
    files (never pipes: a container inherits create's stdio and would hold a pipe)."""

    def __init__(self, binary: str, root: Path, iodir: Path):
        self.binary = binary
        self.root = Path(root)
        self.iodir = Path(iodir)
        self._n = itertools.count(1)

    def __call__(self, *args, timeout: float | None = None, cwd=None, preexec_fn=None,
                 global_args=()) -> Result:
        n = next(self._n)
        sub = args[0] if args else "none"
        out_path = self.iodir / f"{n:03d}-{sub}.out"
        err_path = self.iodir / f"{n:03d}-{sub}.err"
        argv = [self.binary, "--root", str(self.root), *global_args, *[str(a) for a in args]]
        t0 = time.monotonic()
        with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                                    cwd=cwd, start_new_session=True, preexec_fn=preexec_fn)
        try:
            rc = proc.wait(timeout=timeout or OP_TIMEOUT)
        except subprocess.TimeoutExpired:
            try:  # the runtime and whatever it forked that is still in its session
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            raise CaseFailed(f"`{sub} ... {args[-1] if len(args) > 1 else ''}` timed out after "
                             f"{timeout or OP_TIMEOUT:.0f}s (killed)") from None
        return Result(argv, rc, out_path, err_path, time.monotonic() - t0)


class Container:
    def __init__(self, cid: str, bundle: Bundle, result: Result, pid: int | None):
        self.id = cid
        self.bundle = bundle
        self.result = result
        self.pid = pid

    def __repr__(self):
        return f"<Container {self.id} pid={self.pid}>"


class Ctx:
    """Per-case context: temp dir, runtime driver, bookkeeping for cleanup."""

    def __init__(self, binary: str, case_id: str):
        self.binary = binary
        self.case_id = case_id
        self.tmp = Path(tempfile.mkdtemp(prefix=f"conformance-{case_id[:40]}-"))
        os.chmod(self.tmp, 0o755)
        self.root = self.tmp / "state"
        (self.tmp / "io").mkdir()
        self.rt = Runtime(binary, self.root, self.tmp / "io")
        self.token = secrets.token_hex(4)
        self._n = itertools.count(1)
        self.ids: list[str] = []
        self.pids: dict[int, int] = {}
        self.cgroup_rels: list[str] = []
        self.cgroup_dirs: set[Path] = set()

    # ---- bundles
    def bundle(self, args, *, name: str | None = None, **kw) -> Bundle:
        n = next(self._n)
        path = self.tmp / (name or f"bundle{n}")
        path.mkdir()
        make_rootfs(path / "rootfs")
        rel = f"{CGROUP_PREFIX}/{self.token}-{n}"
        self.cgroup_rels.append(rel)
        return Bundle(path, default_config(args, cgroups_path=rel, **kw))

    def new_id(self, tag: str = "c") -> str:
        return f"conf-{tag}-{self.token}-{next(self._n)}"

    # ---- runtime operations
    def create(self, bundle: Bundle, cid: str | None = None, *, ok: bool = True,
               pid_file: bool = True, bundle_arg=None, cwd=None, preexec_fn=None) -> Container:
        """``create --bundle B [--pid-file F] ID``. With ok=True a failure fails the case."""
        cid = cid if cid is not None else self.new_id()
        bundle.save()
        args = ["create", "--bundle", str(bundle_arg if bundle_arg is not None else bundle.path)]
        pf = self.tmp / f"{cid.replace('/', '_')}.pid"
        if pid_file:
            args += ["--pid-file", str(pf)]
        try:
            res = self.rt(*args, cid, cwd=cwd, preexec_fn=preexec_fn)
        finally:
            # cleanup deletes it; an id no runtime may accept ('..', 'a/b') only if it was
            # accepted, so a buggy runtime's `delete --force` never gets a path-like id for nothing
            if SAFE_ID.match(cid) and cid not in (".", ".."):
                self.ids.append(cid)
        if res.ok and cid not in self.ids:
            self.ids.append(cid)
        pid = None
        if res.ok and pid_file:
            try:
                pid = int(pf.read_text().strip())
                self.track_pid(pid)
            except (OSError, ValueError):
                pid = None
        if ok and not res.ok:
            fail(f"create failed: {res.reason()}")
        return Container(cid, bundle, res, pid)

    def start(self, cid: str, *, ok: bool = True) -> Result:
        res = self.rt("start", cid)
        if ok and not res.ok:
            fail(f"start failed: {res.reason()}")
        return res

    def kill(self, cid: str, sig=None, *, ok: bool = True, all_: bool = False) -> Result:
        args = ["kill"] + (["--all"] if all_ else []) + [cid] + ([str(sig)] if sig is not None else [])
        res = self.rt(*args)
        if ok and not res.ok:
            fail(f"kill {sig} failed: {res.reason()}")
        return res

    def delete(self, cid: str, *, force: bool = False, ok: bool = True) -> Result:
        res = self.rt("delete", *(["--force"] if force else []), cid)
        if ok and not res.ok:
            fail(f"delete{' --force' if force else ''} failed: {res.reason()}")
        return res

    def state_result(self, cid: str) -> Result:
        return self.rt("state", cid)

    def state(self, cid: str) -> dict:
        res = self.state_result(cid)
        if not res.ok:
            fail(f"state failed: {res.reason()}")
        try:
            st = json.loads(res.out)
        except ValueError as e:
            fail(f"state output is not JSON ({e}): {res.out[:80]!r}")
        if not isinstance(st, dict):
            fail(f"state output is not a JSON object: {res.out[:80]!r}")
        pid = st.get("pid")
        if isinstance(pid, int) and pid > 0 and st.get("status") in ("created", "running"):
            self.track_pid(pid)
        return st

    def status(self, cid: str) -> str:
        return self.state(cid).get("status")

    # ---- waiting
    def wait_for(self, pred, what: str, timeout: float | None = None, interval: float = 0.005):
        deadline = time.monotonic() + (timeout or WAIT_TIMEOUT)
        while True:
            v = pred()
            if v:
                return v
            if time.monotonic() > deadline:
                fail(f"timed out waiting for {what}")
            time.sleep(interval)
            interval = min(interval * 1.5, 0.05)

    def wait_status(self, cid: str, status: str, timeout: float | None = None) -> dict:
        last = {}

        def check():
            last["st"] = self.state(cid)
            return last["st"].get("status") == status

        try:
            self.wait_for(check, f"status {status!r}", timeout, interval=0.01)
        except CaseFailed:
            fail(f"status is {last.get('st', {}).get('status')!r}, expected {status!r}")
        return last["st"]

    def wait_stopped(self, c: Container, timeout: float | None = None) -> dict:
        """Wait for the container process to be gone (cheap /proc polling), then for
        the runtime to report ``stopped``."""
        if c.pid:
            self.wait_for(lambda: not pid_alive(c.pid, self.pids.get(c.pid)),
                          f"container process {c.pid} to exit", timeout)
        return self.wait_status(c.id, "stopped", timeout)

    def wait_out(self, bundle: Bundle, name: str, timeout: float | None = None) -> str:
        """Wait until /out/NAME exists in the rootfs and ends with a newline."""
        def ready():
            t = bundle.read_out(name)
            return t is not None and t.endswith("\n")
        self.wait_for(ready, f"/out/{name} from the container", timeout)
        return bundle.read_out(name)

    def run(self, bundle: Bundle, *, delete: bool = True) -> Container:
        """create + start + wait until stopped (+ delete): run a program to completion."""
        c = self.create(bundle)
        self.start(c.id)
        self.wait_stopped(c)
        if delete:
            self.delete(c.id)
        return c

    # ---- bookkeeping
    def track_pid(self, pid: int):
        st = proc_stat(pid)
        if st and pid not in self.pids:
            self.pids[pid] = st[1]
            self.observe_cgroups(pid)

    def observe_cgroups(self, pid: int):
        """Remember the test-prefix cgroup dirs pid is in (for leak checks)."""
        hier = cgroup_hierarchies()
        for key, path in read_proc_cgroup(pid).items():
            if f"/{CGROUP_PREFIX}/" in path + "/" and key in hier:
                self.cgroup_dirs.add(Path(hier[key]) / path.lstrip("/"))

    def cleanup(self) -> list[str]:
        problems: list[str] = []
        for cid in reversed(self.ids):
            try:
                res = self.rt("delete", "--force", cid, timeout=OP_TIMEOUT)
                if not res.ok and self.rt("state", cid, timeout=OP_TIMEOUT).ok:
                    problems.append(f"container {cid} survives delete --force: {res.reason()}")
            except CaseFailed as e:
                problems.append(f"cleanup of {cid}: {e}")
        for pid, start in self.pids.items():
            if pid_alive(pid, start):
                problems.append(f"container process {pid} still alive after delete, killed")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        dirs = set(self.cgroup_dirs)
        for rel in self.cgroup_rels:
            dirs.update(cgroup_candidates(rel))
        left = [d for d in sorted(dirs, key=lambda p: -len(str(p))) if d.is_dir()]
        if left:
            problems.append(f"{len(left)} cgroup dir(s) left behind, e.g. {left[-1]}")
        killed: set[int] = set()
        for d in left:
            remove_cgroup_tree(d, problems, killed)
        killed -= set(self.pids)
        if killed:
            problems.append(f"killed {len(killed)} other process(es) left in the container's cgroups")
        leaked = mounts_under(self.tmp)
        if leaked:
            problems.append(f"mounts leaked into the host namespace: {', '.join(leaked)}")
            for mp in sorted(leaked, key=len, reverse=True):
                umount_lazy(mp)
        if KEEP_TMP:
            pass  # CONFORMANCE_KEEP=1: leave the temp dir for debugging
        elif not mounts_under(self.tmp):
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            problems.append(f"left {self.tmp} in place: still has mounts")
        return problems


# --------------------------------------------------------------------------- misc for cases

def check_state_doc(st: dict, *, cid: str, bundle: Path | None = None) -> None:
    """Check a state document against runtime.md#state and schema/state-schema.json."""
    for key in ("ociVersion", "id", "status", "bundle"):
        expect(key in st, f"state has no {key!r}: {st}")
    expect(isinstance(st["ociVersion"], str) and re.match(r"^\d+\.\d+\.\d+", st["ociVersion"]),
           f"ociVersion {st['ociVersion']!r} is not a SemVer string")
    expect(st["id"] == cid, f"state id {st['id']!r} != {cid!r}")
    expect(st["status"] in STATUSES, f"status {st['status']!r} not one of {STATUSES}")
    if st["status"] in ("created", "running"):
        expect(isinstance(st.get("pid"), int) and not isinstance(st.get("pid"), bool)
               and st["pid"] > 0, f"status {st['status']} needs a positive int pid, got {st.get('pid')!r}")
    elif "pid" in st:
        expect(isinstance(st["pid"], int) and st["pid"] >= 0, f"pid {st['pid']!r} is not an int >= 0")
    expect(isinstance(st["bundle"], str) and os.path.isabs(st["bundle"]),
           f"bundle {st['bundle']!r} is not an absolute path")
    if bundle is not None:
        expect(os.path.realpath(st["bundle"]) == os.path.realpath(bundle),
               f"bundle {st['bundle']!r} != {str(bundle)!r}")
    ann = st.get("annotations")
    if ann is not None:
        expect(isinstance(ann, dict) and all(isinstance(k, str) and k and isinstance(v, str)
                                             for k, v in ann.items()),
               f"annotations is not a string map: {ann!r}")


# --------------------------------------------------------------------------- cgroup / leak helpers

# The config.md example's cgroup mount: the container's own cgroups at /sys/fs/cgroup (ro).
CGROUP_MOUNT = {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}


def cgroup_dirs_of(pid) -> dict[str, Path]:
    """{hierarchy key: host directory} of pid's cgroups ('memory', 'cpu,cpuacct', '' for
    v2...), for the hierarchies mounted in this mount namespace."""
    hier = cgroup_hierarchies()
    return {key: Path(hier[key]) / path.lstrip("/")
            for key, path in read_proc_cgroup(pid).items() if key in hier}


def cgroup_file(pid, controller: str, name: str) -> str | None:
    """The stripped content of ``name`` in pid's cgroup of ``controller`` (v1), read on
    the host through /proc/PID/cgroup + mountinfo; None if it cannot be read."""
    for key, d in cgroup_dirs_of(pid).items():
        if controller in key.split(","):
            try:
                return (d / name).read_text().strip()
            except OSError:
                return None
    return None


def pids_in_cgroup_path(rel: str) -> list[int]:
    """Host pids whose /proc/PID/cgroup has a path ending in /``rel`` (any hierarchy)."""
    out = []
    suffix = "/" + rel.strip("/")
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            if any(p.rstrip("/").endswith(suffix) for p in read_proc_cgroup(name).values()):
                out.append(int(name))
    return out


def pids_rooted_in(path: Path) -> list[int]:
    """Host pids whose root directory is ``path`` (same device and inode: a container's
    processes after pivot_root, whose /proc/PID/root link text is just "/")."""
    try:
        st = os.stat(path)
    except OSError:
        return []
    want = (st.st_dev, st.st_ino)
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                rs = os.stat(f"/proc/{name}/root")
            except OSError:
                continue
            if (rs.st_dev, rs.st_ino) == want:
                out.append(int(name))
    return out


def failed_create_leftovers(ctx: "Ctx", c: "Container") -> list[str]:
    """What a failed ``create`` of container ``c`` left behind (runtime.md#errors: "generating
    an error MUST leave the state of the environment as if the operation were never
    attempted"): a container the runtime still reports, cgroup dirs for its cgroupsPath,
    processes in those cgroups or rooted in its rootfs, mounts under the case's temp dir."""
    left = []
    res = ctx.state_result(c.id)
    if res.ok:
        left.append(f"`state {c.id}` still succeeds ({' '.join(res.out.split())[:80]})")
    rel = str(c.bundle.linux.get("cgroupsPath", "")).lstrip("/")
    if rel:
        dirs = [str(d) for d in cgroup_candidates(rel) if d.is_dir()]
        if dirs:
            left.append(f"{len(dirs)} cgroup dir(s) left, e.g. {dirs[0]}")
        pids = pids_in_cgroup_path(rel)
        if pids:
            left.append(f"processes left in its cgroups: {pids}")
    pids = pids_rooted_in(c.bundle.rootfs)
    if pids:
        left.append(f"processes left rooted in its rootfs: {pids}")
    mnts = mounts_under(ctx.tmp)
    if mnts:
        left.append(f"mounts left: {', '.join(mnts)}")
    return left
