"""bench/run.py works end to end (tiny sizes). No timing assertions: it is a benchmark."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from support.host import prefix_dirs, pyrunc_binary
from support.paths import REPO

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def test_bench_run_smoke(tmp_path):
    runc = shutil.which("runc")
    if not runc:
        pytest.skip("runc is not installed")
    out = tmp_path / "bench.json"
    work = tmp_path / "work"
    work.mkdir()
    # Run by the interpreter itself, not the venv's python: the bench needs no venv.
    p = subprocess.run(
        [os.path.realpath(sys.executable), str(REPO / "bench" / "run.py"),
         "--pyrunc", pyrunc_binary(), "--runc", runc,
         "--rounds", "1", "--floor-rounds", "1", "--list-size", "5", "--list-real", "2",
         "--concurrent", "3", "--concurrent-rounds", "1", "--json", str(out), "--tmp", str(work),
         "--quiet"],
        capture_output=True, text=True, timeout=300)  # (minutes under QEMU TCG: the v2 guest)
    assert p.returncode == 0, p.stdout + p.stderr
    res = json.loads(out.read_text())
    assert res["complete"] and not res["errors"] and not res["cleanup_problems"], res
    ops = res["ops"]
    for op in ("run", "create", "state", "start", "exec", "kill", "delete", "kill+delete",
               "list (2 real)", "list (5 synthetic)", "--version"):
        assert set(ops[op]) >= {"pyrunc", "runc", "ratio"}, op
        assert ops[op]["pyrunc"]["n"] == 1 and ops[op]["runc"]["n"] == 1
    assert ops["floor: python3 -S -E -c pass"]["pyrunc"]["n"] == 1
    assert ops["floor: python3 -c pass"]["pyrunc"]["n"] == 1
    # The floors run pyrunc's own interpreter (for the compiled launcher, the one of the
    # pyrunc-py beside it: the venv's), not the bench's.
    assert os.path.dirname(res["meta"]["python_floor"]) == os.path.dirname(pyrunc_binary())
    for who in ("pyrunc", "runc"):
        assert res["concurrent"][who]["failed"] == 0
        assert res["concurrent"][who]["rounds"][0]["listed_after"] == 3
        check = res["list_synthetic_check"][who]
        assert check["listed"] == check["listed_stopped"] == 5
    for line in ("run", "create", "concurrent creates"):
        assert line in p.stdout
    # everything was cleaned up: the work dir, and the cgroups under the bench's prefix
    assert list(work.iterdir()) == []
    assert not any(d.exists() for d in prefix_dirs(res["meta"]["cgroup_prefix"]))


def test_bench_importtime_smoke(tmp_path):
    """bench/importtime.py end to end: import trees of every command, and profiles of
    the installed command (which ends with os._exit) and of the container init it forks."""
    out = tmp_path / "importtime.json"
    work = tmp_path / "work"
    work.mkdir()
    p = subprocess.run(
        [sys.executable, str(REPO / "bench" / "importtime.py"), "--pyrunc", pyrunc_binary(),
         "--repeat", "1", "--json", str(out), "--tmp", str(work)],
        capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    res = json.loads(out.read_text())
    assert set(res["cprofile"]) == {"create", "state", "start"}
    assert "main" in res["cprofile_children"]
    assert any(k.startswith("exec.") for k in res["cprofile_children"]), res["cprofile_children"]
    assert not res["cleanup_problems"]
