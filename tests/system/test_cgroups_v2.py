"""cgroup v2 manager against a fake cgroupfs tree in a temp dir.

This host is cgroup v1 (hybrid), so the unified manager cannot run live: the
tests check which files it writes, with which values, in which order. Files
are pre-created as the kernel would have them (writes never create files).
"""

import json
import os

import pytest

from pyrunc.cgroups import load_manager
from pyrunc.cgroups.base import is_unified

from pyrunc.cgroups.v2 import ebpf
from pyrunc.cgroups.v2 import manager as v2mod
from pyrunc.cgroups.v2 import resources as v2res
from pyrunc.cgroups.fs import cpu_shares_to_weight, hugepage_sizes
from pyrunc.cgroups.v2.manager import V2Manager
from pyrunc.cgroups.v2.resources import swap_to_v2
from pyrunc.errors import PyruncError

ROOT_CTRLS = "cpuset cpu io memory hugetlb pids rdma misc"
SELF = "0::/user.slice/session-1.scope\n"

LEAF_FILES = {
    "cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc",
    "cgroup.procs": "",
    "cgroup.freeze": "0",
    "cgroup.events": "populated 0\nfrozen 0\n",
    "cgroup.type": "domain",
    "memory.max": "max", "memory.swap.max": "max", "memory.low": "0", "memory.high": "max",
    "memory.current": "4096", "memory.swap.current": "0", "memory.peak": "8192",
    "memory.events": "low 0\nhigh 0\nmax 3\noom 0\noom_kill 0\n",
    "memory.stat": "anon 4096\nfile 12288\n",
    "cpu.max": "max 100000", "cpu.weight": "100", "cpu.max.burst": "0", "cpu.idle": "0",
    "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\n"
                "nr_throttled 2\nthrottled_usec 30\n",
    "pids.max": "max", "pids.current": "3",
    "io.max": "", "io.weight": "default 100",
    "io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
    "cpuset.cpus": "", "cpuset.mems": "", "cpuset.cpus.effective": "0-1",
    "cpuset.mems.effective": "0",
    "hugetlb.2MB.max": "max", "hugetlb.2MB.rsvd.max": "max", "hugetlb.2MB.current": "0",
    "hugetlb.2MB.events": "max 0\n",
    "rdma.max": "",
}


def wr(path, content):
    with open(path, "w") as f:
        f.write(content)


def rd(path, name):
    with open(os.path.join(path, name)) as f:
        return f.read()


@pytest.fixture
def fake(tmp_path):
    root = tmp_path / "cgroup"
    root.mkdir()
    wr(root / "cgroup.controllers", ROOT_CTRLS)
    wr(root / "cgroup.subtree_control", "")
    wr(root / "cgroup.procs", "")
    (root / "user.slice").mkdir()  # pre-existing: never removed
    return str(root)


@pytest.fixture
def writes(monkeypatch):
    """Record every (file, value) the v2 manager writes, in order."""
    log = []
    real = v2mod.write_file

    def rec(controller, d, name, value):
        log.append((name, value))
        return real(controller, d, name, value)

    monkeypatch.setattr(v2mod, "write_file", rec)
    monkeypatch.setattr(v2res, "write_file", rec)
    return log


@pytest.fixture(autouse=True)
def programs(monkeypatch):
    """Device programs attached: [(directory, program)] (a fake tree is no cgroup: bpf(2)
    would refuse it; test_cgroups_ebpf.py and the live tests load them for real)."""
    log = []
    monkeypatch.setattr(ebpf, "load_attach", lambda d, program: log.append((d, program)))
    return log


def populate(path, **over):
    files = dict(LEAF_FILES)
    files.update(over)
    for k, v in files.items():
        if v is not None:
            wr(os.path.join(path, k), v)


def unpopulate(path):
    # the kernel removes control files itself on rmdir; a fake tree cannot
    for n in os.listdir(path):
        p = os.path.join(path, n)
        if os.path.isfile(p):
            os.unlink(p)


