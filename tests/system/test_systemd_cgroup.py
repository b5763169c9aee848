"""`--systemd-cgroup` against a real systemd (PID 1), pyrunc next to runc in the same
host: the transient scope each makes (`systemctl show`), its cgroup files, the
container's life in it (create/start/exec/pause/resume/update/kill/delete), and that
nothing is left after delete. Skips where systemd is not the init (see docs/SYSTEMD.md
for the guest that runs it).

Known differences with runc 1.1.5, checked as such:
- CPUWeight from cpu.shares: pyrunc converts as current runc does (a quadratic in
  log2(shares), 1024 -> 100), runc 1.1.5 linearly (1024 -> 39); each runtime's cgroup
  file matches what it told systemd;
- DeviceAllow: runc 1.1.5 names a "major:*" rule by its /proc/devices group
  ("char-pts") and drops a rule whose device does not exist on the host; pyrunc sends
  what current runc sends to systemd >= 240 ("char-136", every rule);
- cgroup v1 (systemd's hybrid layout), a scope in a nested slice: runc 1.1.5's init is
  not in the scope's devices cgroup (seen after start), so `ps` and `kill --all`, which
  list that cgroup's pids, miss it (the test then kills it by pid); pyrunc's init is in
  every hierarchy's scope directory, and its `ps` and `kill --all` see it.
"""
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from pyrunc.cgroups.base import is_unified
from support.checks import wait_for
from support.host import systemctl_show as show

pytestmark = pytest.mark.systemd
CG = Path("/sys/fs/cgroup")


def gone(unit):
    return show(unit, "LoadState")["LoadState"] == "not-found"


class Units:
    """Units a test may leave behind (a failed test): stopped and reset at the end."""

    def __init__(self):
        self.names = []

    def add(self, *names):
        self.names.extend(names)
        return names[0] if len(names) == 1 else names

    def cleanup(self):
        left = [u for u in self.names if not gone(u) and u.endswith(".scope")
                and show(u, "ActiveState")["ActiveState"] not in ("inactive", "")]
        for u in reversed(self.names):
            subprocess.run(["systemctl", "stop", u], capture_output=True, timeout=120)
            subprocess.run(["systemctl", "reset-failed", u], capture_output=True, timeout=60)
        return left


@pytest.fixture
def units():
    u = Units()
    yield u
    left = u.cleanup()
    assert not left, f"units left active: {left}"


@pytest.fixture
def both(rt, runc_rt):
    return {"runc": runc_rt, "pyrunc": rt}


@pytest.fixture
def slice_name(units):
    """A test-only slice, nested (pyrunctest.slice/pyrunctest-<rand>.slice), made by
    systemd on demand and stopped at the end."""
    name = f"pyrunctest-{uuid.uuid4().hex[:8]}.slice"
    units.add("pyrunctest.slice", name)
    return name


def sd(r, *args, **kw):
    return r.cmd("--systemd-cgroup", *args, **kw)


def scope_dir(slice_name, unit):
    parts, acc = [], ""
    for comp in slice_name[:-len(".slice")].split("-"):
        acc += comp
        parts.append(acc + ".slice")
        acc += "-"
    if is_unified():
        return CG.joinpath(*parts, unit)
    return CG / "memory" / Path(*parts) / unit


def procs(d):
    return sorted(int(x) for x in (d / "cgroup.procs").read_text().split())


RESOURCES = {
    "memory": {"limit": 200 * 1024 * 1024, "reservation": 64 * 1024 * 1024, "swap": 300 * 1024 * 1024},
    "cpu": {"shares": 512, "quota": 25000, "period": 50000, "cpus": "0", "mems": "0"},
    "pids": {"limit": 90},
}
PROPS = ("ActiveState", "Slice", "ControlGroup", "Description", "Delegate", "DefaultDependencies",
         "MemoryAccounting", "CPUAccounting", "IOAccounting", "TasksAccounting", "MemoryMax",
         "MemoryLow", "MemorySwapMax", "CPUQuotaPerSecUSec", "CPUQuotaPeriodUSec", "TasksMax",
         "AllowedCPUs", "AllowedMemoryNodes", "DevicePolicy")
V2_FILES = ("memory.max", "memory.low", "memory.swap.max", "cpu.max", "pids.max", "cpuset.cpus",
            "cpuset.mems")


