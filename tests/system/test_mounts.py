"""Mounts: option parsing, resolution inside a rootfs (unit), and every kind of mount seen
from inside real containers, proved against runc where runc supports the feature."""
import errno
import json
import os
import subprocess
import uuid

import pytest

from support.bundles import drop_namespace, userns
from support.host import by_mountpoint, mountinfo
from pyrunc.native import constants as C


# ---------------------------------------------------------------------------------------
# helpers

def add_mounts(*ms):
    def edit(c):
        c["mounts"].extend(ms)
    return edit


def run_both(rt, runc_rt, args, edit=None):
    out = rt.output_of(args, edit=edit)
    ref = runc_rt.output_of(args, edit=edit) if runc_rt else None
    return out, ref


@pytest.fixture
def hostdir(tmp_path):
    d = tmp_path / f"src-{uuid.uuid4().hex[:6]}"
    d.mkdir()
    (d / "file").write_text("hello\n")
    return d


# ---------------------------------------------------------------------------------------
# option parsing

def test_options_flags_cleared_data():
    from pyrunc.rootfs import mounts

    o = mounts.Options(["rbind", "ro", "nosuid", "noexec", "rw", "strictatime", "size=10k",
                        "mode=0755", "defaults", "rshared", "private", "tmpcopyup"])
    assert o.is_bind and o.recursive
    assert o.flags & C.MS_NOSUID and o.flags & C.MS_NOEXEC and o.flags & C.MS_STRICTATIME
    assert not o.flags & C.MS_RDONLY and o.cleared & C.MS_RDONLY  # the last of ro/rw wins
    assert o.data == ["size=10k", "mode=0755"]
    assert o.propagation == [C.MS_SHARED | C.MS_REC, C.MS_PRIVATE]
    assert o.copyup and o.idmap is None


def test_options_every_runc_flag_is_known():
    from pyrunc.rootfs import mounts

    for name in ("acl", "noacl", "iversion", "noiversion", "mand", "nomand", "silent", "loud",
                 "sync", "async", "dirsync", "remount", "relatime", "norelatime", "noatime",
                 "atime", "nodiratime", "diratime", "nosymfollow", "symfollow", "lazytime",
                 "nolazytime", "dev", "nodev", "exec", "suid"):
        assert not mounts.Options([name]).data, name
    assert mounts.Options(["idmap"]).idmap == "idmap"
    assert mounts.Options(["ridmap"]).idmap == "ridmap"


def test_options_recursive_attributes():
    from pyrunc.rootfs import mounts

    o = mounts.Options(["rro", "rnosuid", "rnodev", "rnoexec", "rnoatime", "rnodiratime", "rnosymfollow"])
    assert o.rec_set == (C.MOUNT_ATTR_RDONLY | C.MOUNT_ATTR_NOSUID | C.MOUNT_ATTR_NODEV
                         | C.MOUNT_ATTR_NOEXEC | C.MOUNT_ATTR_NOATIME
                         | C.MOUNT_ATTR_NODIRATIME | C.MOUNT_ATTR_NOSYMFOLLOW)
    assert o.rec_clr == C.MOUNT_ATTR__ATIME  # an atime mode must clear the whole mask
    o = mounts.Options(["rrw", "rsuid", "rdev", "rexec", "rdiratime", "rsymfollow"])
    assert o.rec_set == 0
    assert o.rec_clr == (C.MOUNT_ATTR_RDONLY | C.MOUNT_ATTR_NOSUID | C.MOUNT_ATTR_NODEV
                         | C.MOUNT_ATTR_NOEXEC | C.MOUNT_ATTR_NODIRATIME
                         | C.MOUNT_ATTR_NOSYMFOLLOW)
    o = mounts.Options(["rstrictatime"])
    assert (o.rec_set, o.rec_clr) == (C.MOUNT_ATTR_STRICTATIME, C.MOUNT_ATTR__ATIME)
    o = mounts.Options(["rnoatime", "rrelatime"])
    assert (o.rec_set, o.rec_clr) == (0, C.MOUNT_ATTR__ATIME)
    o = mounts.Options(["ratime"])
    assert (o.rec_set, o.rec_clr) == (0, C.MOUNT_ATTR__ATIME)


