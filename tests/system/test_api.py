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
    from pyrunc.container.create import create

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
        from pyrunc.native._lowlevel import ffi, lib
        from pyrunc.container.create import create
        from pyrunc.container.delete import delete
        from pyrunc.container.kill import kill
        from pyrunc.container.start import start
        from pyrunc.process.exec import build_process, exec_in
        from pyrunc.container.state import open_container

        def subreaper():  # prctl(PR_GET_CHILD_SUBREAPER)
            out = ffi.new("int *")
            assert lib.prctl(37, int(ffi.cast("uintptr_t", out)), 0, 0, 0) == 0  # PR_GET_CHILD_SUBREAPER
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


def test_drive_a_container_through_the_api(rt):
    """create, state, start, exec, wait, pause/resume, ps, update, stats, kill, delete
    from Python; what the processes see is checked in the container, and nothing is
    left: no state, no process (the rt fixture checks the cgroups)."""
    b = rt.bundle(["sleep", "60"])
    rt.ids.add("api")
    out = run_python("""
        import os
        from pyrunc import Container, CreateOptions, ExecOptions

        def _err(f):
            try:
                f()
            except Exception as e:
                return e

        r = {}
        c = Container.create("api", CreateOptions(bundle, pid_file=pid_file), root=root)
        r["created"] = c.state()["status"]
        init = c.pid
        r["pid_file"] = open(pid_file).read() == str(init)
        c.start()
        r["running"] = Container("api", root=root).status()
        pid = c.exec(ExecOptions(["sh", "-c", "echo $FOO $(pwd) $(id -u):$(id -g) > /tmp/seen; exit 7"],
                                 env=["FOO=bar"], cwd="/etc", uid=1000, gid=1001))
        r["exec_code"] = c.wait(pid)
        c.pause()
        r["paused"] = c.status()
        r["exec_paused"] = type(_err(lambda: c.exec(ExecOptions(["true"])))).__name__
        c.resume()
        r["ps_has_init"] = init in c.ps()
        c.update({"pids": {"limit": 321}})
        r["limit"] = c.config["linux"]["resources"]["pids"]["limit"]
        r["stats_pids"] = "pids" in c.stats()
        c.kill("KILL")  # (pid 1 of its pid namespace: SIGTERM has no default action)
        r["init_code"] = c.wait()
        r["stopped"] = c.status()
        c.delete()
        r["gone"] = type(_err(c.state)).__name__
        r["init_exists"] = os.path.exists(f"/proc/{init}")
        r["left"] = os.listdir(root)
        print(json.dumps(r))
    """, root=rt.root, bundle=str(b), pid_file=str(rt.tmp / "init.pid"))
    assert out == {"created": "created", "pid_file": True, "running": "running",
                   "exec_code": 7, "paused": "paused", "exec_paused": "OptionError",
                   "ps_has_init": True, "limit": 321, "stats_pids": True,
                   "init_code": 128 + 9, "stopped": "stopped", "gone": "ContainerNotFound",
                   "init_exists": False, "left": []}
    assert (b / "rootfs" / "tmp" / "seen").read_text() == "bar /etc 1000:1001\n"


def test_run_and_wait_outside_the_cli(rt):
    b = rt.bundle(["sh", "-c", "exit 5"])
    rt.ids.add("r1")
    out = run_python("""
        from pyrunc import Container, CreateOptions

        c = Container.run("r1", CreateOptions(bundle), root=root)
        code = c.wait()
        c.delete()
        print(json.dumps([code, c.list(root=root)]))
    """, root=rt.root, bundle=str(b))
    assert out == [5, []]


def test_run_failure_leaves_nothing(rt):
    b = rt.bundle(["/no/such/program"])
    rt.ids.add("r2")
    out = run_python("""
        import os
        from pyrunc import Container, CreateOptions, PyruncError

        try:
            Container.run("r2", CreateOptions(bundle), root=root)
        except PyruncError as e:
            print(json.dumps([str(e), os.listdir(root)]))
    """, root=rt.root, bundle=str(b))
    assert "/no/such/program" in out[0] and out[1] == []


@pytest.mark.unit
def test_option_errors_name_the_option_not_a_flag():
    """The library's words name its options; the CLI's (tests/system/test_process_validation.py)
    name its flags."""
    from pyrunc.errors import OptionError
    from pyrunc.process.exec import build_process
    from pyrunc.options import ExecOptions

    for opts, text in ((ExecOptions(["x"], cwd="tmp"), "invalid cwd tmp: must be an absolute path"),
                       (ExecOptions(["x"], env=["A"]), "invalid env A: not of the form NAME=value"),
                       (ExecOptions(["x"], uid=-1), "invalid uid -1: uids and gids must be in range")):
        try:
            build_process({"args": ["sh"]}, opts)
        except OptionError as e:
            assert str(e).startswith(text) and "--" not in str(e)
        else:
            raise AssertionError(f"{opts} accepted")


