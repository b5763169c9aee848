"""A wheel built from the checkout works in a fresh venv: the launcher, the compiled
cffi module, the schemas installed as data files (README's first command, minus apt)."""
import json
import os
import subprocess
import sys
import sysconfig

import pytest

from support.paths import REPO


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("install")
    wheels = tmp / "wheels"
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "-w", str(wheels), str(REPO)], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        pytest.fail(f"building the wheel failed: {p.stderr[-2000:]}")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    wheel = next(wheels.glob("pyrunc-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                    "-q", "--no-deps", str(wheel)], check=True, capture_output=True, timeout=300)
    return venv


def run(venv, *args, cwd=None):
    # Dependencies (jsonschema for validate) come from the test environment.
    env = dict(os.environ, PYTHONPATH=sysconfig.get_paths()["purelib"])
    return subprocess.run([str(venv / "bin" / "pyrunc"), *map(str, args)], capture_output=True,
                          text=True, timeout=60, env=env, cwd=cwd)


def test_installed_commands_work(fresh_venv, tmp_path):
    assert (fresh_venv / "bin" / "pyrunc").read_bytes()[:4] == b"\x7fELF"  # scripts/pyrunc.c
    script = (fresh_venv / "bin" / "pyrunc-py").read_text()
    assert script.startswith(f"#!{fresh_venv}/bin/python"), script[:300]
    assert "import re" not in script
    p = run(fresh_venv, "--version")
    assert p.returncode == 0 and "spec: 1.3.0" in p.stdout
    assert run(fresh_venv, "spec", "--bundle", tmp_path).returncode == 0
    (tmp_path / "rootfs").mkdir()
    p = run(fresh_venv, "validate", "--bundle", tmp_path)
    assert p.returncode == 0, p.stderr
    # the installed copy of the schemas is used (no checkout next to the package)
    assert list((fresh_venv / "share" / "pyrunc" / "specs").glob("*.json"))
    config = json.loads((tmp_path / "config.json").read_text())
    config["linux"]["namespaces"][0]["type"] = "nope"
    (tmp_path / "config.json").write_text(json.dumps(config))
    p = run(fresh_venv, "validate", "--bundle", tmp_path)
    assert p.returncode == 1 and "/linux/namespaces/0/type" in p.stdout
    f = json.loads(run(fresh_venv, "features").stdout)
    assert f["ociVersionMax"] == "1.3.0"


@pytest.mark.parametrize("form", ["short", "sh", "sh-quoted"])
def test_the_command_finds_its_interpreter_in_pyrunc_py(fresh_venv, tmp_path, form):
    """The compiled `pyrunc` runs the interpreter that pyrunc-py beside it names, in each
    #! form an installer writes (pip/distlib: a two-line /bin/sh one for paths too long
    for the kernel, with the path quoted when it has spaces)."""
    import shutil

    spaced = tmp_path / "venv with space"
    spaced.symlink_to(fresh_venv)
    quote = chr(39) * 3  # three single quotes, as distlib writes them
    first = {"short": f"#!{fresh_venv}/bin/python\n",
             "sh": f"#!/bin/sh\n{quote}exec' {fresh_venv}/bin/python \"$0\" \"$@\"\n' {quote}\n",
             "sh-quoted": f"#!/bin/sh\n{quote}exec' \"{spaced}/bin/python\" \"$0\" \"$@\"\n' {quote}\n",
             }[form]
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shutil.copy(fresh_venv / "bin" / "pyrunc", bindir / "pyrunc")
    (bindir / "pyrunc-py").write_text(first + "# nothing else is read\n")
    env = dict(os.environ, PYTHONPATH=sysconfig.get_paths()["purelib"])
    p = subprocess.run([str(bindir / "pyrunc"), "--version"], capture_output=True, text=True,
                       timeout=60, env=env)
    assert p.returncode == 0 and "spec: 1.3.0" in p.stdout, (first, p.stderr)
    (bindir / "pyrunc-py").write_text("no interpreter here\n")
    p = subprocess.run([str(bindir / "pyrunc"), "--version"], capture_output=True, text=True,
                       timeout=60, env=env)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "pyrunc-py" in p.stderr, p.stderr


# Modules the create/start/state/kill/delete path must not import (docs/ARCHITECTURE.md:
# Python's start-up is the cost; each of these is ms). Tested in the installed command,
# not the editable checkout, whose import finder itself imports pathlib, re, ...
HEAVY = {"re", "enum", "json", "jsonschema", "referencing", "pyroute2", "argparse", "subprocess",
         "logging", "inspect", "dataclasses", "typing", "pathlib", "signal", "socket", "ast",
         "threading", "asyncio", "tempfile", "shutil"}


def test_hot_path_imports_nothing_heavy(fresh_venv, tmp_path):
    from pyrunc.tooling.bundle import make_bundle

    bundle = tmp_path / "b"
    make_bundle(str(bundle), ["sleep", "30"])
    root = tmp_path / "state"
    env = dict(os.environ, PYTHONPATH=sysconfig.get_paths()["purelib"], PYTHONPROFILEIMPORTTIME="1")
    cid = f"imp{os.getpid()}"
    steps = [("create", "--bundle", bundle, cid), ("start", cid), ("state", cid), ("kill", cid, "KILL"),
             ("delete", "--force", cid)]
    try:
        for step in steps:
            with open(tmp_path / "err", "w+") as err:
                p = subprocess.run([str(fresh_venv / "bin" / "pyrunc"), "--root", str(root), *map(str, step)],
                                   stdout=subprocess.DEVNULL, stderr=err, text=True, timeout=60, env=env)
                err.seek(0)
                text = err.read()
            assert p.returncode == 0, (step, text[-2000:])
            mods = {l.split("|")[-1].strip() for l in text.splitlines() if l.startswith("import time:")}
            assert "pyrunc.cli" in mods, step  # the profile is there
            assert not (mods & HEAVY), (step[0], sorted(mods & HEAVY))
    finally:
        subprocess.run([str(fresh_venv / "bin" / "pyrunc"), "--root", str(root), "delete", "--force", cid],
                       capture_output=True, timeout=60, env=dict(env, PYTHONPROFILEIMPORTTIME=""))
