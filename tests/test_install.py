"""A wheel built from the checkout works in a fresh venv: the launcher, the compiled
cffi module, the schemas installed as data files (README's first command, minus apt)."""
import json
import os
import subprocess
import sys
import sysconfig

import pytest

from conftest import REPO


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
    launcher = (fresh_venv / "bin" / "pyrunc").read_text()
    assert launcher.startswith(f"#!{fresh_venv}/bin/python") and "import re" not in launcher
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
