"""Helpers of the engine integration tests (fixtures are in conftest.py): runtimes behind
the logging wrapper, a busybox image built locally, podman and containerd set up in a
private tmp dir, and clean-up of processes, mounts and cgroups the tests made."""
import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
WRAPPER = HERE / "runtime-wrapper.sh"
IMAGE = "localhost/pyrunc-itest/busybox:latest"
RUNTIME_NAMES = ("runc", "pyrunc")


# ---------------------------------------------------------------------------- helpers

# the project's own helpers (tests/conftest.py is importable as `conftest`)
from support.host import busybox_path as busybox_binary  # noqa: E402
from support.host import pyrunc_binary  # noqa: E402
from support.runtime import run_cmd  # noqa: E402,F401


def runc_binary():
    found = shutil.which("runc") or ("/usr/sbin/runc" if os.path.exists("/usr/sbin/runc") else None)
    if not found:
        pytest.skip("runc is not installed (the reference runtime: apt-get install runc)")
    return found


# Where distributions put tools that are not on PATH (podman's conmon).
TOOL_PATHS = {"conmon": ("/usr/libexec/podman/conmon", "/usr/lib/podman/conmon", "/usr/bin/conmon")}


def need(*tools, apt):
    """Skip unless every tool is installed; `apt`: the Debian packages that bring them."""
    missing = [t for t in tools
               if not shutil.which(t) and not any(os.access(p, os.X_OK) for p in TOOL_PATHS.get(t, ()))]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install {apt})")


def _check_exit(p, argv, runtime):
    """An engine command that failed: its output and the runtime's last calls."""
    if p.returncode != 0:
        calls = runtime.last_calls() if runtime else ""
        raise AssertionError(f"{' '.join(argv)}\nexited {p.returncode}\nstdout: {p.stdout}\n"
                             f"stderr: {p.stderr}\nlast {runtime} calls:\n{calls}")


def wait_for(pred, timeout=10.0, interval=0.05, what="condition"):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def rootfs_tar_bytes():
    """An uncompressed tar of a busybox root filesystem: /bin/busybox, one symlink per
    applet, /etc/passwd and /etc/group with root, user (1000) and nobody."""
    bb = busybox_binary()
    applets = subprocess.run([bb, "--list"], capture_output=True, text=True, check=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        def add_dir(name, mode=0o755):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode = tarfile.DIRTYPE, mode
            t.addfile(ti)

        def add_file(name, data, mode=0o644):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), mode
            t.addfile(ti, io.BytesIO(data))

        for d in ("bin", "dev", "etc", "home", "home/user", "mnt", "proc", "root", "run", "sys", "var"):
            add_dir(d)
        add_dir("tmp", 0o1777)
        with open(bb, "rb") as f:
            add_file("bin/busybox", f.read(), 0o755)
        for a in applets:
            if a != "busybox":
                ti = tarfile.TarInfo(f"bin/{a}")
                ti.type, ti.linkname = tarfile.SYMTYPE, "busybox"
                t.addfile(ti)
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"
                               b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        add_file("etc/group", b"root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n")
        add_file("etc/notexec", b"not a program\n")
    return buf.getvalue()


def oci_archive_bytes(rootfs_tar, ref):
    """An OCI image layout as a tar (for `ctr images import`): one gzip layer."""
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(platform.machine(), platform.machine())
    layer = gzip.compress(rootfs_tar, mtime=0)
    config = json.dumps({
        "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(rootfs_tar).hexdigest()]},
    }).encode()

    def desc(media_type, data):
        return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}

    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc("application/vnd.oci.image.config.v1+json", config),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", layer)],
    }).encode()
    mdesc = desc("application/vnd.oci.image.manifest.v1+json", manifest)
    mdesc["platform"] = {"architecture": arch, "os": "linux"}
    mdesc["annotations"] = {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[-1]}
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [mdesc]}).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        def add(name, data):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o644
            t.addfile(ti, io.BytesIO(data))

        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        for blob in (config, manifest, layer):
            add("blobs/sha256/" + hashlib.sha256(blob).hexdigest(), blob)
    return buf.getvalue()


