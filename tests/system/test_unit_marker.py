"""The tests marked `unit` need no root and no compiled module: run them as `nobody` on a
copy of the checkout without pyrunc's compiled modules (tests/support/unit_run.py also
makes pyrunc.native._lowlevel unimportable), and they all pass, in seconds."""
import os
import re
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from support.unit_run import command_for, unbuilt_copy

NOBODY = 65534
# What a unit test may not skip for: it would then be a root or native test in disguise.
WRONG_SKIPS = ("root", "console script", "_native", "not built", "not importable")


def _run(argv, env, cwd, timeout):
    if os.geteuid() == 0:  # drop to nobody; the shell execs the interpreter without caps
        argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                "/bin/sh", "-c", 'exec "$@"', "sh", *argv]
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def open_tmp():
    """A tmp dir `nobody` can traverse (pytest's are 0700 on the way), removed after."""
    d = Path(tempfile.mkdtemp(prefix="pyrunc-unit-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_unit_tests_run_as_nobody_without_the_compiled_module(open_tmp):
    tmp_path = open_tmp
    main = unbuilt_copy(tmp_path)
    assert not list(main.rglob("*.so"))
    home = tmp_path / "home"
    home.mkdir()
    os.chmod(tmp_path, 0o755)
    if os.geteuid() == 0:
        os.chown(home, NOBODY, NOBODY)
    argv, env = command_for(main, "--basetemp", str(home / "bt"), "-q", "-rs", "-m", "unit",
                            str(main / "tests"))
    env["HOME"] = str(home)
    listed = _run(argv + ["--co"], env, home, 120)
    assert listed.returncode == 0, listed.stdout[-3000:] + listed.stderr[-3000:]
    collected = int(re.search(r"(\d+)/\d+ tests collected", listed.stdout).group(1))
    t0 = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = _run(argv, env, home, 600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    elapsed = time.monotonic() - t0
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-5000:]
    summary = out.strip().splitlines()[-1]
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|skipped|failed|errors?)", summary)}
    assert counts.get("passed", 0) + counts.get("skipped", 0) == collected > 300, summary
    wrong = [l for l in out.splitlines() if l.startswith("SKIPPED") and any(w in l for w in WRONG_SKIPS)]
    assert not wrong, "\n".join(wrong)
    # "In seconds": CPU time, which a loaded machine does not stretch as it does wall time.
    assert cpu < 60, f"pytest -m unit took {cpu:.0f} s of CPU ({elapsed:.0f} s): {summary}"
