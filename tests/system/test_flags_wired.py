"""Flags that used to be parsed and ignored (issue 16, item 7), each against Debian's
runc 1.1.5 doing the same thing: the global --rootless, run --no-subreaper, and
exec --cgroup. (The one other flag read nowhere, the global --criu, is runc's too for
every command but checkpoint/restore, which pyrunc does not have.)"""
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from support.bundles import new_id
from support.checks import one_line_error
from support.host import prefix_dirs


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
            cid = new_id("f")
            r.ids.add(cid)
            p = r.cmd(*(("--rootless", flag) if flag else ()), "run", "--bundle", b, cid, check=False)
            assert p.returncode == 1 and "c 10:200 rwm" in one_line_error(p), (name, flag, p.stderr)
        cid = new_id("f")
        r.ids.add(cid)
        p = r.cmd("--rootless", "true", "run", "--bundle", b, cid, check=False)
        assert (p.returncode, p.stdout) == (0, "ran\n"), (name, p.stderr)
        cid = new_id("f")
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
            cid = new_id("f")
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


# -------------------------------------------------------------------- exec --cgroup


def _cgroup_dirs(pid):
    """{controller key as in runc's cgroup_paths: "pids", "name=systemd", "" (v2): the
    host directory of pid's cgroup}, from /proc/PID/cgroup and the cgroup mounts."""
    mounts = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        f = line.split()
        sep = f.index("-")
        if f[sep + 1] == "cgroup2":
            mounts[""] = (f[4], f[3])
        elif f[sep + 1] == "cgroup":
            for o in f[sep + 3].split(","):
                mounts[o] = (f[4], f[3])
    out = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctls, path = line.split(":", 2)
        for c in ctls.split(",") if ctls else [""]:
            if c in mounts:
                mnt, root = mounts[c]
                out[c] = os.path.join(mnt, os.path.relpath(path, root))
    return out


def _msg(p):
    """The msg of the one error line."""
    return one_line_error(p).split(' msg="', 1)[1][:-1]


def _exec_pid_cgroups(r, tmp_path, cid, *args):
    pidfile = tmp_path / f"{cid}-{uuid.uuid4().hex[:6]}.pid"
    p = r.cmd("exec", "--detach", "--pid-file", pidfile, *args, cid, "sleep", "30", check=False)
    if p.returncode != 0:
        return p, None
    return p, _cgroup_dirs(int(pidfile.read_text()))


@pytest.mark.cgroups
def test_exec_cgroup_joins_a_sub_cgroup(rt, runc_rt, tmp_path):
    """exec --cgroup PATH (every controller) and CONTROLLER:PATH (v1: that hierarchy
    only) put the process in an existing sub-cgroup of the container's; it is the same
    for runc 1.1.5 (both on cgroup v1, both on cgroup v2)."""
    for name, r in (("pyrunc", rt), ("runc", runc_rt)):
        cid = new_id("f")
        r.run(cid, r.bundle(["sleep", "60"]), "--detach")
        base = _cgroup_dirs(r.state(cid)["pid"])
        v2 = list(base) == [""]
        for d in set(base.values()):
            os.mkdir(os.path.join(d, "sub"))
            for f in ("cpuset.cpus", "cpuset.mems"):  # v1: an empty cpuset takes no task
                if os.path.exists(os.path.join(d, "sub", f)) and not Path(d, "sub", f).read_text().strip():
                    Path(d, "sub", f).write_text(Path(d, f).read_text())
        p, seen = _exec_pid_cgroups(r, tmp_path, cid, "--cgroup", "sub")
        assert seen is not None, (name, p.stderr)
        assert seen == {k: os.path.join(d, "sub") for k, d in base.items()}, name
        if not v2:
            _, seen = _exec_pid_cgroups(r, tmp_path, cid, "--cgroup", "pids,name=systemd:sub")
            want = dict(base, pids=base["pids"] + "/sub")
            want["name=systemd"] = base["name=systemd"] + "/sub"
            assert seen == want, name
        # One sub-cgroup taken twice ("/sub" is relative too), and the cgroup itself.
        _, seen = _exec_pid_cgroups(r, tmp_path, cid, "--cgroup", "/sub/../sub")
        assert seen == {k: os.path.join(d, "sub") for k, d in base.items()}, name
        r.cmd("delete", "--force", cid)


@pytest.mark.cgroups
def test_exec_cgroup_errors_as_runc(rt, runc_rt, tmp_path):
    """What runc 1.1.5 refuses, pyrunc refuses: "exec failed: ..." and exit 255, with
    runc's words where it has them; no process is left in the container."""
    out = {}
    for name, r in (("pyrunc", rt), ("runc", runc_rt)):
        cid = new_id("f")
        r.run(cid, r.bundle(["sleep", "60"]), "--detach")
        v2 = list(_cgroup_dirs(r.state(cid)["pid"])) == [""]
        cases = ["a:b:c", "nosuch:sub", "missing", "../../escape" if v2 else "pids:../../escape"]
        out[name] = []
        for arg in cases:
            p, _ = _exec_pid_cgroups(r, tmp_path, cid, "--cgroup", arg)
            assert p.returncode == 255, (name, arg, p.stderr)
            out[name].append(_msg(p))
        p, _ = _exec_pid_cgroups(r, tmp_path, cid, "--cgroup", "x", "--cgroup", "y")
        assert p.returncode == 255 and "invalid --cgroup argument: x (missing <controller>: prefix)" \
            in one_line_error(p), (name, p.stderr)
        assert len(r.cmd("ps", cid).stdout.splitlines()) == 2, name  # header and the init
        r.cmd("delete", "--force", cid)
    for msgs in out.values():
        assert all(m.startswith("exec failed: ") for m in msgs), msgs
        assert "invalid --cgroup argument: a:b:c" in msgs[0]
        assert "unknown controller nosuch" in msgs[1]
        assert "missing" in msgs[2] and "no such file" in msgs[2].lower()
        assert "is not a sub cgroup path" in msgs[3]
