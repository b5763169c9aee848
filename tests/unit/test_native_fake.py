"""Unit tests over the fake native layer (pyrunc.native.fake): no root, no compiled module."""
import errno
import os
import subprocess
import sys

import pytest

from support.paths import REPO
from pyrunc.linux import namespaces
from pyrunc.process import attributes, limits
from pyrunc.errors import PyruncError
from pyrunc.native import constants as C
from pyrunc.native import syscalls
from pyrunc.native.fake import FakeSyscalls

pytestmark = pytest.mark.unit


def test_unshare_asks_for_the_new_namespaces_only():
    with FakeSyscalls() as fake:
        namespaces.unshare_new({"uts": None, "ipc": None, "network": "/proc/1/ns/net",
                                "cgroup": None}, exclude=("cgroup",))
    assert fake.calls == [("unshare", {"flags": C.CLONE_NEWUTS | C.CLONE_NEWIPC})]


def test_unshare_failure_is_one_line_naming_the_namespaces():
    with FakeSyscalls() as fake:
        fake.fails("unshare", errno.EPERM)
        with pytest.raises(PyruncError) as ei:
            namespaces.unshare_new({"uts": None, "pid": None})
    assert str(ei.value) == "unshare namespaces ['pid', 'uts']: unshare: Operation not permitted"


def test_rlimits_are_set_in_order_and_a_refusal_names_the_limit():
    with FakeSyscalls() as fake:
        limits.set_rlimits([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096},
                             {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}])
        assert fake.called("setrlimit") == [
            {"resource": C.RLIMITS["RLIMIT_NOFILE"], "soft": 1024, "hard": 4096},
            {"resource": C.RLIMITS["RLIMIT_CORE"], "soft": 0, "hard": 0}]
        fake.fails("setrlimit", errno.EPERM)
        with pytest.raises(PyruncError, match="process.rlimits: setting RLIMIT_NOFILE to "
                           "soft=1 hard=2: setrlimit: Operation not permitted"):
            limits.set_rlimits([{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2}])


def test_the_fake_checks_signatures_and_uninstalls():
    real_mount = syscalls.mount
    with FakeSyscalls() as fake:
        assert syscalls.mount is not real_mount
        with pytest.raises(TypeError):
            syscalls.mount("src")  # the real wrapper's signature: target is missing
        fake.answers("prctl", lambda option, **_: 7 if option == C.PR_GET_DUMPABLE else 0)
        assert syscalls.prctl(C.PR_GET_DUMPABLE) == 7
        with pytest.raises(AttributeError):
            fake.returns("no_such_call", 0)
    assert syscalls.mount is real_mount


def test_without_the_compiled_module():
    """The fake and the modules above import and run where _lowlevel is not built."""
    code = (
        "import sys\n"
        "sys.modules['pyrunc.native._lowlevel'] = None  # as if it were not built\n"
        "from pyrunc.linux import namespaces\n"
        "from pyrunc.native import syscalls\n"
        "from pyrunc.native.fake import FakeSyscalls\n"
        "try:\n"
        "    syscalls.unshare(0)\n"
        "    sys.exit('the real wrapper ran without its module')\n"
        "except ImportError as e:\n"
        "    assert 'not built' in str(e), e\n"
        "with FakeSyscalls() as fake:\n"
        "    namespaces.unshare_new({'uts': None})\n"
        "assert fake.calls == [('unshare', {'flags': 0x04000000})], fake.calls\n"
        "print('ok')\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (0, "ok\n", "")


def test_a_seccomp_config_without_its_filter_fails_closed():
    """The filter reaches the container process in its plan (an argument), never
    through module state: without it (or with another config's) nothing is applied."""
    from pyrunc.linux import seccomp

    cfg = {"defaultAction": "SCMP_ACT_ALLOW"}
    proc = {"args": ["/bin/true"], "oomScoreAdj": 5}
    other = seccomp.Filter({"defaultAction": "SCMP_ACT_ALLOW"}, b"\0" * 8, 0, False)
    with FakeSyscalls() as fake:
        for filt in (None, other):
            with pytest.raises(PyruncError, match="the filter was not prepared by the runtime"):
                attributes.prepare(proc, {"seccomp": cfg}, seccomp_filter=filt)
    assert fake.calls == []


def test_overlapping_subreaper_blocks_keep_it_until_the_last_leaves():
    """Two threads' create/exec calls overlap: the first to leave must not clear the
    process-wide child-subreaper attribute while the other still forks."""
    from pyrunc.process.spawn import ChildSubreaper

    attr = {"value": 0}

    def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
        if option == C.PR_SET_CHILD_SUBREAPER:
            attr["value"] = arg2

    with FakeSyscalls() as fake:
        fake.answers("child_subreaper", lambda: attr["value"])
        fake.answers("prctl", prctl)
        a, b = ChildSubreaper(), ChildSubreaper()
        a.__enter__()
        b.__enter__()
        a.__exit__(None, None, None)
        assert attr["value"] == 1
        b.__exit__(None, None, None)
        assert attr["value"] == 0
        with ChildSubreaper():  # and again from the start
            assert attr["value"] == 1
    assert attr["value"] == 0
