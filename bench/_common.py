"""Shared helpers for bench/run.py and bench/importtime.py.

Nothing here imports pyrunc at module level; the bundle builder imports pyrunc.tooling.bundle from
this checkout (pure Python: a clean checkout works without installing pyrunc).

Process hygiene (root on a shared machine):
- every runtime process is spawned here (posix_spawn) and waited for by pid;
- this process is a child subreaper, so container inits (whose runtime `create` exited)
  are re-parented to us and reaped by us, never left to the host's pid 1;
- container cgroups live under one relative prefix ``pyrunc-bench-<random>``; cleanup
  SIGKILLs only the pids listed in those cgroups (our containers) and removes the dirs.
"""
import ctypes
import json
import os
import select
import shutil
import signal
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
PR_SET_CHILD_SUBREAPER = 36


class BenchError(Exception):
    pass


# --- locating the binaries -------------------------------------------------------------


def find_pyrunc(explicit=None, workdir=None):
    """--pyrunc, else the console script next to this python, else `pyrunc` on PATH, else
    (a clean checkout) a console-script twin in `workdir` running this checkout's pyrunc
    with this python."""
    if explicit:
        p = shutil.which(explicit) or explicit
        if not os.access(p, os.X_OK):
            raise BenchError(f"--pyrunc {explicit}: not an executable")
        return os.path.abspath(p)
    cand = Path(sys.executable).parent / "pyrunc"
    if cand.exists():
        return str(cand)
    found = shutil.which("pyrunc")
    if found:
        return found
    if workdir is None:
        raise BenchError("pyrunc is not installed (pip install -e .) and --pyrunc was not given")
    script = Path(workdir) / "pyrunc"
    script.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO)!r})\n"
                      "from pyrunc.cli import main\nif __name__ == '__main__':\n    main(fast_exit=True)\n")
    script.chmod(0o755)
    print(f"bench: pyrunc is not installed: using this checkout through {script}", file=sys.stderr)
    return str(script)


def find_runc(explicit=None):
    p = shutil.which(explicit or "runc")
    if not p:
        raise BenchError("runc not found (apt-get install -y runc) or give --runc PATH")
    return os.path.abspath(p)


def find_busybox():
    for p in BUSYBOX_CANDIDATES:
        if os.path.exists(p):
            return p
    raise BenchError("busybox not found: apt-get install -y busybox-static")


