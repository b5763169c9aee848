"""cgroup v1 per-controller setters, after runc's libcontainer/cgroups/fs.

Each controller has a "wants" predicate (does this resources object ask
anything of it?) and a setter ``(path, resources, manager)``; ``CONTROLLERS``
maps the controller name to the pair. ``V1Manager.set`` (v1.py) decides which
to run, in runc's order. ``rdma_line`` and ``check_pagesize`` are shared with
the v2 manager.
"""

import errno
import os

from pyrunc.cgroups import fs as u
from pyrunc.cgroups.fs import CgroupError, error, write_file
from pyrunc.cgroups.devices import Emulator, all_rules, ordered_writes


_warn = u.warn


def _num(controller, field, v):
    """An integer field: ints pass; strings are written verbatim (the kernel
    judges them); anything else is a config error."""
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise error(controller, f"invalid {field} {v!r}")
    return v


def _obj(r, key):
    v = r.get(key)
    return v if isinstance(v, dict) else {}



# ---------------------------------------------------------------------------
# "wants": does the resources object ask anything of this controller?


def _wants_cpuset(r):
    c = _obj(r, "cpu")
    return bool(c.get("cpus") or c.get("mems"))


def _wants_devices(r):
    return bool(r.get("devices"))


def _wants_memory(r):
    m = _obj(r, "memory")
    return bool(m.get("limit") or m.get("reservation") or m.get("swap") or m.get("kernelTCP")
                or m.get("disableOOMKiller") or m.get("useHierarchy") is not None
                or m.get("swappiness") not in (None, -1))


def _wants_cpu(r):
    c = _obj(r, "cpu")
    return bool(c.get("shares") or c.get("quota") or c.get("period") or c.get("realtimeRuntime")
                or c.get("realtimePeriod") or c.get("burst") is not None
                or c.get("idle") is not None)


def _wants_pids(r):
    return _obj(r, "pids").get("limit") is not None


def _wants_blkio(r):
    b = _obj(r, "blockIO")
    return bool(b.get("weight") or b.get("leafWeight") or b.get("weightDevice")
                or b.get("throttleReadBpsDevice") or b.get("throttleWriteBpsDevice")
                or b.get("throttleReadIOPSDevice") or b.get("throttleWriteIOPSDevice"))


def _wants_hugetlb(r):
    return bool(r.get("hugepageLimits"))


def _wants_net_cls(r):
    return bool(_obj(r, "network").get("classID"))


def _wants_net_prio(r):
    return bool(_obj(r, "network").get("priorities"))


def _wants_rdma(r):
    return bool(r.get("rdma"))


# ---------------------------------------------------------------------------
# setters: (path, resources, manager)


def _set_cpuset(path, r, m):
    c = _obj(r, "cpu")
    if c.get("cpus"):
        write_file("cpuset", path, "cpuset.cpus", c["cpus"])
    if c.get("mems"):
        write_file("cpuset", path, "cpuset.mems", c["mems"])


def _set_devices(path, r, m):
    rules = all_rules(r.get("devices"), m._linux_devices)
    target = Emulator.from_rules(rules)  # refuses what the kernel would not apply
    current = Emulator.from_list(u.read_file(path, "devices.list"))
    fresh = m.fresh and path in m.created
    if fresh or current.is_blacklist or current.default_allow != target.default_allow:
        # A cgroup create has just made (no process yet), or one that must be reset
        # anyway: the rules in their order. Else (update): the least disruptive writes.
        writes = ordered_writes(rules)
    else:
        writes = current.transition(target)
    for rule in writes:
        write_file("devices", path, "devices.allow" if rule.allow else "devices.deny",
                   rule.cgroup_string())
    after = Emulator.from_list(u.read_file(path, "devices.list"))
    if target.is_blacklist != after.is_blacklist or (not target.is_blacklist and after != target):
        raise error("devices", "resulting devices.list does not match the requested rules")


def _set_memory_limit(path, val):
    try:
        write_file("memory", path, "memory.limit_in_bytes", val)
    except CgroupError as e:
        if e.errno != errno.EBUSY:
            raise
        usage = u.read_uint(path, "memory.usage_in_bytes")
        peak = u.read_uint(path, "memory.max_usage_in_bytes")
        raise error("memory", f"unable to set memory limit to {val} "
                    f"(current usage: {usage}, peak usage: {peak})", e.errno) from None


