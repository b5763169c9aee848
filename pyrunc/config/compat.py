"""What runc accepts outside the JSON schema and the spec's MUST clauses, taken with runc's
meaning (a drop-in is never stricter than runc at create/run).

`create` applies the table only when the strict checks fail (a config that passes them
costs nothing here), logs each note at debug level and checks again. `pyrunc validate`
applies it to a copy and shows each note as a warning: the linter stays strict.

Each rule normalises the config in place into the form the rest of pyrunc runs, and
returns notes `JSON-pointer: message`. A value that keeps a meaning the schema cannot
express goes under a private key (`_rootfsPropagation`, a hook's `_timeout`) read by the
code that applies it, so that the rewritten config passes the compiled schema checks
(jsonschema is never imported on this path). `runc:` in each rule names where runc takes
the value (runc 1.1.5 and its current source; for fields 1.1.5 does not know, current
runc's validation rules, e.g. libcontainer/configs/validate/validator.go's scheduler and
time-offset checks, which pyrunc keeps).
"""

import os

from pyrunc.config.problems import pointer

# Keys whose values are Go maps: a JSON null there is an entry with the zero value.
_STRING_MAPS = (("annotations",), ("linux", "sysctl"), ("linux", "resources", "unified"))

# The propagation values runc's specconv mountPropagationMapping knows for rootfsPropagation.
_R_PROPAGATION = ("rshared", "rslave", "rprivate", "runbindable")


def _d(x):
    return x if isinstance(x, dict) else None


def _l(x):
    return x if isinstance(x, list) else ()


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _get(config, *keys):
    node = config
    for k in keys:
        node = _d(node)
        if node is None:
            return None
        node = node.get(k)
    return node


# --------------------------------------------------------------------------- the rules

def _go_null(config, bundle, note):
    """runc: Go's encoding/json leaves a field untouched for a JSON null: null is "unset"."""
    maps = {id(m) for m in (_get(config, *p) for p in _STRING_MAPS) if isinstance(m, dict)}

    def walk(node, parts):
        if isinstance(node, dict):
            for k in list(node):
                v = node[k]
                if v is None:
                    if id(node) in maps:
                        node[k] = ""
                        note(parts + (k,), 'null taken as "" (runc: Go decodes null into a map entry\'s zero value)')
                    else:
                        del node[k]
                        note(parts + (k,), "null taken as unset (runc: Go's encoding/json ignores null)")
                else:
                    walk(v, parts + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, parts + (i,))
    walk(config, ())


def _oci_version(config, bundle, note):
    """runc: never reads ociVersion (specs.Spec.Version is not checked by create/run)."""
    v = config.get("ociVersion")
    if "ociVersion" not in config:
        config["ociVersion"] = ""
        note(("ociVersion",), "missing; runc does not check the version")
        return
    if not isinstance(v, str):
        return
    from pyrunc.config.semantic.checks import version_problem

    why = version_problem(v)
    if why:
        note(("ociVersion",), f"{why}; runc does not check the version")


def _rootfs_propagation(config, bundle, note):
    """runc: libcontainer/specconv mountPropagationMapping takes the r-forms and "" (unset)."""
    linux = _d(config.get("linux"))
    if linux is None or "rootfsPropagation" not in linux:
        return
    v = linux["rootfsPropagation"]
    if v == "":
        del linux["rootfsPropagation"]
        note(("linux", "rootfsPropagation"), '"" taken as unset (runc: specconv maps "" to no propagation change)')
    elif v in _R_PROPAGATION:
        del linux["rootfsPropagation"]
        linux["_rootfsPropagation"] = v
        note(("linux", "rootfsPropagation"), f'"{v}" is not in the schema\'s enum; taken as the recursive '
             f'{v[1:]} (runc: specconv mountPropagationMapping)')


def _user_ids(config, bundle, note):
    """runc: process.user is a Go struct: a missing uid or gid is 0."""
    user = _d(_get(config, "process", "user"))
    for key in ("uid", "gid"):
        if user is not None and key not in user:
            user[key] = 0
            note(("process", "user", key), "missing; taken as 0 (runc: the Go struct's zero value)")


def _console_size(config, bundle, note):
    """runc: process.consoleSize width/height are uints: missing is 0."""
    size = _d(_get(config, "process", "consoleSize"))
    for key in ("width", "height"):
        if size is not None and key not in size:
            size[key] = 0
            note(("process", "consoleSize", key), "missing; taken as 0 (runc: the Go struct's zero value)")