def cgroup_mounts():
    """Mount points of every cgroup (v1) and cgroup2 hierarchy."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        if fields[sep + 1] in ("cgroup", "cgroup2"):
            out.append(Path(fields[4].replace("\\040", " ")))
    return out


def cgroup_dirs(parent):
    """Existing directories of the absolute cgroup `parent` in every hierarchy."""
    rel = parent.strip("/")
    return [m / rel for m in cgroup_mounts() if (m / rel).is_dir()]


def remove_cgroup_tree(parent):
    """Remove a test-only cgroup tree we created (through the engines): thaw frozen
    cgroups, kill what is still inside (only processes in our own test cgroups), rmdir
    deepest first. Returns what could not be removed."""
    dirs = []
    for top in cgroup_dirs(parent):
        for d, subdirs, _ in os.walk(top, onerror=lambda e: None):
            dirs.append(Path(d))
    for d in dirs:
        for name, thawed in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
            st = d / name
            if st.exists() and st.read_text().strip() != thawed:
                try:
                    st.write_text(thawed)
                except OSError:
                    pass
    for d in dirs:
        procs = d / "cgroup.procs"
        try:
            pids = [int(p) for p in procs.read_text().split()] if procs.exists() else []
        except OSError:
            pids = []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    left = []
    for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        for _ in range(50):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)
        else:
            left.append(str(d))
    return left


def unmount_under(top):
    """Unmount every mount point at or below `top` (ours only), deepest first."""
    top = os.path.realpath(top)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mp = line.split()[4].replace("\\040", " ")
        if mp == top or mp.startswith(top + "/"):
            points.append(mp)
    for mp in sorted(set(points), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class HostLeftovers:
    """Host paths an engine writes outside the dirs we give it (podman: its image blob-info
    cache and network run dir; containerd's shim: its socket dir, hard-coded). Noted
    before the engine starts; afterwards what did not exist before is removed: files,
    and directories only when empty."""

    def __init__(self, *paths):
        self.paths = [Path(p) for p in paths]
        self.before = {p for p in self.paths if os.path.lexists(p)}

    def remove_new(self):
        for p in sorted(self.paths, key=lambda p: len(p.parts), reverse=True):
            if p in self.before or not os.path.lexists(p):
                continue
            try:
                if p.is_dir() and not p.is_symlink():
                    os.rmdir(p)
                else:
                    p.unlink()
            except OSError:
                pass


def kill_pid(pid, timeout=10.0):
    """SIGTERM, then SIGKILL, one process we started."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_child(proc, timeout=10.0):
    """SIGTERM, then SIGKILL, a daemon we started (a Popen: reaped here, so that its
    exit is seen at once; kill_pid's probe takes a zombie for alive)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------- runtimes

class WrappedRuntime:
    """A runtime as the engines see it: a file named `runc` or `pyrunc` (in a private
    directory) that logs its command line and execs the real binary.

    `start_under`: a command prefix for `start` only (e.g. strace delaying one syscall,
    to make a scheduling race deterministic); `capture`: a directory where `create` copies
    the bundle's config.json as <id>.json (runtime-wrapper.sh)."""

    def __init__(self, name, real, base: Path, *, variant="", start_under=None, filename=None, capture=None):
        self.name = name
        self.real = real
        self.variant = variant
        d = base / f"bin-{name}{'-' + variant if variant else ''}"
        d.mkdir(parents=True, exist_ok=True)
        self.path = str(d / (filename or name))
        self.calls_log = base / f"calls-{name}{'-' + variant if variant else ''}.log"
        self.calls_log.touch()
        script = ["#!/bin/sh", f"export WRAP_RUNTIME='{real}' WRAP_LOG='{self.calls_log}'"]
        if capture:
            script.append(f"export WRAP_CAPTURE='{capture}'")
        if start_under:
            prefix = " ".join(f"'{a}'" for a in start_under)
            script.append(f'for a in "$@"; do [ "$a" = start ] && exec {prefix} \'{WRAPPER}\' "$@"; done')
        script.append(f"exec '{WRAPPER}' \"$@\"")
        Path(self.path).write_text("\n".join(script) + "\n")
        os.chmod(self.path, 0o755)

    @property
    def podman_ref(self):
        """What `podman --runtime` gets: the containers.conf table entry, or the path."""
        return self.path if self.variant else self.name

    def calls(self):
        return [line[len("argv: "):] for line in self.calls_log.read_text().splitlines()
                if line.startswith("argv: ")]

    def last_calls(self, n=12):
        return "\n".join(self.calls()[-n:])

    def __repr__(self):
        return self.name + (f"[{self.variant}]" if self.variant else "")


# A scheduling race seen with the engines: pyrunc's `start` opens exec.fifo (which lets
# the init exec) and only then calls pidfd_open(init pid); a process that exits at once
# and is reaped at once by the engine's subreaper (conmon, containerd-shim) is gone by
# then, and `start` fails although the process ran. Delaying pidfd_open by 300 ms makes
# that interleaving certain; runc does not call pidfd_open, so it runs unchanged.
DELAY_PIDFD_OPEN = ["strace", "-o", "/dev/null", "-e", "trace=pidfd_open",
                    "-e", "inject=pidfd_open:delay_enter=300000"]


def default_ulimits():
    """What the host allows without CAP_SYS_RESOURCE. Podman's defaults (nofile=1048576,
    nproc=pid_max) fail here with any runtime: podman itself lowers its own RLIMIT_NPROC
    to pid_max, and the container cannot get a hard limit above its parent's."""
    import resource

    nofile_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = 1024 if nofile_hard == resource.RLIM_INFINITY else min(1024, nofile_hard)
    nproc_hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    try:
        pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    except OSError:
        pid_max = 32768
    nproc = pid_max if nproc_hard == resource.RLIM_INFINITY else min(nproc_hard, pid_max)
    return [f"nofile={nofile}:{nofile}", f"nproc={nproc}:{nproc}"]


class Podman:
    def __init__(self, base: Path, runtimes, rootfs_tar, cgroup_manager="cgroupfs"):
        """cgroup_manager "systemd": podman's default on a systemd host (no cgroup
        parent of ours: containers go to machine.slice as libpod-<id>.scope)."""
        self.base = base
        self.cgroup_manager = cgroup_manager
        self.root, self.runroot, self.tmpdir = base / "root", base / "runroot", base / "tmpdir"
        for d in (self.root, self.runroot, self.tmpdir, base / "netconf", base / "volumes"):
            d.mkdir(parents=True, exist_ok=True)
        self.cgroup_parent = f"/pyrunc-itest-{uuid.uuid4().hex[:8]}-podman"
        self.host_leftovers = HostLeftovers(
            "/var/lib/containers", "/var/lib/containers/cache",
            "/var/lib/containers/cache/blob-info-cache-v1.boltdb",
            "/run/containers", "/run/containers/networks")
        self.runtimes = runtimes
        self.names = set()
        table = "\n".join(f'{n} = ["{r.path}"]' for n, r in runtimes.items())
        ulimits = ", ".join(f'"{u}"' for u in default_ulimits())
        self.conf = base / "containers.conf"
        self.conf.write_text(f"""\
[containers]
default_ulimits = [{ulimits}]
netns = "none"
volumes = []

[engine]
cgroup_manager = "{cgroup_manager}"
events_logger = "file"
events_logfile_path = "{base}/events.log"
volume_path = "{base}/volumes"
runtime_supports_json = ["pyrunc", "runc"]

[engine.runtimes]
{table}

[network]
network_config_dir = "{base}/netconf"
""")
        self.storage_conf = base / "storage.conf"
        self.storage_conf.write_text(f"""\
[storage]
driver = "overlay"
graphroot = "{self.root}"
runroot = "{self.runroot}"
""")
        self.env = dict(os.environ, CONTAINERS_CONF=str(self.conf),
                        CONTAINERS_STORAGE_CONF=str(self.storage_conf),
                        CONTAINERS_REGISTRIES_CONF=str(base / "registries.conf"))
        (base / "registries.conf").write_text("unqualified-search-registries = []\n")
        self.cmd("import", str(rootfs_tar), IMAGE, check=True, timeout=120)

    def argv(self, *args, runtime=None):
        a = ["podman", "--root", str(self.root), "--runroot", str(self.runroot),
             "--tmpdir", str(self.tmpdir), "--storage-driver", "overlay",
             "--cgroup-manager", self.cgroup_manager, "--events-backend", "file"]
        if runtime is not None:
            a += ["--runtime", runtime.podman_ref]
        return a + [str(x) for x in args]

    def cmd(self, *args, runtime=None, check=False, timeout=60, fd3=None, **kw):
        """Run podman; `fd3`: a descriptor podman gets as its fd 3 (for --preserve-fds)."""
        argv = self.argv(*args, runtime=runtime)
        if fd3 is None:
            p = run_cmd(argv, env=self.env, timeout=timeout, **kw)
        else:
            p = run_cmd(["bash", "-c", f'exec "$@" 3>&{fd3} {fd3}>&-', "bash", *argv], env=self.env,
                        timeout=timeout, pass_fds=(fd3,), **kw)
        if check:
            _check_exit(p, argv, runtime)
        return p

    def name(self, prefix):
        n = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.names.add(n)
        return n

    def run(self, runtime, *args, **kw):
        """`podman run` with the test's cgroup parent and no network."""
        parent = ["--cgroup-parent", self.cgroup_parent] if self.cgroup_manager == "cgroupfs" else []
        return self.cmd("run", "--network", "none", *parent, *args, runtime=runtime, **kw)

    def inspect(self, name, fmt, runtime=None):
        return self.cmd("inspect", "--format", fmt, name, runtime=runtime, check=True).stdout.strip()

    def container_id(self, name):
        return self.inspect(name, "{{.Id}}")

    def cleanup(self):
        problems = []
        ids = set()
        p = self.cmd("ps", "-a", "--format", "{{.ID}}", "--no-trunc")
        ids.update(p.stdout.split())
        self.cmd("rm", "-f", "-a", "-t", "0", timeout=120)
        p = self.cmd("ps", "-a", "-q")
        if p.stdout.strip():
            problems.append(f"podman containers left: {p.stdout.split()}")
        # podman passes no --root: the runtimes keep state under their default roots
        # (/run/runc, /run/pyrunc). Force-delete whatever of ours is still there.
        for rt in self.runtimes.values():
            default_root = "/run/runc" if rt.name == "runc" else "/run/pyrunc"
            for cid in ids:
                if os.path.exists(os.path.join(default_root, cid)):
                    problems.append(f"{rt.name} state left for {cid}")
                    run_cmd([rt.real, "delete", "--force", cid])
        self.cmd("unmount", "-a")
        unmount_under(str(self.base))
        left = remove_cgroup_tree(self.cgroup_parent)
        if left:
            problems.append(f"cgroups left: {left}")
        self.host_leftovers.remove_new()
        return problems


class Containerd:
    NAMESPACE = "pyrunc-itest"

    def __init__(self, base: Path, rootfs_tar):
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.address = str(base / "containerd.sock")
        self.cgroup_parent = f"/pyrunc-itest-{uuid.uuid4().hex[:8]}-ctr"
        self.fifo_dir = base / "fifo"
        self.fifo_dir.mkdir()
        self.host_leftovers = HostLeftovers("/run/containerd", "/run/containerd/s", "/run/containerd/fifo")
        self.config = base / "config.toml"
        self.config.write_text(f"""\
version = 2
root = "{base}/root"
state = "{base}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{self.address}"

[ttrpc]
  address = "{self.address}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{base}/opt"
""")
        self.log = open(base / "containerd.log", "w")
        self.proc = subprocess.Popen(["containerd", "--config", str(self.config)],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.ids = set()
        try:
            wait_for(lambda: self.proc.poll() is not None or
                     self.ctr("version", timeout=10).returncode == 0,
                     timeout=30, interval=0.2, what="containerd to answer")
            if self.proc.poll() is not None:
                raise AssertionError("containerd exited:\n" + (base / "containerd.log").read_text()[-3000:])
            if rootfs_tar is not None:  # (None: an engine on top brings its own image)
                archive = base / "busybox-oci.tar"
                archive.write_bytes(oci_archive_bytes(Path(rootfs_tar).read_bytes(), IMAGE))
                self.ctr("images", "import", str(archive), check=True, timeout=120)
        except BaseException:
            self.stop()
            raise

    def ctr(self, *args, check=False, timeout=60, runtime=None, **kw):
        args = [str(a) for a in args]
        if args[:2] == ["tasks", "exec"]:   # its fifos too go to our dir, not /run/containerd/fifo
            args[2:2] = ["--fifo-dir", str(self.fifo_dir)]
        argv = ["ctr", "--address", self.address, "--namespace", self.NAMESPACE, *args]
        p = run_cmd(argv, timeout=timeout, **kw)
        if check:
            _check_exit(p, argv, runtime)
        return p

    def runc_root(self, runtime):
        return self.base / f"runtime-root-{runtime.name}"

    def run_opts(self, runtime, cid):
        """ctr run options that make the runc shim call `runtime` with a private root,
        and put the container's cgroup under the test parent."""
        self.ids.add(cid)
        return ["--runc-binary", runtime.path, "--runc-root", str(self.runc_root(runtime)),
                "--fifo-dir", str(self.fifo_dir), "--cgroup", f"{self.cgroup_parent}/{cid}"]

    def new_id(self, prefix):
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    def task_status(self, cid):
        p = self.ctr("tasks", "ls")
        for line in p.stdout.splitlines()[1:]:
            f = line.split()
            if f and f[0] == cid:
                return f[2]
        return None

    def remove(self, cid):
        """Kill and delete a task and its container (idempotent)."""
        status = self.task_status(cid)
        if status is not None:
            if status in ("PAUSED", "PAUSING"):
                self.ctr("tasks", "resume", cid)     # frozen processes cannot die
            self.ctr("tasks", "kill", "--all", "--signal", "SIGKILL", cid)
            try:
                wait_for(lambda: self.task_status(cid) in (None, "STOPPED"), timeout=10, what=f"{cid} to stop")
            except AssertionError:
                pass
            self.ctr("tasks", "delete", "--force", cid)
        self.ctr("containers", "delete", cid)

    def shim_pids(self):
        """containerd-shim-runc-v2 processes started by our containerd (their command
        line names our socket)."""
        out = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                cmdline = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline and cmdline[0].endswith(b"containerd-shim-runc-v2") and self.address.encode() in cmdline:
                out.append(int(d.name))
        return out

    def stop(self):
        problems = []
        if self.proc.poll() is None:
            p = self.ctr("containers", "ls", "-q")
            for cid in set(p.stdout.split()) | self.ids:
                self.remove(cid)
            left = self.ctr("containers", "ls", "-q").stdout.split()
            if left:
                problems.append(f"containers left: {left}")
            stop_child(self.proc)
        for pid in self.shim_pids():
            problems.append(f"shim {pid} still running")
            kill_pid(pid, timeout=3)
        self.log.close()
        unmount_under(str(self.base))
        left = remove_cgroup_tree(self.cgroup_parent)
        if left:
            problems.append(f"cgroups left: {left}")
        self.host_leftovers.remove_new()
        return problems
