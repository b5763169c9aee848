"""cgroup v2 limits: V2Manager.set() (runc's fs2.Set), each controller's files, and
runc's conversions (swap_to_v2, numToStr). A mixin of V2Manager (manager.py: its
directory, lifecycle, freezer and stats); self.path is the container's cgroup.
"""
import errno
import os

from pyrunc.cgroups import fs as u
from pyrunc.cgroups.fs import CgroupError, error, write_file
from pyrunc.errors import PyruncError
from pyrunc.cgroups.devices import target_emulator

# runc 1.1 warns about kernel memory only; the other values with no v2 file it ignores
# silently (a warning line would also break a failed command's one-line error).
_warn = u.warn
_note = u.note


def _obj(r, key):
    v = r.get(key)
    return v if isinstance(v, dict) else {}


def _int(controller, field, v):
    if isinstance(v, bool) or not isinstance(v, int):
        raise error(controller, f"invalid {field} {v!r} (want an integer)")
    return v


def _num_str(v):
    """runc's numToStr: 0 -> unset (None), -1 -> "max"."""
    if v == 0:
        return None
    if v == -1:
        return "max"
    return str(v)


def swap_to_v2(swap, memory):
    """runc's ConvertMemorySwapToCgroupV2Value: v1 memory+swap -> v2 swap only."""
    if memory == -1 and swap == 0:
        return -1
    if swap in (-1, 0):
        return swap
    if memory in (0, -1):
        raise error("memory", "unable to set swap limit without memory limit")
    if memory < 0:
        raise error("memory", f"invalid memory value: {memory}")
    if swap < memory:
        raise error("memory", f"memory+swap limit ({swap}) should be >= memory limit ({memory})")
    return swap - memory


