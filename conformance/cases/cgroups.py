"""config-linux.md#control-groups: cgroupsPath placement, resources (memory, pids, cpu,
devices) applied and enforced, cgroups removed by delete and by a failed create; runc's
pause/resume extension.

Host-side values are read through /proc/PID/cgroup + mountinfo (cgroup v1 file names:
this suite targets the cgroup v1 / hybrid layout runc 1.1 uses; on a pure cgroup v2 host
the cases that need v1 files skip).
"""
from __future__ import annotations

import time
from pathlib import Path

from conformance.bundle import (CGROUP_MOUNT, CGROUP_PREFIX, cgroup_dirs_of, cgroup_file,
                                cgroup_hierarchies, expect, failed_create_leftovers,
                                read_proc_cgroup, skip)
from conformance.cases import case
from conformance.cases.linux import running

MiB = 1024 * 1024


def need_v1(*controllers):
    hier = cgroup_hierarchies()
    have = {c for key in hier for c in key.split(",") if key}
    missing = [c for c in controllers if c not in have]
    if missing:
        skip(f"no cgroup v1 hierarchy for {', '.join(missing)} on this host")


def prefix_cgroups(pid) -> dict[str, Path]:
    """pid's cgroup dirs (host paths) that are under the test prefix."""
    return {k: d for k, d in cgroup_dirs_of(pid).items() if f"/{CGROUP_PREFIX}/" in str(d) + "/"}


def created(ctx, b):
    """create (not start): cgroups and resources are applied at create."""
    c = ctx.create(b)
    expect(c.pid, "--pid-file was not written with a pid")
    return c


def read_inside(b, name):
    return (b.read_out(name) or "").strip()


@case("cgroups-path-relative-placement", "config-linux.md#cgroups-path")
def cgroups_relative(ctx):
    """A relative cgroupsPath is placed under the runtime's own cgroup, in every controller, with the process in it.

    config-linux.md#cgroups-path: "In the case of a relative path (not starting with /), the
    runtime MAY interpret the path relative to a runtime-determined location in the cgroups
    hierarchy." runc's location is the cgroup of the runtime process itself (each v1
    controller: <own cgroup>/<cgroupsPath>); a drop-in must pick the same one, and
    "The cgroups will be created if they don't exist."
    """
    b = ctx.bundle(["sleep", "1000"])
    rel = b.linux["cgroupsPath"]
    c = created(ctx, b)
    own = read_proc_cgroup("self")  # the runtime ran as our child, in our cgroups
    cg = read_proc_cgroup(c.pid)
    controllers = [k for k in cg if k and not k.startswith("name=")]
    expect(controllers, f"no v1 controller lines in /proc/{c.pid}/cgroup: {cg}")
    want = {k: own.get(k, "/").rstrip("/") + "/" + rel for k in controllers}
    bad = {k: cg[k] for k in controllers if cg[k] != want[k]}
    expect(not bad, f"not under the runtime's own cgroup + {rel!r}: {bad} (expected e.g. {next(iter(want.values()))})")
    dirs = cgroup_dirs_of(c.pid)
    for k in controllers:
        d = dirs.get(k)
        expect(d is not None and d.is_dir(), f"{k} cgroup dir {d} does not exist on the host")
        procs = (d / "cgroup.procs").read_text().split()
        expect(str(c.pid) in procs, f"pid {c.pid} is not in {d}/cgroup.procs")


@case("cgroups-path-absolute", "config-linux.md#cgroups-path")
def cgroups_absolute(ctx):
    """An absolute cgroupsPath is taken relative to each hierarchy's mount point (not the runtime's cgroup).

    config-linux.md#cgroups-path: "In the case of an absolute path (starting with /), the
    runtime MUST take the path to be relative to the cgroups mount point."
    """
    b = ctx.bundle(["sleep", "1000"])
    rel = b.linux["cgroupsPath"]
    b.linux["cgroupsPath"] = "/" + rel  # still the test prefix, now at each hierarchy root
    c = created(ctx, b)
    cg = read_proc_cgroup(c.pid)
    controllers = [k for k in cg if k and not k.startswith("name=")]
    bad = {k: cg[k] for k in controllers if cg[k] != "/" + rel}
    expect(not bad, f"absolute cgroupsPath '/{rel}' not at the hierarchy roots: {bad}")
    hier = cgroup_hierarchies()
    for k in controllers:
        if k in hier:
            d = Path(hier[k]) / rel
            expect(d.is_dir(), f"{d} does not exist")


