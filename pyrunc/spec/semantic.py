"""Checks of config.json the JSON schema cannot express (MUST clauses of config.md and
config-linux.md, and what runc refuses): each problem as ``"<JSON pointer>: <message>"``."""

import os
import stat

from pyrunc.spec.problems import one_line, pointer, show, sort_problems  # noqa: F401
from pyrunc.spec.process_checks import (_Problems, _abs_path, _dict, _is_int, _list,
                                        _typed_entries, add_process_problems, parse_id_list)
from pyrunc.sysctl import problem as sysctl_problem

SUPPORTED_VERSIONS = "1.0.0 to 1.3.x"
_SUPPORTED_MINORS = ("0", "1", "2", "3")


_SEMVER_ALNUM = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-")


def _numeric(ident):
    return ident.isascii() and ident.isdigit() and (ident == "0" or ident[0] != "0")


def _parse_semver(v):
    """SemVer 2.0.0 (semver.org's grammar, without re): (major, minor, patch, prerelease)."""
    core, plus, build = v.partition("+")
    if plus and not all(b and _SEMVER_ALNUM.issuperset(b) for b in build.split(".")):
        return None
    core, dash, pre = core.partition("-")
    parts = core.split(".")
    if len(parts) != 3 or not all(_numeric(x) for x in parts):
        return None
    if dash:
        for ident in pre.split("."):
            if not ident or not _SEMVER_ALNUM.issuperset(ident):
                return None
            if ident.isdigit() and not _numeric(ident):
                return None
    return parts[0], parts[1], parts[2], (pre if dash else None)


_HOOK_STAGES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")

_ERRNO_ACTIONS = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
_CLOCKS = ("monotonic", "boottime")
_IDMAP_OPTIONS = ("idmap", "ridmap")
_MAX_ID = 1 << 32
_MAX_ID_MAP_LINES = 340  # UID_GID_MAP_MAX_EXTENTS (since Linux 4.15; 5 before)
_IFNAMSIZ = 16
_DEV_MAX = {"major": (1 << 12) - 1, "minor": (1 << 20) - 1}  # MINORBITS 20 (linux/kdev_t.h)


def _bad_ifname(name):
    """Why ``name`` is not a valid Linux interface name, or None."""
    if name == "":
        return "must not be empty"
    if len(name.encode("utf-8", "surrogatepass")) >= _IFNAMSIZ:
        return f"{show(name)} is longer than {_IFNAMSIZ - 1} bytes"
    if name in (".", ".."):
        return f"{show(name)} is not a valid interface name"
    if any(c in "/:" or c.isspace() or c == "\0" for c in name):
        return f"{show(name)} is not a valid interface name (no '/', ':' or white space)"
    return None


def version_problem(v):
    """Why ociVersion ``v`` is not a version this runtime supports, or None. Only the
    linter reports it (as a warning): runc does not check the version."""
    parsed = _parse_semver(v)
    if parsed is None:
        return f"{show(v)} is not a SemVer 2.0.0 version; supported versions are {SUPPORTED_VERSIONS}"
    major, minor, patch, prerelease = parsed
    # Pre-releases of 1.0.0 (1.0.0-rc5) come before 1.0.0 in SemVer order.
    too_old = (major, minor, patch) == ("1", "0", "0") and prerelease is not None
    if major != "1" or minor not in _SUPPORTED_MINORS or too_old:
        return f"unsupported runtime-spec version {show(v)}; supported versions are {SUPPORTED_VERSIONS}"
    return None


def _check_version(config, p):
    v = config.get("ociVersion")
    if isinstance(v, str):
        why = version_problem(v)
        if why:
            p.add(("ociVersion",), why)


def _check_root(config, bundle_dir, p):
    if "root" not in config:
        p.add((), '"root" is required on Linux')
        return
    root = config.get("root")
    if not isinstance(root, dict):
        return
    path = root.get("path")
    if not isinstance(path, str):
        return
    if path == "":
        p.add(("root", "path"), "must not be empty")
        return
    if "\0" in path:
        p.add(("root", "path"), "must not contain a NUL byte")
        return
    if bundle_dir is None:
        return
    full = os.path.join(os.fspath(bundle_dir), path)
    try:
        st = os.stat(full)
    except FileNotFoundError:
        p.add(("root", "path"), f"{show(path)} does not exist ({full})")
    except (OSError, ValueError) as e:
        p.add(("root", "path"), f"cannot access {full}: {getattr(e, 'strerror', None) or e}")
    else:
        if not stat.S_ISDIR(st.st_mode):
            p.add(("root", "path"), f"{full} is not a directory")


