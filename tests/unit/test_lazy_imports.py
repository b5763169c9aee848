"""Imports are at module top; an import inside a function (or class body) names a module
in LAZY, the one list of docs/ARCHITECTURE.md "Lazy imports: which and why" (issue 16,
item 3). Each entry is a module ("package.*": the package and its submodules) and the
category of that section."""
import ast
import re

import pytest

from support.paths import REPO

pytestmark = pytest.mark.unit

PACKAGE = REPO / "pyrunc"

HEAVY, OPTIONAL, IMPLEMENTATION, VALIDATION, OPERATION, PREIMPORT = (
    "1 heavy, off the path that needs it", "2 what a config or a command may not use",
    "3 one of several implementations", "4 validation stages", "5 the API by operation",
    "6 the container side's preimports")

LAZY = {
    # 1: standard library a hot command does not load, and the compiled module
    "subprocess": HEAVY, "socket": HEAVY, "struct": HEAVY, "select": HEAVY, "fcntl": HEAVY,
    "json": HEAVY, "re": HEAVY, "threading": HEAVY, "termios": HEAVY,
    "tty": HEAVY, "traceback": HEAVY, "hashlib": HEAVY, "importlib.metadata": HEAVY,
    "math": HEAVY, "pyrunc.native.syscalls": HEAVY, "pyrunc.util.jsonutil": HEAVY,
    # 2
    "pyrunc.linux.seccomp": OPTIONAL, "pyrunc.linux.seccomp_notify": OPTIONAL,
    "pyrunc.linux.lsm.*": OPTIONAL, "pyrunc.linux.netdevices": OPTIONAL,
    "pyrunc.linux.netlink": OPTIONAL, "pyroute2.*": OPTIONAL, "pyrunc.linux.console": OPTIONAL,
    "pyrunc.linux.sysctl": OPTIONAL, "pyrunc.rootfs.hostmounts": OPTIONAL,
    "pyrunc.rootfs.idmapped": OPTIONAL, "pyrunc.process.hooks": OPTIONAL,
    "pyrunc.cgroups.systemd.*": OPTIONAL, "pyrunc.cgroups.v2.ebpf": OPTIONAL,
    "pyrunc.cgroups.stats": OPTIONAL, "pyrunc.cgroups.oomwatch": OPTIONAL,
    "pyrunc.cgroups.subcgroup": OPTIONAL, "pyrunc.util.pidfile": OPTIONAL,
    # 3
    "pyrunc.cgroups": IMPLEMENTATION, "pyrunc.cgroups.base": IMPLEMENTATION,
    "pyrunc.cgroups.cgroupfs": IMPLEMENTATION,
    "pyrunc.cgroups.v1.*": IMPLEMENTATION, "pyrunc.cgroups.v2.*": IMPLEMENTATION,
    # 4
    "pyrunc.config.schema._checks": VALIDATION, "pyrunc.config.schema.messages": VALIDATION,
    "jsonschema.*": VALIDATION, "referencing.*": VALIDATION, "pyrunc.config.compat": VALIDATION,
    "pyrunc.config.semantic.*": VALIDATION, "pyrunc.config.load": VALIDATION,
    # 5
    "pyrunc.container.*": OPERATION, "pyrunc.process.exec": OPERATION,
    "pyrunc.process.supervise": OPERATION, "pyrunc.events": OPERATION,
    "pyrunc.config.validate": OPERATION,
    # 6
    "pyrunc.rootfs.prepare": PREIMPORT, "pyrunc.rootfs.pivot": PREIMPORT,
    "pyrunc.rootfs.finalize": PREIMPORT,
}

# 6: the functions whose imports are the preimport list itself (any module)
PREIMPORTS = {("pyrunc/process/init.py", "preimport"),
              ("pyrunc/process/init.py", "preimport_process")}

SKIP = {"pyrunc/config/schema/_checks.py"}  # generated (config/schema/compiler.py)


def _modules():
    return {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            for p in PACKAGE.rglob("*.py")}


def imported(node, path, mods):
    """The modules an import statement names, resolved (``from pyrunc.native import
    syscalls`` -> pyrunc.native.syscalls; ``from pyrunc.cgroups import new_manager`` ->
    pyrunc.cgroups)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        package = ".".join(path.relative_to(REPO).parent.parts).split(".")
        base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]


def allowed(module):
    """In LAZY: the module itself, or under a "package.*" entry."""
    return any(module == k or k.endswith(".*") and (module + ".").startswith(k[:-1])
               for k in LAZY)


def nested_imports(tree):
    """(import node, enclosing function or class name) for each import not at module level."""
    def visit(node, scope):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)) and scope:
                yield child, scope
            inner = child.name if isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else scope
            yield from visit(child, inner)
    yield from visit(tree, None)


def violations(path, text, mods):
    rel = path.relative_to(REPO).as_posix()
    out = []
    for node, scope in nested_imports(ast.parse(text, rel)):
        if (rel, scope) in PREIMPORTS:
            continue
        out += [f"{rel}:{node.lineno}: {m} (in {scope})"
                for m in dict.fromkeys(imported(node, path, mods)) if not allowed(m)]
    return out


def test_the_checker_sees_a_function_level_import(tmp_path):
    mods = _modules()
    path = PACKAGE / "linux" / "example.py"
    text = ("import os\n"
            "def f():\n    import json\n    from pyrunc.native import constants\n"
            "class C:\n    from pyrunc import errors\n"
            "    def g(self):\n        from ..linux import seccomp\n")
    assert violations(path, text, mods) == [
        "pyrunc/linux/example.py:4: pyrunc.native.constants (in f)",
        "pyrunc/linux/example.py:6: pyrunc.errors (in C)"]
    assert allowed("pyrunc.cgroups") and allowed("pyrunc.cgroups.v1.manager")
    assert not allowed("pyrunc.cgroups.fs") and not allowed("pyrunc.native.constants")


def test_imports_inside_functions_are_only_the_documented_lazy_ones():
    mods = _modules()
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(REPO).as_posix() not in SKIP:
            found += violations(path, path.read_text(), mods)
    assert found == [], (
        "imports inside functions that are not in LAZY (move them to the module top, or add "
        "the module to LAZY and to docs/ARCHITECTURE.md with its reason):\n" + "\n".join(found))


def test_the_lazy_list_names_real_modules():
    mods = _modules()
    stale = [k for k in LAZY if k.startswith("pyrunc") and k.removesuffix(".*") not in mods]
    assert stale == []


def test_the_architecture_doc_names_each_lazy_module():
    doc = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    section = doc.split("## Lazy imports: which and why")[1].split("\n## ")[0]
    missing = [k for k in LAZY
               if not re.search(rf"\b{re.escape(k.removesuffix('.*').rpartition('.')[2])}\b", section)]
    assert missing == [], f"in LAZY, not in ARCHITECTURE.md's lazy imports: {missing}"
