"""The runtime-agnostic conformance cases (conformance/) against the installed pyrunc.

One test per case. The pyrunc binary is the console script next to the interpreter
(``Path(sys.executable).parent / "pyrunc"``); without it every test is skipped.

pyrunc must pass every case, except one listed in PYRUNC_KNOWN with its reason (the
spec clause and why pyrunc does otherwise): that one is an xfail, and a failure once
pyrunc passes it (the record is then stale). "runc fails it too" is no reason. When
runc is installed each case also runs against runc, and runc's result must be what the
case records: a pass, or a fail with the case's ``runc_deviation`` (XFAIL).

    pytest tests/system/test_conformance.py -k hooks
"""
import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
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


# Cases pyrunc fails on purpose: {case id: reason naming the spec clause}.
PYRUNC_KNOWN = {
    "process-rlimits-duplicate":
        'config.md#posix-process says "If rlimits contains duplicated entries with same type, '
        'the runtime MUST generate an error"; runc 1.1.5 creates the container (the last '
        'entry wins) and a drop-in is never stricter than runc at create: `pyrunc validate` '
        'reports it (tests/unit/test_validate.py, rlimit-dup) and the compat table lists it '
        '(tests/system/test_compat.py, rlimit-duplicate)',
}


def _show(res):
    return res["status"] + (f": {res['reason']}" if res["reason"] else "")


@pytest.fixture(scope="module", autouse=True)
def _tidy_cgroup_prefix():
    yield
    _bundle.remove_empty_prefix_dirs()


def test_known_failures_are_cases():
    assert set(PYRUNC_KNOWN) <= {c.id for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_conformance(case):
    ref = _run.run_case(case, RUNC) if RUNC else None
    res = _run.run_case(case, str(PYRUNC))
    where = f"{case.id} ({case.ref}): {case.title}"
    runc = f"\n  runc: {_show(ref)}" if ref else ""
    if ref is not None:
        assert ref["status"] in (_run.PASS, _run.XFAIL, _run.SKIP), (
            f"{where}\n  runc's result is not what the case records (runc_deviation: "
            f"{case.runc_deviation}){runc}")
    if res["status"] == _run.SKIP:
        pytest.skip(f"{where}: {res['reason']}")
    known = PYRUNC_KNOWN.get(case.id)
    if known:
        assert res["status"] != _run.PASS, f"{where}: pyrunc passes it now: drop it from PYRUNC_KNOWN"
        pytest.xfail(f"{known}; pyrunc: {_show(res)}")
    assert res["status"] == _run.PASS, f"{where}\n  pyrunc: {_show(res)}{runc}"
