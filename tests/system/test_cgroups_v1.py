"""cgroup v1 manager against the real kernel (root, cgroup v1 or hybrid host).

Every cgroup is made under a random ``pyrunc-test-<hex>`` prefix nested under
this process's own cgroup of each hierarchy, and the whole prefix is removed
afterwards (also on failure); every process started is killed by pid.
"""

import errno
import json
import mmap
import os
import select
import struct
import subprocess
import sys
import time
import uuid

import pytest

from pyrunc.cgroups import load_manager, new_manager
from pyrunc.cgroups.base import is_unified

from pyrunc.cgroups import fs
from pyrunc.errors import PyruncError

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.cgroup_v1,
]

V1 = None
if not is_unified():
    from pyrunc.cgroups.v1.manager import V1Manager as V1


def _bases():
    """The own-cgroup directory of this process in every hierarchy."""
    mounts = fs.v1_mounts()
    own = fs.own_cgroups()
    out = {}
    for sub, (mnt, root) in mounts.items():
        base = own.get(sub, root)
        out[sub] = os.path.normpath(os.path.join(mnt, os.path.relpath(base, root)))
    return out


def _thaw_all(prefix):
    for base in set(_bases().values()):
        for d, _subdirs, files in os.walk(os.path.join(base, prefix)):
            if "freezer.state" in files:
                try:
                    fs.write_file("freezer", d, "freezer.state", "THAWED")
                except PyruncError:
                    pass


def _sweep(prefix):
    """Kill what runs in <base>/<prefix> (only our random prefix: processes the
    test started and their children), then rmdir it all, bottom-up."""
    tops = [os.path.join(b, prefix) for b in set(_bases().values())]
    tops = [t for t in tops if os.path.isdir(t)]
    _thaw_all(prefix)
    for t in tops:
        for pid in fs.read_procs(t):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 2
    while tops and time.monotonic() < deadline:
        for t in tops:
            for d, _subdirs, _files in os.walk(t, topdown=False):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        tops = [t for t in tops if os.path.exists(t)]
        if tops:
            time.sleep(0.01)


class Env:
    def __init__(self, prefix, tmp_path):
        self.prefix = prefix
        self.tmp = tmp_path
        self.procs = []
        self.managers = []

    def manager(self, sub="ctr", **kw):
        m = new_manager("ctr-id", f"{self.prefix}/{sub}", **kw)
        self.managers.append(m)
        return m

    def spawn(self, *args, **kw):
        """A process that waits for a line on stdin before doing anything."""
        p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, **kw)
        self.procs.append(p)
        return p

    def py(self, code):
        return self.spawn(sys.executable, "-I", "-S", "-c",
                          "import sys\nsys.stdin.readline()\n" + code)

    def cleanup(self):
        _thaw_all(self.prefix)  # frozen tasks cannot die
        for m in self.managers:  # also grandchildren the test's processes started
            for pid in m.pids():
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
            for f in (p.stdin, p.stdout, p.stderr):
                if f:
                    f.close()
        for m in self.managers:
            try:
                m.destroy()
            except PyruncError:
                pass
        _sweep(self.prefix)


@pytest.fixture
def env(tmp_path):
    e = Env(f"pyrunc-test-{uuid.uuid4().hex[:12]}", tmp_path)
    try:
        yield e
    finally:
        e.cleanup()
        leftovers = [os.path.join(b, e.prefix) for b in set(_bases().values())
                     if os.path.exists(os.path.join(b, e.prefix))]
        assert not leftovers, f"cgroups left behind: {leftovers}"


def go(p):
    p.stdin.write(b"go\n")
    p.stdin.flush()


def rd(path, name):
    with open(os.path.join(path, name)) as f:
        return f.read().strip()


# --------------------------------------------------------------------------- paths


MOUNTINFO = """\
30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
32 30 0:28 /outer /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
34 30 0:30 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
35 30 0:31 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids,clone_children
"""
SELF_CGROUP = """\
5:pids:/
4:name=systemd:/user/1
3:memory:/outer/mine
2:cpu,cpuacct:/a
0::/
"""


