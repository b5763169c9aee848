"""The import graph of pyrunc/ has no cycle (issue 16, item 3): every import statement,
at module level or inside a function, parsed with ast. An edge goes to the module an
import names (``from pyrunc.rootfs import mounts`` -> pyrunc.rootfs.mounts; ``from
pyrunc.cgroups import new_manager`` -> pyrunc.cgroups), so a package's __init__ may
import its submodules only if none of them imports the package back."""
import ast

import pytest

from support.paths import REPO

pytestmark = pytest.mark.unit

PACKAGE = REPO / "pyrunc"


def _modules():
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


def _imports(name, path, mods):
    """The pyrunc modules that `name` (at `path`) imports anywhere in its text."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.add(sub if sub in mods else base)
    return {m for m in out if m in mods and m != name}


def graph():
    mods = _modules()
    return {name: _imports(name, path, mods) for name, path in mods.items()}


def cycles(edges):
    """Each strongly connected component of more than one module (Tarjan), sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(out)


def test_the_checker_sees_a_cycle_and_function_level_imports(tmp_path):
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    g = graph()
    # a function-level import is an edge (pyrunc.api imports the lifecycle inside methods)
    assert g["pyrunc.api"], g["pyrunc.api"]
    assert "pyrunc.native.syscalls" in g["pyrunc.native.fake"]


def test_no_import_cycle_between_pyrunc_modules():
    found = cycles(graph())
    assert found == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


# The layers of docs/ARCHITECTURE.md, top (0) to bottom; a module imports its own layer
# or lower ones. config/, errors, log, util/, features, tooling/ stand beside them.
LAYERS = {"cli": 0, "api": 1, "options": 1, "events": 1, "container": 2,
          "process": 3, "rootfs": 3, "linux": 3, "cgroups": 3, "native": 4}


def upward(edges):
    def layer(module):
        parts = module.split(".")
        return LAYERS.get(parts[1]) if len(parts) > 1 else None

    return sorted(f"{a} -> {b}" for a, bs in edges.items() for b in bs
                  if layer(a) is not None and layer(b) is not None and layer(b) < layer(a))


def test_the_checker_sees_an_upward_import():
    assert upward({"pyrunc.process.init": {"pyrunc.container.state", "pyrunc.linux.seccomp"}}) \
        == ["pyrunc.process.init -> pyrunc.container.state"]


def test_no_import_goes_up_a_layer():
    assert upward(graph()) == []