def proc_devices():
    groups, kind = {}, None
    for line in Path("/proc/devices").read_text().splitlines():
        if line.endswith("devices:"):
            kind = "char" if line.startswith("Character") else "block"
        elif line.strip():
            major, name = line.split()
            groups[f"{kind}-{name}"] = f"{kind}-{major}"
    return groups


def device_allow(entries):
    """DeviceAllow as a set, group names as majors, rules of devices this host lacks
    dropped (runc 1.1.5 drops them; see the module doc)."""
    groups = proc_devices()
    out = set()
    for e in entries:
        path, perms = e.rsplit(" ", 1)
        path = groups.get(path, path)
        if path.startswith("/dev/char/") or path.startswith("/dev/block/"):
            kind = "char" if path.startswith("/dev/char/") else "block"
            if not os.path.exists(f"/sys/dev/{kind}/{path.rsplit('/', 1)[1]}"):
                continue
        out.add((path, perms))
    return out


def hierarchies(d):
    """The scope's directory in every hierarchy that has it (v2: the one)."""
    if is_unified():
        return [d]
    rel = d.relative_to(CG / "memory")
    return [CG / h / rel for h in sorted(os.listdir(CG)) if (CG / h / rel / "cgroup.procs").exists()]


def _stuck(r, cid, d):
    """What a container that does not stop looks like (for the failure message)."""
    out = [f"state {r.state(cid)['status']}, procs {procs(d)}"]
    if not is_unified():
        out.append("freezer " + (CG / "freezer" / d.relative_to(CG / "memory") / "freezer.state").read_text())
    for pid in procs(d):
        for f in ("status", "stack", "wchan"):
            try:
                text = Path(f"/proc/{pid}/{f}").read_text()
            except OSError as e:
                text = str(e)
            if f == "status":
                text = " ".join(x for x in text.splitlines() if x.startswith(("State", "SigPnd", "ShdPnd")))
            out.append(f"{pid} {f}: {text}")
    return "\n".join(out)


def observe_lifecycle(r, cid, b, slice_name, units):
    """Everything seen from outside of one container's life under --systemd-cgroup."""
    unit = units.add(f"pyrunctest-{cid}.scope")
    d = scope_dir(slice_name, unit)
    seen = {}
    sd(r, "create", "--bundle", b, cid)
    pid = r.state(cid)["pid"]
    seen["created"] = show(unit, *PROPS, "CPUWeight", "DeviceAllow")
    assert d.is_dir()
    assert procs(d) == [pid]
    seen["init_missing_from"] = [str(h) for h in hierarchies(d) if pid not in procs(h)]
    seen["files"] = {f: (d / f).read_text().strip() for f in V2_FILES} if is_unified() else {}
    seen["cpu.weight"] = (d / "cpu.weight").read_text().strip() if is_unified() else None
    sd(r, "start", cid)
    assert r.state(cid)["status"] == "running"
    sd(r, "exec", "--detach", cid, "sleep", "100")
    assert wait_for(lambda: len(procs(d)) == 2)
    seen["ps"] = len(json.loads(r.cmd("ps", "--format", "json", cid).stdout))
    sd(r, "pause", cid)
    seen["paused"] = r.state(cid)["status"]
    seen["freeze"] = (d / "cgroup.freeze").read_text().strip() if is_unified() else \
        (CG / "freezer" / d.relative_to(CG / "memory") / "freezer.state").read_text().strip()
    sd(r, "resume", cid)
    seen["resumed"] = r.state(cid)["status"]
    sd(r, "update", "--memory", str(300 * 1024 * 1024), "--pids-limit", "50", "--cpu-quota", "40000", cid)
    seen["updated"] = show(unit, "MemoryMax", "TasksMax", "CPUQuotaPerSecUSec", "DevicePolicy")
    seen["updated_files"] = {f: (d / f).read_text().strip() for f in ("memory.max", "pids.max", "cpu.max")} \
        if is_unified() else {}
    seen["init_missing_from"] += [str(h) for h in hierarchies(d) if pid not in procs(h)]
    sd(r, "kill", "--all", cid, "KILL")
    seen["kill_all_left_init"] = not wait_for(lambda: r.state(cid)["status"] == "stopped", timeout=30)
    if seen["kill_all_left_init"] and r is not None and "runc" in Path(r.binary).name and not is_unified():
        sd(r, "kill", cid, "KILL")  # runc 1.1.5 on v1: see the module doc
    assert wait_for(lambda: r.state(cid)["status"] == "stopped", timeout=30), _stuck(r, cid, d)
    sd(r, "delete", cid)
    r.ids.discard(cid)
    assert wait_for(lambda: gone(unit)), show(unit, "LoadState", "ActiveState")
    assert not d.exists()
    return seen


