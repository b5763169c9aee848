"""cgroup v1 manager (cgroupfs driver): one directory per hierarchy.

Controller semantics and file names follow runc's libcontainer/cgroups/fs.
Controllers are applied in runc's order; each has a "wants" predicate (does
this resources object ask anything of it?) and a setter, in ``_CONTROLLERS``.
"""

import errno
import os
import time

from pyrunc.cgroups import Manager
from pyrunc.cgroups import _util as u
from pyrunc.cgroups._util import CgroupError, error, write_file
from pyrunc.errors import PyruncError

# runc's fs.subsystems order (Set is applied in this order).
ORDER = ("cpuset", "devices", "memory", "cpu", "cpuacct", "pids", "blkio", "hugetlb",
         "net_cls", "net_prio", "perf_event", "freezer", "rdma", "name=systemd", "misc",
         "")  # "": the v2 hierarchy of a hybrid host (runc joins it too)

_CLOCK_TICKS = 100  # runc's system.GetClockTicks()


def _label(sub):
    return sub or "unified"


def _warn(msg):
    import logging

    logging.getLogger("pyrunc").warning(msg)


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
    from pyrunc.cgroups.devices import Emulator, target_emulator

    target = target_emulator(r.get("devices"), m._linux_devices)
    current = Emulator.from_list(u.read_file(path, "devices.list"))
    for rule in current.transition(target):
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


def _check_pagesize(controller, ps):
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
        _check_pagesize("hugetlb", ps)
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