def _rlimits(config, bundle, note):
    """runc: applies every rlimit in order (setrlimit each): the last of a type wins."""
    rlimits = _get(config, "process", "rlimits")
    if not isinstance(rlimits, list):
        return
    last = {}
    for i, rl in enumerate(rlimits):
        t = rl.get("type") if isinstance(rl, dict) else None
        if isinstance(t, str):
            last[t] = i
    keep = []
    for i, rl in enumerate(rlimits):
        t = rl.get("type") if isinstance(rl, dict) else None
        if isinstance(t, str) and last[t] != i:
            note(("process", "rlimits", i), f'duplicate "{t}": entry {last[t]} wins (runc: sets each in order)')
            continue
        keep.append(rl)
    rlimits[:] = keep


def _personality_flags(config, bundle, note):
    """runc: specconv warns "ignoring unsupported personality flags" and goes on."""
    pers = _d(_get(config, "linux", "personality"))
    if pers is not None and _l(pers.get("flags")):
        for i, _ in enumerate(pers["flags"]):
            note(("linux", "personality", "flags", i), "ignored (runc: specconv ignores personality flags)")
        del pers["flags"]


def _id_mappings_without_userns(config, bundle, note):
    """runc: specconv reads linux.uidMappings/gidMappings only with a user namespace."""
    linux = _d(config.get("linux"))
    if linux is None:
        return
    if any(isinstance(ns, dict) and ns.get("type") == "user" for ns in _l(linux.get("namespaces"))):
        return
    for key in ("uidMappings", "gidMappings"):
        if _l(linux.get(key)):
            del linux[key]
            note(("linux", key), "ignored without a user namespace (runc: specconv reads it only for one)")


def _device_rules(config, bundle, note):
    """runc: specconv CreateCgroupConfig: a rule's "" type is "a"; a missing allow is false."""
    for i, rule in enumerate(_l(_get(config, "linux", "resources", "devices"))):
        if not isinstance(rule, dict):
            continue
        if rule.get("type") == "":
            rule["type"] = "a"
            note(("linux", "resources", "devices", i, "type"), '"" taken as "a" (runc: specconv)')
        if "allow" not in rule:
            rule["allow"] = False
            note(("linux", "resources", "devices", i), '"allow" missing; taken as false (a deny rule, runc: Go zero value)')


def _device_nodes(config, bundle, note):
    """runc: fileMode &^ S_IFMT (specconv createDevices); a node without a path is not
    created (rootfs_linux.go createDeviceNode: "the node only exists for cgroup reasons")."""
    devices = _get(config, "linux", "devices")
    if not isinstance(devices, list):
        return
    keep = []
    for i, d in enumerate(devices):
        if not isinstance(d, dict):
            keep.append(d)
            continue
        mode = d.get("fileMode")
        # podman writes fileMode with the file-type bits (0o20666 for a char device).
        if _is_int(mode) and 0o777 < mode <= 0o177777:
            d["fileMode"] = mode & 0o777
            note(("linux", "devices", i, "fileMode"), f"{mode} ({mode:#o}) includes file-type bits; "
                 f"taken as {mode & 0o777:#o} (runc: specconv masks S_IFMT)")
        if d.get("path", "") == "":
            note(("linux", "devices", i), "no path: no device node is made (runc: createDeviceNode skips it)")
            continue
        keep.append(d)
    devices[:] = keep


def _pids(config, bundle, note):
    """runc: pids.limit 0 or missing is "no limit" (cgroups only write a non-zero limit)."""
    res = _d(_get(config, "linux", "resources"))
    pids = _d(res.get("pids")) if res else None
    if pids is not None and "limit" not in pids:
        del res["pids"]
        note(("linux", "resources", "pids"), '"limit" missing; taken as no limit (runc: zero value, not written)')


def _paths(config, bundle, note):
    """runc: masks and read-only binds run with "/" as cwd after pivot_root, so a relative
    path is taken from "/"; "" fails with ENOENT, which runc ignores for both lists."""
    linux = _d(config.get("linux"))
    for key in ("maskedPaths", "readonlyPaths"):
        paths = linux.get(key) if linux else None
        if not isinstance(paths, list):
            continue
        keep = []
        for i, p in enumerate(paths):
            if p == "":
                note(("linux", key, i), "empty; ignored (runc: ENOENT is ignored)")
                continue
            if isinstance(p, str) and not p.startswith("/"):
                note(("linux", key, i), f'"{p}" is relative; taken from / (runc: its cwd there is /)')
                p = "/" + p
            keep.append(p)
        paths[:] = keep


