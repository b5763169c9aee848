"""Cgroup statistics in the shape of runc's ``events --stats`` data
(runc types/events.go), Go's ``omitempty`` included: a zero number, an empty
list or map under an omitempty field is left out.

Each function takes a cgroup directory (None when the controller is not
available) and returns the JSON-ready object of one section.
"""

from pyrunc.cgroups import fs as u

_NS_PER_TICK = 1_000_000_000 // 100  # runc assumes USER_HZ = 100


def _oe(d):
    """Drop omitempty fields (given as keys ending in '?') that are empty."""
    out = {}
    for k, v in d.items():
        if k.endswith("?"):
            if v in (0, None, "") or (isinstance(v, (list, dict)) and not v):
                continue
            k = k[:-1]
        out[k] = v
    return out


def _u(path, name):
    v = u.read_uint(path, name) if path else None
    return v or 0


# --------------------------------------------------------------------------- cpu


def _cpu(total=0, percpu=None, pk=None, pu=None, kernel=0, user=0,
         periods=0, throttled=0, throttled_time=0):
    return {
        "usage": _oe({"total?": total, "percpu?": percpu, "percpu_kernel?": pk,
                      "percpu_user?": pu, "kernel": kernel, "user": user}),
        "throttling": _oe({"periods?": periods, "throttledPeriods?": throttled,
                           "throttledTime?": throttled_time}),
    }


def v1_cpu(cpu_path, cpuacct_path):
    kw = {}
    p = cpuacct_path
    if p:
        kw["total"] = _u(p, "cpuacct.usage")
        s = u.try_read(p, "cpuacct.usage_percpu")
        if s:
            kw["percpu"] = [int(x) for x in s.split()]
        s = u.try_read(p, "cpuacct.usage_all")
        if s:
            pk, pu = [], []
            for line in s.splitlines()[1:]:
                f = line.split()
                if len(f) == 3:
                    pu.append(int(f[1]))
                    pk.append(int(f[2]))
            kw["pk"], kw["pu"] = pk, pu
        s = u.try_read(p, "cpuacct.stat")
        if s:
            kv = u.parse_flat_keyed(s)
            kw["user"] = kv.get("user", 0) * _NS_PER_TICK
            kw["kernel"] = kv.get("system", 0) * _NS_PER_TICK
    if cpu_path:
        s = u.try_read(cpu_path, "cpu.stat")
        if s:
            kv = u.parse_flat_keyed(s)
            kw["periods"] = kv.get("nr_periods", 0)
            kw["throttled"] = kv.get("nr_throttled", 0)
            kw["throttled_time"] = kv.get("throttled_time", 0)
    return _cpu(**kw)


def v2_cpu(path):
    kv = u.parse_flat_keyed(u.try_read(path, "cpu.stat") or "") if path else {}
    return _cpu(total=kv.get("usage_usec", 0) * 1000, user=kv.get("user_usec", 0) * 1000,
                kernel=kv.get("system_usec", 0) * 1000, periods=kv.get("nr_periods", 0),
                throttled=kv.get("nr_throttled", 0),
                throttled_time=kv.get("throttled_usec", 0) * 1000)


# ------------------------------------------------------------------------ cpuset


def _cpuset(path, prefix):
    def lst(name):
        s = u.try_read(path, name) if path else None
        return u.parse_range_list(s) if s else []

    def num(name):
        s = u.try_read(path, prefix + name) if path else None
        try:
            return int(s.strip()) if s else 0
        except ValueError:
            return 0

    return _oe({
        "cpus?": lst(prefix + "cpus"),
        "cpu_exclusive": num("cpu_exclusive"),
        "mems?": lst(prefix + "mems"),
        "mem_hardwall": num("mem_hardwall"),
        "mem_exclusive": num("mem_exclusive"),
        "memory_migrate": num("memory_migrate"),
        "memory_spread_page": num("memory_spread_page"),
        "memory_spread_slab": num("memory_spread_slab"),
        "memory_pressure": num("memory_pressure"),
        "sched_load_balance": num("sched_load_balance"),
        "sched_relax_domain_level": num("sched_relax_domain_level"),
    })


