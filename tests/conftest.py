"""Shared fixtures: real containers through the installed `pyrunc` binary, as root.

Every test gets its own --root and bundle directory under pytest's tmp_path, and a
cgroupsPath under a test-only relative prefix; whatever a test leaves is force-deleted.
"""
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_SPEC = REPO.parent / "shared" / "runtime-spec-v1.3.0"
sys.path.insert(0, str(REPO))


def systemd_is_init():
    """sd_booted(3), and PID 1 is systemd (not a container's init that left the dir)."""
    try:
        comm = Path("/proc/1/comm").read_text().strip()
    except OSError:
        comm = ""
    return os.path.isdir("/run/systemd/system") and comm == "systemd"


def pytest_runtest_setup(item):
    if item.get_closest_marker("systemd") and not systemd_is_init():
        pytest.skip("needs systemd as PID 1: run in the systemd guest (docs/SYSTEMD.md)")


def pyrunc_binary():
    cand = Path(sys.executable).parent / "pyrunc"
    if cand.exists():
        return str(cand)
    found = shutil.which("pyrunc")
    if not found:
        pytest.skip("the pyrunc console script is not installed (pip install -e .)")
    return found


def busybox_path():
    for p in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(p):
            return p
    pytest.skip("busybox-static is not installed")


def mountinfo(text):
    """[{mountpoint, opts (set), optional (list of names), fstype, source, super (set), root}]"""
    out = []
    for line in text.splitlines():
        if " - " not in line:
            continue
        left, _, right = line.partition(" - ")
        a, b = left.split(), right.split()
        out.append({"id": a[0], "parent": a[1], "dev": a[2], "root": a[3], "mountpoint": a[4],
                    "opts": set(a[5].split(",")),
                    "optional": [o.split(":")[0] for o in a[6:]],
                    "fstype": b[0], "source": b[1], "super": set(b[2].split(",")) if len(b) > 2 else set()})
    return out


def cgroup_v2_host():
    """True on a pure cgroup v2 host (/sys/fs/cgroup is cgroup2), independently of pyrunc."""
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def pytest_collection_modifyitems(config, items):
    """cgroup_v1 tests skip on a cgroup v2 host, cgroup_v2 tests on a v1/hybrid one
    (markers registered in setup.cfg); each with the reason."""
    v2 = cgroup_v2_host()
    skip_v1 = pytest.mark.skip(reason="cgroup v1 only: this host is cgroup v2 (no v1 hierarchies)")
    skip_v2 = pytest.mark.skip(reason="cgroup v2 only: this host has cgroup v1 hierarchies "
                               "(run it in the cgroup v2 guest: README, Tests)")
    for item in items:
        if v2 and item.get_closest_marker("cgroup_v1"):
            item.add_marker(skip_v1)
        elif not v2 and item.get_closest_marker("cgroup_v2"):
            item.add_marker(skip_v2)


# The cgroup v2 comparison (tests marked cgroup_v2 record what runc and pyrunc did);
# with PYRUNC_V2_TABLE=FILE the session writes it as a markdown table (docs/CGROUP-V2.md).
V2_TABLE = []


@pytest.fixture
def v2_table(request):
    def record(feature, runc_result, pyrunc_result, note="", same=None):
        """same: whether the two agree, when that is not plain equality (e.g. both fail,
        each with its own message)."""
        if same is None:
            same = str(runc_result) == str(pyrunc_result)
        V2_TABLE.append((feature, str(runc_result), str(pyrunc_result), note, same,
                         request.node.nodeid))
    return record


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("PYRUNC_V2_TABLE")
    if not path or not V2_TABLE:
        return
    failed = {r.nodeid for r in session.config.pluginmanager.getplugin("terminalreporter")
              .stats.get("failed", [])} if session.config.pluginmanager.getplugin(
        "terminalreporter") else set()

    def cell(s):
        return s.replace("|", "\\|").replace("\n", "<br>")

    lines = ["| feature | runc 1.1.5 | pyrunc | same | test |", "|---|---|---|---|---|"]
    for feature, theirs, ours, note, same, nodeid in V2_TABLE:
        same = "yes" if same else "no"
        if note:
            same += f" ({note})"
        test = nodeid.split("::")[-1] + (" **FAILED**" if nodeid in failed else "")
        lines.append(f"| {cell(feature)} | {cell(theirs)} | {cell(ours)} | {cell(same)} | {test} |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def prefix_dirs(prefix):
    """Where a relative cgroupsPath under `prefix` lands: below this process's own cgroup
    in every mounted hierarchy (runc's cgroupfs placement); on a cgroup v2 host below its
    parent (runc's fs2: our own cgroup has processes, so no controllers for children)."""
    own = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctls, path = line.split(":", 2)
        for c in ctls.split(",") if ctls else [""]:
            own[c.replace("name=", "")] = path
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        fstype, opts = fields[sep + 1], fields[sep + 3].split(",")
        if fstype == "cgroup2":
            key = ""
        elif fstype == "cgroup":
            keys = [o.replace("name=", "") for o in opts if o in own or o.replace("name=", "") in own]
            if not keys:
                continue
            key = keys[0]
        else:
            continue
        rel = own.get(key, "/")
        if fstype == "cgroup2" and fields[4] == "/sys/fs/cgroup":
            rel = os.path.dirname(rel.rstrip("/")) or "/"
        out.append(Path(fields[4]) / rel.lstrip("/") / prefix)
    return out


class ConsoleReceiver:
    """A --console-socket listener (as conmon/containerd's shim): takes the pty master
    sent with SCM_RIGHTS, and reads what the container writes to it."""

    def __init__(self, path):
        import socket
        import threading

        self.path = str(path)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(1)
        self.fd = None
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self):
        import socket

        conn, _ = self.srv.accept()
        _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        self.fd = fds[0] if fds else None
        conn.close()

    def master(self, timeout=10):
        self.thread.join(timeout)
        self.srv.close()
        assert self.fd is not None, "no pty master received on the console socket"
        return self.fd

    def read_until(self, marker: bytes, timeout=10):
        import time

        fd = self.master()
        data = b""
        end = time.monotonic() + timeout
        while marker not in data and time.monotonic() < end:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        os.close(fd)
        return data