def mk(fake, cgpath="pyrunc-test/ctr", **kw):
    return V2Manager("cid", cgpath, mount_root=fake, self_cgroup=SELF, **kw)


def made(fake, **over):
    m = mk(fake)
    m.create()
    populate(m.path, **over)
    return m


# ------------------------------------------------------------------------ basics


@pytest.mark.unit
def test_is_unified(fake):
    assert is_unified(fake)
    assert not is_unified(os.path.dirname(fake))


@pytest.mark.unit
def test_paths(fake):
    # relative: under the parent of our own cgroup (runc's fs2)
    m = mk(fake, "a/b")
    assert m.path == os.path.join(fake, "user.slice", "a", "b")
    assert m.paths == {"": m.path}
    m = mk(fake, "/abs/x")
    assert m.path == os.path.join(fake, "abs", "x")
    m = mk(fake, None)
    assert m.path == os.path.join(fake, "user.slice", "cid")
    m = mk(fake, "../../../../etc")
    assert m.path == os.path.join(fake, "user.slice", "etc")


@pytest.mark.unit
def test_create_enables_controllers_and_destroy(fake, writes):
    m = mk(fake)
    m.create()
    assert m.created == [os.path.join(fake, "user.slice", "pyrunc-test"),
                         os.path.join(fake, "user.slice", "pyrunc-test", "ctr")]
    assert rd(fake, "cgroup.subtree_control") == "+" + " +".join(ROOT_CTRLS.split())
    # every ancestor (not the leaf) gets the controllers enabled, in order
    targets = [v for n, v in writes if n == "cgroup.subtree_control"]
    assert targets[0] == "+" + " +".join(ROOT_CTRLS.split())
    populate(m.path)
    saved = json.loads(json.dumps(m.to_state()))
    m2 = load_manager(saved)
    assert isinstance(m2, V2Manager) and m2.path == m.path and m2.created == m.created
    unpopulate(m.path)
    m2.destroy()
    assert not os.path.exists(os.path.join(fake, "user.slice", "pyrunc-test"))
    assert os.path.isdir(os.path.join(fake, "user.slice"))  # pre-existing stays
    assert m2.created == []


@pytest.mark.unit
def test_create_refuses_domain_invalid(fake):
    os.makedirs(os.path.join(fake, "user.slice", "pyrunc-test"))
    wr(os.path.join(fake, "user.slice", "pyrunc-test", "cgroup.type"), "domain invalid\n")
    m = mk(fake)
    with pytest.raises(PyruncError, match=r"^cgroup unified: cannot enter .*domain invalid"):
        m.create()
    assert m.created == []


@pytest.mark.unit
def test_apply(fake, writes):
    m = made(fake)
    writes.clear()
    m.apply(1234)
    assert rd(m.path, "cgroup.procs") == "1234"


# ------------------------------------------------------------------------ memory


@pytest.mark.unit
def test_memory(fake, writes):
    m = made(fake)
    writes.clear()
    m.set({"memory": {"limit": 64 << 20, "swap": 96 << 20, "reservation": 32 << 20}})
    assert writes == [("memory.swap.max", str(32 << 20)), ("memory.max", str(64 << 20)),
                      ("memory.low", str(32 << 20))]
    writes.clear()
    m.set({"memory": {"limit": -1}})  # -1 alone: memory and swap unlimited
    assert writes == [("memory.swap.max", "max"), ("memory.max", "max")]
    writes.clear()
    m.set({"memory": {"limit": 1 << 20, "swap": 1 << 20}})  # no swap at all
    assert writes == [("memory.swap.max", "0"), ("memory.max", str(1 << 20))]


