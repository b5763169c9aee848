"""Flags that used to be parsed and ignored (issue 16, item 7), each against Debian's
runc 1.1.5 doing the same thing: the global --rootless and run --no-subreaper. (The one
other flag read nowhere, the global --criu, is runc's too for every command but
checkpoint/restore, which pyrunc does not have.)"""
import os
import subprocess
import uuid

import pytest

from conftest import prefix_dirs
from test_lifecycle import one_line_error


def _cid():
    return f"f-{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------- --rootless


def _devices_parent(r):
    """The test prefix's directory in the devices hierarchy, made with one exception:
    no read of /dev/net/tun (c 10:200), which the container's default rules allow (runc
    1.1.5's list has it, and so has pyrunc's). A child cgroup may not allow more than its
    parent, so writing that rule fails with EPERM: a cgroup permission error."""
    (d,) = [p for p in prefix_dirs(r.cgroup_prefix) if "/devices/" in f"{p}/"]
    d.mkdir()
    (d / "devices.deny").write_text("c 10:200 r")
    return d


@pytest.mark.cgroup_v1
def test_rootless_true_ignores_cgroup_permission_errors(rt, runc_rt):
    """--rootless true: the device rule the cgroup refuses is skipped and the container
    runs, as runc's rootless cgroup manager skips devices errors; false and auto (as real
    root: false) fail on it, naming the rule; anything else is an error."""
    for name, r in (("pyrunc", rt), ("runc", runc_rt)):
        _devices_parent(r)
        b = r.bundle(["sh", "-c", "echo ok >/dev/null && echo ran"])
        for flag in ("false", None):
            cid = _cid()
            r.ids.add(cid)
            p = r.cmd(*(("--rootless", flag) if flag else ()), "run", "--bundle", b, cid, check=False)
            assert p.returncode == 1 and "c 10:200 rwm" in one_line_error(p), (name, flag, p.stderr)
        cid = _cid()
        r.ids.add(cid)
        p = r.cmd("--rootless", "true", "run", "--bundle", b, cid, check=False)
        assert (p.returncode, p.stdout) == (0, "ran\n"), (name, p.stderr)
        cid = _cid()
        p = r.cmd("--rootless", "maybe", "run", "--bundle", b, cid, check=False)
        assert p.returncode == 1 and "maybe" in one_line_error(p), (name, p.stderr)
        assert r.cmd("state", cid, check=False).returncode == 1  # nothing was made
        if name == "pyrunc":
            assert "--rootless" in one_line_error(p)  # (runc: "strconv.ParseBool: ...")


# ---------------------------------------------------------------- --no-subreaper

# A process orphaned in a container without a PID namespace is reparented to the
# nearest child subreaper among its ancestors: the runtime of `run` (runc: "the
# subreaper used to reap reparented processes"), unless --no-subreaper.
ORPHAN = ('sh -c "sleep 5 & echo \\$! >/tmp/orphan"; sleep 0.3; '
          'grep PPid /proc/$(cat /tmp/orphan)/status')


def _no_pid_ns(c):
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]


def test_run_no_subreaper(rt, runc_rt, tmp_path):
    for name, r in (("pyrunc", rt), ("runc", runc_rt)):
        b = r.bundle(["sh", "-c", ORPHAN], edit=_no_pid_ns)
        for flags in ((), ("--no-subreaper",)):
            cid = _cid()
            r.ids.add(cid)
            out = tmp_path / f"{name}-{cid}.out"
            with open(out, "w") as f:
                p = subprocess.Popen([r.binary, "--root", r.root, "run", *flags, "--bundle", b, cid],
                                     stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.PIPE)
                _, err = p.communicate(timeout=60)
            assert p.returncode == 0, (name, flags, err)
            ppid = int(out.read_text().split()[-1])
            if flags:
                assert ppid != p.pid, (name, "reparented to the runtime despite --no-subreaper")
            else:
                assert ppid == p.pid, (name, "not reparented to the runtime")