def test_paths_relative_absolute_default():
    m = V1("cid", "sub/ctr", mountinfo=MOUNTINFO, self_cgroup=SELF_CGROUP)
    assert m.paths == {
        "memory": "/sys/fs/cgroup/memory/mine/sub/ctr",  # mount root /outer stripped
        "cpu": "/sys/fs/cgroup/cpu,cpuacct/a/sub/ctr",
        "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/a/sub/ctr",
        "pids": "/sys/fs/cgroup/pids/sub/ctr",
        "name=systemd": "/sys/fs/cgroup/systemd/user/1/sub/ctr",
        "": "/sys/fs/cgroup/unified/sub/ctr",
    }
    m = V1("cid", "/abs/../x", mountinfo=MOUNTINFO, self_cgroup=SELF_CGROUP)
    assert m.paths["cpu"] == "/sys/fs/cgroup/cpu,cpuacct/x"
    assert m.paths["pids"] == "/sys/fs/cgroup/pids/x"
    # absent or empty cgroupsPath: <own cgroup>/<container id>, like runc
    for cp in (None, ""):
        m = V1("cid", cp, mountinfo=MOUNTINFO, self_cgroup=SELF_CGROUP)
        assert m.paths["pids"] == "/sys/fs/cgroup/pids/cid"
        assert m.paths["memory"] == "/sys/fs/cgroup/memory/mine/cid"
    # a relative path cannot climb out of the own cgroup
    m = V1("cid", "../../../etc", mountinfo=MOUNTINFO, self_cgroup=SELF_CGROUP)
    assert m.paths["cpu"] == "/sys/fs/cgroup/cpu,cpuacct/a/etc"


def test_paths_on_this_host(env):
    m = env.manager()
    bases = _bases()
    for sub, p in m.paths.items():
        assert p == os.path.join(bases[sub], env.prefix, "ctr")
    assert "memory" in m.paths and "devices" in m.paths and "freezer" in m.paths


# ------------------------------------------------------------ create/apply/limits


def test_create_apply_set_and_read_back(env):
    m = env.manager()
    m.create()
    for p in set(m.paths.values()):
        assert os.path.isdir(p)
    # cpuset: cpus/mems copied into every new directory
    cs = m.paths["cpuset"]
    assert rd(cs, "cpuset.cpus") and rd(cs, "cpuset.mems")
    assert rd(os.path.dirname(cs), "cpuset.cpus")

    res = {
        "memory": {"limit": 64 << 20, "swap": 96 << 20, "reservation": 32 << 20,
                   "swappiness": 10},
        "pids": {"limit": 50},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
    }
    if os.path.exists(os.path.join(m.paths["cpu"], "cpu.cfs_burst_us")):
        res["cpu"]["burst"] = 10000
    m.set(res)
    p = env.spawn("sleep", "30")
    m.apply(p.pid)

    mem = m.paths["memory"]
    assert int(rd(mem, "memory.limit_in_bytes")) == 64 << 20
    assert int(rd(mem, "memory.memsw.limit_in_bytes")) == 96 << 20
    assert int(rd(mem, "memory.soft_limit_in_bytes")) == 32 << 20
    assert rd(mem, "memory.swappiness") == "10"
    assert rd(m.paths["pids"], "pids.max") == "50"
    cpu = m.paths["cpu"]
    assert rd(cpu, "cpu.shares") == "512"
    assert rd(cpu, "cpu.cfs_quota_us") == "50000"
    assert rd(cpu, "cpu.cfs_period_us") == "100000"
    if "burst" in res["cpu"]:
        assert rd(cpu, "cpu.cfs_burst_us") == "10000"
    assert rd(cs, "cpuset.cpus") == "0" and rd(cs, "cpuset.mems") == "0"

    for sub, path in m.paths.items():
        assert str(p.pid) in rd(path, "cgroup.procs").split(), sub
    assert m.pids() == [p.pid]
    assert m.exists()

    # update: lowering memory and swap together needs memory first, raising
    # needs swap first (runc's ordering); both must work
    m.set({"memory": {"limit": 32 << 20, "swap": 48 << 20}})
    assert int(rd(mem, "memory.limit_in_bytes")) == 32 << 20
    m.set({"memory": {"limit": 128 << 20, "swap": 256 << 20}})
    assert int(rd(mem, "memory.memsw.limit_in_bytes")) == 256 << 20
    m.set({"memory": {"limit": -1}})  # -1 alone: memory and swap unlimited
    assert int(rd(mem, "memory.memsw.limit_in_bytes")) > 1 << 60
    # pids -1/0 -> max; a smaller period with a quota (runc's retry path)
    m.set({"pids": {"limit": -1}, "cpu": {"quota": 20000, "period": 50000}})
    assert rd(m.paths["pids"], "pids.max") == "max"
    assert rd(cpu, "cpu.cfs_period_us") == "50000"
    m.set({"pids": {"limit": 0}})
    assert rd(m.paths["pids"], "pids.max") == "max"


