"""podman, Docker and containerd with their systemd cgroup driver (their default on a
cgroup v2 host whose init is systemd), running a busybox container with pyrunc and with
runc (the reference): each container is a transient scope the runtime asked systemd
for, in the engine's slice, gone once the engine removed the container.

- podman: `cgroup_manager = "systemd"` (its default), containers in machine.slice as
  libpod-<id>.scope;
- Docker (dockerd 20.10): native.cgroupdriver=systemd (its default on cgroup v2),
  system.slice/docker-<id>.scope;
- containerd 1.6: the runc shim with the options the CRI plugin's `SystemdCgroup = true`
  and `BinaryName` give it (ctr: --runc-systemd-cgroup --runc-binary), cgroupsPath
  "machine.slice:pyrunc-itest:<id>" (ctr requires one in that form).

Skips where systemd is not PID 1 (docs/SYSTEMD.md: the systemd guest runs it)."""
import sys
from pathlib import Path

import pytest

from pyrunc.cgroups.base import is_unified

from .docker_engine import Docker
from .engines import IMAGE, Podman, need, wait_for
from support.host import systemctl_show as show

pytestmark = pytest.mark.systemd
LOOP = "trap 'exit 0' TERM; echo started; while :; do sleep 0.1; done"


def cgroup_of(pid):
    """The process's cgroup as the host sees it (v2: its path; v1: name=systemd's)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctl, path = line.split(":", 2)
        if (is_unified() and ctl == "") or ctl == "name=systemd":
            return path
    return None


def assert_scope(unit, slice_name, pid):
    p = show(unit, "ActiveState", "Slice", "ControlGroup", "Delegate")
    assert p["ActiveState"] == "active" and p["Slice"] == slice_name and p["Delegate"] == "yes", p
    assert cgroup_of(pid) == p["ControlGroup"], (cgroup_of(pid), p)


def assert_gone(unit):
    assert wait_for(lambda: show(unit, "LoadState")["LoadState"] == "not-found", timeout=30,
                    what=f"{unit} to go"), show(unit, "LoadState", "ActiveState")


def driver_calls(runtime):
    """The runtime's `create` calls made with --systemd-cgroup."""
    return [c for c in runtime.calls() if " create " in f" {c} " and "--systemd-cgroup" in c]


# ---------------------------------------------------------------------------- podman

@pytest.fixture(scope="module")
def sd_podman(itest_dir, wrapped_runtimes, rootfs_tar):
    need("podman", "conmon", apt="podman conmon")
    pm = Podman(itest_dir / "podman-systemd", wrapped_runtimes, rootfs_tar, cgroup_manager="systemd")
    try:
        yield pm
    finally:
        problems = pm.cleanup()
        if problems:
            print("podman cleanup:", *problems, sep="\n  ", file=sys.stderr)


def test_podman_systemd_driver(sd_podman, runtime):
    p = sd_podman.run(runtime, "--rm", IMAGE, "echo", "hello", check=True, timeout=300)
    assert p.stdout == "hello\n"
    name = sd_podman.name("sd")
    sd_podman.run(runtime, "-d", "--name", name, IMAGE, "sh", "-c", LOOP, check=True, timeout=300)
    cid = sd_podman.container_id(name)
    pid = int(sd_podman.inspect(name, "{{.State.Pid}}"))
    assert_scope(f"libpod-{cid}.scope", "machine.slice", pid)
    assert driver_calls(runtime), runtime.last_calls()
    sd_podman.cmd("rm", "-f", "-t", "5", name, runtime=runtime, check=True, timeout=300)
    assert_gone(f"libpod-{cid}.scope")


# ---------------------------------------------------------------------------- Docker

@pytest.fixture(scope="module")
def docker(itest_dir, wrapped_runtimes, rootfs_tar):
    need("dockerd", "docker", apt="docker.io")
    # systemd is dockerd's default driver on cgroup v2; on v1 it must be asked for
    d = Docker(itest_dir / "docker", wrapped_runtimes, rootfs_tar,
               exec_opts=() if is_unified() else ("native.cgroupdriver=systemd",))
    try:
        yield d
    finally:
        problems = d.stop()
        if problems:
            print("docker cleanup:", *problems, sep="\n  ", file=sys.stderr)


def test_docker_systemd_driver(docker, runtime):
    assert docker.info()["CgroupDriver"] == "systemd"
    p = docker.run(runtime, "--rm", IMAGE, "echo", "hello", check=True, timeout=300)
    assert p.stdout == "hello\n"
    p = docker.run(runtime, "-d", IMAGE, "sh", "-c", LOOP, check=True, timeout=300)
    cid = p.stdout.strip()
    pid = docker.inspect(cid)["State"]["Pid"]
    assert_scope(f"docker-{cid}.scope", "system.slice", pid)
    assert driver_calls(runtime), runtime.last_calls()
    docker.cmd("rm", "-f", cid, check=True, timeout=300)
    assert_gone(f"docker-{cid}.scope")


# ---------------------------------------------------------------------------- containerd

def test_containerd_systemd_cgroup(containerd, runtime):
    def opts(cid):
        containerd.ids.add(cid)
        return ["--runc-binary", runtime.path, "--runc-root", str(containerd.runc_root(runtime)),
                "--runc-systemd-cgroup", "--cgroup", f"machine.slice:pyrunc-itest:{cid}",
                "--fifo-dir", str(containerd.fifo_dir)]

    cid = containerd.new_id("sdecho")
    p = containerd.ctr("run", "--rm", *opts(cid), IMAGE, cid, "echo", "hello", runtime=runtime, timeout=300)
    assert (p.returncode, p.stdout) == (0, "hello\n"), (p.stdout, p.stderr, runtime.last_calls())
    cid = containerd.new_id("sdloop")
    p = containerd.ctr("run", "-d", *opts(cid), IMAGE, cid, "sh", "-c", LOOP, runtime=runtime,
                       check=True, timeout=300)
    unit = f"pyrunc-itest-{cid}.scope"
    pid = int(containerd.ctr("tasks", "ls").stdout.split(cid, 1)[1].split()[0])
    assert_scope(unit, "machine.slice", pid)
    assert driver_calls(runtime), runtime.last_calls()
    containerd.remove(cid)
    assert_gone(unit)