class Runtime:
    """One runtime binary, one private --root, bundles in a private dir."""

    def __init__(self, binary, tmp: Path):
        self.binary = binary
        self.tmp = tmp
        self.root = str(tmp / "state")
        self.cgroup_prefix = f"pyrunc-test-{uuid.uuid4().hex[:10]}"
        self._rootfs_template = None
        self.ids = set()

    def cmd(self, *args, check=True, input=None, timeout=60, env=None, **kw):
        """Run the runtime; stdout/stderr go to files, not pipes, since a created
        container's init inherits them and would hold a pipe open after create exits."""
        import tempfile

        argv = [self.binary, "--root", self.root, *map(str, args)]
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run(argv, stdout=out, stderr=err, text=True, timeout=timeout,
                               env=env, input=input,
                               **({} if input is not None else {"stdin": subprocess.DEVNULL}), **kw)
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read(), err.read()
        if check and p.returncode != 0:
            raise AssertionError(f"{argv} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def bundle(self, args=("sh",), name=None, edit=None, **top):
        """Make a busybox bundle; edit(config) may change the config in place."""
        from pyrunc.bundle import make_rootfs
        from pyrunc.spec.default import default_config

        name = name or f"b-{uuid.uuid4().hex[:8]}"
        b = self.tmp / name
        b.mkdir()
        if self._rootfs_template is None:
            self._rootfs_template = self.tmp / "rootfs-template"
            make_rootfs(str(self._rootfs_template), busybox_path())
        shutil.copytree(self._rootfs_template, b / "rootfs", symlinks=True)
        config = default_config()
        config["process"]["terminal"] = False
        config["process"]["args"] = list(args)
        config["root"]["readonly"] = False
        config["linux"]["cgroupsPath"] = f"{self.cgroup_prefix}/{name}"
        config.update(top)
        if edit:
            edit(config)
        (b / "config.json").write_text(json.dumps(config, indent=2))
        return b

    def config(self, bundle):
        return json.loads((Path(bundle) / "config.json").read_text())

    def create(self, cid, bundle, *extra, check=True, **kw):
        self.ids.add(cid)
        return self.cmd("create", "--bundle", bundle, *extra, cid, check=check, **kw)

    def run(self, cid, bundle, *extra, check=True, **kw):
        self.ids.add(cid)
        return self.cmd("run", "--bundle", bundle, *extra, cid, check=check, **kw)

    def state(self, cid):
        return json.loads(self.cmd("state", cid).stdout)

    def output_of(self, args, edit=None, **kw):
        """Run a container in the foreground and return its stdout (asserting exit 0)."""
        b = self.bundle(args, edit=edit)
        cid = f"c-{uuid.uuid4().hex[:8]}"
        p = self.run(cid, b, **kw)
        return p.stdout

    def cleanup(self):
        for cid in list(self.ids):
            self.cmd("delete", "--force", cid, check=False)
        found = []
        for d in prefix_dirs(self.cgroup_prefix):
            for top, dirs, _ in os.walk(d, onerror=lambda e: None):
                found.extend(Path(top) / n for n in dirs)
            if d.exists():
                found.append(d)
        # A container's own cgroup left behind is a failure. The shared prefix dir may
        # stay (like runc, a container removes its parents only when it made them and
        # they are empty): remove it here. Deepest first.
        leftover = [str(d) for d in found if d.name != self.cgroup_prefix]
        for d in sorted(found, key=lambda p: len(str(p)), reverse=True):
            try:
                os.rmdir(d)
            except OSError:
                pass
        return leftover


@pytest.fixture
def rt(tmp_path):
    r = Runtime(pyrunc_binary(), tmp_path)
    yield r
    leftover = r.cleanup()
    assert not leftover, f"cgroups left behind: {leftover}"


@pytest.fixture
def runc_rt(tmp_path):
    """The reference runtime (Debian's runc), when installed."""
    runc = shutil.which("runc")
    if not runc:
        pytest.skip("runc is not installed")
    r = Runtime(runc, tmp_path / "runc")
    (tmp_path / "runc").mkdir()
    yield r
    r.cleanup()