def test_pids_limit_enforced(env):
    m = env.manager()
    m.create()
    m.set({"pids": {"limit": 4}})
    sh = env.spawn("sh", "-c", "read x; for i in 1 2 3 4 5 6 7 8; do sleep 5 </dev/null >/dev/null 2>&1 & done; wait")
    m.apply(sh.pid)
    go(sh)
    _, err = sh.communicate(timeout=10)
    assert sh.returncode != 0
    assert b"fork" in err.lower()
    ev = fs.parse_flat_keyed(open(os.path.join(m.paths["pids"], "pids.events")).read())
    assert ev["max"] >= 1
    assert len(m.pids()) <= 4


def test_blkio_weight(env):
    m = env.manager()
    m.create()
    blk = m.paths.get("blkio")
    if not blk:
        pytest.skip("blkio not mounted")
    wf = next((f for f in ("blkio.weight", "blkio.bfq.weight")
               if os.path.exists(os.path.join(blk, f))), None)
    if wf is None:
        pytest.skip("kernel has no blkio weight (no CFQ/BFQ)")
    m.set({"blockIO": {"weight": 321}})
    assert rd(blk, wf).split()[-1] == "321"


DEV_OPEN = """
import os
try:
    os.close(os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK))
    print("ok")
except OSError as e:
    print(e.errno)
"""


def test_devices(env):
    m = env.manager()
    m.create()
    m.set({"devices": [{"allow": False, "access": "rwm"}]})
    lst = rd(m.paths["devices"], "devices.list").splitlines()
    # runc's default allowed devices, nothing else, in the order runc builds them
    # (config-linux.md: applied in the listed order; runc 1.1.5 writes them sorted)
    assert lst == ["c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm",
                   "c 1:5 rwm", "c 1:9 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm"]
    p = env.py(DEV_OPEN)
    m.apply(p.pid)
    go(p)
    assert p.communicate(timeout=10)[0].strip() == str(errno.EPERM).encode()

    # allow /dev/kmsg read-only: visible, and enforced
    rules = [{"allow": False, "access": "rwm"},
             {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}]
    m.set({"devices": rules})
    lst = rd(m.paths["devices"], "devices.list").splitlines()
    assert "c 1:11 r" in lst
    p = env.py(DEV_OPEN)
    m.apply(p.pid)
    go(p)
    assert p.communicate(timeout=10)[0].strip() == b"ok"

    # rules apply in order: a later deny removes access, defaults come last
    m.set({"devices": rules + [{"allow": False, "type": "c", "major": 1, "minor": 11,
                                 "access": "r"},
                                {"allow": False, "type": "c", "major": 1, "minor": 3,
                                 "access": "w"}]})
    lst = rd(m.paths["devices"], "devices.list").splitlines()
    assert "c 1:11 r" not in lst and "c 1:3 rwm" in lst  # the default re-allows null

    # a linux.devices entry for a default path drops that default rule (runc)
    m.set({"devices": [{"allow": False, "access": "rwm"}]},
          linux_devices=[{"path": "/dev/null", "type": "c", "major": 1, "minor": 3}])
    assert not any(x.startswith("c 1:3 ") for x in rd(m.paths["devices"], "devices.list").splitlines())

    # allow-all config
    m.set({"devices": [{"allow": True, "access": "rwm"}]})
    assert rd(m.paths["devices"], "devices.list") == "a *:* rwm"

    # cannot punch a hole in a wildcard rule (cgroup v1 would silently ignore it)
    with pytest.raises(PyruncError, match=r"^cgroup devices: .*wildcard"):
        m.set({"devices": [{"allow": False, "access": "rwm"},
                           {"allow": True, "type": "c", "access": "r"},
                           {"allow": False, "type": "c", "major": 1, "minor": 11, "access": "r"}]})
    with pytest.raises(PyruncError, match=r"^cgroup devices: rule 0: invalid device type \"u\""):
        m.set({"devices": [{"allow": True, "type": "u", "access": "r"}]})
    with pytest.raises(PyruncError, match=r"^cgroup devices: rule 0: device access cannot be empty"):
        m.set({"devices": [{"allow": True}]})


# --------------------------------------------------------------------------- freezer


COUNTER = """
import mmap, struct
f = open(sys.argv[1], "r+b")
m = mmap.mmap(f.fileno(), 8)
n = 0
while True:
    n += 1
    m[0:8] = struct.pack("Q", n)
"""


