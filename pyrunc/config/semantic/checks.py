"""Checks of config.json the JSON schema cannot express (MUST clauses of config.md and
config-linux.md, and what runc refuses): each problem as ``"<JSON pointer>: <message>"``.

``semantic_problems`` runs the areas in turn: this module's document-level checks
(version, root, hooks, annotations), then process_checks, mount_checks,
namespace_checks (and id mappings), resource_checks and linux_checks. The one entry
that runs schema, runc compatibility and these checks is config/validate.py."""

import os
import stat

from pyrunc.config.semantic.linux import add_linux_problems
from pyrunc.config.semantic.mounts import add_mount_problems
from pyrunc.config.semantic.namespaces import add_namespace_problems, namespaces
from pyrunc.config.problems import Problems, abs_path, as_list, show, sort_problems, string_map
from pyrunc.config.semantic.process import add_process_problems
from pyrunc.config.semantic.resources import add_resource_problems

SUPPORTED_VERSIONS = "1.0.0 to 1.3.x"
_SUPPORTED_MINORS = ("0", "1", "2", "3")
_SEMVER_ALNUM = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-")
_HOOK_STAGES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


def semantic_problems(config, bundle_dir=None, strict=True) -> list:
    """Problems the JSON schema cannot express (same ``pointer: message`` format).

    ``bundle_dir`` is used to check that root.path is an existing directory;
    with None, file system checks are skipped.  Values of the wrong type are
    ignored here (the schema reports them), so this never raises on odd input.
    ``strict=False`` (create) leaves out what runc accepts as it is: the version and
    empty annotation keys (config/compat.py warns of them in ``pyrunc validate``).
    """
    if not isinstance(config, dict):
        return []
    p = Problems()
    if strict:
        _check_version(config, p)
    _check_root(config, bundle_dir, p)
    add_process_problems(config.get("process"), ("process",), p)
    _check_hooks(config, p)
    string_map(config.get("annotations"), ("annotations",), p, what="annotation keys", empty_ok=not strict)
    linux = config.get("linux")
    linux = linux if isinstance(linux, dict) else {}
    ns = namespaces(linux)
    add_mount_problems(config, "user" in ns, p)
    add_namespace_problems(config, linux, ns, p)
    add_resource_problems(linux, p)
    add_linux_problems(linux, ns, p)
    return sort_problems(p.items)


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


def _check_hooks(config, p):
    hooks = config.get("hooks")
    if not isinstance(hooks, dict):
        return
    for stage in _HOOK_STAGES:
        for i, h in enumerate(as_list(hooks.get(stage))):
            if isinstance(h, dict):
                abs_path(p, ("hooks", stage, i, "path"), h.get("path"))