def _namespaces(linux):
    """{type: path or None} of linux.namespaces (first entry of each type)."""
    out = {}
    for ns in _list(linux.get("namespaces")):
        if isinstance(ns, dict) and isinstance(ns.get("type"), str) and ns["type"] not in out:
            path = ns.get("path")
            out[ns["type"]] = path if isinstance(path, str) and path else None
    return out


def _check_id_mappings(maps, parts, p):
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
        if not (_is_int(cid) and _is_int(hid) and _is_int(size)):
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


def _check_mounts(config, userns, p):
    for i, m in enumerate(_list(config.get("mounts"))):
        if not isinstance(m, dict):
            continue
        parts = ("mounts", i)
        dest = m.get("destination")
        if isinstance(dest, str):
            if dest == "":
                p.add(parts + ("destination",), "must not be empty")
            elif "\0" in dest:
                p.add(parts + ("destination",), "must not contain a NUL byte")
            # Relative destinations are deprecated but allowed (taken relative to "/").
        src = m.get("source")
        if isinstance(src, str) and "\0" in src:
            p.add(parts + ("source",), "must not contain a NUL byte")
        has_uid, has_gid = "uidMappings" in m, "gidMappings" in m
        if has_uid != has_gid:
            given, missing = ("uidMappings", "gidMappings") if has_uid else ("gidMappings", "uidMappings")
            p.add(parts, f'"{given}" is given without "{missing}" (both or neither)')
        for key in ("uidMappings", "gidMappings"):
            _check_id_mappings(m.get(key), parts + (key,), p)
        options = [o for o in _list(m.get("options")) if isinstance(o, str)]
        for opt in _IDMAP_OPTIONS:
            if opt in options and not (has_uid or has_gid) and not userns:
                p.add(parts + ("options",), f'"{opt}" needs uidMappings/gidMappings or a user namespace')


def _check_hooks(config, p):
    hooks = config.get("hooks")
    if not isinstance(hooks, dict):
        return
    for stage in _HOOK_STAGES:
        for i, h in enumerate(_list(hooks.get(stage))):
            if isinstance(h, dict):
                _abs_path(p, ("hooks", stage, i, "path"), h.get("path"))


def _check_string_map(value, parts, p, what="keys", empty_ok=False):
    if not isinstance(value, dict):
        return
    for k, v in value.items():
        if k == "":
            if empty_ok:
                continue
            p.add(parts, f"{what} must not be empty")
        elif all(c == "\n" for c in k) and not isinstance(v, str):
            # The schema only types values of keys with a non-newline character.
            p.add(parts + (k,), f"{show(v)} is not of type \"string\"")


