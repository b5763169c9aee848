"""What the systemd cgroup driver asks of systemd: the unit's name and slice from
cgroupsPath, and the unit properties of OCI resources, mapped as runc 1.1 maps them
(libcontainer/cgroups/systemd: common.go, v1.go, v2.go; specconv's initSystemdProps).

Properties are (name, (D-Bus signature, value)) pairs, the a(sv) of StartTransientUnit
and SetUnitProperties. What systemd cannot express is left to the cgroupfs manager,
which runs after systemd in both drivers, as runc's does.
"""
from pyrunc.cgroups import fs as u
from pyrunc.errors import PyruncError
from pyrunc.cgroups.devices import WILDCARD, target_emulator

_warn = u.warn  # pyrunc's log (--log, --log-format), as runc's logrus.Warn
INFINITY = u.MAX_UINT64  # systemd's USEC_INFINITY / CGROUP_LIMIT_MAX
DEFAULT_PERIOD = 100000


def _err(msg):
    return PyruncError(f"cgroup systemd: {msg}")


# -- names --------------------------------------------------------------------------

def parse_cgroups_path(cgroups_path, container_id):
    """(slice, scope prefix, name) as runc's specconv: "slice:prefix:name"; an empty
    path is "system.slice:runc:<id>"; anything else is an error."""
    if not cgroups_path:
        return "system.slice", "runc", container_id
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise PyruncError('expected cgroupsPath to be of format "slice:prefix:name" for systemd '
                          f'cgroups, got "{cgroups_path}" instead')
    return parts[0] or "system.slice", parts[1], parts[2]


def unit_name(prefix, name):
    """runc's getUnitName: a scope, unless the name asks for a slice."""
    if name.endswith(".slice"):
        return name
    return f"{prefix}-{name}.scope"


def expand_slice(slice_name):
    """runc's ExpandSlice: "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice"."""
    suffix = ".slice"
    if not slice_name.endswith(suffix) or "/" in slice_name or len(slice_name) <= len(suffix) - 1:
        raise _err(f"invalid slice name: {slice_name}")
    stem = slice_name[:-len(suffix)]
    if stem == "-":
        return "/"
    path, prefix = "", ""
    for comp in stem.split("-"):
        if not comp:
            raise _err(f"invalid slice name: {slice_name}")
        path += "/" + prefix + comp + suffix
        prefix += comp + "-"
    return path


def base_properties(name, unit, slice_name, pid, *, v2):
    """The properties runc's Apply starts a unit with (before its SystemdProps)."""
    props = [("Description", ("s", f"libcontainer container {name}"))]
    if unit.endswith(".slice"):
        props.append(("Wants", ("as", [slice_name])))
    else:
        props.append(("Slice", ("s", slice_name)))
    if pid != -1:
        props.append(("PIDs", ("au", [pid])))
    if not unit.endswith(".slice"):
        props.append(("Delegate", ("b", True)))
    io = "IOAccounting" if v2 else "BlockIOAccounting"
    for acct in ("MemoryAccounting", "CPUAccounting", io, "TasksAccounting"):
        props.append((acct, ("b", True)))
    props.append(("DefaultDependencies", ("b", False)))
    return props


# -- resources ----------------------------------------------------------------------

def _u64(v):
    return v & INFINITY  # -1 -> 2^64-1 ("infinity"), as Go's uint64(int64)


def _int(what, v):
    if isinstance(v, bool) or not isinstance(v, int):
        raise _err(f"invalid {what} {v!r} (want an integer)")
    return v


