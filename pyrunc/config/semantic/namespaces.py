"""Semantic checks of linux.namespaces and of what needs a namespace: the user
namespace's id mappings (check_id_mappings serves idmapped mounts too), hostname and
domainname (UTS), time offsets (config-linux.md "Namespaces", "User namespace mappings",
"Offset for Time Namespace")."""
import os

from pyrunc.config.problems import abs_path, as_list, is_int, show, typed_entries

_L = ("linux",)
_CLOCKS = ("monotonic", "boottime")
_MAX_ID = 1 << 32
_MAX_ID_MAP_LINES = 340  # UID_GID_MAP_MAX_EXTENTS (since Linux 4.15; 5 before)


def namespaces(linux):
    """{type: path or None} of linux.namespaces (first entry of each type)."""
    out = {}
    for ns in as_list(linux.get("namespaces")):
        if isinstance(ns, dict) and isinstance(ns.get("type"), str) and ns["type"] not in out:
            path = ns.get("path")
            out[ns["type"]] = path if isinstance(path, str) and path else None
    return out


def add_namespace_problems(config, linux, ns, p):
    """linux: config's linux object ({} when it has none); ns: namespaces(linux)."""
    first = _check_entries(linux, p)
    _check_user_namespace(linux, ns, first, p)
    _check_uts(config, ns, p)
    _check_time_offsets(linux.get("timeOffsets"), ns, p)


def _check_entries(linux, p):
    """Duplicates and paths; returns {type: index of its first entry}."""
    seen = {}
    for i, t, first in typed_entries(linux.get("namespaces")):
        seen.setdefault(t, i)
        if first is not None:
            p.add(_L + ("namespaces", i, "type"), f"duplicate namespace {show(t)} (also at index {first})")
    for i, entry in enumerate(as_list(linux.get("namespaces"))):
        if isinstance(entry, dict):
            abs_path(p, _L + ("namespaces", i, "path"), entry.get("path"), allow_empty=True)
    return seen


def _check_user_namespace(linux, ns, first, p):
    uid_maps, gid_maps = linux.get("uidMappings"), linux.get("gidMappings")
    if "user" not in ns:
        for key, maps in (("uidMappings", uid_maps), ("gidMappings", gid_maps)):
            if isinstance(maps, list) and maps:
                p.add(_L + (key,), 'needs a user namespace ("user" in linux.namespaces)')
    elif ns["user"] is None:
        for key, maps in (("uidMappings", uid_maps), ("gidMappings", gid_maps)):
            if maps is None or maps == []:
                p.add(_L + ("namespaces", first["user"]), f"a new user namespace needs linux.{key}")
    for key in ("uidMappings", "gidMappings"):
        check_id_mappings(linux.get(key), _L + (key,), p)


def _check_uts(config, ns, p):
    # A Linux rule: not for freebsd/zos configs (hence the check that linux is an object).
    for key in ("hostname", "domainname"):
        v = config.get(key)
        if isinstance(v, str) and v and "uts" not in ns and isinstance(config.get("linux"), dict):
            p.add((key,), f'setting the {key} needs a UTS namespace ("uts" in linux.namespaces)')


def _check_time_offsets(offsets, ns, p):
    if not (isinstance(offsets, dict) and offsets):
        return
    T = _L + ("timeOffsets",)
    if "time" not in ns:
        p.add(T, 'needs a new time namespace ("time" in linux.namespaces)')
    elif ns["time"] is not None:
        p.add(T, "cannot be set when joining an existing time namespace")
    for clock, off in offsets.items():
        if clock not in _CLOCKS:
            p.add(T + (clock,), 'unknown clock; expected "monotonic" or "boottime"')
        elif isinstance(off, dict):
            nanosecs = off.get("nanosecs")
            if is_int(nanosecs) and nanosecs >= 1_000_000_000:
                p.add(T + (clock, "nanosecs"), f"{nanosecs} is not less than 1000000000")


def check_id_mappings(maps, parts, p):
    """A uidMappings/gidMappings list (linux's or an idmapped mount's) at parts."""
    if not isinstance(maps, list):
        return
    if len(maps) > _MAX_ID_MAP_LINES:
        # Refused at once: the checks below would only add noise.
        p.add(parts, f"has {len(maps)} entries; the kernel accepts at most {_MAX_ID_MAP_LINES}")
        return
    ranges = []
    text_size = 0
    for i, m in enumerate(maps):
        if not isinstance(m, dict):
            continue
        cid, hid, size = m.get("containerID"), m.get("hostID"), m.get("size")
        if not (is_int(cid) and is_int(hid) and is_int(size)):
            continue
        if size == 0:
            p.add(parts + (i, "size"), "must be greater than 0")
            continue
        if cid + size > _MAX_ID or hid + size > _MAX_ID:
            p.add(parts + (i,), f"range goes beyond the largest id {_MAX_ID - 1}")
            continue
        ranges.append((cid, hid, size, i))
        text_size += len(f"{cid} {hid} {size}\n")
    if text_size >= _page_size():
        # user_namespaces(7): the map is written at once, in less than a page.
        p.add(parts, f"written out, the {len(ranges)} entries take {text_size} bytes; the "
                     f"kernel takes less than {_page_size()} (a page)")
    for axis, name in ((0, "containerID"), (1, "hostID")):
        _overlaps(ranges, axis, name, parts, p)


def _overlaps(ranges, axis, name, parts, p):
    """Report each entry whose range on ``axis`` overlaps another's, naming the earlier
    entry: a sweep over the ranges sorted by start, O(n log n)."""
    reach, owner = None, None  # the furthest end so far, and its entry
    for r in sorted(ranges, key=lambda r: (r[axis], r[3])):
        start, end, i = r[axis], r[axis] + r[2], r[3]
        if owner is not None and start < reach:
            first, later = sorted((i, owner))
            p.add(parts + (later,), f"{name} range overlaps entry {first}")
        if owner is None or end > reach:
            reach, owner = end, i


def _page_size():
    return os.sysconf("SC_PAGE_SIZE")