@pytest.mark.unit
def test_memory_errors(fake, capfd):
    m = made(fake)
    with pytest.raises(PyruncError, match=r"^cgroup memory: unable to set swap limit without memory limit$"):
        m.set({"memory": {"swap": 1 << 20}})
    with pytest.raises(PyruncError, match=r"^cgroup memory: memory\+swap limit .* should be >= memory limit"):
        m.set({"memory": {"limit": 2 << 20, "swap": 1 << 20}})
    with pytest.raises(PyruncError, match=r"^cgroup memory: rejecting memory limit 4000 below current usage 4096$"):
        m.set({"memory": {"limit": 4000, "checkBeforeUpdate": True}})
    with pytest.raises(PyruncError, match=r"^cgroup memory: invalid limit 'abc'"):
        m.set({"memory": {"limit": "abc"}})
    capfd.readouterr()
    # runc 1.1 on v2: a warning line for kernel memory (runc's log format), swappiness is
    # ignored silently (a line would break a failed command's one-line error)
    m.set({"memory": {"kernel": 1 << 20, "kernelTCP": 1 << 20}})
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "level=warning" in err and "kernel" in err
    m.set({"memory": {"swappiness": 10, "disableOOMKiller": True, "useHierarchy": False}})
    assert capfd.readouterr().err == ""


@pytest.mark.unit
def test_swap_conversion():
    assert swap_to_v2(0, 0) == 0
    assert swap_to_v2(-1, 0) == -1
    assert swap_to_v2(-1, -1) == -1
    assert swap_to_v2(0, -1) == -1
    assert swap_to_v2(-1, 1000) == -1
    assert swap_to_v2(1000, 1000) == 0
    assert swap_to_v2(500, 200) == 300
    with pytest.raises(PyruncError):
        swap_to_v2(300, 400)
    with pytest.raises(PyruncError):
        swap_to_v2(-2, 0)


@pytest.mark.unit
def test_no_swap_accounting_is_fine_for_max(fake):
    m = made(fake, **{"memory.swap.max": None})
    m.set({"memory": {"limit": -1}})
    assert rd(m.path, "memory.max") == "max"
    with pytest.raises(PyruncError, match=r'^cgroup memory: writing "\d+" to memory\.swap\.max: No such file'):
        m.set({"memory": {"limit": 1 << 20, "swap": 2 << 20}})


# --------------------------------------------------------------------------- cpu


@pytest.mark.unit
def test_cpu(fake, writes):
    m = made(fake)
    writes.clear()
    m.set({"cpu": {"shares": 1024, "quota": 50000, "period": 200000, "burst": 1000, "idle": 0}})
    assert writes == [("cpu.weight", "100"), ("cpu.idle", "0"), ("cpu.max.burst", "1000"),
                      ("cpu.max", "50000 200000")]
    writes.clear()
    m.set({"cpu": {"quota": 30000}})
    m.set({"cpu": {"period": 50000}})
    m.set({"cpu": {"quota": -1, "period": 100000}})
    assert writes == [("cpu.max", "30000 100000"), ("cpu.max", "max 50000"),
                      ("cpu.max", "max 100000")]
    with pytest.raises(PyruncError, match=r"^cgroup cpu: realtime"):
        m.set({"cpu": {"realtimeRuntime": 1000}})


@pytest.mark.unit
def test_cpu_burst_retried_after_quota(fake, writes, monkeypatch):
    m = made(fake)
    writes.clear()
    real = v2mod.write_file
    calls = []

    def picky(controller, d, name, value):
        calls.append((name, value))
        if name == "cpu.max.burst" and not any(n == "cpu.max" for n, _ in calls):
            from pyrunc.cgroups.fs import error

            raise error(controller, f'writing "{value}" to {name}: Invalid argument', 22)
        return real(controller, d, name, value)

    monkeypatch.setattr(v2res, "write_file", picky)
    m.set({"cpu": {"quota": 400000, "period": 100000, "burst": 300000}})
    assert calls == [("cpu.max.burst", "300000"), ("cpu.max", "400000 100000"),
                     ("cpu.max.burst", "300000")]


@pytest.mark.unit
def test_shares_to_weight():
    assert cpu_shares_to_weight(0) == 0
    assert cpu_shares_to_weight(1) == 1
    assert cpu_shares_to_weight(2) == 1
    assert cpu_shares_to_weight(3) == 2
    assert cpu_shares_to_weight(1024) == 100
    assert cpu_shares_to_weight(262143) == 10000
    assert cpu_shares_to_weight(262145) == 10000


