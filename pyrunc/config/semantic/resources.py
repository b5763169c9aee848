"""Semantic checks of the cgroup settings: linux.cgroupsPath and linux.resources
(config-linux.md "Control groups")."""
from pyrunc.config.problems import as_dict, as_list, is_int, show

_R = ("linux", "resources")


def add_resource_problems(linux, p):
    """linux: config's linux object ({} when it has none)."""
    cg = linux.get("cgroupsPath")
    if isinstance(cg, str) and "\0" in cg:
        p.add(("linux", "cgroupsPath"), "must not contain a NUL byte")
    res = as_dict(linux.get("resources"))
    _check_device_rules(res.get("devices"), p)
    _check_block_io(as_dict(res.get("blockIO")), p)
    _check_rdma(res.get("rdma"), p)
    _check_cpu(as_dict(res.get("cpu")), p)
    _check_unified(res.get("unified"), p)


def _check_device_rules(rules, p):
    for i, rule in enumerate(as_list(rules)):
        if not isinstance(rule, dict):
            continue
        t = rule.get("type")
        if isinstance(t, str) and t not in ("a", "b", "c"):
            p.add(_R + ("devices", i, "type"), f'{show(t)} is not one of "a", "b", "c"')
        acc = rule.get("access")
        if isinstance(acc, str) and (set(acc) - set("rwm")):
            p.add(_R + ("devices", i, "access"), f"{show(acc)} is not a combination of r, w and m")


def _check_block_io(blkio, p):
    for i, wd in enumerate(as_list(blkio.get("weightDevice"))):
        if isinstance(wd, dict) and "weight" not in wd and "leafWeight" not in wd:
            p.add(_R + ("blockIO", "weightDevice", i), 'needs "weight" or "leafWeight" (or both)')


def _check_rdma(rdma, p):
    if not isinstance(rdma, dict):
        return
    for name, lim in rdma.items():
        if isinstance(lim, dict) and "hcaHandles" not in lim and "hcaObjects" not in lim:
            p.add(_R + ("rdma", name), 'needs "hcaHandles" or "hcaObjects" (or both)')


def _check_cpu(cpu, p):
    quota, burst = cpu.get("quota"), cpu.get("burst")
    if is_int(quota) and is_int(burst) and quota > 0 and burst > quota:
        p.add(_R + ("cpu", "burst"), f"{burst} is greater than quota {quota}")


def _check_unified(unified, p):
    if not isinstance(unified, dict):
        return
    for key in unified:
        if key in ("", ".", "..") or "/" in key or "\0" in key:
            p.add(_R + ("unified", key), "must be a cgroup file name (no '/')")
