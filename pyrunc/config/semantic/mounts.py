"""Semantic checks of mounts (config.md "Mounts"; idmapped mounts, config.md
"uidMappings"/"gidMappings" of a mount)."""
from pyrunc.config.semantic.namespaces import check_id_mappings
from pyrunc.config.problems import as_list

_IDMAP_OPTIONS = ("idmap", "ridmap")


def add_mount_problems(config, userns, p):
    """userns: whether the container has a user namespace."""
    for i, m in enumerate(as_list(config.get("mounts"))):
        if isinstance(m, dict):
            _check_mount(m, ("mounts", i), userns, p)


def _check_mount(m, parts, userns, p):
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
        check_id_mappings(m.get(key), parts + (key,), p)
    options = [o for o in as_list(m.get("options")) if isinstance(o, str)]
    for opt in _IDMAP_OPTIONS:
        if opt in options and not (has_uid or has_gid) and not userns:
            p.add(parts + ("options",), f'"{opt}" needs uidMappings/gidMappings or a user namespace')
