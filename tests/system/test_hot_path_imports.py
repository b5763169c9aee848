"""What a container's create/start/exec/delete imports: only what its config and the command
use (docs/ARCHITECTURE.md "Lazy imports", items 2 and 5). Every module kept off this path
is ~50-150 us of every container's start (python -X importtime, bench/importtime.py)."""
import json

from support.checks import wait_for
from support.host import imported_modules

# Modules of config features a plain container does not use.
FEATURES = {
    "pyrunc.process.hooks": "hooks", "subprocess": "hooks",
    "pyrunc.linux.sysctl": "linux.sysctl",
    "pyrunc.rootfs.idmapped": "idmapped mounts / a user namespace",
    "pyrunc.linux.seccomp": "linux.seccomp", "pyrunc.linux.console": "process.terminal",
    "pyrunc.linux.netdevices": "linux.netDevices",
}
# What only kills: a failing hook at start, delete --force of a running container.
KILLING = {"pyrunc.container.kill", "pyrunc.container.delete"}


def test_a_plain_container_imports_no_feature_it_does_not_use(rt, tmp_path):
    b = rt.bundle(["sleep", "100"])
    rt.ids.add("hp1")
    create = imported_modules(["--root", rt.root, "create", "--bundle", b, "hp1"])
    assert "pyrunc.container.create" in create  # the log is there
    assert "pyrunc.rootfs.prepare" in create  # and has the container side's preimports
    assert {m: FEATURES[m] for m in FEATURES.keys() & create} == {}
    start = imported_modules(["--root", rt.root, "start", "hp1"])
    assert "pyrunc.container.start" in start
    assert KILLING & start == set()
    # exec, as runc's users call it: args, or a process.json (podman, containerd)
    process = tmp_path / "process.json"
    process.write_text(json.dumps({**rt.config(b)["process"], "args": ["true"]}))
    for how in (["hp1", "true"], ["--process", process, "hp1"]):
        exec_ = imported_modules(["--root", rt.root, "exec", *how])
        assert "pyrunc.process.exec" in exec_
        assert {m: FEATURES[m] for m in FEATURES.keys() & exec_} == {}
        assert "copy" not in exec_  # ~0.7 ms (weakref): util.jsonutil.deep_copy
    rt.cmd("kill", "hp1", "KILL")
    wait_for(lambda: rt.state("hp1")["status"] == "stopped")
    delete = imported_modules(["--root", rt.root, "delete", "hp1"])
    assert "pyrunc.container.delete" in delete
    assert "pyrunc.container.kill" not in delete


def test_a_feature_brings_its_module(rt):
    """The other side: the config's sysctl is imported (before pivot_root, where the init
    applies it) and works; delete --force of a running container kills."""
    b = rt.bundle(["sleep", "100"], edit=lambda c: c["linux"].update(
        sysctl={"net.ipv4.ip_forward": "1"}))
    rt.ids.add("hp2")
    create = imported_modules(["--root", rt.root, "create", "--bundle", b, "hp2"])
    assert "pyrunc.linux.sysctl" in create
    assert "pyrunc.process.hooks" not in create
    rt.cmd("start", "hp2")
    out = rt.cmd("exec", "hp2", "cat", "/proc/sys/net/ipv4/ip_forward").stdout
    assert out.strip() == "1"
    assert rt.state("hp2")["status"] == "running"
    delete = imported_modules(["--root", rt.root, "delete", "--force", "hp2"])
    assert "pyrunc.container.kill" in delete