def test_freeze_thaw_busy_loop(env):
    path = env.tmp / "counter"
    path.write_bytes(b"\0" * 8)
    m = env.manager()
    m.create()
    p = env.spawn(sys.executable, "-I", "-S", "-c", "import sys\nsys.stdin.readline()\n" + COUNTER,
                  str(path))
    m.apply(p.pid)
    go(p)
    f = open(path, "rb")
    mm = mmap.mmap(f.fileno(), 8, prot=mmap.PROT_READ)

    def count():
        return struct.unpack("Q", mm[0:8])[0]

    try:
        deadline = time.monotonic() + 5
        while count() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert count() > 0
        assert not m.frozen()
        m.freeze()
        assert m.frozen()
        assert rd(m.paths["freezer"], "freezer.state") == "FROZEN"
        a = count()
        time.sleep(0.2)
        assert count() == a, "counter advanced while frozen"
        m.thaw()
        assert not m.frozen()
        time.sleep(0.2)
        assert count() > a, "counter did not advance after thaw"
    finally:
        mm.close()
        f.close()


# ----------------------------------------------------------------------------- stats


def test_stats_shape(env):
    m = env.manager()
    m.create()
    m.set({"memory": {"limit": 64 << 20}, "pids": {"limit": 20}})
    p = env.spawn("sh", "-c", "read x; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 30")
    m.apply(p.pid)
    go(p)
    time.sleep(0.2)
    s = m.stats()
    json.dumps(s)  # serialisable
    assert set(s) >= {"cpu", "memory", "pids", "blkio", "hugetlb"}
    assert set(s["cpu"]) == {"usage", "throttling"}
    assert s["cpu"]["usage"]["total"] > 0
    assert isinstance(s["cpu"]["usage"]["percpu"], list)
    assert "kernel" in s["cpu"]["usage"] and "user" in s["cpu"]["usage"]
    mem = s["memory"]
    assert mem["usage"]["limit"] == 64 << 20 and mem["usage"]["usage"] > 0
    assert "failcnt" in mem["usage"]
    for k in ("swap", "kernel", "kernelTCP"):
        assert set(mem[k]) >= {"limit", "failcnt"}
    assert isinstance(mem["raw"], dict) and "rss" in mem["raw"]
    assert s["pids"]["limit"] == 20 and s["pids"]["current"] in (1, 2)
    assert isinstance(s["blkio"], dict)
    assert isinstance(s["hugetlb"], dict)
    assert s["cpuset"]["cpus"]


# --------------------------------------------------------------------------- destroy


def test_destroy_removes_exactly_what_create_made(env):
    # a pre-existing parent (made by the test) must stay
    bases = _bases()
    for b in set(bases.values()):
        os.mkdir(os.path.join(b, env.prefix))
    m = env.manager("a/b/ctr")
    m.create()
    mine = {os.path.join(b, env.prefix, x) for b in set(bases.values())
            for x in ("a", "a/b", "a/b/ctr")}
    assert set(m.created) == mine
    # state round trip (as stored in state.json)
    m2 = load_manager(json.loads(json.dumps(m.to_state())))
    assert m2.paths == m.paths and m2.created == m.created
    p = env.spawn("sleep", "30")
    m2.apply(p.pid)
    p.kill()  # destroy right away: retries while the process drains
    m2.destroy()
    for d in mine:
        assert not os.path.exists(d)
    for b in set(bases.values()):
        assert os.path.isdir(os.path.join(b, env.prefix))
    m2.destroy()  # idempotent


def test_destroy_leaves_shared_parent(env):
    a = env.manager("shared/a")
    b = env.manager("shared/b")
    a.create()
    b.create()
    assert any(d.endswith("/shared") for d in a.created)
    assert not any(d.endswith("/shared") for d in b.created)
    t = time.monotonic()
    a.destroy()  # "shared" still holds b: left alone, no error, no long retry
    assert time.monotonic() - t < 0.5
    assert all(os.path.isdir(p) for p in b.paths.values())
    assert not any(os.path.exists(p) for p in a.paths.values())
    b.destroy()


def test_destroy_removes_container_made_subcgroups(env):
    m = env.manager()
    m.create()
    for p in set(m.paths.values()):  # as a container with its own cgroupns would
        os.makedirs(os.path.join(p, "inner", "deeper"))
    m.destroy()
    assert not any(os.path.exists(p) for p in m.paths.values())


def test_set_skip_devices(env):
    m = env.manager()
    m.create()
    rules = [{"allow": False, "access": "rwm"},
             {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}]
    m.set({"devices": rules})
    m.set({"pids": {"limit": 7}}, skip_devices=True)  # an update that leaves devices alone
    assert "c 1:11 r" in rd(m.paths["devices"], "devices.list").splitlines()
    m.set({"pids": {"limit": 7}})  # without: back to the config's rules (none) + defaults
    assert "c 1:11 r" not in rd(m.paths["devices"], "devices.list").splitlines()