@case("cgroup-memory-limit", "config-linux.md#memory")
def cgroup_memory(ctx):
    """memory limit/reservation/swap are written to the container's memory cgroup, seen from the host and inside.

    config-linux.md#memory: limit "sets limit of memory usage", reservation "sets soft limit",
    swap "sets limit of memory+Swap usage"; runtime.md#create: "All of the properties
    configured in config.json except for process MUST be applied." Inside, the config.md
    example's cgroup mount at /sys/fs/cgroup shows the container's own memory cgroup.
    """
    need_v1("memory")
    b = ctx.bundle(["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes > /out/limit 2>&1; "
                                "cat /sys/fs/cgroup/memory/memory.soft_limit_in_bytes > /out/soft 2>&1"])
    b.config["mounts"].append(dict(CGROUP_MOUNT))
    mem = {"limit": 64 * MiB, "reservation": 32 * MiB}
    has_memsw = any((d / "memory.memsw.limit_in_bytes").exists()
                    for k, d in cgroup_dirs_of("self").items() if "memory" in k.split(","))
    if has_memsw:
        mem["swap"] = 96 * MiB
    b.linux["resources"]["memory"] = mem
    c = created(ctx, b)
    got = {"limit": cgroup_file(c.pid, "memory", "memory.limit_in_bytes"),
           "reservation": cgroup_file(c.pid, "memory", "memory.soft_limit_in_bytes")}
    if has_memsw:
        got["swap"] = cgroup_file(c.pid, "memory", "memory.memsw.limit_in_bytes")
    bad = {k: got[k] for k in got if got[k] != str(mem[k])}
    expect(not bad, f"host memory cgroup values {bad}, expected {mem}")
    ctx.start(c.id)
    ctx.wait_stopped(c)
    inside = {"limit": read_inside(b, "limit"), "reservation": read_inside(b, "soft")}
    bad = {k: v for k, v in inside.items() if v != str(mem[k])}
    expect(not bad, f"inside /sys/fs/cgroup/memory: {bad}, expected {mem['limit']} / {mem['reservation']}")


PIDS_SCRIPT = """exec 2>/out/err
i=0
while [ $i -lt 12 ]; do sleep 100 & i=$((i+1)); echo $i > /out/n; done
echo no-limit > /out/done
"""


@case("cgroup-pids-limit", "config-linux.md#pids")
def cgroup_pids(ctx):
    """pids.limit is written to pids.max and enforced: forking past it fails inside the container.

    config-linux.md#pids: limit "specifies the maximum number of tasks in the cgroup";
    runtime.md#create: "All of the properties configured in config.json except for process
    MUST be applied." With limit 4 the shell (1 task) can fork exactly 3 sleeps.
    """
    need_v1("pids")
    b = ctx.bundle(["sh", "-c", PIDS_SCRIPT])
    b.linux["resources"]["pids"] = {"limit": 4}
    c = created(ctx, b)
    got = cgroup_file(c.pid, "pids", "pids.max")
    expect(got == "4", f"pids.max is {got!r}, expected '4'")
    ctx.start(c.id)
    ctx.wait_stopped(c)
    expect(b.read_out("done") is None, "12 background processes were forked despite pids limit 4")
    n = read_inside(b, "n")
    err = read_inside(b, "err")
    expect(n == "3", f"forked {n or 0} processes before fork failed, expected 3 (limit 4 - the shell); "
                     f"stderr: {err[:100]!r}")
    expect("fork" in err, f"the failure is not a fork failure: {err[:100]!r}")


