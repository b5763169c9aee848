"""The library's Python API (docs/API.md), driven from Python in a process of its own
(as root, with its own --root and cgroups: the rt fixture's)."""
import inspect
import json
import subprocess
import sys
import textwrap

import pytest

from support.paths import REPO


def run_python(code, **values):
    """Run code in a fresh interpreter; values are given to it as JSON globals.
    Returns its stdout as JSON (the code prints one JSON document)."""
    prelude = "import json, sys\n" + "".join(
        f"{k} = json.loads({json.dumps(json.dumps(v))})\n" for k, v in values.items())
    p = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.unit
def test_create_has_a_signature():
    from pyrunc.container import create

    params = inspect.signature(create).parameters
    assert {"root", "cid", "bundle", "pid_file", "console_socket", "no_pivot"} <= set(params)


def test_library_create_and_exec_leave_the_caller_as_it_was(rt):
    """The caller is a child subreaper only during create and exec, and is the parent
    of what they started (so that it can wait for them), also when create forks the
    init from a stage-1 process (a new time namespace takes two stages)."""
    b = rt.bundle(["sleep", "60"], edit=lambda c: c["linux"]["namespaces"].append({"type": "time"}))
    rt.ids.add("sub")
    out = run_python("""
        import os
        from pyrunc._native import ffi, lib
        from pyrunc.container import create, start, delete, kill
        from pyrunc.exec_process import build_process, exec_in
        from pyrunc.state import open_container

        def subreaper():  # prctl(PR_GET_CHILD_SUBREAPER)
            out = ffi.new("int *")
            assert lib.prctl(37, int(ffi.cast("uintptr_t", out)), 0, 0, 0) == 0
            return bool(out[0])

        def ppid(pid):
            with open(f"/proc/{pid}/status") as f:
                return int(next(l for l in f if l.startswith("PPid:")).split()[1])

        r = {"before": subreaper()}
        c = create(root, "sub", bundle)
        r["after_create"] = subreaper()
        r["init_is_child"] = ppid(c.record["init_pid"]) == os.getpid()
        start(root, "sub")
        proc = dict(c.config["process"], args=["sleep", "60"])
        pid = exec_in(open_container(root, "sub"), proc)
        r["after_exec"] = subreaper()
        r["exec_is_child"] = ppid(pid) == os.getpid()
        delete(root, "sub", force=True)
        print(json.dumps(r))
    """, root=rt.root, bundle=str(b))
    assert out == {"before": False, "after_create": False, "init_is_child": True,
                   "after_exec": False, "exec_is_child": True}