def cpu_quota_properties(quota, period, version):
    """runc's addCpuQuota."""
    props = []
    if period:
        if version >= 242:
            props.append(("CPUQuotaPeriodUSec", ("t", period)))
    if quota or period:
        per_sec = INFINITY
        if quota > 0:
            p = period or DEFAULT_PERIOD
            per_sec = quota * 1000000 // p
            if per_sec % 10000:  # systemd keeps whole percents: round up to 10 ms
                per_sec = (per_sec // 10000 + 1) * 10000
        props.append(("CPUQuotaPerSecUSec", ("t", per_sec)))
    return props


def range_to_bits(text):
    """runc's RangeToBits: "1,3-5" -> the bitmask as bytes, lowest CPU in the first
    byte (systemd's AllowedCPUs/AllowedMemoryNodes)."""
    mask = 0
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if dash else a
        except ValueError:
            raise _err(f'invalid cpu/mem list "{text}"') from None
        if a < 0 or b < a or b >= 1 << 32:
            raise _err(f'invalid range "{part}" in "{text}"')
        mask |= ((1 << (b - a + 1)) - 1) << a
    if not mask:
        raise _err(f'invalid cpu/mem list "{text}": empty value')
    return mask.to_bytes((mask.bit_length() + 7) // 8, "little")


def cpuset_properties(cpus, mems, version):
    if not (cpus or mems) or version < 244:
        return []
    props = []
    if cpus:
        props.append(("AllowedCPUs", ("ay", range_to_bits(cpus))))
    if mems:
        props.append(("AllowedMemoryNodes", ("ay", range_to_bits(mems))))
    return props


def device_properties(resources, linux_devices, version):
    """(properties, exact): runc's systemd device rules. ``exact`` is False where
    systemd cannot express the rules (a deny-list, "*:n" rules, old systemd): then the
    cgroupfs manager must apply them itself."""
    emu = target_emulator(resources.get("devices"), linux_devices)
    if emu.is_blacklist:
        if not emu.rules:  # allow-all
            return [("DevicePolicy", ("s", "auto")), ("DeviceAllow", ("a(ss)", []))], True
        _warn("systemd doesn't support blacklist device rules -- applying temporary deny-all rule")
        return [("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", []))], False
    exact = True
    allow = []
    for (t, major, minor) in sorted(emu.rules, key=lambda k: (k[1], k[2], k[0])):
        group = "block-" if t == "b" else "char-"
        if major == WILDCARD:
            if minor != WILDCARD:
                _warn(f"systemd doesn't support '*:n' device rules -- temporarily ignoring rule: "
                      f"{t} *:{minor} {emu.rules[(t, major, minor)]}")
                exact = False
                continue
            path = group + "*"
        elif minor == WILDCARD:
            if version < 240:
                exact = False  # needs /proc/devices group names: left to cgroupfs
                continue
            path = f"{group}{major}"
        else:
            path = f"/dev/{'block' if t == 'b' else 'char'}/{major}:{minor}"
        allow.append((path, emu.rules[(t, major, minor)]))
    return [("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", [])),
            ("DeviceAllow", ("a(ss)", allow))], exact


def resource_properties(r, linux_devices, version, *, v2):
    """(properties, devices exact): runc's genV2ResourcesProperties (v2) or
    genV1ResourcesProperties (v1) of OCI linux.resources ``r``."""
    devs, exact = device_properties(r, linux_devices, version)
    props = list(devs)
    mem = r.get("memory") if isinstance(r.get("memory"), dict) else {}
    cpu = r.get("cpu") if isinstance(r.get("cpu"), dict) else {}
    limit = _int("memory.limit", mem.get("limit") or 0)
    shares = _int("cpu.shares", cpu.get("shares") or 0)
    quota = _int("cpu.quota", cpu.get("quota") or 0)
    period = _int("cpu.period", cpu.get("period") or 0)
    pids = r.get("pids") if isinstance(r.get("pids"), dict) else {}
    plimit = _int("pids.limit", pids.get("limit") or 0)
    if v2:
        from pyrunc.cgroups.v2.resources import swap_to_v2

        if limit:
            props.append(("MemoryMax", ("t", _u64(limit))))
        low = _int("memory.reservation", mem.get("reservation") or 0)
        if low:
            props.append(("MemoryLow", ("t", _u64(low))))
        swap = swap_to_v2(_int("memory.swap", mem.get("swap") or 0), limit)
        if swap:
            props.append(("MemorySwapMax", ("t", _u64(swap))))
        if shares:
            props.append(("CPUWeight", ("t", u.cpu_shares_to_weight(shares))))
    else:
        if limit:
            props.append(("MemoryLimit", ("t", _u64(limit))))
        if shares:
            props.append(("CPUShares", ("t", shares)))
    props += cpu_quota_properties(quota, period, version)
    if not v2:
        blkio = r.get("blockIO") if isinstance(r.get("blockIO"), dict) else {}
        if blkio.get("weight"):
            props.append(("BlockIOWeight", ("t", _int("blockIO.weight", blkio["weight"]))))
    if plimit > 0 or plimit == -1:
        props.append(("TasksMax", ("t", _u64(plimit))))
    props += cpuset_properties(cpu.get("cpus") or "", cpu.get("mems") or "", version)
    if v2 and r.get("unified"):
        props += unified_properties(r["unified"], version)
    return props, exact