@case("cgroup-cpu", "config-linux.md#cpu")
def cgroup_cpu(ctx):
    """cpu shares/quota/period and cpuset cpus/mems are written to the cgroup, seen from the host and inside.

    config-linux.md#cpu: shares "specifies a relative share of CPU time", quota "the total
    amount of time in microseconds for which all tasks in a cgroup can run during one
    period", cpus "list of CPUs the container will run on"; runtime.md#create: "All of the
    properties configured in config.json except for process MUST be applied."
    """
    need_v1("cpu", "cpuset")
    script = ("cat /sys/fs/cgroup/cpu/cpu.shares > /out/shares 2>&1; "
              "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us > /out/quota 2>&1; "
              "grep Cpus_allowed_list /proc/self/status > /out/affinity")
    b = ctx.bundle(["sh", "-c", script])
    b.config["mounts"].append(dict(CGROUP_MOUNT))
    cpu = {"shares": 512, "quota": 25000, "period": 50000, "cpus": "0", "mems": "0"}
    b.linux["resources"]["cpu"] = cpu
    c = created(ctx, b)
    got = {"shares": cgroup_file(c.pid, "cpu", "cpu.shares"),
           "quota": cgroup_file(c.pid, "cpu", "cpu.cfs_quota_us"),
           "period": cgroup_file(c.pid, "cpu", "cpu.cfs_period_us"),
           "cpus": cgroup_file(c.pid, "cpuset", "cpuset.cpus"),
           "mems": cgroup_file(c.pid, "cpuset", "cpuset.mems")}
    bad = {k: v for k, v in got.items() if v != str(cpu[k])}
    expect(not bad, f"host cpu/cpuset cgroup values {bad}, expected {cpu}")
    ctx.start(c.id)
    ctx.wait_stopped(c)
    inside = {"shares": read_inside(b, "shares"), "quota": read_inside(b, "quota")}
    bad = {k: v for k, v in inside.items() if v != str(cpu[k])}
    expect(not bad, f"inside /sys/fs/cgroup/cpu: {bad}, expected shares 512 quota 25000")
    aff = read_inside(b, "affinity").split()
    expect(aff[-1:] == ["0"], f"the process may run on CPUs {aff[-1:]}, expected only 0")


DEV_OPEN = """if echo x > /dev/null; then echo ok; else echo fail; fi > /out/null
(exec 3</dev/fuse) 2>/out/r.err && echo ok > /out/r || echo fail > /out/r
(exec 3>/dev/fuse) 2>/out/w.err && echo ok > /out/w || echo fail > /out/w
"""
FUSE = {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666, "uid": 0, "gid": 0}


@case("cgroup-devices-deny", "config-linux.md#allowed-device-list")
def cgroup_devices_deny(ctx):
    """With the allowed device list denying all, a created device node (/dev/fuse) cannot be opened; /dev/null still works.

    config-linux.md#allowed-device-list: devices "configures the allowed device list", "The
    runtime MUST apply entries in the listed order"; config-linux.md#default-devices: the
    runtime MUST supply /dev/null (so it must stay usable under a deny-all list).
    """
    b = ctx.bundle(["sh", "-c", DEV_OPEN])
    b.linux["devices"] = [dict(FUSE)]
    b.linux["resources"]["devices"] = [{"allow": False, "access": "rwm"}]
    ctx.run(b)
    expect(read_inside(b, "null") == "ok", "writing /dev/null failed")
    for mode in ("r", "w"):
        expect(read_inside(b, mode) == "fail", f"/dev/fuse (c 10:229, denied) could be opened for {mode}")
        err = read_inside(b, f"{mode}.err")
        expect("Operation not permitted" in err, f"opening the denied /dev/fuse for {mode}: {err!r}, expected EPERM")


@case("cgroup-devices-order", "config-linux.md#allowed-device-list")
def cgroup_devices_order(ctx):
    """Device entries apply in order: deny all, allow c 10:229 rw, deny c 10:229 w leaves /dev/fuse readable only.

    config-linux.md#allowed-device-list: "The runtime MUST apply entries in the listed order."
    """
    if not Path("/dev/fuse").exists():
        skip("no /dev/fuse on the host (fuse driver)")
    b = ctx.bundle(["sh", "-c", DEV_OPEN])
    b.linux["devices"] = [dict(FUSE)]
    b.linux["resources"]["devices"] = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
        {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "w"},
    ]
    ctx.run(b)
    expect(read_inside(b, "null") == "ok", "writing /dev/null failed")
    expect(read_inside(b, "r") == "ok", f"/dev/fuse could not be opened for reading: {read_inside(b, 'r.err')!r}")
    expect(read_inside(b, "w") == "fail", "/dev/fuse could be opened for writing after the later 'deny w'")
    err = read_inside(b, "w.err")
    expect("Operation not permitted" in err, f"opening /dev/fuse for writing: {err!r}, expected EPERM")