class V2Resources:
    """linux.resources on cgroup v2 (set() and the per-controller writers)."""

    def _controllers(self):
        s = u.try_read(self.path, "cgroup.controllers")
        return set((s or "").split())

    def set(self, resources, *, linux_devices=None, skip_devices=False):
        r = resources or {}
        if not isinstance(r, dict):
            raise PyruncError("cgroup: linux.resources must be an object")
        p = self.path
        avail = self._controllers()

        def need(ctrl, asked):
            if asked and ctrl not in avail:
                raise error(ctrl, "cannot set limits: the controller is not available in "
                            f"{p} (not enabled in the parent's cgroup.subtree_control)")
            return asked

        net = _obj(r, "network")
        if net.get("classID") or net.get("priorities"):
            raise error("net_cls" if net.get("classID") else "net_prio",
                        "cannot set limits: there is no such controller on cgroup v2")
        cpu = _obj(r, "cpu")
        if cpu.get("realtimeRuntime") or cpu.get("realtimePeriod"):
            raise error("cpu", "realtimeRuntime/realtimePeriod are not supported on cgroup v2")
        # The rules are checked (and the program made) before anything is written.
        program = None if skip_devices else self._device_program(r, linux_devices)

        # runc's fs2.Set order: pids, memory, io, cpu, devices, cpuset, hugetlb,
        # rdma, unified.
        pl = _obj(r, "pids").get("limit")
        if need("pids", pl is not None):
            _int("pids", "limit", pl)
            write_file("pids", p, "pids.max", "max" if pl <= 0 else str(pl))
        self._set_memory(r, need)
        self._set_io(r, need)
        self._set_cpu(r, need)
        if program is not None:
            self._set_devices(program)
        if need("cpuset", bool(cpu.get("cpus") or cpu.get("mems"))):
            if cpu.get("cpus"):
                write_file("cpuset", p, "cpuset.cpus", cpu["cpus"])
            if cpu.get("mems"):
                write_file("cpuset", p, "cpuset.mems", cpu["mems"])
        self._set_hugetlb(r, need)
        if need("rdma", bool(r.get("rdma"))):
            from pyrunc.cgroups.v1.controllers import rdma_line

            for dev, lim in r["rdma"].items():
                write_file("rdma", p, "rdma.max", rdma_line(dev, lim))
        self._set_unified(r.get("unified"), avail)

    def _set_memory(self, r, need):
        m = _obj(r, "memory")
        p = self.path
        if m.get("kernel") is not None or m.get("kernelTCP") is not None:
            _warn("memory.kernel/kernelTCP are ignored: no kernel memory limits on cgroup v2")
        if m.get("swappiness") not in (None, -1):
            _note("memory.swappiness is ignored on cgroup v2")
        if m.get("disableOOMKiller"):
            _note("memory.disableOOMKiller is ignored on cgroup v2")
        if m.get("useHierarchy") is False:
            _note("memory.useHierarchy=false is ignored: cgroup v2 is always hierarchical")
        limit = _int("memory", "limit", m.get("limit") or 0)
        swap = _int("memory", "swap", m.get("swap") or 0)
        low = _int("memory", "reservation", m.get("reservation") or 0)
        if not need("memory", bool(limit or swap or low)):
            return
        if m.get("checkBeforeUpdate") and limit > 0:
            usage = u.read_uint(p, "memory.current")
            if usage is not None and usage >= limit:
                raise error("memory", f"rejecting memory limit {limit} below current usage {usage}")
        v2swap = swap_to_v2(swap, limit)
        s = _num_str(v2swap)
        if s is None and v2swap == 0 and swap > 0:
            s = "0"  # memory == memory+swap: no swap at all
        if s is not None:
            try:
                write_file("memory", p, "memory.swap.max", s)
            except CgroupError as e:
                # No swap accounting: setting "max" or "0" is then a no-op.
                if not (e.errno == errno.ENOENT and s in ("max", "0")):
                    raise
        s = _num_str(limit)
        if s is not None:
            write_file("memory", p, "memory.max", s)
        s = _num_str(low)
        if s is not None:
            write_file("memory", p, "memory.low", s)

    def _set_io(self, r, need):
        b = _obj(r, "blockIO")
        p = self.path
        if b.get("leafWeight") or any(isinstance(w, dict) and w.get("leafWeight")
                                      for w in b.get("weightDevice") or ()):
            _note("blockIO leafWeight is ignored on cgroup v2")
        throttles = (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                     ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops"))
        wdevs = [w for w in b.get("weightDevice") or () if isinstance(w, dict) and w.get("weight")]
        asked = bool(b.get("weight") or wdevs or any(b.get(k) for k, _ in throttles))
        if not need("io", asked):
            return
        bfq_now = u.try_read(p, "io.bfq.weight")
        bfq = bfq_now is not None
        # Per-device BFQ weights (kernel >= 5.4): io.bfq.weight then reads
        # "default N" lines rather than a single number.
        per_dev = bfq and not bfq_now.strip().isdigit()
        if b.get("weight"):
            w = _int("io", "weight", b["weight"])
            if bfq:
                write_file("io", p, "io.bfq.weight", str(w))
            else:
                write_file("io", p, "io.weight", str(u.blkio_weight_to_io_weight(w)))
        if wdevs:
            if not per_dev:
                _note("blockIO weightDevice is ignored: no per-device BFQ weights on this kernel")
            else:
                for w in wdevs:
                    ma = _int("io", "weightDevice major", w.get("major"))
                    mi = _int("io", "weightDevice minor", w.get("minor"))
                    write_file("io", p, "io.bfq.weight", f"{ma}:{mi} {w['weight']}")
        for key, name in throttles:
            for td in b.get(key) or ():
                if not isinstance(td, dict):
                    raise error("io", f"invalid {key} entry {td!r}")
                ma = _int("io", f"{key} major", td.get("major"))
                mi = _int("io", f"{key} minor", td.get("minor"))
                rate = _int("io", f"{key} rate", td.get("rate"))
                write_file("io", p, "io.max", f"{ma}:{mi} {name}={rate}")

    def _set_cpu(self, r, need):
        c = _obj(r, "cpu")
        p = self.path
        shares = c.get("shares")
        quota = c.get("quota") or 0
        period = c.get("period") or 0
        asked = bool(shares or quota or period or c.get("idle") is not None
                     or c.get("burst") is not None)
        if not need("cpu", asked):
            return
        if shares:
            weight = u.cpu_shares_to_weight(_int("cpu", "shares", shares))
            write_file("cpu", p, "cpu.weight", str(weight))
        if c.get("idle") is not None:
            write_file("cpu", p, "cpu.idle", str(_int("cpu", "idle", c["idle"])))
        burst = None
        if c.get("burst") is not None:
            burst = str(_int("cpu", "burst", c["burst"]))
            try:
                write_file("cpu", p, "cpu.max.burst", burst)
                burst = None
            except CgroupError as e:
                # A burst larger than the old quota allows: retry after cpu.max.
                if e.errno != errno.EINVAL or not quota:
                    raise
        if quota or period:
            q = "max" if _int("cpu", "quota", quota) <= 0 else str(quota)
            per = _int("cpu", "period", period) or 100000
            write_file("cpu", p, "cpu.max", f"{q} {per}")
            if burst is not None:
                write_file("cpu", p, "cpu.max.burst", burst)

    @staticmethod
    def _device_program(r, linux_devices):
        from pyrunc.cgroups.v2.ebpf import device_filter

        return device_filter(target_emulator(r.get("devices"), linux_devices))

    def _set_devices(self, program):
        from pyrunc.cgroups.v2 import ebpf

        try:
            ebpf.load_attach(self.path, program)
        except OSError as e:
            # runc (canSkipEBPFError): in a user namespace bpf(2) is refused, and the
            # container cannot mknod or reach host devices anyway.
            if ebpf.in_user_namespace():
                return
            raise error("devices", f"attaching the device program to {self.path}: {e.strerror}",
                        e.errno) from None

    def _set_hugetlb(self, r, need):
        limits = r.get("hugepageLimits") or ()
        if not need("hugetlb", bool(limits)):
            return
        from pyrunc.cgroups.v1.controllers import check_pagesize

        skip_rsvd = False
        for h in limits:
            if not isinstance(h, dict):
                raise error("hugetlb", f"invalid hugepageLimits entry {h!r}")
            ps = h.get("pageSize")
            check_pagesize("hugetlb", ps)
            val = str(_int("hugetlb", "limit", h.get("limit")))
            write_file("hugetlb", self.path, f"hugetlb.{ps}.max", val)
            if skip_rsvd:
                continue
            try:
                write_file("hugetlb", self.path, f"hugetlb.{ps}.rsvd.max", val)
            except CgroupError as e:
                if e.errno != errno.ENOENT:
                    raise
                skip_rsvd = True

    def _set_unified(self, unified, avail):
        if not unified:
            return
        if not isinstance(unified, dict):
            raise PyruncError("cgroup: linux.resources.unified must be an object")
        for k, v in unified.items():
            if "/" in k or k in ("", ".", ".."):
                raise error("unified", f'resource "{k}" must be a file name (no slashes)')
            ctrl, dot, _ = k.partition(".")
            if not dot:
                raise error("unified", f'resource "{k}" must be in the form CONTROLLER.PARAMETER')
            if ctrl != "cgroup" and ctrl not in avail and not os.path.exists(os.path.join(self.path, k)):
                raise error(ctrl, f'cannot set unified resource "{k}": controller "{ctrl}" '
                            "is not available")
            for line in str(v).split("\n"):
                if line:
                    write_file(ctrl, self.path, k, line)