def _seccomp(config, bundle, note):
    """runc: specconv SetupSeccomp: no defaultAction and no syscalls is no filter; a rule
    with no names adds nothing."""
    linux = _d(config.get("linux"))
    sc = _d(linux.get("seccomp")) if linux else None
    if sc is None:
        return
    if sc.get("defaultAction", "") == "" and not _l(sc.get("syscalls")):
        del linux["seccomp"]
        note(("linux", "seccomp"), "no defaultAction and no syscalls: no filter (runc: SetupSeccomp)")
        return
    rules = sc.get("syscalls")
    if isinstance(rules, list):
        keep = []
        for i, rule in enumerate(rules):
            if isinstance(rule, dict) and not rule.get("names"):
                note(("linux", "seccomp", "syscalls", i), "no names: adds no rule (runc: SetupSeccomp)")
                continue
            keep.append(rule)
        rules[:] = keep


def _hooks(config, bundle, note):
    """runc: runs hooks with Go's exec.Cmd from the bundle directory (its cwd): a relative
    path is taken from the bundle, an empty one fails to run; a timeout below 1 s has
    already expired when the hook starts (time.After)."""
    hooks = _d(config.get("hooks"))
    for stage, entries in (hooks or {}).items():
        for i, h in enumerate(_l(entries)):
            if not isinstance(h, dict):
                continue
            path = h.get("path", "")
            if isinstance(path, str) and not path.startswith("/") and bundle is not None:
                h["path"] = os.path.join(bundle, path)
                note(("hooks", stage, i, "path"), f'"{path}" is not absolute; taken from the bundle '
                     f'(runc: its cwd)' + (": the hook fails to run" if not path else ""))
            t = h.get("timeout")
            if _is_int(t) and t < 1:
                h["_timeout"] = h.pop("timeout")
                note(("hooks", stage, i, "timeout"), f"{t}: the hook times out at once (runc: time.After)")


def _annotations(config, bundle, note):
    """runc: annotations are labels it does not interpret; an empty key is kept."""
    ann = _d(config.get("annotations"))
    if ann is not None and "" in ann:
        note(("annotations",), "has an empty key (config.md: keys MUST NOT be empty; runc keeps it)")


def _sysctl_names(config, bundle, note):
    """runc: writes /proc/sys/<key, dots as slashes>, whose walk skips empty and "."
    components ("net.ipv4..ip_forward" is net.ipv4.ip_forward); the init does the same."""
    from pyrunc.linux.sysctl import path_parts

    sysctl = _d(_get(config, "linux", "sysctl"))
    for key in sysctl or ():
        parts = path_parts(key) if isinstance(key, str) else None
        if parts is not None and len(parts) != len(key.split(".")):
            note(("linux", "sysctl", key), 'has an empty or "." component (runc writes the file the '
                 "other components name)")


# The table: (name, rule). Order matters: nulls first, so that the rules after see
# what Go would have decoded.
RULES = (
    ("go-null", _go_null),
    ("ociVersion", _oci_version),
    ("rootfsPropagation", _rootfs_propagation),
    ("user-ids", _user_ids),
    ("consoleSize", _console_size),
    ("rlimits", _rlimits),
    ("personality-flags", _personality_flags),
    ("id-mappings", _id_mappings_without_userns),
    ("device-rules", _device_rules),
    ("device-nodes", _device_nodes),
    ("pids", _pids),
    ("masked-readonly-paths", _paths),
    ("seccomp", _seccomp),
    ("hooks", _hooks),
    ("annotations", _annotations),
    ("sysctl-names", _sysctl_names),
)


def runc_compat(config, bundle=None):
    """Normalise config in place to runc's meaning; returns notes as `JSON-pointer: message`.
    `bundle`: the bundle directory (relative hook paths are taken from it)."""
    notes = []
    if not isinstance(config, dict):
        return notes

    def note(parts, message):
        notes.append(f"{pointer(*parts)}: {message}")
    for _, rule in RULES:
        rule(config, bundle, note)
    return notes
