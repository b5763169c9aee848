"""containerd 1.6 (its runc shim, io.containerd.runc.v2) with pyrunc as the runc binary,
runc as the reference: `ctr run --runc-binary <wrapper>` against a private containerd.

Each check runs for both runtimes (`runtime` fixture).
"""
import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest

from support.host import cgroup_v2_host

from .engines import IMAGE, wait_for

pytestmark = pytest.mark.cgroups

LOOP = 'trap "exit 0" TERM; echo started; while :; do sleep 0.1; done'


V2 = cgroup_v2_host()


def host_cgroup(containerd, controller, cid):
    """The container's cgroup of a v1 controller; on a cgroup v2 host its one directory."""
    if V2:
        return Path("/sys/fs/cgroup") / containerd.cgroup_parent.strip("/") / cid
    return Path("/sys/fs/cgroup") / controller / containerd.cgroup_parent.strip("/") / cid


def run_with_pty(argv, timeout=30):
    """Run `argv` with a pty as its stdin/stdout/stderr (ctr -t needs a console);
    return (exit code, everything written to the pty)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: every slave closed
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        code = p.wait(timeout=max(1, end - time.monotonic()))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    return code, out.decode(errors="replace")


def test_run_rm_echo(containerd, runtime):
    cid = containerd.new_id("echo")
    p = containerd.ctr("run", "--rm", *containerd.run_opts(runtime, cid), IMAGE, cid, "echo", "hello",
                       runtime=runtime)
    assert (p.returncode, p.stdout) == (0, "hello\n"), (p.stdout, p.stderr, runtime.last_calls())
    root = containerd.runc_root(runtime) / containerd.NAMESPACE
    create = [c for c in runtime.calls() if f" create --bundle " in c and c.endswith(f" {cid}")]
    assert create and create[0].startswith(f"--root {root} --log ") and " --log-format json create " in create[0]
    assert not (root / cid).exists(), "runtime state left after ctr run --rm"


def test_short_lived_containers_start_cleanly(containerd, runtime):
    """A process that exits at once, reaped at once by the shim (a subreaper), must not
    make `start` fail: runc never does; the start/exit race must not surface."""
    failures = []
    for i in range(5):
        cid = containerd.new_id(f"quick{i}")
        p = containerd.ctr("run", "--rm", *containerd.run_opts(runtime, cid), IMAGE, cid, "true")
        if p.returncode != 0:
            failures.append(p.stderr.strip())
            containerd.remove(cid)
    assert not failures, f"{len(failures)}/5 runs failed: {failures[:3]}"


def test_start_when_the_process_exits_at_once(containerd, slow_pidfd_runtime):
    """Deterministic form of the race above (see DELAY_PIDFD_OPEN in engines.py):
    `start` must succeed even if the container's process has already exited and been
    reaped by the shim when `start` looks at it."""
    rt = slow_pidfd_runtime
    cid = containerd.new_id("atonce")
    try:
        p = containerd.ctr("run", "--rm", *containerd.run_opts(rt, cid), IMAGE, cid, "echo", "ran", runtime=rt)
        assert p.returncode == 0 and p.stdout == "ran\n", (p.stdout, p.stderr, rt.last_calls())
    finally:
        containerd.remove(cid)


def test_exit_code(containerd, runtime):
    cid = containerd.new_id("exit")
    p = containerd.ctr("run", "--rm", *containerd.run_opts(runtime, cid), IMAGE, cid, "sh", "-c", "exit 3")
    assert p.returncode == 3, (p.stdout, p.stderr, runtime.last_calls())


def test_missing_binary_fails_create(containerd, runtime):
    cid = containerd.new_id("missing")
    try:
        p = containerd.ctr("run", "--rm", *containerd.run_opts(runtime, cid), IMAGE, cid, "/nonexistent")
        assert p.returncode != 0
        # the shim reports the last error line of log.json
        assert "OCI runtime create failed" in p.stderr and "no such file or directory" in p.stderr, p.stderr
    finally:
        containerd.remove(cid)
    assert not (containerd.runc_root(runtime) / containerd.NAMESPACE / cid).exists()


def test_detached_exec_kill_delete(containerd, runtime):
    cid = containerd.new_id("det")
    try:
        containerd.ctr("run", "-d", *containerd.run_opts(runtime, cid), IMAGE, cid, "sh", "-c", LOOP,
                       check=True, runtime=runtime)
        assert containerd.task_status(cid) == "RUNNING"
        pid = int(containerd.ctr("tasks", "ls").stdout.split(cid)[1].split()[0])

        p = containerd.ctr("tasks", "exec", "--exec-id", "e1", cid, "sh", "-c", "echo in-exec; exit 4",
                           runtime=runtime)
        assert (p.returncode, p.stdout) == (4, "in-exec\n"), (p.stdout, p.stderr, runtime.last_calls())

        p = containerd.ctr("tasks", "exec", "--exec-id", "e2", cid, "/nonexistent")
        assert p.returncode != 0 and "no such file or directory" in p.stderr, p.stderr

        containerd.ctr("tasks", "exec", "--detach", "--exec-id", "e3", cid, "sleep", "30", check=True)
        ps = containerd.ctr("tasks", "ps", cid, check=True, runtime=runtime).stdout
        pids = [int(line.split()[0]) for line in ps.splitlines()[1:] if line.strip()]
        assert pid in pids and len(pids) >= 2, ps     # `RT ps --format json ID`

        containerd.ctr("tasks", "kill", cid, check=True, runtime=runtime)      # SIGTERM: the trap exits 0
        wait_for(lambda: containerd.task_status(cid) == "STOPPED", what="the task to stop")
        p = containerd.ctr("tasks", "delete", cid, runtime=runtime, check=True)
        assert "exit code" not in p.stderr, p.stderr    # exit status 0
        containerd.ctr("containers", "delete", cid, check=True)
    finally:
        containerd.remove(cid)
    calls = runtime.calls()
    for want in (f"ps --format json {cid}", f"kill {cid} 15", f"delete {cid}", f"delete --force {cid}"):
        assert any(c.endswith(want) for c in calls), (want, calls[-8:])
    assert any(" exec --process " in c and " --detach --pid-file " in c for c in calls)
    assert not (containerd.runc_root(runtime) / containerd.NAMESPACE / cid).exists()


def test_pause_resume(containerd, runtime):
    cid = containerd.new_id("pause")
    try:
        containerd.ctr("run", "-d", *containerd.run_opts(runtime, cid), IMAGE, cid, "sh", "-c", LOOP,
                       check=True, runtime=runtime)
        freezer = host_cgroup(containerd, "freezer", cid) / ("cgroup.freeze" if V2 else "freezer.state")
        containerd.ctr("tasks", "pause", cid, check=True, runtime=runtime)
        assert containerd.task_status(cid) == "PAUSED"
        assert freezer.read_text().strip() == ("1" if V2 else "FROZEN")
        containerd.ctr("tasks", "resume", cid, check=True, runtime=runtime)
        assert containerd.task_status(cid) == "RUNNING"
        assert freezer.read_text().strip() == ("0" if V2 else "THAWED")
        p = containerd.ctr("tasks", "exec", "--exec-id", "after", cid, "echo", "alive", runtime=runtime)
        assert p.stdout == "alive\n", (p.stdout, p.stderr)
    finally:
        containerd.remove(cid)


def test_memory_limit(containerd, runtime):
    cid = containerd.new_id("mem")
    try:
        containerd.ctr("run", "-d", "--memory-limit", str(64 * 1024 * 1024),
                       *containerd.run_opts(runtime, cid), IMAGE, cid, "sleep", "60",
                       check=True, runtime=runtime)
        limit = host_cgroup(containerd, "memory", cid) / ("memory.max" if V2 else "memory.limit_in_bytes")
        assert limit.read_text().strip() == str(64 * 1024 * 1024)
        p = containerd.ctr("tasks", "exec", "--exec-id", "cg", cid, "cat", "/proc/self/cgroup", check=True)
        want = f"0::{containerd.cgroup_parent}/{cid}" if V2 else f"memory:{containerd.cgroup_parent}/{cid}"
        assert want in p.stdout, p.stdout
    finally:
        containerd.remove(cid)


def test_run_tty(containerd, runtime):
    cid = containerd.new_id("tty")
    try:
        code, out = run_with_pty(["ctr", "--address", containerd.address, "--namespace", containerd.NAMESPACE,
                                  "run", "--rm", "-t", *containerd.run_opts(runtime, cid), IMAGE, cid,
                                  "sh", "-c", "tty; test -t 0 && echo in-is-tty"])
        assert code == 0, (out, runtime.last_calls())
        assert "/dev/pts/0" in out and "in-is-tty" in out, out
        assert any(" --console-socket " in c and c.endswith(f" {cid}") for c in runtime.calls())
    finally:
        containerd.remove(cid)


def test_exec_tty(containerd, runtime):
    cid = containerd.new_id("etty")
    try:
        containerd.ctr("run", "-d", *containerd.run_opts(runtime, cid), IMAGE, cid, "sleep", "60",
                       check=True, runtime=runtime)
        code, out = run_with_pty(["ctr", "--address", containerd.address, "--namespace", containerd.NAMESPACE,
                                  "tasks", "exec", "--fifo-dir", str(containerd.fifo_dir), "-t",
                                  "--exec-id", "t1", cid, "sh", "-c", "tty; exit 6"])
        assert code == 6, (out, runtime.last_calls())
        assert "/dev/pts/" in out, out
    finally:
        containerd.remove(cid)


def test_kill_all_and_force_delete(containerd, runtime):
    cid = containerd.new_id("killall")
    try:
        containerd.ctr("run", "-d", *containerd.run_opts(runtime, cid), IMAGE, cid, "sleep", "60",
                       check=True, runtime=runtime)
        containerd.ctr("tasks", "exec", "--detach", "--exec-id", "x", cid, "sleep", "60", check=True)
        containerd.ctr("tasks", "kill", "--all", "--signal", "SIGKILL", cid, check=True, runtime=runtime)
        wait_for(lambda: containerd.task_status(cid) == "STOPPED", what="the task to stop")
        containerd.ctr("tasks", "delete", cid, check=True, runtime=runtime)
        assert any(c.endswith(f"kill --all {cid} 9") for c in runtime.calls())
        containerd.ctr("containers", "delete", cid, check=True)

        # `ctr tasks delete --force` of a running task
        containerd.ctr("run", "-d", *containerd.run_opts(runtime, cid), IMAGE, cid, "sleep", "60",
                       check=True, runtime=runtime)
        containerd.ctr("tasks", "delete", "--force", cid, check=True, runtime=runtime)
        assert containerd.task_status(cid) is None
        assert not (containerd.runc_root(runtime) / containerd.NAMESPACE / cid).exists()
        assert not host_cgroup(containerd, "memory", cid).exists() or \
            not (host_cgroup(containerd, "memory", cid) / "cgroup.procs").read_text().strip()
    finally:
        containerd.remove(cid)


def test_kubernetes_style_propagation(containerd, runtime, tmp_path):
    """What the CRI plugin gives a pod with a Bidirectional and a HostToContainer volume
    (tests/corpus/cri-style-1.6.json: rootfsPropagation "rshared", binds "rbind","rshared"
    and "rbind","rslave", oomScoreAdj, the CRI's masked and read-only paths), run through
    containerd's runc shim (`ctr run --config`): a mount made on the host under either bind
    source shows up in the container, and one made in the container under the rshared bind
    shows up on the host, as with runc."""
    import json
    import subprocess

    from pyrunc.tooling.bundle import make_rootfs
    from support.host import busybox_path

    from .engines import unmount_under

    corpus = Path(__file__).resolve().parents[1] / "corpus" / "cri-style-1.6.json"
    spec = json.loads(corpus.read_text())
    rootfs = tmp_path / "rootfs"
    make_rootfs(str(rootfs), busybox_path())
    (rootfs / "data").mkdir(exist_ok=True)
    (rootfs / "host").mkdir(exist_ok=True)
    prop = tmp_path / "prop"   # a shared mount on the host, as kubelet's volume dirs are
    (prop).mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "kube-volumes", str(prop)], check=True)
    cid = containerd.new_id("k8s")
    try:
        subprocess.run(["mount", "--make-shared", str(prop)], check=True)
        for d in ("bidir", "h2c"):
            (prop / d).mkdir()
        spec["root"] = {"path": str(rootfs), "readonly": False}
        spec["linux"]["cgroupsPath"] = f"{containerd.cgroup_parent}/{cid}"
        mounts = []
        for m in spec["mounts"]:
            if m["source"] == "@BUNDLE@/vol-bidirectional":
                m["source"] = str(prop / "bidir")
            elif m["source"] == "@BUNDLE@/vol-hosttocontainer":
                m["source"] = str(prop / "h2c")
            elif m["source"].startswith("@BUNDLE@/"):
                continue  # the CRI's hosts/resolv.conf binds: not needed here
            mounts.append(m)
        spec["mounts"] = mounts
        # Bidirectional needs a privileged container (it mounts): CAP_SYS_ADMIN, no seccomp
        for k in ("bounding", "effective", "permitted"):
            spec["process"]["capabilities"][k].append("CAP_SYS_ADMIN")
        spec["linux"].pop("seccomp")
        spec["process"]["args"] = ["sh", "-c", "mkdir -p /data/fromctr && mount -t tmpfs fromctr /data/fromctr && "
                                   "echo in > /data/fromctr/f && " + LOOP]
        cfg = tmp_path / "spec.json"
        cfg.write_text(json.dumps(spec))
        containerd.ids.add(cid)
        containerd.ctr("run", "-d", "--config", cfg, "--runc-binary", runtime.path,
                       "--runc-root", containerd.runc_root(runtime), "--fifo-dir", containerd.fifo_dir, cid,
                       check=True, runtime=runtime)
        # container -> host, through the rshared bind
        wait_for(lambda: (prop / "bidir" / "fromctr" / "f").exists(), timeout=10,
                 what="the container's mount to show on the host")
        # host -> container, through both binds
        for d in ("bidir", "h2c"):
            (prop / d / "hostmnt").mkdir()
            subprocess.run(["mount", "-t", "tmpfs", f"host-{d}", str(prop / d / "hostmnt")], check=True)
            (prop / d / "hostmnt" / "marker").write_text(d)

        def in_ctr(cmd, exec_id):
            p = containerd.ctr("tasks", "exec", "--exec-id", exec_id, cid, "sh", "-c", cmd, runtime=runtime)
            assert p.returncode == 0, (p.stdout, p.stderr, runtime.last_calls())
            return p.stdout
        assert in_ctr("cat /data/hostmnt/marker /host/hostmnt/marker", "x1") == "bidir" + "h2c"
        assert in_ctr("cat /proc/1/oom_score_adj", "x2") == "1000\n"
        out = in_ctr("wc -c < /proc/kcore 2>/dev/null || echo masked; touch /proc/sys/x 2>/dev/null || echo ro;"
                     "awk '$5==\"/data\" || $5==\"/host\" {print $5, $7}' /proc/self/mountinfo", "x3")
        lines = out.splitlines()
        # masked: absent where the host has no /proc/kcore (this project's machines), or
        # /dev/null bound over it (0 bytes) where it has one (the cgroup v2 guest)
        assert lines[0] in ("masked", "0") and lines[1] == "ro", out
        kinds = {ln.split()[0]: ln.split()[1].split(":")[0] for ln in lines[2:]}
        assert kinds == {"/data": "shared", "/host": "master"}, out
    finally:
        containerd.remove(cid)
        unmount_under(str(prop))