def v1_cpuset(path):
    return _cpuset(path, "cpuset.")


def v2_cpuset(path):
    s = _cpuset(None, "cpuset.")
    if path:
        for k, f in (("cpus", "cpuset.cpus.effective"), ("mems", "cpuset.mems.effective")):
            v = u.try_read(path, f)
            if v and u.parse_range_list(v):
                s[k] = u.parse_range_list(v)
    return s


# ------------------------------------------------------------------------ memory


def _mem_entry(limit=0, usage=0, max_=0, failcnt=0):
    return _oe({"limit": limit, "usage?": usage, "max?": max_, "failcnt": failcnt})


def _memory(cache=0, usage=None, swap=None, kernel=None, kernel_tcp=None, raw=None):
    e = _mem_entry()
    return _oe({"cache?": cache, "usage": usage or e, "swap": swap or e,
                "kernel": kernel or e, "kernelTCP": kernel_tcp or e, "raw?": raw})


def _v1_mem_data(path, module, optional):
    usage = u.read_uint(path, module + ".usage_in_bytes")
    if usage is None and optional:
        return None
    return _mem_entry(limit=_u(path, module + ".limit_in_bytes"), usage=usage or 0,
                      max_=_u(path, module + ".max_usage_in_bytes"),
                      failcnt=_u(path, module + ".failcnt"))


def v1_memory(path):
    if not path:
        return _memory()
    raw = u.parse_flat_keyed(u.try_read(path, "memory.stat") or "")
    return _memory(cache=raw.get("cache", 0),
                   usage=_v1_mem_data(path, "memory", False),
                   swap=_v1_mem_data(path, "memory.memsw", True),
                   kernel=_v1_mem_data(path, "memory.kmem", True),
                   kernel_tcp=_v1_mem_data(path, "memory.kmem.tcp", True),
                   raw=raw)


def v2_memory(path):
    if not path:
        return _memory()
    raw = u.parse_flat_keyed(u.try_read(path, "memory.stat") or "")
    events = u.parse_flat_keyed(u.try_read(path, "memory.events") or "")
    usage = _mem_entry(limit=_u(path, "memory.max"), usage=_u(path, "memory.current"),
                       max_=_u(path, "memory.peak"), failcnt=events.get("max", 0))
    swap = None
    if u.read_uint(path, "memory.swap.current") is not None:
        # cgroup v1 reports swap as memory+swap: do the same (as runc does).
        s_lim = _u(path, "memory.swap.max")
        m_lim = usage["limit"]
        lim = s_lim if s_lim == u.MAX_UINT64 else min(s_lim + m_lim, u.MAX_UINT64)
        swap = _mem_entry(limit=lim, usage=_u(path, "memory.swap.current") + usage.get("usage", 0))
    return _memory(cache=raw.get("file", 0), usage=usage, swap=swap, raw=raw)


# -------------------------------------------------------------------------- pids


def _pids(path, current_file):
    if not path:
        return {}
    cur = u.read_uint(path, current_file)
    if cur is None:
        cur = len(u.read_procs(path))
    lim = _u(path, "pids.max")
    if lim == u.MAX_UINT64:
        lim = 0
    return _oe({"current?": cur, "limit?": lim})


def v1_pids(path):
    return _pids(path, "pids.current")


v2_pids = v1_pids


# ------------------------------------------------------------------------- blkio

_BLKIO_KEYS = ("ioServiceBytesRecursive", "ioServicedRecursive", "ioQueueRecursive",
               "ioServiceTimeRecursive", "ioWaitTimeRecursive", "ioMergedRecursive",
               "ioTimeRecursive", "sectorsRecursive")

_CFQ = (("sectors_recursive", "sectorsRecursive"),
        ("io_service_time_recursive", "ioServiceTimeRecursive"),
        ("io_wait_time_recursive", "ioWaitTimeRecursive"),
        ("io_merged_recursive", "ioMergedRecursive"),
        ("io_queued_recursive", "ioQueueRecursive"),
        ("time_recursive", "ioTimeRecursive"),
        ("io_serviced_recursive", "ioServicedRecursive"),
        ("io_service_bytes_recursive", "ioServiceBytesRecursive"))