# name -> (wants, setter)
_CONTROLLERS = {
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


# ---------------------------------------------------------------------------


class V1Manager(Manager):
    cgroup_version = 1

    def __init__(self, container_id, cgroups_path, *, rootless=False, mountinfo=None,
                 self_cgroup=None, _state=None):
        """``mountinfo``/``self_cgroup``: text of /proc/self/{mountinfo,cgroup}
        (injectable for tests; read from /proc when None)."""
        self.container_id = container_id
        self.cgroups_path = cgroups_path
        self.rootless = rootless
        self.created = []
        self._linux_devices = None
        if _state is not None:
            self.paths = dict(_state["paths"])
            self.created = list(_state.get("created") or ())
            self._mountpoints = dict(_state.get("mountpoints") or {})
            return
        inner = u.clean_path(cgroups_path or "") or u.clean_path(container_id or "")
        if not inner or inner == "/":
            raise PyruncError(f"cgroup: invalid cgroups path {cgroups_path!r}")
        mounts = u.v1_mounts(mountinfo)
        own = None
        self.paths = {}
        self._mountpoints = {}
        for sub in ORDER:
            if sub not in mounts:
                continue
            mnt, root = mounts[sub]
            if inner.startswith("/"):
                p = os.path.join(mnt, inner.lstrip("/"))
            else:
                if own is None:
                    own = u.own_cgroups(self_cgroup)
                base = own.get(sub, root)
                inside = root == "/" or base == root or base.startswith(root.rstrip("/") + "/")
                rel = os.path.relpath(base, root) if inside else "."
                p = os.path.normpath(os.path.join(mnt, rel, inner))
            self.paths[sub] = p
            self._mountpoints[sub] = mnt

    # -- state ---------------------------------------------------------------

    def to_state(self):
        return {
            "cgroup_version": 1,
            "driver": "cgroupfs",
            "container_id": self.container_id,
            "cgroups_path": self.cgroups_path,
            "rootless": self.rootless,
            "paths": dict(self.paths),
            "mountpoints": dict(self._mountpoints),
            "created": list(self.created),
        }

    @classmethod
    def from_state(cls, saved):
        try:
            return cls(saved.get("container_id"), saved.get("cgroups_path"),
                       rootless=bool(saved.get("rootless")), _state=saved)
        except (KeyError, TypeError, AttributeError):
            raise PyruncError("cgroup: invalid saved cgroup state") from None

    # -- create / apply / destroy ----------------------------------------------

    def _unique(self):
        """(controller, path) with co-mounted hierarchies (same path) once."""
        seen = set()
        for sub in ORDER:
            p = self.paths.get(sub)
            if p is None or p in seen:
                continue
            seen.add(p)
            yield sub, p

    def create(self):
        try:
            for sub, path in list(self._unique()):
                mnt = self._mountpoints.get(sub, "/")
                try:
                    self._mkdir_p(sub, mnt, path)
                except CgroupError as e:
                    # The v2 hierarchy of a hybrid host holds no controllers
                    # here: joining it is best effort. Rootless: skip what we
                    # may not create (set() fails if limits need it).
                    if sub == "" or (self.rootless and e.errno in (errno.EACCES, errno.EPERM, errno.EROFS)):
                        for k in [k for k, v in self.paths.items() if v == path]:
                            del self.paths[k]
                        continue
                    raise
        except BaseException:
            u.rmdir_created(self.created, (), timeout=0)
            self.created = []
            raise

    def _mkdir_p(self, sub, mnt, path):
        rel = os.path.relpath(path, mnt)
        if rel.startswith(".."):
            raise error(_label(sub), f"cgroup path {path} is outside the hierarchy {mnt}")
        cur = mnt
        parts = [] if rel == "." else rel.split("/")
        for comp in parts:
            parent, cur = cur, os.path.join(cur, comp)
            try:
                os.mkdir(cur, 0o755)
                self.created.append(cur)
            except FileExistsError:
                pass
            except OSError as e:
                raise error(_label(sub), f"creating {cur}: {os.strerror(e.errno)}", e.errno) from None
            if sub == "cpuset":
                # As runc's cpusetEnsureParent: a cpuset cgroup with empty
                # cpus/mems cannot hold tasks, so fill new directories (and an
                # existing one only where it is still empty) from the parent.
                self._cpuset_copy(cur, parent)

    @staticmethod
    def _cpuset_copy(cur, parent):
        for f in ("cpuset.cpus", "cpuset.mems"):
            v = u.try_read(cur, f)
            if v is not None and v.strip() == "":
                pv = (u.try_read(parent, f) or "").strip()
                if pv:
                    write_file("cpuset", cur, f, pv)

    def apply(self, pid):
        for sub, path in self._unique():
            try:
                u.write_procs(_label(sub), path, pid)
            except CgroupError as e:
                if sub == "" or (self.rootless and e.errno in (errno.EACCES, errno.EPERM, errno.ENOENT, errno.EROFS)):
                    continue
                raise

    def destroy(self):
        if not self.created:
            return
        left, err = u.rmdir_created(self.created, set(self.paths.values()))
        self.created = [d for d in self.created if d in set(left)]
        if left:
            raise PyruncError(f"cgroup: {err}")

    def exists(self):
        p = self._primary()
        return p is not None and os.path.isdir(p)

    # -- resources -------------------------------------------------------------

    def set(self, resources, *, linux_devices=None, skip_devices=False):
        r = resources or {}
        if not isinstance(r, dict):
            raise PyruncError("cgroup: linux.resources must be an object")
        if r.get("unified"):
            raise PyruncError("cgroup: linux.resources.unified needs cgroup v2 (this host uses cgroup v1)")
        self._linux_devices = linux_devices
        todo = []
        for sub in ORDER:
            ent = _CONTROLLERS.get(sub)
            if ent is None:
                continue
            wants, setter = ent
            path = self.paths.get(sub)
            if path is None:
                if wants(r) and not (sub == "devices" and (self.rootless or skip_devices)):
                    raise error(sub, "cannot set limits: the controller is not available "
                                + ("(no permission to create the cgroup, rootless)" if self.rootless
                                   else "(not mounted on this cgroup v1 host)"))
                continue
            if (sub == "devices" and not skip_devices) or wants(r):
                todo.append((sub, path, setter))
        for sub, path, setter in todo:
            try:
                setter(path, r, self)
            except CgroupError:
                if self.rootless and sub == "devices":
                    continue
                raise

    # -- freezer ---------------------------------------------------------------

    def _freezer(self):
        p = self.paths.get("freezer")
        if p is None:
            raise error("freezer", "not available (not mounted on this host)")
        return p

    def freeze(self):
        p = self._freezer()
        try:
            # runc's loop: v1 freezing can get stuck in FREEZING while tasks keep
            # appearing; an occasional thaw + short sleep gets it unstuck.
            for i in range(1000):
                if i % 50 == 49:
                    write_file("freezer", p, "freezer.state", "THAWED")
                    time.sleep(0.01)
                write_file("freezer", p, "freezer.state", "FROZEN")
                if i % 25 == 24:
                    time.sleep(0.00001)
                st = u.read_file(p, "freezer.state").strip()
                if st == "FROZEN":
                    return
                if st != "FREEZING":
                    raise error("freezer", f"unexpected state {st} while freezing")
            raise error("freezer", "unable to freeze (stuck in FREEZING)")
        except BaseException:
            try:
                write_file("freezer", p, "freezer.state", "THAWED")
            except PyruncError:
                pass
            raise

    def thaw(self):
        p = self._freezer()
        write_file("freezer", p, "freezer.state", "THAWED")
        for _ in range(1000):
            st = u.read_file(p, "freezer.state").strip()
            if st == "THAWED":
                return
            time.sleep(0.001)
        raise error("freezer", f"unable to thaw (state {st})")

    def frozen(self):
        p = self.paths.get("freezer")
        if p is None:
            return False
        for _ in range(1000):
            st = u.try_read(p, "freezer.state")
            if st is None:
                return False
            st = st.strip()
            if st == "THAWED":
                return False
            if st == "FROZEN":
                # Frozen by itself, not only through a frozen ancestor.
                self_f = u.try_read(p, "freezer.self_freezing")
                return self_f is None or self_f.strip() == "1"
            time.sleep(0.001)  # FREEZING: wait for a stable state
        return False

    # -- pids ------------------------------------------------------------------

    def _primary(self):
        for sub in ("devices", "freezer", "pids", "memory", "cpu", "cpuset", "name=systemd"):
            if sub in self.paths:
                return self.paths[sub]
        return next(iter(self.paths.values()), None)

    def pids(self):
        p = self._primary()
        if p is None:
            return []
        return sorted(set(u.read_procs(p)))

    # -- events ----------------------------------------------------------------

    def oom_eventfd(self):
        p = self.paths.get("memory")
        if p is None:
            return None
        efd = os.eventfd(0, os.EFD_CLOEXEC)
        try:
            cfd = os.open(os.path.join(p, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
            try:
                write_file("memory", p, "cgroup.event_control", f"{efd} {cfd}")
            finally:
                os.close(cfd)
        except OSError as e:
            os.close(efd)
            raise error("memory", f"registering an OOM eventfd: {os.strerror(e.errno)}") from None
        except BaseException:
            os.close(efd)
            raise
        return efd

    # -- stats -----------------------------------------------------------------

    def stats(self):
        from pyrunc.cgroups import stats as st

        out = {
            "cpu": st.v1_cpu(self.paths.get("cpu"), self.paths.get("cpuacct")),
            "cpuset": st.v1_cpuset(self.paths.get("cpuset")),
            "memory": st.v1_memory(self.paths.get("memory")),
            "pids": st.v1_pids(self.paths.get("pids")),
            "blkio": st.v1_blkio(self.paths.get("blkio")),
            "hugetlb": st.v1_hugetlb(self.paths.get("hugetlb")),
            # Not cgroup data, but part of runc's stats object: the caller may
            # fill them in.
            "intel_rdt": {},
            "network_interfaces": None,
        }
        return out