def test_destroy_busy_cgroup_errors(env):
    m = env.manager()
    m.create()
    p = env.spawn("sleep", "30")
    m.apply(p.pid)
    t = time.monotonic()
    with pytest.raises(PyruncError, match=r"^cgroup: removing .*: Device or resource busy"):
        m.destroy()
    assert time.monotonic() - t < 3
    assert m.created  # still remembered: destroy can be retried
    p.kill()
    p.wait()
    m.destroy()
    assert not m.created


def test_create_failure_rolls_back(env):
    m = env.manager("x/ctr")
    bases = _bases()
    # a test-made pids cgroup: its pids.max file is in the way of a mkdir
    os.mkdir(os.path.join(bases["pids"], env.prefix))
    m.paths["pids"] = os.path.join(bases["pids"], env.prefix, "pids.max", "ctr")
    with pytest.raises(PyruncError, match=r"^cgroup pids: creating .*/pids\.max/ctr: Not a directory$"):
        m.create()
    assert m.created == []
    for sub in m.paths:
        if sub != "pids":
            assert not os.path.exists(os.path.join(bases[sub], env.prefix)), sub


# ------------------------------------------------------------------------ bad values


def test_bad_values_give_clean_errors(env):
    m = env.manager()
    m.create()
    cases = [
        ({"memory": {"limit": "abc"}},
         r'^cgroup memory: writing "abc" to memory\.limit_in_bytes: Invalid argument$'),
        ({"cpu": {"quota": 1}},
         r'^cgroup cpu: writing "1" to cpu\.cfs_quota_us: Invalid argument$'),
        ({"cpu": {"cpus": "999"}},
         r'^cgroup cpuset: writing "999" to cpuset\.cpus: '
         r'(Invalid argument|Numerical result out of range)$'),
        ({"memory": {"swappiness": 101}}, r"^cgroup memory: invalid swappiness 101"),
        ({"hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}]},
         r"^cgroup hugetlb: cannot set limits: the controller is not available"),
        ({"network": {"classID": 1048577}},
         r"^cgroup net_cls: cannot set limits: the controller is not available"),
        ({"unified": {"memory.max": "1"}}, r"^cgroup: linux\.resources\.unified needs cgroup v2"),
    ]
    for res, pat in cases:
        if "hugetlb" in pat and "hugetlb" in m.paths:
            continue
        if "net_cls" in pat and "net_cls" in m.paths:
            continue
        with pytest.raises(PyruncError, match=pat) as ei:
            m.set(res)
        assert "\n" not in str(ei.value)


def test_memory_limit_below_usage(env):
    m = env.manager()
    m.create()
    p = env.py("b = b'x' * (24 << 20)\nprint('ready', flush=True)\nsys.stdin.readline()")
    m.apply(p.pid)
    go(p)
    assert p.stdout.readline().strip() == b"ready"
    with pytest.raises(PyruncError, match=r"^cgroup memory: (unable to set memory limit to 4194304 "
                       r"\(current usage: \d+, peak usage: \d+\)|rejecting memory limit)"):
        m.set({"memory": {"limit": 4 << 20, "swap": 4 << 20}})
    with pytest.raises(PyruncError, match=r"^cgroup memory: rejecting memory limit 4194304 below "
                       r"current usage \d+$"):
        m.set({"memory": {"limit": 4 << 20, "checkBeforeUpdate": True}})


def test_kernel_memory_ignored_with_warning(env, capfd):
    m = env.manager()
    m.create()
    capfd.readouterr()
    m.set({"memory": {"kernel": 1 << 30, "limit": 64 << 20}})
    err = capfd.readouterr().err
    assert "level=warning" in err and "memory.kernel is ignored" in err  # runc's log format
    assert int(rd(m.paths["memory"], "memory.limit_in_bytes")) == 64 << 20


# ------------------------------------------------------------------------------- OOM


def test_oom_eventfd(env):
    m = env.manager()
    m.create()
    m.set({"memory": {"limit": 48 << 20, "swap": 48 << 20}})
    efd = m.oom_eventfd()
    assert isinstance(efd, int)
    try:
        p = env.py("b = b'x' * (256 << 20)")
        m.apply(p.pid)
        go(p)
        p.wait(timeout=10)
        assert p.returncode == -9
        r, _, _ = select.select([efd], [], [], 5)
        assert r, "no OOM event"
        assert struct.unpack("Q", os.read(efd, 8))[0] >= 1
    finally:
        os.close(efd)