@case("cgroup-removed-on-delete", "runtime.md#delete")
def cgroup_removed_on_delete(ctx):
    """delete removes the cgroups the container's create made.

    runtime.md#delete: "Deleting a container MUST delete the resources that were created
    during the create step."
    """
    b = ctx.bundle(["sleep", "1000"])
    b.linux["resources"].update({"memory": {"limit": 64 * MiB}, "pids": {"limit": 100}})
    c = running(ctx, b)
    dirs = prefix_cgroups(c.pid)
    expect(dirs, f"the container is in no cgroup under the test prefix: {read_proc_cgroup(c.pid)}")
    ctx.kill(c.id, "KILL")
    ctx.wait_stopped(c)
    ctx.delete(c.id)
    left = sorted(str(d) for d in dirs.values() if d.is_dir())
    expect(not left, f"{len(left)} of {len(dirs)} cgroup dir(s) left after delete, e.g. {left[:1]}")


def create_must_fail_cleanly(ctx, b, what):
    c = ctx.create(b, ok=False)
    expect(not c.result.ok, f"create accepted {what}")
    left = failed_create_leftovers(ctx, c)
    expect(not left, f"the failed create ({what}) left: {'; '.join(left)}")


@case("cgroup-create-fail-memory", "runtime.md#errors")
def cgroup_create_fail_memory(ctx):
    """A memory swap limit below the memory limit makes create fail, leaving no container and no cgroup.

    runtime.md#create: "If the runtime cannot apply a property as specified in the
    configuration, it MUST generate an error and a new container MUST NOT be created";
    runtime.md#errors: "generating an error MUST leave the state of the environment as if the
    operation were never attempted". (The kernel refuses memsw.limit < limit.)
    """
    need_v1("memory")
    if not any((d / "memory.memsw.limit_in_bytes").exists()
               for k, d in cgroup_dirs_of("self").items() if "memory" in k.split(",")):
        skip("no swap accounting (memory.memsw.*) on this host")
    b = ctx.bundle(["true"])
    b.linux["resources"]["memory"] = {"limit": 64 * MiB, "swap": 32 * MiB}
    create_must_fail_cleanly(ctx, b, "memory swap 32MiB < limit 64MiB")


@case("cgroup-create-fail-cpuset", "runtime.md#errors")
def cgroup_create_fail_cpuset(ctx):
    """cpuset cpus "999" (no such CPU) makes create fail, leaving no container and no cgroup.

    runtime.md#create: "If the runtime cannot apply a property as specified in the
    configuration, it MUST generate an error and a new container MUST NOT be created";
    runtime.md#errors: "generating an error MUST leave the state of the environment as if the
    operation were never attempted".
    """
    need_v1("cpuset")
    b = ctx.bundle(["true"])
    b.linux["resources"]["cpu"] = {"cpus": "999"}
    create_must_fail_cleanly(ctx, b, 'cpuset cpus "999"')


TICKER = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /out/tick.new; mv /out/tick.new /out/tick; "
                      "sleep 0.05; done"]


@case("cgroup-ext-pause-resume", "runtime.md#state")
def pause_resume(ctx):
    """[runc extension] pause freezes the container (state "paused", freezer FROZEN), resume thaws it ("running").

    Not a spec operation: runc's `pause`/`resume` commands, which a drop-in must provide.
    runtime.md#state: "Additional values MAY be defined by the runtime, however, they MUST be
    used to represent new runtime states not defined above" ("paused" is runc's).
    """
    need_v1("freezer")
    b = ctx.bundle(TICKER)
    c = ctx.create(b)
    ctx.start(c.id)
    ctx.wait_out(b, "tick")
    res = ctx.rt("pause", c.id)
    expect(res.ok, f"pause failed: {res.reason()}")
    st = ctx.state(c.id)
    expect(st.get("status") == "paused", f"status after pause is {st.get('status')!r}, expected 'paused'")
    fz = cgroup_file(c.pid, "freezer", "freezer.state")
    expect(fz == "FROZEN", f"freezer.state after pause is {fz!r}, expected FROZEN")
    t1 = b.read_out("tick")
    time.sleep(0.25)
    expect(b.read_out("tick") == t1, "the container kept running while paused")
    res = ctx.rt("resume", c.id)
    expect(res.ok, f"resume failed: {res.reason()}")
    st = ctx.state(c.id)
    expect(st.get("status") == "running", f"status after resume is {st.get('status')!r}, expected 'running'")
    fz = cgroup_file(c.pid, "freezer", "freezer.state")
    expect(fz == "THAWED", f"freezer.state after resume is {fz!r}, expected THAWED")
    ctx.wait_for(lambda: b.read_out("tick") not in (t1, None), "the container to run again after resume", 3)
    ctx.kill(c.id, "KILL")
    ctx.wait_stopped(c)
    ctx.delete(c.id)