def test_scope_lifecycle_as_runc(both, slice_name, units):
    seen, ids = {}, {}
    for name in ("pyrunc", "runc"):
        r = both[name]
        cid = ids[name] = f"{name}-{uuid.uuid4().hex[:6]}"
        b = r.bundle(["sleep", "100"], edit=lambda c: c["linux"].update(
            cgroupsPath=f"{slice_name}:pyrunctest:{cid}", resources=json.loads(json.dumps(RESOURCES))))
        seen[name] = observe_lifecycle(r, cid, b, slice_name, units)
    runc, ours = seen["runc"], seen["pyrunc"]
    assert ours["init_missing_from"] == [] and not ours["kill_all_left_init"]
    for name, s in seen.items():
        p = s["created"]
        assert p["ActiveState"] == "active" and p["Slice"] == slice_name, (name, p)
        assert p["Delegate"] == "yes" and p["DefaultDependencies"] == "no", (name, p)
        assert p["Description"].startswith("libcontainer container "), (name, p)
        assert s["paused"] == "paused" and s["resumed"] == "running", name
        assert s["ps"] == (2 if name == "pyrunc" or is_unified() else s["ps"]), name
    for k in PROPS:
        a, b = runc["created"][k], ours["created"][k]
        a, b = a.replace(ids["runc"], "ID"), b.replace(ids["pyrunc"], "ID")
        assert a == b, (k, a, b)
    assert device_allow(runc["created"]["DeviceAllow"]) == device_allow(ours["created"]["DeviceAllow"])
    assert ours["files"] == runc["files"]
    assert ours["updated"] == runc["updated"]
    assert ours["updated_files"] == runc["updated_files"]
    assert ours["freeze"] == runc["freeze"]
    if is_unified():
        assert ours["created"]["CPUWeight"] == ours["cpu.weight"] == "59"
        assert runc["created"]["CPUWeight"] == runc["cpu.weight"] == "20"


def test_default_cgroups_path_is_system_slice_runc_id(both, units):
    """No cgroupsPath: runc's "system.slice:runc:<id>"."""
    for name, r in both.items():
        cid = f"{name}-{uuid.uuid4().hex[:6]}"
        unit = units.add(f"runc-{cid}.scope")
        b = r.bundle(["sleep", "100"], edit=lambda c: c["linux"].pop("cgroupsPath"))
        sd(r, "create", "--bundle", b, cid)
        p = show(unit, "ActiveState", "Slice", "ControlGroup", "Description")
        assert p == {"ActiveState": "active", "Slice": "system.slice",
                     "ControlGroup": f"/system.slice/{unit}",
                     "Description": f"libcontainer container {cid}"}, (name, p)
        sd(r, "delete", "--force", cid)
        r.ids.discard(cid)
        assert wait_for(lambda: gone(unit)), name