# ----------------------------------------------------------- pids, cpuset, io, ...


@pytest.mark.unit
def test_pids_cpuset(fake, writes):
    m = made(fake)
    writes.clear()
    m.set({"pids": {"limit": 10}, "cpu": {"cpus": "0-1", "mems": "0"}})
    assert writes == [("pids.max", "10"), ("cpuset.cpus", "0-1"), ("cpuset.mems", "0")]
    m.set({"pids": {"limit": -1}})
    assert rd(m.path, "pids.max") == "max"
    m.set({"pids": {"limit": 0}})
    assert rd(m.path, "pids.max") == "max"


@pytest.mark.unit
def test_io(fake, writes):
    m = made(fake)
    writes.clear()
    dev = {"major": 8, "minor": 0}
    m.set({"blockIO": {"weight": 500,
                       "throttleReadBpsDevice": [dict(dev, rate=1048576)],
                       "throttleWriteBpsDevice": [dict(dev, rate=2097152)],
                       "throttleReadIOPSDevice": [dict(dev, rate=100)],
                       "throttleWriteIOPSDevice": [dict(dev, rate=200)]}})
    assert writes == [("io.weight", str(1 + 490 * 9999 // 990)),
                      ("io.max", "8:0 rbps=1048576"), ("io.max", "8:0 wbps=2097152"),
                      ("io.max", "8:0 riops=100"), ("io.max", "8:0 wiops=200")]
    # with BFQ: the weight goes there unconverted, per-device weights too
    wr(os.path.join(m.path, "io.bfq.weight"), "default 100\n")
    writes.clear()
    m.set({"blockIO": {"weight": 500, "weightDevice": [dict(dev, weight=300)]}})
    assert writes == [("io.bfq.weight", "500"), ("io.bfq.weight", "8:0 300")]


needs_2mb = pytest.mark.skipif("2MB" not in hugepage_sizes(), reason="no 2MB huge pages")


@pytest.mark.unit
@needs_2mb
def test_hugetlb_rdma(fake, writes):
    m = made(fake)
    writes.clear()
    m.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}],
           "rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 1000}}})
    assert writes == [("hugetlb.2MB.max", str(4 << 20)), ("hugetlb.2MB.rsvd.max", str(4 << 20)),
                      ("rdma.max", "mlx5_0 hca_handle=3 hca_object=1000")]
    with pytest.raises(PyruncError, match=r'^cgroup hugetlb: invalid hugepage size "3MB"'):
        m.set({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]})


@pytest.mark.unit
@needs_2mb
def test_controller_not_enabled(fake):
    m = made(fake, **{"cgroup.controllers": "cpu memory pids"})
    with pytest.raises(PyruncError, match=r"^cgroup hugetlb: cannot set limits: the controller is "
                       r"not available in .* \(not enabled in the parent's cgroup.subtree_control\)$"):
        m.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}]})
    with pytest.raises(PyruncError, match=r"^cgroup io: cannot set limits"):
        m.set({"blockIO": {"weight": 100}})
    with pytest.raises(PyruncError, match=r"^cgroup net_cls: .*no such controller on cgroup v2"):
        m.set({"network": {"classID": 1}})
    m.set({"memory": {"limit": 1 << 30}})  # available ones still work


@pytest.mark.unit
def test_unified_map(fake, writes):
    m = made(fake)
    writes.clear()
    m.set({"unified": {"memory.high": "1073741824", "pids.max": "7"},
           "pids": {"limit": 5}})
    assert writes == [("pids.max", "5"), ("memory.high", "1073741824"), ("pids.max", "7")]
    with pytest.raises(PyruncError, match=r'^cgroup unified: resource "a/b" must be a file name'):
        m.set({"unified": {"a/b": "1"}})
    with pytest.raises(PyruncError, match=r'^cgroup misc: cannot set unified resource "misc.max"'):
        made_missing = made(fake, **{"cgroup.controllers": "cpu"})
        made_missing.set({"unified": {"misc.max": "x 1"}})