def _set_memory(path, r, m):
    mem = _obj(r, "memory")
    limit = _num("memory", "limit", mem.get("limit") or 0)
    swap = _num("memory", "swap", mem.get("swap") or 0)
    reservation = _num("memory", "reservation", mem.get("reservation") or 0)
    swappiness = mem.get("swappiness")
    if swappiness is not None and swappiness != -1 and (
            isinstance(swappiness, bool) or not isinstance(swappiness, int)
            or not 0 <= swappiness <= 100):
        raise error("memory", f"invalid swappiness {swappiness!r} (valid range is 0-100)")

    if mem.get("checkBeforeUpdate") and isinstance(limit, int) and limit > 0:
        usage = u.read_uint(path, "memory.usage_in_bytes")
        if usage is not None and usage >= limit:
            raise error("memory", f"rejecting memory limit {limit} below current usage {usage}")

    # runc's setMemoryAndSwap: -1 memory without a swap value means both unlimited;
    # order the two writes so the kernel's memory <= memsw check never trips.
    if limit == -1 and swap == 0 and os.path.exists(os.path.join(path, "memory.memsw.limit_in_bytes")):
        swap = -1
    swap_first = False
    if limit != 0 and swap != 0:
        cur = u.read_uint(path, "memory.limit_in_bytes")
        if swap == -1 or (isinstance(swap, int) and cur is not None and cur < swap):
            swap_first = True
    if swap_first:
        write_file("memory", path, "memory.memsw.limit_in_bytes", swap)
        _set_memory_limit(path, limit)
    else:
        if limit != 0:
            _set_memory_limit(path, limit)
        if swap != 0:
            write_file("memory", path, "memory.memsw.limit_in_bytes", swap)

    if mem.get("kernel") is not None:
        _warn("memory.kernel is ignored: kernel memory limits are no longer supported by the kernel")
    ktcp = mem.get("kernelTCP")
    if ktcp is not None and ktcp != 0:
        try:
            write_file("memory", path, "memory.kmem.tcp.limit_in_bytes", _num("memory", "kernelTCP", ktcp))
        except CgroupError as e:
            if e.errno not in (errno.ENOENT, errno.EOPNOTSUPP):
                raise
            _warn("memory.kernelTCP is ignored: not supported by the kernel")

    if reservation != 0:
        write_file("memory", path, "memory.soft_limit_in_bytes", reservation)
    if mem.get("disableOOMKiller"):
        write_file("memory", path, "memory.oom_control", "1")
    if swappiness is not None and swappiness != -1:
        write_file("memory", path, "memory.swappiness", swappiness)
    uh = mem.get("useHierarchy")
    if uh is not None:
        try:
            write_file("memory", path, "memory.use_hierarchy", "1" if uh else "0")
        except CgroupError as e:
            if uh or e.errno not in (errno.EINVAL, errno.ENOENT):
                raise
            _warn("memory.useHierarchy=false is ignored: the kernel always uses hierarchical accounting")


def _set_cpu_rt(path, c):
    if c.get("realtimePeriod"):
        write_file("cpu", path, "cpu.rt_period_us", _num("cpu", "realtimePeriod", c["realtimePeriod"]))
    if c.get("realtimeRuntime"):
        write_file("cpu", path, "cpu.rt_runtime_us", _num("cpu", "realtimeRuntime", c["realtimeRuntime"]))


def _set_cpu(path, r, m):
    c = _obj(r, "cpu")
    shares = c.get("shares")
    if shares:
        write_file("cpu", path, "cpu.shares", _num("cpu", "shares", shares))
        got = u.read_uint(path, "cpu.shares")
        if isinstance(shares, int) and got is not None and got != shares:
            raise error("cpu", f"the {'maximum' if shares > got else 'minimum'} "
                        f"allowed cpu-shares is {got} (asked for {shares})")
    quota = c.get("quota") or 0
    period = ""
    if c.get("period"):
        period = _num("cpu", "period", c["period"])
        try:
            write_file("cpu", path, "cpu.cfs_period_us", period)
            period = ""
        except CgroupError as e:
            # A smaller period can be rejected (EINVAL) while the old quota is in
            # place: retry after the quota is written.
            if e.errno != errno.EINVAL or not quota:
                raise
    burst = ""
    if c.get("burst") is not None:
        burst = _num("cpu", "burst", c["burst"])
        try:
            write_file("cpu", path, "cpu.cfs_burst_us", burst)
            burst = ""
        except CgroupError as e:
            if e.errno == errno.ENOENT and str(burst) == "0":
                burst = ""  # burst 0 on a kernel without it: nothing to do
            elif e.errno != errno.EINVAL or not quota:
                raise
    if quota:
        write_file("cpu", path, "cpu.cfs_quota_us", _num("cpu", "quota", quota))
        if period != "":
            write_file("cpu", path, "cpu.cfs_period_us", period)
        if burst != "":
            write_file("cpu", path, "cpu.cfs_burst_us", burst)
    if c.get("idle") is not None:
        write_file("cpu", path, "cpu.idle", _num("cpu", "idle", c["idle"]))
    _set_cpu_rt(path, c)