def python_script(path):
    """The Python script behind a `pyrunc` command: the command itself, or, for the
    compiled one (scripts/pyrunc.c), the pyrunc-py installed beside it."""
    with open(path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            return path
    script = os.path.join(os.path.dirname(os.path.realpath(path)), "pyrunc-py")
    if not os.path.exists(script):
        raise BenchError(f"{path} is compiled, and there is no pyrunc-py beside it")
    return script


def script_interpreter(path):
    """The interpreter of a console script (its #! line), or of the compiled `pyrunc`
    launcher (scripts/pyrunc.c: the #! line of the pyrunc-py beside it), else
    sys.executable."""
    try:
        with open(path, "rb") as f:
            first = f.readline(512)
    except OSError:
        return sys.executable
    if first.startswith(b"#!"):
        parts = first[2:].decode(errors="replace").split()
        if parts and os.path.exists(parts[0]) and "python" in os.path.basename(parts[0]):
            return parts[0]
    elif first.startswith(b"\x7fELF"):
        script = os.path.join(os.path.dirname(path), "pyrunc-py")
        if os.path.exists(script):
            return script_interpreter(script)
    return sys.executable


def clean_env():
    """The environment for runtime processes: ours without PYTHON* knobs (a stray
    PYTHONDONTWRITEBYTECODE or PYTHONPATH would change what is measured)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return env


def set_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


# --- spawning and timing ----------------------------------------------------------------


class Result:
    __slots__ = ("argv", "rc", "ms", "cpu_ms", "maxrss_kb", "out", "err")

    def __init__(self, argv, rc, ms, cpu_ms, maxrss_kb, out="", err=""):
        self.argv, self.rc, self.ms, self.cpu_ms, self.maxrss_kb = argv, rc, ms, cpu_ms, maxrss_kb
        self.out, self.err = out, err

    def check(self):
        if self.rc != 0:
            raise BenchError(f"{' '.join(self.argv)} exited {self.rc}: {self.err.strip()[-800:]}")
        return self


RESET_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def spawn(argv, env, stdout="/dev/null", stderr="/dev/null"):
    """posix_spawn argv with stdin /dev/null and stdout/stderr to files (never pipes: a
    created container's init inherits them and would hold a pipe open), default signal
    dispositions (Python ignores SIGPIPE/SIGXFSZ; cleanup ignores SIGINT/SIGTERM)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fa = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
          (os.POSIX_SPAWN_OPEN, 1, stdout, flags, 0o600),
          (os.POSIX_SPAWN_OPEN, 2, stderr, flags, 0o600)]
    return os.posix_spawn(argv[0], argv, env, file_actions=fa, setsigdef=RESET_SIGNALS,
                          setsigmask=())


def _exited_within(pid, timeout):
    """Wait on a pidfd until pid has exited (True) or timeout passed (False); True when
    pid is already gone."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([pidfd], [], [], timeout)[0])
    finally:
        os.close(pidfd)


def wait(pid, timeout=120.0):
    """wait4 one pid: (exit code or -signal, cpu ms, ru_maxrss KiB). SIGKILLs it after timeout."""
    if not _exited_within(pid, timeout):
        os.kill(pid, signal.SIGKILL)
    _, status, ru = os.wait4(pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    return rc, (ru.ru_utime + ru.ru_stime) * 1000.0, ru.ru_maxrss


class DirectSpawner:
    """posix_spawn from this process: ru_maxrss is at least this process's own RSS (the
    kernel folds the exec-ing mm's high-water mark into the child's maxrss)."""

    kind = "posix_spawn from the Python bench (maxrss floor = the bench's own RSS)"

    def __init__(self, env):
        self.env = env

    def spawn(self, argv, stdout="/dev/null", stderr="/dev/null"):
        t = time.monotonic_ns()
        return spawn(argv, self.env, stdout, stderr), t

    def wait(self, pid, timeout=120.0):
        rc, cpu, rss = wait(pid, timeout)
        return rc, time.monotonic_ns(), cpu, rss

    def run(self, argv, stdout="/dev/null", stderr="/dev/null", timeout=120.0):
        pid, t0 = self.spawn(argv, stdout, stderr)
        rc, t1, cpu, rss = self.wait(pid, timeout)
        return rc, (t1 - t0) / 1e6, cpu, rss

    def close(self):
        pass


class ZygoteSpawner:
    """bench/spawner.c, compiled into the work dir: a ~1 MiB process that forks, execs and
    wait4s the runtime commands, so that ru_maxrss is the runtime's own."""

    kind = "bench/spawner.c (fork+exec+wait4 from a ~1 MiB helper)"

    def __init__(self, env, workdir):
        import subprocess

        cc = shutil.which("cc") or shutil.which("gcc")
        if not cc:
            raise BenchError("no C compiler")
        exe = os.path.join(workdir, "spawner")
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spawner.c")
        p = subprocess.run([cc, "-O2", "-o", exe, src], capture_output=True, text=True)
        if p.returncode != 0:
            raise BenchError(f"cannot compile spawner.c: {p.stderr.strip()[-300:]}")
        self.proc = subprocess.Popen([exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=env, close_fds=True)
        self.wfd = self.proc.stdin.fileno()
        self.rfd = self.proc.stdout.fileno()
        self.buf = bytearray()
        self.inflight = set()

    def _send(self, *fields):
        for f in fields:
            if "\t" in f or "\n" in f or not f:
                raise BenchError(f"spawner: cannot pass {f!r}")
        os.write(self.wfd, ("\t".join(fields) + "\n").encode())

    def _line(self, timeout=None, on_timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            r, _, _ = select.select([self.rfd], [], [], left)
            if not r:
                if on_timeout is not None:
                    on_timeout()
                    on_timeout, deadline = None, None
                continue
            chunk = os.read(self.rfd, 65536)
            if not chunk:
                raise BenchError("spawner exited")
            self.buf += chunk
        i = self.buf.index(b"\n")
        line = bytes(self.buf[:i]).decode()
        del self.buf[:i + 1]
        return line.split()

    def _spawned(self, argv):
        pid, t = (int(x) for x in self._line())
        if pid <= 0:
            raise BenchError(f"spawner: fork failed for {argv[0]}")
        self.inflight.add(pid)
        return pid, t

    def _waited(self, pid, timeout):
        def kill():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        f = self._line(timeout, kill)
        self.inflight.discard(pid)
        return int(f[1]), int(f[2]), (int(f[3]) + int(f[4])) / 1000.0, int(f[5])

    def spawn(self, argv, stdout="/dev/null", stderr="/dev/null"):
        self._send("S", stdout, stderr, *argv)
        return self._spawned(argv)

    def wait(self, pid, timeout=120.0):
        self._send("W", str(pid))
        return self._waited(pid, timeout)

    def run(self, argv, stdout="/dev/null", stderr="/dev/null", timeout=120.0):
        self._send("R", stdout, stderr, *argv)
        pid, t0 = self._spawned(argv)
        rc, t1, cpu, rss = self._waited(pid, timeout)
        return rc, (t1 - t0) / 1e6, cpu, rss

    def close(self):
        """Stop the helper (by its pid); a command still in flight is given 30 s, then
        SIGKILLed, and reaped by us (we are the subreaper)."""
        try:
            self.proc.kill()
            self.proc.wait()
        except OSError:
            pass
        for pid in list(self.inflight):
            try:
                wait(pid, 30)
            except ChildProcessError:
                pass
        self.inflight.clear()


def make_spawner(env, workdir, log=None):
    try:
        return ZygoteSpawner(env, workdir)
    except (BenchError, OSError) as e:
        if log:
            log(f"bench: {e}: spawning from Python instead (maxrss floor = the bench's RSS)")
        return DirectSpawner(env)


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def run_timed(spawner, argv, outdir, timeout=120.0, keep_output=True):
    """Run one command; the wall time is from just before the fork to the reap."""
    out = os.path.join(outdir, "out.txt") if keep_output else "/dev/null"
    err = os.path.join(outdir, "err.txt")
    rc, ms, cpu, rss = spawner.run(argv, out, err, timeout)
    return Result(argv, rc, ms, cpu, rss, _read(out) if keep_output else "", _read(err))


def wait_gone(pid, timeout=10.0):
    """Wait until a container init has exited, and reap it if it is our child (subreaper)."""
    if not pid:
        return
    _exited_within(pid, timeout)
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def reap_children():
    """Reap exited children (re-parented container inits). Call only when no runtime
    process spawned here is still being waited for."""
    n = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return n
        if pid == 0:
            return n
        n += 1


# --- cgroups -----------------------------------------------------------------------------


def prefix_dirs(prefix):
    """Where a relative cgroupsPath under `prefix` lands in every hierarchy: the cgroup
    manager's own placement (below this process's cgroup, as runc's cgroupfs driver)."""
    from pyrunc.cgroups import new_manager

    return [Path(p) for p in new_manager("bench", prefix).paths.values()]

def cgroup_pids(prefix):
    pids = set()
    for d in prefix_dirs(prefix):
        for top, _, files in os.walk(d, onerror=lambda e: None):
            if "cgroup.procs" in files:
                try:
                    pids.update(int(x) for x in Path(top, "cgroup.procs").read_text().split())
                except (OSError, ValueError):
                    pass
    return pids


def remove_cgroups(prefix):
    """rmdir every cgroup dir under our prefix, deepest first; returns those that stayed."""
    found = []
    for d in prefix_dirs(prefix):
        for top, dirs, _ in os.walk(d, onerror=lambda e: None):
            found.extend(Path(top) / n for n in dirs)
        if d.exists():
            found.append(d)
    left = []
    for d in sorted(found, key=lambda p: len(str(p)), reverse=True):
        try:
            d.rmdir()
        except FileNotFoundError:
            pass
        except OSError:
            left.append(str(d))
    return left


# --- bundles -----------------------------------------------------------------------------


class Workspace:
    """A temp dir with one shared busybox rootfs, per-container bundle dirs (config.json
    only; root.path points at the shared rootfs) and a cgroup prefix for everything."""

    def __init__(self, base=None):
        import tempfile

        self.dir = Path(tempfile.mkdtemp(prefix="pyrunc-bench-", dir=base))
        self.cgroup_prefix = f"pyrunc-bench-{uuid.uuid4().hex[:10]}"
        self.rootfs = self.dir / "rootfs"
        self.bundles = self.dir / "bundles"
        self.bundles.mkdir()
        self._template = None

    def build_rootfs(self):
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        from pyrunc.tooling.bundle import make_rootfs
        from pyrunc.config.default import default_config

        make_rootfs(str(self.rootfs), find_busybox())
        cfg = default_config()
        cfg["process"]["terminal"] = False
        cfg["root"] = {"path": str(self.rootfs), "readonly": False}
        self._template = json.dumps(cfg)

    def bundle(self, name, args):
        """A bundle for one container: the default spec (runc's template), terminal
        false, the given args and a test-only relative cgroupsPath."""
        cfg = json.loads(self._template)
        cfg["process"]["args"] = list(args)
        cfg["linux"]["cgroupsPath"] = f"{self.cgroup_prefix}/{name}"
        b = self.bundles / name
        b.mkdir(exist_ok=True)
        (b / "config.json").write_text(json.dumps(cfg, indent="\t"))
        return str(b)


class Runtime:
    def __init__(self, name, binary, ws, env, spawner=None):
        self.name, self.binary, self.ws, self.env = name, binary, ws, env
        self.spawner = spawner or DirectSpawner(env)
        self.tag = name[0]  # "p" / "r": ids and cgroup names never collide
        self.outdir = ws.dir / f"io-{name}"
        self.outdir.mkdir(exist_ok=True)
        self.roots = []

    def root(self, label):
        r = str(self.ws.dir / f"root-{self.name}-{label}")
        if r not in self.roots:
            self.roots.append(r)
        return r

    def argv(self, root, *args):
        return [self.binary, "--root", root, *map(str, args)]

    def cmd(self, root, *args, keep_output=True, timeout=120.0):
        return run_timed(self.spawner, self.argv(root, *args), str(self.outdir), timeout, keep_output)

    def ids(self, root):
        try:
            return sorted(n for n in os.listdir(root) if not n.startswith("."))
        except FileNotFoundError:
            return []


def cleanup(ws, runtimes, log=print):
    """Delete every container in every root we used, kill what is left in our cgroups,
    remove the cgroups and the workspace. Safe to call twice; never raises."""
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    problems = []
    try:
        for sp in {id(rt.spawner): rt.spawner for rt in runtimes}.values():
            sp.close()
        for rt in runtimes:
            for root in rt.roots:
                # synthetic state dirs own nothing: remove them without the runtime
                for n in rt.ids(root):
                    if n.startswith("syn-"):
                        shutil.rmtree(os.path.join(root, n), ignore_errors=True)
                ids = rt.ids(root)
                for i in range(0, len(ids), 8):  # a few deletes at a time
                    pids = [(cid, spawn(rt.argv(root, "delete", "--force", cid), rt.env))
                            for cid in ids[i:i + 8]]
                    for cid, pid in pids:
                        try:
                            rc, _, _ = wait(pid, 60)
                        except ChildProcessError:
                            rc = 0
                        if rc != 0:
                            problems.append(f"{rt.name} delete --force {cid} exited {rc}")
        for _ in range(3):
            pids = cgroup_pids(ws.cgroup_prefix)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
            reap_children()
        reap_children()
        left = remove_cgroups(ws.cgroup_prefix)
        if left:
            time.sleep(0.5)
            left = remove_cgroups(ws.cgroup_prefix)
        if left:
            problems.append(f"cgroups left: {left}")
        shutil.rmtree(ws.dir, ignore_errors=True)
        if ws.dir.exists():
            problems.append(f"workspace left: {ws.dir}")
    except Exception as e:  # noqa: BLE001 - report, never mask the original error
        problems.append(f"cleanup error: {type(e).__name__}: {e}")
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    for p in problems:
        log(f"cleanup: {p}")
    return problems


def install_signal_handlers():
    """SIGTERM/SIGHUP behave like Ctrl-C, so the finally-cleanup runs."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, handler)