@pytest.mark.unit
def test_devices_program(fake, writes, programs, monkeypatch):
    """Every set() attaches the program of the rules (the config's, then runc's defaults),
    between cpu and cpuset as runc's fs2.Set; any device rules are accepted (they used to
    be refused unless they amounted to the defaults)."""
    from pyrunc.cgroups.devices import target_emulator

    m = made(fake)
    writes.clear()
    real = ebpf.load_attach
    order = []
    monkeypatch.setattr(ebpf, "load_attach", lambda d, p: (order.append("<bpf>"), real(d, p)))
    monkeypatch.setattr(v2res, "write_file", lambda c, d, n, v: order.append(n))
    rules = [{"allow": False, "access": "rwm"},
             {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}]
    m.set({"devices": rules, "pids": {"limit": 3}, "cpu": {"shares": 1024, "cpus": "0"}})
    assert order == ["pids.max", "cpu.weight", "<bpf>", "cpuset.cpus"]
    assert programs == [(m.path, ebpf.device_filter(target_emulator(rules)))]
    programs.clear()
    m.set({})  # no rules: the defaults alone
    assert programs == [(m.path, ebpf.device_filter(target_emulator([])))]
    programs.clear()
    m.set({"devices": rules}, skip_devices=True)
    assert programs == []


@pytest.mark.unit
def test_devices_errors_before_any_write(fake, writes, programs):
    m = made(fake)
    writes.clear()
    with pytest.raises(PyruncError, match=r"^cgroup devices: .*punch a hole"):
        m.set({"devices": [{"allow": False, "access": "rwm"},
                           {"allow": True, "type": "c", "access": "rwm"},
                           {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "r"}],
               "pids": {"limit": 3}})
    with pytest.raises(PyruncError, match=r'^cgroup devices: rule 0: invalid device type "x"'):
        m.set({"devices": [{"allow": True, "type": "x", "access": "r"}], "pids": {"limit": 3}})
    assert writes == [] and programs == []


@pytest.mark.unit
def test_devices_attach_error(fake, monkeypatch):
    m = made(fake)

    def refuse(d, p):
        raise OSError(1, "bpf(BPF_PROG_LOAD): Operation not permitted")

    monkeypatch.setattr(ebpf, "load_attach", refuse)
    monkeypatch.setattr(ebpf, "in_user_namespace", lambda: False)
    with pytest.raises(PyruncError, match=r"^cgroup devices: attaching the device program to "
                       r"\S+: bpf\(BPF_PROG_LOAD\): Operation not permitted$"):
        m.set({})
    monkeypatch.setattr(ebpf, "in_user_namespace", lambda: True)
    m.set({})  # as runc: in a user namespace bpf(2) is refused, and nothing to protect


# ----------------------------------------------------------------- freeze, stats


@pytest.mark.unit
def test_paused_status_read_from_saved_state(fake):
    """`state` says "paused" from the saved cgroup state alone, the systemd driver's
    (a scope's cgroupfs manager under "fs") as well as cgroupfs'. It said "running" for
    a paused --systemd-cgroup container, and so `resume` refused (systemd guest, CI)."""
    from pyrunc.cgroups import frozen_from_state

    m = made(fake)
    systemd_saved = {"cgroup_version": 2, "driver": "systemd", "unit": "x.scope",
                     "paths": {"": m.path}, "fs": m.to_state()}
    for saved in (m.to_state(), systemd_saved):
        assert not frozen_from_state(saved)
    wr(os.path.join(m.path, "cgroup.freeze"), "1")
    for saved in (m.to_state(), systemd_saved):
        assert frozen_from_state(saved)


@pytest.mark.unit
def test_freeze_thaw(fake):
    m = made(fake)
    assert not m.frozen()
    wr(os.path.join(m.path, "cgroup.events"), "populated 1\nfrozen 1\n")  # the kernel's answer
    m.freeze()
    assert rd(m.path, "cgroup.freeze") == "1" and m.frozen()
    wr(os.path.join(m.path, "cgroup.events"), "populated 1\nfrozen 0\n")
    m.thaw()
    assert rd(m.path, "cgroup.freeze") == "0" and not m.frozen()