def _check_linux(config, p):
    linux = config.get("linux")
    L = ("linux",)
    if not isinstance(linux, dict):
        linux = {}
    ns = _namespaces(linux)

    # namespaces
    seen = {}  # namespace type -> index of its first entry
    for i, t, first in _typed_entries(linux.get("namespaces")):
        seen.setdefault(t, i)
        if first is not None:
            p.add(L + ("namespaces", i, "type"), f"duplicate namespace {show(t)} (also at index {first})")
    for i, entry in enumerate(_list(linux.get("namespaces"))):
        if isinstance(entry, dict):
            _abs_path(p, L + ("namespaces", i, "path"), entry.get("path"), allow_empty=True)

    # user namespace and id mappings
    uid_maps, gid_maps = linux.get("uidMappings"), linux.get("gidMappings")
    if "user" not in ns:
        for key, maps in (("uidMappings", uid_maps), ("gidMappings", gid_maps)):
            if isinstance(maps, list) and maps:
                p.add(L + (key,), 'needs a user namespace ("user" in linux.namespaces)')
    elif ns["user"] is None:
        for key, maps in (("uidMappings", uid_maps), ("gidMappings", gid_maps)):
            if maps is None or maps == []:
                p.add(L + ("namespaces", seen["user"]), f"a new user namespace needs linux.{key}")
    for key in ("uidMappings", "gidMappings"):
        _check_id_mappings(linux.get(key), L + (key,), p)

    # hostname / domainname need a UTS namespace (a Linux rule: not for freebsd/zos configs)
    for key in ("hostname", "domainname"):
        v = config.get(key)
        if isinstance(v, str) and v and "uts" not in ns and isinstance(config.get("linux"), dict):
            p.add((key,), f'setting the {key} needs a UTS namespace ("uts" in linux.namespaces)')

    # time namespace offsets
    offsets = linux.get("timeOffsets")
    if isinstance(offsets, dict) and offsets:
        if "time" not in ns:
            p.add(L + ("timeOffsets",), 'needs a new time namespace ("time" in linux.namespaces)')
        elif ns["time"] is not None:
            p.add(L + ("timeOffsets",), "cannot be set when joining an existing time namespace")
        for clock, off in offsets.items():
            if clock not in _CLOCKS:
                p.add(L + ("timeOffsets", clock), 'unknown clock; expected "monotonic" or "boottime"')
            elif isinstance(off, dict):
                ns_ = off.get("nanosecs")
                if _is_int(ns_) and ns_ >= 1_000_000_000:
                    p.add(L + ("timeOffsets", clock, "nanosecs"), f"{ns_} is not less than 1000000000")

    # devices
    for i, dev in enumerate(_list(linux.get("devices"))):
        if not isinstance(dev, dict):
            continue
        _abs_path(p, L + ("devices", i, "path"), dev.get("path"))
        t = dev.get("type")
        if isinstance(t, str) and t in ("b", "c", "u"):
            for key in ("major", "minor"):
                if key not in dev:
                    p.add(L + ("devices", i), f'"{key}" is required unless type is "p"')
                elif _is_int(dev[key]) and not 0 <= dev[key] <= _DEV_MAX[key]:
                    # mknod(2) would make a node with other numbers (runc truncates).
                    p.add(L + ("devices", i, key), f"{dev[key]} is outside the kernel's {key} "
                                                   f"numbers, 0 to {_DEV_MAX[key]}")

    # network devices
    net_devices = linux.get("netDevices")
    if isinstance(net_devices, dict):
        if net_devices and "network" not in ns:
            p.add(L + ("netDevices",), 'moving network devices needs a network namespace ("network" in linux.namespaces)')
        targets = {}
        for host_name, dev in net_devices.items():
            parts = L + ("netDevices", host_name)
            why = _bad_ifname(host_name)
            if why:
                p.add(parts, f"host interface name {why}")
            target = host_name
            if isinstance(dev, dict) and isinstance(dev.get("name"), str):
                target = dev["name"]
                why = _bad_ifname(target)
                if why:
                    p.add(parts + ("name",), f"interface name {why}")
                    continue
            if "%d" in target:
                continue
            if target in targets:
                p.add(parts, f"{show(host_name)} and {show(targets[target])} would both be named {show(target)} in the container")
            else:
                targets[target] = host_name

    # cgroups
    cg = linux.get("cgroupsPath")
    if isinstance(cg, str) and "\0" in cg:
        p.add(L + ("cgroupsPath",), "must not contain a NUL byte")
    res = _dict(linux.get("resources"))
    R = L + ("resources",)
    for i, rule in enumerate(_list(res.get("devices"))):
        if not isinstance(rule, dict):
            continue
        t = rule.get("type")
        if isinstance(t, str) and t not in ("a", "b", "c"):
            p.add(R + ("devices", i, "type"), f'{show(t)} is not one of "a", "b", "c"')
        acc = rule.get("access")
        if isinstance(acc, str) and (set(acc) - set("rwm")):
            p.add(R + ("devices", i, "access"), f"{show(acc)} is not a combination of r, w and m")
    blkio = _dict(res.get("blockIO"))
    for i, wd in enumerate(_list(blkio.get("weightDevice"))):
        if isinstance(wd, dict) and "weight" not in wd and "leafWeight" not in wd:
            p.add(R + ("blockIO", "weightDevice", i), 'needs "weight" or "leafWeight" (or both)')
    rdma = res.get("rdma")
    if isinstance(rdma, dict):
        for name, lim in rdma.items():
            if isinstance(lim, dict) and "hcaHandles" not in lim and "hcaObjects" not in lim:
                p.add(R + ("rdma", name), 'needs "hcaHandles" or "hcaObjects" (or both)')
    cpu = _dict(res.get("cpu"))
    quota, burst = cpu.get("quota"), cpu.get("burst")
    if _is_int(quota) and _is_int(burst) and quota > 0 and burst > quota:
        p.add(R + ("cpu", "burst"), f"{burst} is greater than quota {quota}")
    unified = res.get("unified")
    if isinstance(unified, dict):
        for key in unified:
            if key in ("", ".", "..") or "/" in key or "\0" in key:
                p.add(R + ("unified", key), "must be a cgroup file name (no '/')")

    # sysctl
    sysctl = linux.get("sysctl")
    _check_string_map(sysctl, L + ("sysctl",), p, what="sysctl names")
    if isinstance(sysctl, dict):
        for key in sysctl:
            if key:
                why = sysctl_problem(key, ns.__contains__)
                if why:
                    p.add(L + ("sysctl", key), why)

    # seccomp
    _check_seccomp(linux.get("seccomp"), L + ("seccomp",), p)

    # masked and read-only paths
    for key in ("maskedPaths", "readonlyPaths"):
        for i, path in enumerate(_list(linux.get(key))):
            _abs_path(p, L + (key, i), path)

    # personality
    pers = linux.get("personality")
    if isinstance(pers, dict):
        if "domain" not in pers:
            p.add(L + ("personality",), '"domain" is required')
        for i, flag in enumerate(_list(pers.get("flags"))):
            p.add(L + ("personality", "flags", i), f"{show(flag)}: personality flags are not supported")

    # memory policy
    mp = linux.get("memoryPolicy")
    if isinstance(mp, dict):
        mode = mp.get("mode")
        if "mode" not in mp:
            p.add(L + ("memoryPolicy",), '"mode" is required')
        nodes = mp.get("nodes")
        has_nodes = isinstance(nodes, str) and nodes.strip() != ""
        if isinstance(nodes, str) and not parse_id_list(nodes):
            p.add(L + ("memoryPolicy", "nodes"), f"{show(nodes)} is not a node list such as 0-3,7")
        if mode in ("MPOL_DEFAULT", "MPOL_LOCAL") and has_nodes:
            p.add(L + ("memoryPolicy", "nodes"), f"must be empty for {mode}")
        if mode in ("MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE", "MPOL_PREFERRED_MANY") and not has_nodes:
            p.add(L + ("memoryPolicy",), f'{mode} needs "nodes"')
        flags = _list(mp.get("flags"))
        if "MPOL_F_STATIC_NODES" in flags and "MPOL_F_RELATIVE_NODES" in flags:
            p.add(L + ("memoryPolicy", "flags"), "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other")

    # Intel RDT
    rdt = linux.get("intelRdt")
    if isinstance(rdt, dict):
        for key in ("l3CacheSchema", "memBwSchema"):
            v = rdt.get(key)
            if isinstance(v, str) and "\n" in v:
                p.add(L + ("intelRdt", key), "must not contain a newline")
        for i, line in enumerate(_list(rdt.get("schemata"))):
            if isinstance(line, str) and "\n" in line:
                p.add(L + ("intelRdt", "schemata", i), "must not contain a newline")
        clos = rdt.get("closID")
        if isinstance(clos, str) and clos != "/" and (clos in ("", ".", "..") or any(c in clos for c in "/\n\0")):
            p.add(L + ("intelRdt", "closID"), f"{show(clos)} is not a valid resctrl group name")


