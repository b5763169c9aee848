"""cgroups seen through containers (config-linux.md "Control groups"): limits enforced
inside, visible on the host, pause/resume, update, events, ps; nothing left behind."""
import json
import time
from pathlib import Path

import pytest

from support.host import attached_device_programs, cgroup_v2_host, container_cgroup_dir
from support.checks import one_line_error, wait_for
from support.runtime import events_during


V2 = cgroup_v2_host()
pytestmark = pytest.mark.cgroups


def test_memory_limit_oom_kill_and_event(rt):
    def edit(c):
        c["linux"]["resources"] = {"memory": {"limit": 32 << 20, "swap": 32 << 20}}

    b = rt.bundle(["sh", "-c", "sleep 0.5; x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"],
                  edit=edit)
    rt.create("oom", b)
    d = container_cgroup_dir(rt, "oom", "memory")
    assert int((d / ("memory.max" if V2 else "memory.limit_in_bytes")).read_text()) == 32 << 20

    def start_until_stopped():
        rt.cmd("start", "oom")
        assert wait_for(lambda: rt.state("oom")["status"] == "stopped", 20)

    kinds = events_during(rt, "oom", start_until_stopped, interval="1s", timeout=15)
    assert "oom" in kinds


def test_pids_limit_enforced(rt):
    def edit(c):
        c["linux"]["resources"] = {"pids": {"limit": 5}}

    b = rt.bundle(["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; echo all-forked"], edit=edit)
    p = rt.run("pids", b, check=False)
    assert "all-forked" not in p.stdout
    assert "fork" in p.stderr


def test_cpu_quota_and_shares_visible_on_host(rt):
    def edit(c):
        c["linux"]["resources"] = {"cpu": {"quota": 50000, "period": 100000, "shares": 512}}

    b = rt.bundle(["sleep", "30"], edit=edit)
    rt.create("cpu", b)
    d = container_cgroup_dir(rt, "cpu", "cpu")
    if V2:
        assert (d / "cpu.max").read_text().strip() == "50000 100000"
        assert (d / "cpu.weight").read_text().strip() == "59"  # runc >= 1.3's conversion
        return
    assert (d / "cpu.cfs_quota_us").read_text().strip() == "50000"
    assert (d / "cpu.cfs_period_us").read_text().strip() == "100000"
    assert (d / "cpu.shares").read_text().strip() == "512"


def test_devices_denied_inside(rt):
    """A device node the rules do not allow cannot be opened even by root inside."""
    def edit(c):
        c["linux"]["devices"] = [{"path": "/dev/sda-fake", "type": "c", "major": 1, "minor": 1,
                                  "fileMode": 0o666}]
        c["linux"]["resources"]["devices"] = [{"allow": False, "access": "rwm"}]
        c["process"]["capabilities"] = {k: ["CAP_MKNOD", "CAP_DAC_OVERRIDE"] for k in
                                        ("bounding", "effective", "permitted")}

    out = rt.output_of(["sh", "-c",
                        "echo x > /dev/null && echo null-ok; "
                        "mknod /tmp/mem c 1 1 && (cat /tmp/mem >/dev/null 2>&1 && echo mem-open || echo mem-denied); "
                        "cat /dev/sda-fake >/dev/null 2>&1 && echo fake-open || echo fake-denied"],
                       edit=edit)
    assert "null-ok" in out
    assert "mem-open" not in out
    assert "fake-denied" in out


def test_pause_resume_stops_a_counter(rt):
    b = rt.bundle(["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.01; done"])
    rt.run("frz", b, "--detach")
    count = b / "rootfs/tmp/count"
    assert wait_for(lambda: count.exists() and count.read_text().strip() != "")
    rt.cmd("pause", "frz")
    assert rt.state("frz")["status"] == "paused"
    time.sleep(0.2)
    frozen_at = count.read_text()
    time.sleep(0.5)
    assert count.read_text() == frozen_at
    rt.cmd("resume", "frz")
    assert rt.state("frz")["status"] == "running"
    assert wait_for(lambda: count.read_text() != frozen_at)
    assert "not paused" in one_line_error(rt.cmd("resume", "frz", check=False))


def test_update_changes_live_limits(rt):
    b = rt.bundle(["sleep", "30"], edit=lambda c: c["linux"].update(
        resources=dict(c["linux"].get("resources") or {}, pids={"limit": 10})))
    rt.run("upd", b, "--detach")
    rt.cmd("update", "--pids-limit", "20", "--memory", "64m", "upd")
    assert (container_cgroup_dir(rt, "upd", "pids") / "pids.max").read_text().strip() == "20"
    mem = "memory.max" if V2 else "memory.limit_in_bytes"
    assert int((container_cgroup_dir(rt, "upd", "memory") / mem).read_text()) == 64 << 20
    rt.cmd("update", "--resources", "-", "upd", input=json.dumps({"pids": {"limit": 30}}))
    assert (container_cgroup_dir(rt, "upd", "pids") / "pids.max").read_text().strip() == "30"
    # device rules survive an update
    if V2:
        assert len(attached_device_programs(container_cgroup_dir(rt, "upd", ""))) == 1
    else:
        devlist = (container_cgroup_dir(rt, "upd", "devices") / "devices.list").read_text()
        assert "a *:* rwm" not in devlist
    stored = json.loads((Path(rt.root) / "upd" / "state.json").read_text())
    assert stored["config"]["linux"]["resources"]["pids"]["limit"] == 30
    err = one_line_error(rt.cmd("update", "--memory", "lots", "upd", check=False))
    assert "memory" in err


def test_events_stats_and_ps(rt):
    b = rt.bundle(["sleep", "30"])
    rt.run("ev", b, "--detach")
    ev = json.loads(rt.cmd("events", "--stats", "ev").stdout)
    assert ev["type"] == "stats" and ev["id"] == "ev"
    for key in ("cpu", "memory", "pids", "blkio"):
        assert key in ev["data"]
    assert ev["data"]["pids"]["current"] >= 1
    pids = json.loads(rt.cmd("ps", "--format", "json", "ev").stdout)
    assert pids == [rt.state("ev")["pid"]]
    table = rt.cmd("ps", "ev").stdout
    assert "PID" in table.splitlines()[0] and "sleep" in table


def test_nothing_left_after_delete_and_failed_create(rt):
    from support.host import prefix_dirs

    b = rt.bundle(["true"])
    rt.run("gone", b)
    bad = rt.bundle(["true"], edit=lambda c: c["linux"].update(
        resources={"memory": {"limit": -5, "swappiness": 1000}}))
    one_line_error(rt.create("bad", bad, check=False))
    assert not (Path(rt.root) / "bad").exists()
    for d in prefix_dirs(rt.cgroup_prefix):
        if d.exists():
            assert [p for p in d.iterdir() if p.is_dir()] == [], d
