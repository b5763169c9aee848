"""Semantic checks of the rest of config.json's linux object, one function each: device
nodes, network devices, sysctl, masked and read-only paths, personality, memory
policy, Intel RDT, seccomp (config-linux.md, the section named in each)."""
from pyrunc.config.problems import abs_path, as_list, is_int, parse_id_list, show, string_map

_L = ("linux",)
_ERRNO_ACTIONS = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
_IFNAMSIZ = 16
_DEV_MAX = {"major": (1 << 12) - 1, "minor": (1 << 20) - 1}  # MINORBITS 20 (linux/kdev_t.h)


def add_linux_problems(linux, ns, p):
    """linux: config's linux object ({} when it has none); ns: {namespace type: path}."""
    _check_devices(linux.get("devices"), p)
    _check_net_devices(linux.get("netDevices"), ns, p)
    _check_sysctl(linux.get("sysctl"), ns, p)
    for key in ("maskedPaths", "readonlyPaths"):
        for i, path in enumerate(as_list(linux.get(key))):
            abs_path(p, _L + (key, i), path)
    _check_personality(linux.get("personality"), p)
    _check_memory_policy(linux.get("memoryPolicy"), p)
    _check_intel_rdt(linux.get("intelRdt"), p)
    _check_seccomp(linux.get("seccomp"), _L + ("seccomp",), p)


def _check_devices(devices, p):
    """config-linux.md "Devices"."""
    for i, dev in enumerate(as_list(devices)):
        if not isinstance(dev, dict):
            continue
        abs_path(p, _L + ("devices", i, "path"), dev.get("path"))
        t = dev.get("type")
        if isinstance(t, str) and t in ("b", "c", "u"):
            for key in ("major", "minor"):
                if key not in dev:
                    p.add(_L + ("devices", i), f'"{key}" is required unless type is "p"')
                elif is_int(dev[key]) and not 0 <= dev[key] <= _DEV_MAX[key]:
                    # mknod(2) would make a node with other numbers (runc truncates).
                    p.add(_L + ("devices", i, key), f"{dev[key]} is outside the kernel's {key} "
                                                    f"numbers, 0 to {_DEV_MAX[key]}")


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


def _check_net_devices(net_devices, ns, p):
    """config-linux.md "Network Devices"."""
    if not isinstance(net_devices, dict):
        return
    if net_devices and "network" not in ns:
        p.add(_L + ("netDevices",), 'moving network devices needs a network namespace ("network" in linux.namespaces)')
    targets = {}
    for host_name, dev in net_devices.items():
        parts = _L + ("netDevices", host_name)
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


def _check_sysctl(sysctl, ns, p):
    """config-linux.md "Sysctl"."""
    string_map(sysctl, _L + ("sysctl",), p, what="sysctl names")
    if not isinstance(sysctl, dict) or not sysctl:
        return
    from pyrunc.linux.sysctl import problem as sysctl_problem

    for key in sysctl:
        if key:
            why = sysctl_problem(key, ns.__contains__)
            if why:
                p.add(_L + ("sysctl", key), why)


def _check_personality(pers, p):
    """config-linux.md "Personality"."""
    if not isinstance(pers, dict):
        return
    if "domain" not in pers:
        p.add(_L + ("personality",), '"domain" is required')
    for i, flag in enumerate(as_list(pers.get("flags"))):
        p.add(_L + ("personality", "flags", i), f"{show(flag)}: personality flags are not supported")


def _check_memory_policy(mp, p):
    """config-linux.md "Memory policy"."""
    if not isinstance(mp, dict):
        return
    M = _L + ("memoryPolicy",)
    mode = mp.get("mode")
    if "mode" not in mp:
        p.add(M, '"mode" is required')
    nodes = mp.get("nodes")
    has_nodes = isinstance(nodes, str) and nodes.strip() != ""
    if isinstance(nodes, str) and not parse_id_list(nodes):
        p.add(M + ("nodes",), f"{show(nodes)} is not a node list such as 0-3,7")
    if mode in ("MPOL_DEFAULT", "MPOL_LOCAL") and has_nodes:
        p.add(M + ("nodes",), f"must be empty for {mode}")
    if mode in ("MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE", "MPOL_PREFERRED_MANY") and not has_nodes:
        p.add(M, f'{mode} needs "nodes"')
    flags = as_list(mp.get("flags"))
    if "MPOL_F_STATIC_NODES" in flags and "MPOL_F_RELATIVE_NODES" in flags:
        p.add(M + ("flags",), "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other")


def _check_intel_rdt(rdt, p):
    """config-linux.md "IntelRdt"."""
    if not isinstance(rdt, dict):
        return
    R = _L + ("intelRdt",)
    for key in ("l3CacheSchema", "memBwSchema"):
        v = rdt.get(key)
        if isinstance(v, str) and "\n" in v:
            p.add(R + (key,), "must not contain a newline")
    for i, line in enumerate(as_list(rdt.get("schemata"))):
        if isinstance(line, str) and "\n" in line:
            p.add(R + ("schemata", i), "must not contain a newline")
    clos = rdt.get("closID")
    if isinstance(clos, str) and clos != "/" and (clos in ("", ".", "..") or any(c in clos for c in "/\n\0")):
        p.add(R + ("closID",), f"{show(clos)} is not a valid resctrl group name")


def _check_seccomp(sc, S, p):
    """config-linux.md "Seccomp"."""
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
    for i, rule in enumerate(as_list(sc.get("syscalls"))):
        if isinstance(rule, dict):
            _check_seccomp_rule(rule, S + ("syscalls", i), has_listener, p)


def _check_seccomp_rule(rule, parts, has_listener, p):
    action = rule.get("action")
    if action == "SCMP_ACT_NOTIFY" and not has_listener:
        p.add(parts + ("action",), 'SCMP_ACT_NOTIFY needs "listenerPath"')
    if "errnoRet" in rule and isinstance(action, str) and action not in _ERRNO_ACTIONS:
        p.add(parts + ("errnoRet",), f"{show(action)} does not return an errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)")
    for j, arg in enumerate(as_list(rule.get("args"))):
        if isinstance(arg, dict) and is_int(arg.get("index")) and arg["index"] > 5:
            p.add(parts + ("args", j, "index"), f"{arg['index']} is outside 0 to 5")