def _check_seccomp(sc, S, p):
    if not isinstance(sc, dict):
        return
    listener = sc.get("listenerPath")
    has_listener = isinstance(listener, str) and listener != ""
    meta = sc.get("listenerMetadata")
    if isinstance(meta, str) and meta and not has_listener:
        p.add(S + ("listenerMetadata",), 'must not be set without "listenerPath"')
    default = sc.get("defaultAction")
    if default == "SCMP_ACT_NOTIFY":
        p.add(S + ("defaultAction",), "SCMP_ACT_NOTIFY cannot be the default action")
    if "defaultErrnoRet" in sc and isinstance(default, str) and default not in _ERRNO_ACTIONS:
        p.add(S + ("defaultErrnoRet",), f"{show(default)} does not return an errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)")
    for i, rule in enumerate(_list(sc.get("syscalls"))):
        if not isinstance(rule, dict):
            continue
        action = rule.get("action")
        if action == "SCMP_ACT_NOTIFY" and not has_listener:
            p.add(S + ("syscalls", i, "action"), 'SCMP_ACT_NOTIFY needs "listenerPath"')
        if "errnoRet" in rule and isinstance(action, str) and action not in _ERRNO_ACTIONS:
            p.add(S + ("syscalls", i, "errnoRet"), f"{show(action)} does not return an errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)")
        for j, arg in enumerate(_list(rule.get("args"))):
            if isinstance(arg, dict) and _is_int(arg.get("index")) and arg["index"] > 5:
                p.add(S + ("syscalls", i, "args", j, "index"), f"{arg['index']} is outside 0 to 5")


def semantic_problems(config, bundle_dir=None, strict=True) -> list:
    """Problems the JSON schema cannot express (same ``pointer: message`` format).

    ``bundle_dir`` is used to check that root.path is an existing directory;
    with None, file system checks are skipped.  Values of the wrong type are
    ignored here (the schema reports them), so this never raises on odd input.
    ``strict=False`` (create) leaves out what runc accepts as it is: the version and
    empty annotation keys (spec/compat.py warns of them in ``pyrunc validate``).
    """
    if not isinstance(config, dict):
        return []
    p = _Problems()
    if strict:
        _check_version(config, p)
    _check_root(config, bundle_dir, p)
    add_process_problems(config.get("process"), ("process",), p)
    _check_hooks(config, p)
    _check_string_map(config.get("annotations"), ("annotations",), p, what="annotation keys", empty_ok=not strict)
    linux = config.get("linux")
    userns = isinstance(linux, dict) and "user" in _namespaces(linux)
    _check_mounts(config, userns, p)
    _check_linux(config, p)
    return sort_problems(p.items)