_UNIFIED_MEMORY = {"memory.high": "MemoryHigh", "memory.low": "MemoryLow", "memory.min": "MemoryMin",
                   "memory.max": "MemoryMax", "memory.swap.max": "MemorySwapMax"}


def unified_properties(unified, version):
    """runc's unifiedResToSystemdProps: the unified keys systemd knows; the others are
    for the cgroupfs manager only."""
    props = []
    if not isinstance(unified, dict):
        raise PyruncError("cgroup: linux.resources.unified must be an object")
    for k, v in unified.items():
        if "/" in k:
            raise _err(f'unified resource "{k}" must be a file name (no slashes)')
        if "." not in k:
            raise _err(f'unified resource "{k}" must be in the form CONTROLLER.PARAMETER')
        v = str(v).strip()

        def num(text):
            if text == "max":
                return INFINITY
            if not text.isdigit():
                raise _err(f'unified resource "{k}" value conversion error: "{text}"')
            return int(text)

        if k == "cpu.max":
            f = v.split()
            if not 1 <= len(f) <= 2:
                raise _err(f'unified resource "{k}" value invalid: "{v}"')
            quota = 0 if f[0] == "max" else num(f[0])
            period = num(f[1]) if len(f) == 2 else DEFAULT_PERIOD
            props += cpu_quota_properties(quota, period, version)
        elif k == "cpu.weight":
            if not v.isdigit():
                raise _err(f'unified resource "{k}" value conversion error: "{v}"')
            props.append(("CPUWeight", ("t", int(v))))
        elif k in ("cpuset.cpus", "cpuset.mems"):
            if version >= 244:
                name = "AllowedCPUs" if k == "cpuset.cpus" else "AllowedMemoryNodes"
                props.append((name, ("ay", range_to_bits(v))))
        elif k in _UNIFIED_MEMORY:
            props.append((_UNIFIED_MEMORY[k], ("t", num(v))))
        elif k == "pids.max":
            props.append(("TasksMax", ("t", num(v))))
    return props


# -- annotations ---------------------------------------------------------------------

_ANNOTATION = "org.systemd.property."


def annotation_properties(annotations):
    """runc's initSystemdProps: annotations "org.systemd.property.NAME" = a GVariant
    text value become unit properties; NAMEs ending in "Sec" are sent as "USec" in
    microseconds. The values understood: booleans, numbers (with an optional GVariant
    type: "uint64 5", "@t 5"), 'strings' and arrays of strings."""
    props = []
    for k, v in (annotations or {}).items():
        if not k.startswith(_ANNOTATION):
            continue
        name = k[len(_ANNOTATION):]
        if len(name) < 3:
            raise PyruncError(f"annotation {k} name incorrect: too short")
        if not (name.isascii() and name.isalpha()):
            raise PyruncError(f"annotation {k} name incorrect: contains non-alphabetic character")
        sig, val = parse_gvariant(k, str(v))
        if name.endswith("Sec"):
            name = name[:-3] + "USec"
            if sig not in ("t", "x", "u", "i", "q", "n", "y", "d"):
                raise PyruncError(f"annotation {k}={v}: want a number of seconds")
            sig, val = "t", int(val * 1000000)
        props.append((name, (sig, val)))
    return props


_GV_TYPES = {"boolean": "b", "byte": "y", "int16": "n", "uint16": "q", "int32": "i",
             "uint32": "u", "int64": "x", "uint64": "t", "double": "d", "string": "s",
             "objectpath": "o"}


def parse_gvariant(key, text):
    t = text.strip()
    sig = None
    if t.startswith("@"):
        ty, _, t = t[1:].partition(" ")
        sig = ty
    else:
        first, _, rest = t.partition(" ")
        if first in _GV_TYPES and rest:
            sig, t = _GV_TYPES[first], rest.strip()
    try:
        if t in ("true", "false"):
            return sig or "b", t == "true"
        if t[:1] in "'\"" and t[-1:] == t[:1] and len(t) >= 2:
            return sig or "s", t[1:-1]
        if t.startswith("[") and t.endswith("]"):
            items = [x.strip() for x in t[1:-1].split(",") if x.strip()]
            if all(x[:1] in "'\"" and x[-1:] == x[:1] and len(x) >= 2 for x in items):
                return sig or "as", [x[1:-1] for x in items]
        if sig == "d" or ("." in t and sig is None):
            return "d", float(t)
        return sig or "i", int(t)
    except ValueError:
        pass
    raise PyruncError(f"annotation {key}={text} value parse error: not a value pyrunc understands "
                      "(booleans, numbers, 'strings', ['string', ...])")