@pytest.mark.unit
def test_stats(fake):
    m = made(fake)
    wr(os.path.join(m.path, "memory.max"), str(64 << 20))
    wr(os.path.join(m.path, "pids.max"), "20")
    s = m.stats()
    json.dumps(s)
    assert s["cpu"] == {"usage": {"total": 1500000, "kernel": 500000, "user": 1000000},
                        "throttling": {"periods": 7, "throttledPeriods": 2, "throttledTime": 30000}}
    assert s["memory"]["usage"] == {"limit": 64 << 20, "usage": 4096, "max": 8192, "failcnt": 3}
    assert s["memory"]["cache"] == 12288
    assert s["memory"]["swap"]["limit"] == (1 << 64) - 1 and s["memory"]["swap"]["usage"] == 4096
    assert s["memory"]["raw"] == {"anon": 4096, "file": 12288}
    assert s["pids"] == {"current": 3, "limit": 20}
    assert s["blkio"] == {
        "ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 4096},
                                    {"major": 8, "op": "Write", "value": 8192},
                                    {"major": 8, "op": "Discard"}],
        "ioServicedRecursive": [{"major": 8, "op": "Read", "value": 1},
                                {"major": 8, "op": "Write", "value": 2},
                                {"major": 8, "op": "Discard"}]}
    if "2MB" in hugepage_sizes():
        assert s["hugetlb"]["2MB"] == {"failcnt": 0}
    assert s["cpuset"]["cpus"] == [0, 1]


@pytest.mark.unit
def test_pids_recursive(fake):
    m = made(fake, **{"cgroup.procs": "10\n11\n"})
    sub = os.path.join(m.path, "inner")
    os.mkdir(sub)
    wr(os.path.join(sub, "cgroup.procs"), "12\n")
    assert m.pids() == [10, 11, 12]


@pytest.mark.unit
def test_state_says_paused_from_cgroup_freeze(fake):
    """`state`/`list` read cgroup.freeze of the saved v2 path (they looked for a v1-style
    "paths" entry, found none, and said "running" for a paused container)."""
    from pyrunc.cgroups import frozen_from_state

    m = made(fake)
    saved = json.loads(json.dumps(m.to_state()))
    assert frozen_from_state(saved) is False
    wr(os.path.join(m.path, "cgroup.freeze"), "1\n")
    assert frozen_from_state(saved) is True


@pytest.mark.unit
def test_kill_all_through_cgroup_kill(fake):
    m = made(fake, **{"cgroup.kill": ""})
    assert m.kill_all() is True
    assert rd(m.path, "cgroup.kill") == "1"
    os.unlink(os.path.join(m.path, "cgroup.kill"))
    assert m.kill_all() is False  # Linux < 5.14: the runtime signals each pid


def test_oom_watch_counts_oom_kills(fake):
    """`events` on v2: inotify on memory.events; each increase of oom_kill is reported once,
    other changes are not; cgroup.events saying "populated 0" ends the watch (the kernel
    modifies these files in place: here the test does)."""
    import select

    m = made(fake)
    w = m.oom_watch()
    try:
        def changed(name, text):
            wr(os.path.join(m.path, name), text)
            assert select.select([w], [], [], 5)[0], "no inotify event"
            return w.read()

        assert changed("memory.events", "low 0\nhigh 1\nmax 3\noom 0\noom_kill 0\n") == 0
        assert changed("memory.events", "low 0\nhigh 1\nmax 4\noom 1\noom_kill 1\n") == 1
        assert changed("memory.events", "low 0\nhigh 2\nmax 4\noom 1\noom_kill 1\n") == 0
        assert changed("memory.events", "low 0\nhigh 2\nmax 6\noom 3\noom_kill 3\n") == 2
        assert changed("cgroup.events", "populated 0\nfrozen 0\n") is None
    finally:
        w.close()
