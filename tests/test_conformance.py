"""The runtime-agnostic conformance cases (conformance/) against the installed pyrunc.

One test per case. The pyrunc binary is the console script next to the interpreter
(``Path(sys.executable).parent / "pyrunc"``); without it every test is skipped. When runc
is installed each case is run against runc first: pyrunc must pass every case runc
passes; a case runc does not pass (a known runc deviation from the spec, XFAIL) is
xfailed for pyrunc if pyrunc fails it too. Without runc, pyrunc must pass every case.

    pytest tests/test_conformance.py -k hooks
"""
import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from conformance import bundle as _bundle  # noqa: E402
from conformance import run as _run  # noqa: E402
from conformance.cases import load_cases  # noqa: E402

PYRUNC = Path(sys.executable).parent / "pyrunc"
RUNC = shutil.which("runc")
CASES = load_cases()

pytestmark = [
    pytest.mark.skipif(not PYRUNC.is_file(), reason=f"the pyrunc console script is not installed ({PYRUNC})"),
    pytest.mark.skipif(os.geteuid() != 0, reason="conformance cases run real containers: root only"),
    pytest.mark.skipif(not os.path.isfile(_bundle.BUSYBOX), reason="busybox-static is not installed"),
]


def _show(res):
    return res["status"] + (f": {res['reason']}" if res["reason"] else "")


@pytest.fixture(scope="module", autouse=True)
def _tidy_cgroup_prefix():
    yield
    _bundle.remove_empty_prefix_dirs()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_conformance(case):
    ref = _run.run_case(case, RUNC) if RUNC else None
    res = _run.run_case(case, str(PYRUNC))
    where = f"{case.id} ({case.ref}): {case.title}"
    if res["status"] == _run.SKIP:
        pytest.skip(f"{where}: {res['reason']}")
    if ref is None or ref["status"] == _run.PASS:
        assert res["status"] == _run.PASS, (
            f"{where}\n  pyrunc: {_show(res)}"
            + ("\n  runc passes this case" if ref else ""))
    elif res["status"] != _run.PASS:
        pytest.xfail(f"runc does not pass it either ({_show(ref)}); pyrunc: {_show(res)}")
