"""Fixtures and collection hooks; the helpers live in tests/support/ (see tests/README.md).

Every test gets its own --root and bundle directory under pytest's tmp_path, and a
cgroupsPath under a test-only relative prefix; whatever a test leaves is force-deleted.
"""
import os
import shutil
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
for _p in (str(TESTS), str(TESTS.parent)):  # `support`, and pyrunc from this checkout
    if _p not in sys.path:
        sys.path.insert(0, _p)
pytest.register_assert_rewrite("support")

from support.compare import ComparisonTable  # noqa: E402
from support.host import (busybox_path, cgroup_v2_host, mountinfo, prefix_dirs,  # noqa: E402,F401
                          pyrunc_binary, systemd_is_init)
from support.paths import REPO, SHARED_SPEC  # noqa: E402,F401
from support.runtime import ConsoleReceiver, Runtime  # noqa: E402,F401

# The names above stay importable from conftest for modules not yet moved to `support`.


def pytest_runtest_setup(item):
    if item.get_closest_marker("systemd") and not systemd_is_init():
        pytest.skip("needs systemd as PID 1: run in the systemd guest (docs/SYSTEMD.md)")


def pytest_collection_modifyitems(config, items):
    """cgroup_v1 tests skip on a cgroup v2 host, cgroup_v2 tests on a v1/hybrid one
    (markers registered in setup.cfg); each with the reason. A test in unit/ without the
    unit marker is an error (it belongs in system/)."""
    unmarked = [i.nodeid for i in items
                if (TESTS / "unit") in Path(str(i.path)).parents and not i.get_closest_marker("unit")]
    if unmarked:
        raise pytest.UsageError("tests in tests/unit/ must be marked unit: " + ", ".join(unmarked))
    v2 = cgroup_v2_host()
    skip_v1 = pytest.mark.skip(reason="cgroup v1 only: this host is cgroup v2 (no v1 hierarchies)")
    skip_v2 = pytest.mark.skip(reason="cgroup v2 only: this host has cgroup v1 hierarchies "
                               "(run it in the cgroup v2 guest: README, Tests)")
    for item in items:
        if v2 and item.get_closest_marker("cgroup_v1"):
            item.add_marker(skip_v1)
        elif not v2 and item.get_closest_marker("cgroup_v2"):
            item.add_marker(skip_v2)


V2_TABLE = ComparisonTable()


@pytest.fixture
def v2_table(request):
    """record(feature, runc_result, pyrunc_result, note="", same=None): one row of the
    cgroup v2 comparison (PYRUNC_V2_TABLE=FILE writes it at the end of the session)."""
    return lambda *a, **kw: V2_TABLE.record(request.node.nodeid, *a, **kw)


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("PYRUNC_V2_TABLE")
    if not path or not V2_TABLE.rows:
        return
    reporter = session.config.pluginmanager.getplugin("terminalreporter")
    failed = {r.nodeid for r in reporter.stats.get("failed", [])} if reporter else set()
    with open(path, "w") as f:
        f.write(V2_TABLE.markdown(failed))


@pytest.fixture
def rt(tmp_path):
    r = Runtime(pyrunc_binary(), tmp_path)
    yield r
    leftover = r.cleanup()
    assert not leftover, f"cgroups left behind: {leftover}"


@pytest.fixture
def runc_rt(tmp_path):
    """The reference runtime (Debian's runc), when installed."""
    runc = shutil.which("runc")
    if not runc:
        pytest.skip("runc is not installed")
    r = Runtime(runc, tmp_path / "runc")
    (tmp_path / "runc").mkdir()
    yield r
    r.cleanup()