# ---------------------------------------------------------------------------------------
# resolution inside a root (no mounts needed)

@pytest.fixture(params=["openat2", "walk"])
def resolver(request, monkeypatch):
    from pyrunc.rootfs import mounts

    if request.param == "walk":
        monkeypatch.setattr(mounts, "_have_openat2", False)
    return request.param


def _tree(tmp_path):
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    for d in (root / "a" / "b", outside):
        d.mkdir(parents=True)
    (root / "abs").symlink_to(str(outside))               # absolute, pointing at the host
    (root / "rel").symlink_to("../../../../../../../../" + str(outside).lstrip("/"))
    (root / "up").symlink_to("..")
    (root / "a" / "tob").symlink_to("/a/b")
    (root / "dangling").symlink_to("/made/by/link")
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    (root / "file").write_text("x")
    return root, outside


def _resolved(rootfd, fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def test_open_in_root_never_leaves(tmp_path, resolver):
    from pyrunc.rootfs import mounts

    root, outside = _tree(tmp_path)
    rootfd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        r = str(root)
        assert _resolved(rootfd, mounts.open_in_root(rootfd, "/a/b")) == f"{r}/a/b"
        assert _resolved(rootfd, mounts.open_in_root(rootfd, "/../../..")) == r
        assert _resolved(rootfd, mounts.open_in_root(rootfd, "/up/up/a")) == f"{r}/a"
        assert _resolved(rootfd, mounts.open_in_root(rootfd, "/a/tob/../b")) == f"{r}/a/b"
        # symlinks out of the root resolve inside it (where nothing exists)
        for link in ("/abs", "/rel"):
            with pytest.raises(FileNotFoundError):
                os.close(mounts.open_in_root(rootfd, link))
        fd = mounts.open_in_root(rootfd, "/abs/sub/dir", create="dir")
        assert _resolved(rootfd, fd) == f"{r}{outside}/sub/dir"
        fd = mounts.open_in_root(rootfd, "/rel/f", create="file")
        assert _resolved(rootfd, fd) == f"{r}{outside}/f"
        assert os.path.isfile(f"{r}{outside}/f")
        fd = mounts.open_in_root(rootfd, "/dangling", create="dir")
        assert _resolved(rootfd, fd) == f"{r}/made/by/link"
        assert os.listdir(outside) == []  # the host side never changed
        with pytest.raises(OSError) as e:
            mounts.open_in_root(rootfd, "/loop1", create="dir")
        assert e.value.errno == errno.ELOOP
        with pytest.raises(NotADirectoryError):
            mounts.open_in_root(rootfd, "/file/x", create="dir")
    finally:
        os.close(rootfd)


# ---------------------------------------------------------------------------------------
# containers

def test_bind_mount_flags_match_runc(rt, runc_rt, hostdir):
    sets = {
        "b1": ["bind", "ro"],
        "b2": ["rbind", "nosuid", "nodev", "noexec"],
        "b3": ["bind", "noatime", "nodiratime"],
        "b4": ["bind", "strictatime", "ro", "nosuid"],
        "b5": ["bind", "relatime", "rw", "dev", "suid", "exec"],
        "b6": ["bind", "nosymfollow"],
        "b7": ["bind", "sync", "dirsync", "silent", "defaults", "acl", "iversion", "ro"],
    }
    edit = add_mounts(*({"destination": f"/mnt/{k}", "type": "bind", "source": str(hostdir), "options": v}
                        for k, v in sets.items()))
    out, ref = run_both(rt, runc_rt, ["cat", "/proc/self/mountinfo"], edit)
    ours, theirs = mountinfo(out), mountinfo(ref)
    for k, opts in sets.items():
        mine = by_mountpoint(ours, f"/mnt/{k}")
        assert mine["opts"] == by_mountpoint(theirs, f"/mnt/{k}")["opts"], k
        assert ("ro" in mine["opts"]) == ("ro" in opts), k
    assert {"ro", "nosuid"} <= by_mountpoint(ours, "/mnt/b4")["opts"]
    assert "relatime" not in by_mountpoint(ours, "/mnt/b4")["opts"]  # strictatime
    assert {"noatime", "nodiratime"} <= by_mountpoint(ours, "/mnt/b3")["opts"]
    assert {"nosuid", "nodev", "noexec"} <= by_mountpoint(ours, "/mnt/b2")["opts"]
    assert "nosymfollow" in by_mountpoint(ours, "/mnt/b6")["opts"]


def test_recursive_options_and_read_only_bind(rt, runc_rt, tmp_path):
    # /data (tmpfs) gets a submount; /rdata is an rbind of it (the source is the rootfs path
    # on the host, which inside the init's mount namespace has the container's mounts).
    out = {}
    for name, r in (("py", rt), ("runc", runc_rt)):
        b = r.bundle(["cat", "/proc/self/mountinfo"])
        c = r.config(b)
        c["mounts"] += [
            {"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
            {"destination": "/data/sub", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
            {"destination": "/rdata", "type": "bind", "source": str(b / "rootfs" / "data"),
             "options": ["rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnoatime"]},
            {"destination": "/ro-only-top", "type": "bind", "source": str(b / "rootfs" / "data"),
             "options": ["rbind", "ro"]},
        ]
        (b / "config.json").write_text(json.dumps(c))
        out[name] = mountinfo(r.run(f"c-{uuid.uuid4().hex[:8]}", b).stdout)
    ours = out["py"]
    for mp in ("/rdata", "/rdata/sub"):
        assert {"ro", "nosuid", "nodev", "noexec", "noatime"} <= by_mountpoint(ours, mp)["opts"], mp
        assert by_mountpoint(ours, mp)["opts"] == by_mountpoint(out["runc"], mp)["opts"], mp
    # a plain "ro" is not recursive (the kernel's remount changes the top mount only)
    assert "ro" in by_mountpoint(ours, "/ro-only-top")["opts"]
    assert "rw" in by_mountpoint(ours, "/ro-only-top/sub")["opts"]
    assert by_mountpoint(out["runc"], "/ro-only-top/sub")["opts"] == by_mountpoint(ours, "/ro-only-top/sub")["opts"]


def test_filesystems_with_data_options(rt, runc_rt):
    edit = add_mounts(
        {"destination": "/t1", "type": "tmpfs", "source": "tmpfs",
         "options": ["size=2m", "mode=0711", "uid=123", "gid=456", "nosuid", "ro"]},
        {"destination": "/t2/deep/er", "type": "tmpfs", "source": "mytmp", "options": ["nr_inodes=100"]},
        {"destination": "/pts2", "type": "devpts", "source": "devpts",
         "options": ["newinstance", "ptmxmode=0600", "mode=0600", "gid=5"]},
        {"destination": "/mq", "type": "mqueue", "source": "mqueue", "options": ["nodev"]},
    )
    args = ["sh", "-c", "cat /proc/self/mountinfo; stat -c '%a %u %g' /t1; touch /t1/x 2>/dev/null || echo ro-ok"]
    out, ref = run_both(rt, runc_rt, args, edit)
    assert out.splitlines()[-2:] == ref.splitlines()[-2:] == ["711 123 456", "ro-ok"]
    ours, theirs = mountinfo(out), mountinfo(ref)
    for mp in ("/t1", "/t2/deep/er", "/pts2", "/mq"):
        a, b = by_mountpoint(ours, mp), by_mountpoint(theirs, mp)
        assert (a["opts"], a["fstype"], a["source"], a["super"]) == (b["opts"], b["fstype"], b["source"], b["super"]), mp
    t1 = by_mountpoint(ours, "/t1")
    assert {"ro", "nosuid"} <= t1["opts"] and {"size=2048k", "mode=711", "uid=123", "gid=456"} <= t1["super"]
    assert {"ptmxmode=600", "gid=5"} <= by_mountpoint(ours, "/pts2")["super"]


def test_propagation_options(rt, runc_rt, hostdir):
    edit = add_mounts(
        {"destination": "/p/shared", "type": "bind", "source": str(hostdir), "options": ["bind", "shared"]},
        {"destination": "/p/unbindable", "type": "bind", "source": str(hostdir), "options": ["rbind", "runbindable"]},
        {"destination": "/p/private", "type": "tmpfs", "source": "tmpfs", "options": ["private"]},
        {"destination": "/p/slave", "type": "tmpfs", "source": "tmpfs", "options": ["shared", "slave"]},
    )
    out, ref = run_both(rt, runc_rt, ["cat", "/proc/self/mountinfo"], edit)
    ours, theirs = mountinfo(out), mountinfo(ref)
    want = {"/p/shared": ["shared"], "/p/unbindable": ["unbindable"], "/p/private": [], "/p/slave": []}
    for mp, opt in want.items():
        assert by_mountpoint(ours, mp)["optional"] == opt, mp
        assert by_mountpoint(theirs, mp)["optional"] == opt, mp


def test_tmpcopyup(rt, runc_rt):
    def edit(c):
        c["mounts"].append({"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                            "options": ["tmpcopyup", "mode=755"]})
    args = ["sh", "-c", "cat /etc/hostname; ls -l /etc/passwd | cut -c1-10; echo new > /etc/added && "
            "cat /etc/added; grep ' /etc ' /proc/self/mountinfo | cut -d' ' -f9"]
    b = rt.bundle(args, edit=edit)
    out = rt.run("c-copyup", b).stdout
    assert out == runc_rt.output_of(args, edit=edit)
    assert out.splitlines() == ["pyrunc", "-rw-r--r--", "new", "tmpfs"]
    assert not (b / "rootfs" / "etc" / "added").exists()


def test_missing_targets_created_and_relative_source(rt, runc_rt, hostdir):
    def edit(c):
        c["mounts"] += [
            {"destination": "/new/dir/file", "type": "bind", "source": str(hostdir / "file"), "options": ["bind"]},
            {"destination": "/new/d2/d3", "type": "bind", "source": str(hostdir), "options": ["bind"]},
            {"destination": "/rel", "type": "bind", "source": "relsrc", "options": ["bind", "ro"]},
        ]
    args = ["sh", "-c", "cat /new/dir/file; test -d /new/d2/d3 && echo dir; cat /rel/x"]
    out = {}
    for name, r in (("py", rt), ("runc", runc_rt)):
        b = r.bundle(args, edit=edit)
        (b / "relsrc").mkdir()
        (b / "relsrc" / "x").write_text("relative\n")
        out[name] = r.run(f"c-{uuid.uuid4().hex[:8]}", b).stdout
        assert (b / "rootfs" / "new" / "dir" / "file").is_file()
    assert out["py"] == out["runc"] == "hello\ndir\nrelative\n"


def test_proc_destinations_checked(rt, runc_rt):
    ok = add_mounts({"destination": "/proc/cpuinfo", "type": "bind", "source": "/proc/meminfo",
                     "options": ["bind"]})
    out, ref = run_both(rt, runc_rt, ["head", "-1", "/proc/cpuinfo"], ok)
    assert out == ref and out.startswith("MemTotal")
    for m in ({"destination": "/proc/sys/kernel", "type": "bind", "source": "/tmp", "options": ["bind"]},
              {"destination": "/proc/sys/kernel", "type": "devpts", "source": "devpts"},
              {"destination": "/proc", "type": "bind", "source": "/tmp", "options": ["rbind"]}):
        for r in (runc_rt, rt):
            p = r.run(f"c-{uuid.uuid4().hex[:8]}", r.bundle(["true"], edit=add_mounts(m)), check=False)
            assert p.returncode != 0, (r.binary, m)
        assert m["destination"] in p.stderr and "/proc" in p.stderr, p.stderr
    # as runc, a tmpfs may cover a directory of /proc
    out, ref = run_both(rt, runc_rt, ["ls", "/proc/fs"],
                        add_mounts({"destination": "/proc/fs", "type": "tmpfs", "source": "tmpfs"}))
    assert out == ref == ""

    def proc_on_symlink(c):
        c["mounts"][0]["destination"] = "/proclink"
    b = rt.bundle(["true"], edit=proc_on_symlink)
    os.symlink("/tmp", b / "rootfs" / "proclink")
    p = rt.run("c-procl", b, check=False)
    assert p.returncode != 0 and "ordinary directory" in p.stderr


def test_sysfs_readonly_without_network_namespace(rt):
    def edit(c, netns):
        c["mounts"][5]["options"] = ["nosuid", "nodev", "noexec"]  # no "ro"
        if not netns:
            c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
    # (runc 1.1.5 leaves such a sysfs read-write; pyrunc makes it read-only, as newer runc does)
    host = mountinfo(rt.output_of(["cat", "/proc/self/mountinfo"], edit=lambda c: edit(c, False)))
    own = mountinfo(rt.output_of(["cat", "/proc/self/mountinfo"], edit=lambda c: edit(c, True)))
    assert "ro" in by_mountpoint(host, "/sys")["opts"]
    assert "rw" in by_mountpoint(own, "/sys")["opts"]


@pytest.mark.cgroup_v1  # one mount per v1 hierarchy; cgroup v2: test_cgroups_v2_live.py
def test_cgroup_mount_with_cgroup_namespace_matches_runc(rt, runc_rt):
    def edit(c):
        c["linux"]["namespaces"].append({"type": "cgroup"})
    out, ref = run_both(rt, runc_rt, ["cat", "/proc/self/mountinfo"], edit)
    ours = [m for m in mountinfo(out) if m["mountpoint"].startswith("/sys/fs/cgroup/")]
    theirs = [m for m in mountinfo(ref) if m["mountpoint"].startswith("/sys/fs/cgroup/")]
    assert ours, out
    key = lambda m: (m["mountpoint"], m["root"], frozenset(m["opts"]), m["fstype"], frozenset(m["super"]))  # noqa: E731
    assert sorted(map(key, ours)) == sorted(map(key, theirs))
    assert all(m["root"] == "/" and "ro" in m["opts"] for m in ours)


@pytest.mark.cgroup_v1  # one bind per v1 hierarchy; cgroup v2: test_cgroups_v2_live.py
@pytest.mark.parametrize("options", [None, ["nosuid", "noexec", "nodev", "relatime", "rw", "rslave"]])
def test_cgroup_binds_without_cgroup_namespace_match_runc(rt, runc_rt, options):
    """Without a cgroup namespace each hierarchy is a bind of the container's own cgroup
    directory, with the cgroup mount's flags (read-only by default) and propagation."""
    def edit(c):
        if options:
            next(m for m in c["mounts"] if m["type"] == "cgroup")["options"] = options
    out, ref = run_both(rt, runc_rt, ["cat", "/proc/self/mountinfo"], edit)
    ours = [m for m in mountinfo(out) if m["mountpoint"].startswith("/sys/fs/cgroup/")]
    theirs = [m for m in mountinfo(ref) if m["mountpoint"].startswith("/sys/fs/cgroup/")]
    assert len(ours) >= 2, out
    key = lambda m: (m["mountpoint"], frozenset(m["opts"]), m["fstype"], tuple(m["optional"]))  # noqa: E731
    assert sorted(map(key, ours)) == sorted(map(key, theirs))
    assert all(("ro" in m["opts"]) == (options is None) for m in ours)
    # Each root is that runtime's own container cgroup: <its test prefix>/<bundle name>.
    for r, mounted in ((rt, ours), (runc_rt, theirs)):
        assert all(m["root"].split("/")[-2] == r.cgroup_prefix for m in mounted), mounted


def test_idmapped_mount_without_user_namespace(rt, tmp_path):
    src = tmp_path / "idsrc"
    src.mkdir()
    for name, ids in (("root", (0, 0)), ("u100", (100, 211)), ("other", (5000, 5000))):
        (src / name).touch()
        os.chown(src / name, *ids)
    edit = add_mounts({"destination": "/idm", "type": "bind", "source": str(src), "options": ["bind", "idmap"],
                       "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 1000}],
                       "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 1000}]})
    out = rt.output_of(["sh", "-c", "stat -c '%n %u %g' /idm/root /idm/u100 /idm/other; "
                        "grep ' /idm ' /proc/self/mountinfo"], edit=edit)
    lines = out.splitlines()
    assert lines[:3] == ["/idm/root 100000 200000", "/idm/u100 100100 200211", "/idm/other 65534 65534"]
    assert "idmapped" in lines[3]


def test_idmap_errors(rt, tmp_path):
    maps = [{"containerID": 0, "hostID": 1000, "size": 1}]
    cases = [  # (the config validation may catch these first: either way one clear line)
        ({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"],
          "uidMappings": maps, "gidMappings": maps}, "bind mount"),
        ({"destination": "/x", "type": "bind", "source": str(tmp_path), "options": ["bind", "idmap"]},
         "needs uidMappings"),
    ]
    for m, words in cases:
        p = rt.run(f"c-{uuid.uuid4().hex[:8]}", rt.bundle(["true"], edit=add_mounts(m)), check=False)
        assert p.returncode != 0 and words in p.stderr and len(p.stderr.splitlines()) == 1, p.stderr


def test_idmapped_mount_with_user_namespace(tmp_path):
    base = f"/tmp/pyrunc-idmap-{uuid.uuid4().hex[:8]}"
    os.makedirs(base + "/src")
    os.chmod(base, 0o755)
    try:
        from support.host import pyrunc_binary
        from support.runtime import Runtime
        from pathlib import Path

        r = Runtime(pyrunc_binary(), Path(base))
        (Path(base) / "src" / "f").touch()  # owned by 0 on disk: 100000 through the mapping

        def edit(c):
            drop_namespace(c, "network")
            userns(c, host_id=100000)
            c["mounts"][2]["options"].remove("gid=5")
            c["mounts"].append({"destination": "/tmp/idm", "type": "bind", "source": base + "/src",
                                "options": ["bind"],
                                "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                                "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]})
        try:
            out = r.output_of(["stat", "-c", "%u %g", "/tmp/idm/f"], edit=edit)
        finally:
            r.cleanup()
        assert out == "0 0\n"
    finally:
        subprocess.run(["rm", "-rf", base])


def test_read_only_dev_and_tmpfs_with_mounts_inside(rt, runc_rt):
    """A read-only /dev or tmpfs is made read-only only after what goes inside it
    (device nodes, nested mount points) is there."""
    def edit(c):
        c["mounts"][1]["options"].append("ro")  # /dev
        c["mounts"] += [{"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]},
                        {"destination": "/t/inner", "type": "tmpfs", "source": "tmpfs"}]
    args = ["sh", "-c", "touch /dev/x 2>/dev/null || echo dev-ro; echo ok > /dev/null && echo null-ok; "
            "touch /t/x 2>/dev/null || echo t-ro; touch /t/inner/x && echo inner-rw; "
            "awk '$5==\"/dev\" || $5==\"/t\" {print $5, $6}' /proc/self/mountinfo"]
    out, ref = run_both(rt, runc_rt, args, edit)
    assert out == ref
    assert out.splitlines() == ["dev-ro", "null-ok", "t-ro", "inner-rw", "/dev ro,nosuid", "/t ro,relatime"]