@pytest.mark.unit
def test_options_behave_as_dataclasses():
    from pyrunc.options import CreateOptions, ExecOptions

    o = CreateOptions("/b", pid_file="/p")
    assert o == CreateOptions("/b", pid_file="/p") != o.replace(no_pivot=True)
    assert repr(o).startswith("CreateOptions(bundle='/b', config=None")
    assert list(inspect.signature(ExecOptions).parameters)[:3] == ["args", "process", "env"]
    try:
        ExecOptions(["x"], detach=True)
    except TypeError:
        pass
    else:
        raise AssertionError("unknown field accepted")


@pytest.mark.unit
def test_import_pyrunc_is_cheap():
    """`import pyrunc` loads none of the API (every command imports the package), and
    the API modules import nothing heavy."""
    import os

    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's pyrunc, installed or not
    code = "import pyrunc, sys; print(sorted(m for m in sys.modules if m.startswith('pyrunc')))"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env=env)
    assert p.stdout.strip() == "['pyrunc']"
    code = ("import sys; before = set(sys.modules)\n"
            "from pyrunc import Container, CreateOptions, ExecOptions, PyruncError\n"
            "print(' '.join(sorted(set(sys.modules) - before)))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env=env)
    mods = set(p.stdout.split())
    assert "pyrunc.api" in mods
    for heavy in ("dataclasses", "inspect", "typing", "re", "enum", "json", "subprocess",
                  "pyrunc.container.create", "pyrunc.process.exec", "pyrunc.cgroups"):
        assert heavy not in mods, heavy


def test_docs_example_runs_as_it_stands(tmp_path):
    """docs/API.md's example, run as it is written; its `# comments` are its output."""
    import os
    import re

    doc = (REPO / "docs" / "API.md").read_text()
    code = re.search(r"## Example.*?```python\n(.*?)```", doc, re.S).group(1)
    expected = [m.group(1).split(" (")[0] for m in re.finditer(r"^print\(.*#\s*(.+)$", code, re.M)]
    assert len(expected) >= 5
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60, env={**os.environ, "TMPDIR": str(tmp_path)})
        assert p.returncode == 0, p.stderr
        assert p.stdout.split("\n")[:-1] == expected
        assert list(tmp_path.iterdir()) == []  # the example removes what it made
    finally:
        from support.host import prefix_dirs, pyrunc_binary

        for state in tmp_path.glob("*/state"):  # a failed run: its container goes
            subprocess.run([pyrunc_binary(), "--root", str(state), "delete", "--force", "demo"])
        left = [d for d in prefix_dirs("pyrunc-example") if d.exists()]
        for d in left:
            for sub in (d / "demo", d):
                try:
                    sub.rmdir()
                except OSError:
                    pass
    assert left == [], "cgroups left behind"


@pytest.mark.unit
def test_cli_uses_only_the_api():
    """The command modules reach containers through pyrunc.api only: none imports the
    modules that implement the operations."""
    import ast

    # (the CLI's own: config/ to read its files, process.spawn/supervise and
    # linux.console for run's foreground)
    inner = ("pyrunc.container", "pyrunc.process.exec", "pyrunc.process.init", "pyrunc.events",
             "pyrunc.cgroups", "pyrunc.rootfs")
    found = []
    for f in sorted((REPO / "pyrunc" / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [f"{node.module}.{a.name}" for a in node.names] if isinstance(node, ast.ImportFrom) else []
            found += [f"{f.name}: {n}" for n in names if n.startswith(inner)]
    assert found == []


def test_exec_process_is_checked(rt):
    """ExecOptions(process=...) is checked as config.json's process (a uid of -1 would
    leave the process root)."""
    b = rt.bundle(["sleep", "60"])
    rt.ids.add("chk")
    out = run_python("""
        from pyrunc import Container, CreateOptions, ExecOptions, PyruncError

        c = Container.run("chk", CreateOptions(bundle), root=root)
        try:
            try:
                c.exec(ExecOptions(process={"args": ["true"], "cwd": "/", "user": {"uid": -1, "gid": 0}}))
                print(json.dumps("accepted"))
            except PyruncError as e:
                print(json.dumps(str(e)))
        finally:
            c.delete(force=True)
    """, root=rt.root, bundle=str(b))
    # (before the check, a later one refused it: "process.user.uid: -1 is not a uid/gid")
    assert out.startswith("ExecOptions.process: ") and "/user/uid" in out, out