def test_device_rules_enforced_through_systemd(both, slice_name, units):
    """The config's device rules reach the container through systemd's own device
    program: a device node the rules do not allow to read cannot be read (/dev/kmsg's,
    allowed "w" only), an allowed one can; the unit's DeviceAllow is runc's."""
    script = ("mknod /tmp/kmsg c 1 11 && mknod /tmp/zero c 1 5 && head -c1 /tmp/zero >/dev/null "
              "&& echo zero-ok; head -c1 /tmp/kmsg >/dev/null 2>&1 && echo kmsg-open || echo kmsg-denied")
    seen = {}
    for name, r in both.items():
        def edit(c, cid):
            c["linux"]["cgroupsPath"] = f"{slice_name}:pyrunctest:{cid}"
            c["linux"]["resources"] = {"devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"}]}
            for k in ("bounding", "effective", "permitted"):
                c["process"]["capabilities"][k].append("CAP_MKNOD")

        cid = f"{name}-{uuid.uuid4().hex[:6]}"
        unit = units.add(f"pyrunctest-{cid}.scope")
        sd(r, "create", "--bundle", r.bundle(["sleep", "100"], edit=lambda c: edit(c, cid)), cid)
        seen[name] = show(unit, "DevicePolicy", "DeviceAllow")
        sd(r, "delete", "--force", cid)
        r.ids.discard(cid)
        assert wait_for(lambda: gone(unit)), name
        cid = f"{name}-{uuid.uuid4().hex[:6]}"
        units.add(f"pyrunctest-{cid}.scope")
        r.ids.add(cid)
        p = sd(r, "run", "--bundle", r.bundle(["sh", "-c", script], edit=lambda c: edit(c, cid)), cid)
        assert p.stdout == "zero-ok\nkmsg-denied\n", (name, p.stdout, p.stderr)
    assert seen["pyrunc"]["DevicePolicy"] == seen["runc"]["DevicePolicy"] == "strict"
    assert device_allow(seen["pyrunc"]["DeviceAllow"]) == device_allow(seen["runc"]["DeviceAllow"])
    assert ("/dev/char/1:11", "w") in device_allow(seen["pyrunc"]["DeviceAllow"])


def test_failed_create_leaves_no_scope(both, slice_name, units):
    """A create that fails after the scope was made (a failing prestart hook) stops it:
    no unit, no cgroup, no state."""
    for name, r in both.items():
        cid = f"{name}-{uuid.uuid4().hex[:6]}"
        unit = units.add(f"pyrunctest-{cid}.scope")
        b = r.bundle(["sleep", "100"], edit=lambda c: (
            c["linux"].update(cgroupsPath=f"{slice_name}:pyrunctest:{cid}"),
            c.update(hooks={"prestart": [{"path": "/bin/false"}]})))
        p = sd(r, "create", "--bundle", b, cid, check=False)
        assert p.returncode != 0, name
        assert wait_for(lambda: gone(unit)), (name, show(unit, "LoadState", "ActiveState"))
        assert not scope_dir(slice_name, unit).exists(), name
        assert r.cmd("list", "--quiet").stdout.strip() == "", name


def test_annotations_are_unit_properties(both, slice_name, units):
    """org.systemd.property.* annotations (runc's SystemdProps): NAMESec in seconds
    becomes NAMEUSec, other values as given."""
    seen = {}
    for name, r in both.items():
        cid = f"{name}-{uuid.uuid4().hex[:6]}"
        unit = units.add(f"pyrunctest-{cid}.scope")
        b = r.bundle(["sleep", "100"], edit=lambda c: (
            c["linux"].update(cgroupsPath=f"{slice_name}:pyrunctest:{cid}"),
            c.update(annotations={"org.systemd.property.TimeoutStopSec": "7",
                                  "org.systemd.property.CollectMode": "'inactive-or-failed'"})))
        sd(r, "create", "--bundle", b, cid)
        seen[name] = show(unit, "TimeoutStopUSec", "CollectMode")
        sd(r, "delete", "--force", cid)
        r.ids.discard(cid)
    assert seen["pyrunc"] == seen["runc"] == {"TimeoutStopUSec": "7s", "CollectMode": "inactive-or-failed"}


def test_interrupted_create_is_recovered_by_delete_force(rt, slice_name, units):
    """pyrunc only (its create.json early record): a create killed after the scope was
    made (a prestart hook SIGKILLs the runtime) leaves a container that delete --force
    removes: its processes, its scope and cgroup."""
    cid = f"pyrunc-{uuid.uuid4().hex[:6]}"
    unit = units.add(f"pyrunctest-{cid}.scope")
    b = rt.bundle(["sleep", "100"], edit=lambda c: (
        c["linux"].update(cgroupsPath=f"{slice_name}:pyrunctest:{cid}"),
        c.update(hooks={"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "kill -9 $PPID"]}]})))
    p = sd(rt, "create", "--bundle", b, cid, check=False)
    assert p.returncode == -9, (p.returncode, p.stderr)
    d = scope_dir(slice_name, unit)
    sd(rt, "delete", "--force", cid)
    rt.ids.discard(cid)
    assert wait_for(lambda: gone(unit)), show(unit, "LoadState", "ActiveState")
    assert not d.exists()
    assert rt.cmd("list", "--quiet").stdout.strip() == ""
