"""Where a container's processes land: in the container's cgroup of every hierarchy the
host mounts (the v2 one of this hybrid host included, as runc does), whichever way the
init was made (forked straight into its namespaces, or by stage-1 with a user
namespace), and the same for exec'd processes. runc is the reference."""
import os
import sys
import uuid

import pytest

from support.bundles import userns
from support.host import cgroup_v2_host, open_path_for_userns, pyrunc_binary
from support.runtime import Runtime

pytestmark = pytest.mark.cgroups


def _expected(rt, name):
    """/proc/PID/cgroup lines of a process in `rt`'s container cgroup `name` (relative
    cgroupsPath: below the runtime's own cgroup, which is this test's, per hierarchy; on a
    cgroup v2 host below its parent, as runc's fs2)."""
    out = {}
    for line in open("/proc/self/cgroup").read().splitlines():
        key, own = line.rsplit(":", 1)
        if cgroup_v2_host():
            own = os.path.dirname(own.rstrip("/")) or "/"
        out[key] = os.path.normpath(f"{own.rstrip('/')}/{rt.cgroup_prefix}/{name}")
    return out


def _cgroups_of(pid):
    return dict(line.rsplit(":", 1) for line in open(f"/proc/{pid}/cgroup").read().splitlines())


def _check(rt, edit, tmp_path):
    name = f"pl-{uuid.uuid4().hex[:6]}"
    b = rt.bundle(["sleep", "60"], name=name, edit=edit)
    cid = f"c-{name}"
    rt.run(cid, b, "--detach")
    want = _expected(rt, name)
    assert "0:" in want, "this host has a v2 hierarchy: its line must be checked too"
    init = rt.state(cid)["pid"]
    assert _cgroups_of(init) == want
    pidfile = tmp_path / f"{cid}.pid"
    rt.cmd("exec", "--detach", "--pid-file", pidfile, cid, "sleep", "30")
    assert _cgroups_of(int(pidfile.read_text())) == want
    rt.cmd("delete", "--force", cid)


@pytest.mark.parametrize("ns", ["plain", "userns"])
def test_init_and_exec_in_every_hierarchy(rt, ns, tmp_path):
    if ns == "userns":
        open_path_for_userns(rt.tmp)
    _check(rt, userns if ns == "userns" else None, tmp_path)


def test_runc_places_the_same(runc_rt, tmp_path):
    """The reference: runc joins every hierarchy, the hybrid host's v2 one included."""
    _check(runc_rt, None, tmp_path)


_NO_CLONE3 = """#!{python}
# pyrunc with clone3(2) failing ENOSYS, as under Docker's older default seccomp profile
import os, sys
from pyrunc.linux import seccomp
seccomp.load(seccomp.prepare({{"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{{"names": ["clone3"], "action": "SCMP_ACT_ERRNO",
                                             "errnoRet": 38}}]}}))
os.execv({pyrunc!r}, [{pyrunc!r}] + sys.argv[1:])
"""


def test_without_clone3_the_runtime_places_the_processes(tmp_path):
    """Where clone3 is refused (ENOSYS: old kernels, or seccomp profiles that hide it) the
    init and exec's helper are plain forks that the runtime writes into cgroup.procs, and
    the stage-1 path makes the namespaces: the same placement, the same container."""
    wrapper = tmp_path / "pyrunc-no-clone3"
    wrapper.write_text(_NO_CLONE3.format(python=sys.executable, pyrunc=pyrunc_binary()))
    wrapper.chmod(0o755)
    (tmp_path / "rt").mkdir()
    r = Runtime(str(wrapper), tmp_path / "rt")
    try:
        out = r.output_of(["sh", "-c", "echo $$; readlink /proc/self/ns/pid"]).split()
        assert out[0] == "1" and out[1] != os.readlink("/proc/self/ns/pid")
        _check(r, None, tmp_path)
    finally:
        leftover = r.cleanup()
    assert not leftover, leftover