# runc's order of file groups: the first group whose first file has data wins.
_BLKIO_GROUPS = (
    tuple(("blkio.bfq." + f, k) for f, k in _CFQ),
    (("blkio.bfq.io_serviced_recursive", "ioServicedRecursive"),
     ("blkio.bfq.io_service_bytes_recursive", "ioServiceBytesRecursive")),
    tuple(("blkio." + f, k) for f, k in _CFQ),
    (("blkio.throttle.io_serviced_recursive", "ioServicedRecursive"),
     ("blkio.throttle.io_service_bytes_recursive", "ioServiceBytesRecursive")),
    (("blkio.throttle.io_serviced", "ioServicedRecursive"),
     ("blkio.throttle.io_service_bytes", "ioServiceBytesRecursive")),
)


def _blkio_entry(major, minor, op, value):
    return _oe({"major?": major, "minor?": minor, "op?": op, "value?": value})


def _blkio_file(path, name):
    s = u.try_read(path, name)
    out = []
    for line in (s or "").splitlines():
        f = line.replace(":", " ").split()
        if len(f) < 3:
            continue  # "Total N"
        try:
            if len(f) == 4:
                out.append(_blkio_entry(int(f[0]), int(f[1]), f[2], int(f[3])))
            else:
                out.append(_blkio_entry(int(f[0]), int(f[1]), "", int(f[2])))
        except ValueError:
            continue
    return out


def v1_blkio(path):
    res = {}
    if path:
        for group in _BLKIO_GROUPS:
            done = False
            for i, (fname, key) in enumerate(group):
                entries = _blkio_file(path, fname)
                if not entries:
                    done = i > 0
                    break
                res[key] = entries
                if i == len(group) - 1:
                    done = True
            if done:
                break
    return {k: res[k] for k in _BLKIO_KEYS if res.get(k)}


def v2_blkio(path):
    sb, sv = [], []
    for line in ((u.try_read(path, "io.stat") or "") if path else "").splitlines():
        f = line.split()
        if not f or ":" not in f[0]:
            continue
        try:
            ma, mi = (int(x) for x in f[0].split(":"))
        except ValueError:
            continue
        for kv in f[1:]:
            k, _, v = kv.partition("=")
            try:
                v = int(v)
            except ValueError:
                continue
            op, table = {"rbytes": ("Read", sb), "wbytes": ("Write", sb), "dbytes": ("Discard", sb),
                         "rios": ("Read", sv), "wios": ("Write", sv),
                         "dios": ("Discard", sv)}.get(k, (None, None))
            if op:
                table.append(_blkio_entry(ma, mi, op, v))
    return _oe({"ioServiceBytesRecursive?": sb, "ioServicedRecursive?": sv})


# ----------------------------------------------------------------------- hugetlb


def v1_hugetlb(path):
    out = {}
    if not path:
        return out
    for ps in u.hugepage_sizes():
        pre = f"hugetlb.{ps}."
        if u.try_read(path, pre + "usage_in_bytes") is None:
            continue
        out[ps] = _oe({"usage?": _u(path, pre + "usage_in_bytes"),
                       "max?": _u(path, pre + "max_usage_in_bytes"),
                       "failcnt": _u(path, pre + "failcnt")})
    return out


def v2_hugetlb(path):
    out = {}
    if not path:
        return out
    for ps in u.hugepage_sizes():
        pre = f"hugetlb.{ps}."
        cur = u.read_uint(path, pre + "rsvd.current")
        ev = pre + "rsvd.events"
        if cur is None:
            cur = u.read_uint(path, pre + "current")
            ev = pre + "events"
        if cur is None:
            continue
        fail = u.parse_flat_keyed(u.try_read(path, ev) or "").get("max", 0)
        out[ps] = _oe({"usage?": cur, "failcnt": fail})
    return out