def _set_pids(path, r, m):
    limit = _obj(r, "pids").get("limit")
    if limit is None:
        return
    limit = _num("pids", "limit", limit)
    # -1 and 0 both mean "no limit" (runc <= 1.3 and crun semantics).
    if isinstance(limit, int) and limit <= 0:
        limit = "max"
    write_file("pids", path, "pids.max", limit)


def _dev(controller, field, d, *keys):
    if not isinstance(d, dict):
        raise error(controller, f"invalid {field} entry {d!r}")
    out = []
    for k in keys:
        v = d.get(k)
        if isinstance(v, bool) or not isinstance(v, int):
            raise error(controller, f"{field} entry needs an integer {k}, got {v!r}")
        out.append(v)
    return out


def _set_blkio(path, r, m):
    b = _obj(r, "blockIO")
    if os.path.exists(os.path.join(path, "blkio.weight")):
        wfile, wdfile = "blkio.weight", "blkio.weight_device"
    else:
        wfile, wdfile = "blkio.bfq.weight", "blkio.bfq.weight_device"
    if b.get("weight"):
        write_file("blkio", path, wfile, _num("blkio", "weight", b["weight"]))
    if b.get("leafWeight"):
        write_file("blkio", path, "blkio.leaf_weight", _num("blkio", "leafWeight", b["leafWeight"]))
    for wd in b.get("weightDevice") or ():
        ma, mi = _dev("blkio", "weightDevice", wd, "major", "minor")
        if wd.get("weight"):
            write_file("blkio", path, wdfile, f"{ma}:{mi} {wd['weight']}")
        if wd.get("leafWeight"):
            write_file("blkio", path, "blkio.leaf_weight_device", f"{ma}:{mi} {wd['leafWeight']}")
    for key, fname in (("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
                       ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
                       ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
                       ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device")):
        for td in b.get(key) or ():
            ma, mi, rate = _dev("blkio", key, td, "major", "minor", "rate")
            write_file("blkio", path, fname, f"{ma}:{mi} {rate}")


def check_pagesize(controller, ps):
    sizes = u.hugepage_sizes()
    if ps not in sizes:
        raise error(controller, f'invalid hugepage size "{ps}" (this host has: '
                    f'{", ".join(sizes) or "none"})')


def _set_hugetlb(path, r, m):
    skip_rsvd = False
    for i, h in enumerate(r.get("hugepageLimits") or ()):
        if not isinstance(h, dict):
            raise error("hugetlb", f"invalid hugepageLimits entry {h!r}")
        ps = h.get("pageSize")
        check_pagesize("hugetlb", ps)
        val = _num("hugetlb", "limit", h.get("limit"))
        write_file("hugetlb", path, f"hugetlb.{ps}.limit_in_bytes", val)
        if skip_rsvd:
            continue
        try:
            write_file("hugetlb", path, f"hugetlb.{ps}.rsvd.limit_in_bytes", val)
        except CgroupError as e:
            if e.errno != errno.ENOENT:
                raise
            skip_rsvd = True


def _set_net_cls(path, r, m):
    cid = _obj(r, "network").get("classID")
    if cid:
        write_file("net_cls", path, "net_cls.classid", _num("net_cls", "classID", cid))


def _set_net_prio(path, r, m):
    for p in _obj(r, "network").get("priorities") or ():
        if not isinstance(p, dict) or not p.get("name"):
            raise error("net_prio", f"invalid priorities entry {p!r}")
        write_file("net_prio", path, "net_prio.ifpriomap",
                   f"{p['name']} {_num('net_prio', 'priority', p.get('priority', 0))}")


def rdma_line(dev, lim):
    if not isinstance(lim, dict):
        raise error("rdma", f"invalid limits for device {dev}: {lim!r}")
    s = dev
    if lim.get("hcaHandles") is not None:
        s += f" hca_handle={_num('rdma', 'hcaHandles', lim['hcaHandles'])}"
    if lim.get("hcaObjects") is not None:
        s += f" hca_object={_num('rdma', 'hcaObjects', lim['hcaObjects'])}"
    return s


def _set_rdma(path, r, m):
    for dev, lim in (r.get("rdma") or {}).items():
        write_file("rdma", path, "rdma.max", rdma_line(dev, lim))


# name -> (wants, setter); V1Manager.set applies them in v1.ORDER.
CONTROLLERS = {
    "cpuset": (_wants_cpuset, _set_cpuset),
    "devices": (_wants_devices, _set_devices),
    "memory": (_wants_memory, _set_memory),
    "cpu": (_wants_cpu, _set_cpu),
    "pids": (_wants_pids, _set_pids),
    "blkio": (_wants_blkio, _set_blkio),
    "hugetlb": (_wants_hugetlb, _set_hugetlb),
    "net_cls": (_wants_net_cls, _set_net_cls),
    "net_prio": (_wants_net_prio, _set_net_prio),
    "rdma": (_wants_rdma, _set_rdma),
}
