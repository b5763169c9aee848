"""Configurations runc (Debian's 1.1.5) runs, run by both runtimes: pyrunc runs them as
runc does (or, where runc fails, fails as cleanly)."""
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from support.host import busybox_path, pyrunc_binary
from support.runtime import Runtime
from support.checks import one_line_error, wait_for
from support.bundles import new_id


def _both(rt, runc_rt):
    return (("pyrunc", rt), ("runc", runc_rt))


# ------------------------------------------------------------------ no namespaces

NO_NS_SCRIPT = r"""
RT=$1 ROOT=$2 B=$3 ID=$4
"$RT" --root "$ROOT" create --bundle "$B" "$ID" >"$B/io.out" 2>"$B/io.err"; echo create=$?
"$RT" --root "$ROOT" start "$ID" 2>>"$B/io.err"; echo start=$?
i=0; while [ ! -e "$B/rootfs/tmp/done" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
echo "runtime_mntns=$(readlink /proc/self/ns/mnt)"
echo "mounts_running=$(grep -c " $B/rootfs" /proc/self/mountinfo)"
"$RT" --root "$ROOT" delete --force "$ID" 2>>"$B/io.err"; echo delete=$?
echo "mounts_after=$(grep -c " $B/rootfs" /proc/self/mountinfo)"
"""


def _no_namespaces(c):
    # runc spec's config with every namespace shared with the host; runc refuses masked
    # and readonly paths (and a hostname) without the namespaces they need
    c["linux"]["namespaces"] = []
    for k in ("maskedPaths", "readonlyPaths"):
        c["linux"].pop(k, None)
    c.pop("hostname", None)


def test_no_namespaces_at_all_creates_and_starts(rt, runc_rt, tmp_path):
    # Without a mount namespace there is nothing to pivot_root: runc chroots, its mounts
    # made in the runtime's mount namespace. Each runtime runs in a private mount
    # namespace of the test's (unshare), so that none of that can reach the machine.
    if not shutil.which("unshare"):
        pytest.skip("needs unshare(1)")
    prog = ["sh", "-c", "readlink /proc/self/ns/mnt > /tmp/ns; readlink /proc/self/ns/pid >> /tmp/ns; "
            "ls /proc/self/fd > /dev/null && ls /dev > /tmp/dev; echo $$ > /tmp/pid; "
            "touch /tmp/done; sleep 2"]
    script = tmp_path / "no-ns.sh"
    script.write_text(NO_NS_SCRIPT)
    res = {}
    for name, r in _both(rt, runc_rt):
        b = r.bundle(prog, edit=_no_namespaces)
        cid = new_id()
        r.ids.add(cid)
        p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", str(script),
                            r.binary, r.root, str(b), cid], capture_output=True, text=True, timeout=120)
        out = dict(ln.split("=", 1) for ln in p.stdout.split() if "=" in ln)
        assert out.get("create") == "0" and out.get("start") == "0" and out.get("delete") == "0", \
            (name, p.stdout, (b / "io.err").read_text())
        ns = (b / "rootfs/tmp/ns").read_text().split()
        # the container shares the runtime's mount namespace and the host's pid namespace
        assert ns == [out["runtime_mntns"], os.readlink("/proc/self/ns/pid")], name
        assert "null" in (b / "rootfs/tmp/dev").read_text().split(), name  # its /dev mount
        assert int(out["mounts_running"]) > 0, name
        res[name] = out
    # runc leaves its mounts in the runtime's namespace after delete; pyrunc removes them
    # (runtime.md "delete": the resources create made)
    assert res["pyrunc"]["mounts_after"] == "0"
    assert res["runc"]["mounts_after"] != "0"


def test_no_mount_namespace_with_masked_paths_fails_as_runc(rt, runc_rt):
    def edit(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "mount"]

    for name, r in _both(rt, runc_rt):
        cid = new_id()
        p = r.create(cid, r.bundle(["true"], edit=edit), check=False)
        err = p.stderr if name == "runc" else one_line_error(p)
        assert p.returncode != 0 and "without a private MNT namespace" in err, (name, p.stderr)
        assert r.cmd("state", cid, check=False).returncode != 0


def test_failed_create_without_mount_namespace_leaves_no_mount(rt, tmp_path):
    if not shutil.which("unshare"):
        pytest.skip("needs unshare(1)")
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/bin/sh\nexit 3\n")
    bad.chmod(0o755)

    def edit(c):
        _no_namespaces(c)
        c["hooks"] = {"createContainer": [{"path": str(bad)}]}

    b = rt.bundle(["true"], edit=edit)
    cid = new_id()
    rt.ids.add(cid)
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        f'"$0" --root "$1" create --bundle "$2" "$3" 2>/dev/null; echo create=$?; '
                        f'grep -c " $2/rootfs" /proc/self/mountinfo',
                        rt.binary, rt.root, str(b), cid], capture_output=True, text=True, timeout=60)
    assert p.stdout.split() == ["create=1", "0"], p.stdout


# ------------------------------------------------------------------ / and /proc


def _altroot(tmp_path):
    from pyrunc.tooling.bundle import make_rootfs

    alt = tmp_path / "altroot"
    make_rootfs(str(alt), busybox_path())
    (alt / "marker").write_text("alt\n")
    return alt


def test_bind_mount_on_the_containers_root(rt, runc_rt, tmp_path):
    # A bind on "/" listed first: the container's root becomes it, and the later mounts
    # go on top of it (runc); "ro" makes that root read-only.
    alt = _altroot(tmp_path)

    def edit(c):
        c["mounts"].insert(0, {"destination": "/", "type": "bind", "source": str(alt),
                               "options": ["rbind", "ro"]})

    args = ["sh", "-c", "cat /marker; cut -d' ' -f4,5 /proc/self/mountinfo | head -3; "
                        "ls /dev/null; touch /x 2>/dev/null || echo read-only"]
    ours, theirs = rt.output_of(args, edit=edit), runc_rt.output_of(args, edit=edit)
    assert ours == theirs
    assert ours.splitlines() == ["alt", f"{alt} /", "/ /proc", "/ /dev", "/dev/null", "read-only"]
    assert not (alt / "dev/null").exists()  # the devices went to the /dev tmpfs above it


@pytest.mark.parametrize("case", ["no /proc", "/ bound last"])
def test_configs_that_hide_proc_fail_at_create_with_one_line(rt, runc_rt, tmp_path, case):
    # The init reopens exec.fifo through /proc/self/fd (runc reads /proc/self/fd too):
    # runc fails at create; so does pyrunc, with one line, not a raw EBADF, and not
    # after create reported success.
    alt = _altroot(tmp_path)

    def edit(c):
        if case == "no /proc":
            c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/proc"]
        else:
            c["mounts"] = [m for m in c["mounts"] if m["type"] != "cgroup"]
            c["mounts"].append({"destination": "/", "type": "bind", "source": str(alt),
                                "options": ["rbind"]})

    for name, r in _both(rt, runc_rt):
        for cmd in ("create", "run"):
            cid = new_id()
            p = getattr(r, cmd)(cid, r.bundle(["true"], edit=edit), check=False)
            assert p.returncode != 0, (name, cmd)
            if name == "pyrunc":
                err = one_line_error(p)
                assert "/proc" in err and "Bad file descriptor" not in err, err
            assert r.cmd("state", cid, check=False).returncode != 0, (name, cmd)


# ------------------------------------------------------------------ user namespace binds


def test_bind_source_the_container_user_cannot_reach(tmp_path):
    # The source's parent is 0700 root: the init, root of a user namespace mapped to host
    # uid 100000, cannot reach it. The runtime clones the source before (open_tree), as
    # current runc does; Debian's runc 1.1.5 runs this too.
    base = Path(f"/tmp/pyrunc-usbind-{uuid.uuid4().hex[:8]}")
    base.mkdir(mode=0o755)
    os.chmod(base, 0o755)  # the container's root must reach its rootfs
    secret = base / "secret"
    (secret / "inner").mkdir(parents=True)
    os.chmod(secret, 0o700)
    (secret / "inner/f").write_text("reached\n")
    runtimes = [("pyrunc", Runtime(pyrunc_binary(), base / "py"))]
    if shutil.which("runc"):
        runtimes.append(("runc", Runtime(shutil.which("runc"), base / "runc")))

    def edit(c):
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["mounts"] = [m for m in c["mounts"] if m["type"] != "cgroup"]
        c["mounts"].append({"destination": "/mnt", "type": "bind",
                            "source": str(secret / "inner"), "options": ["rbind", "ro"]})
        c["mounts"].append({"destination": "/etc/hostname", "type": "bind",  # a file
                            "source": str(secret / "inner/f"), "options": ["bind"]})

    leftovers = []
    try:
        outs = {}
        for name, r in runtimes:
            r.tmp.mkdir()
            os.chmod(r.tmp, 0o755)
            outs[name] = r.output_of(["sh", "-c", "cat /mnt/f /etc/hostname; touch /mnt/x 2>/dev/null "
                                                  "|| echo ro"], edit=edit)
        assert outs["pyrunc"] == "reached\nreached\nro\n"
        assert len(set(outs.values())) == 1, outs
    finally:
        for _, r in runtimes:
            leftovers += r.cleanup()
        shutil.rmtree(base, ignore_errors=True)
    assert not leftovers


# ------------------------------------------------------------------ hooks' environment

ENV_HOOK = '#!/bin/sh\nenv > "$1"\n'


def test_hooks_without_env_inherit_as_runc(rt, runc_rt, tmp_path):
    # runc's hooks with no env get Go's exec with a nil Env: the runtime's environment
    # (for createContainer, run by runc's init: the process's environment by then).
    hook = tmp_path / "env.sh"
    hook.write_text(ENV_HOOK)
    hook.chmod(0o755)
    env = dict(os.environ, PYRUNC_TEST_HOOKVAR="from-the-runtime")
    seen = {}
    for name, r in _both(rt, runc_rt):
        out = tmp_path / f"env-{name}"
        out.mkdir()

        def edit(c, out=out):
            c["process"]["env"].append("CONTAINERVAR=yes")
            c["hooks"] = {k: [{"path": str(hook), "args": ["env", f"{out}/{k}"]}]
                          for k in ("prestart", "createRuntime", "createContainer", "poststart",
                                    "poststop")}
            c["hooks"]["createRuntime"][0]["env"] = ["ONLY=this"]  # given: exactly that

        r.run(new_id(), r.bundle(["true"], edit=edit), env=env)
        seen[name] = {k: dict(ln.split("=", 1) for ln in (out / k).read_text().splitlines() if "=" in ln)
                      for k in ("prestart", "createRuntime", "createContainer", "poststart", "poststop")}
    for name, s in seen.items():
        for k in ("prestart", "poststart", "poststop"):
            assert s[k].get("PYRUNC_TEST_HOOKVAR") == "from-the-runtime", (name, k)
        assert "PYRUNC_TEST_HOOKVAR" not in s["createRuntime"] and s["createRuntime"]["ONLY"] == "this"
        assert s["createContainer"].get("CONTAINERVAR") == "yes", name
        assert "PYRUNC_TEST_HOOKVAR" not in s["createContainer"], name


# ------------------------------------------------------------------ exec's process group


def test_exec_process_has_its_own_process_group(rt, runc_rt):
    # runc's exec: the process leads a new session (and process group), so getpgrp() and
    # getsid() inside the container are its own pid, not 0 (a group outside the pid ns).
    for name, r in _both(rt, runc_rt):
        cid = new_id()
        r.create(cid, r.bundle(["sleep", "30"]))
        r.cmd("start", cid)
        f = r.cmd("exec", cid, "cat", "/proc/self/stat").stdout.split()
        assert f[0] == f[4] == f[5] != "0", (name, f[:6])
        r.cmd("exec", "--detach", cid, "sh", "-c", "cut -d' ' -f1,5,6 /proc/self/stat > /tmp/st")
        bundle = Path(r.state(cid)["bundle"])
        assert wait_for(lambda: (bundle / "rootfs/tmp/st").exists()
                        and (bundle / "rootfs/tmp/st").read_text().endswith("\n"))
        pid, pgrp, sid = (bundle / "rootfs/tmp/st").read_text().split()
        assert pid == pgrp == sid != "0", name


# ------------------------------------------------------------------ --log


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_log_file_that_cannot_be_opened_fails_at_once(rt, runc_rt, tmp_path, fmt):
    # runc opens --log before it runs any command: `list` (which logs nothing) fails too
    bad = tmp_path / "no-such-dir" / "log.json"
    for name, r in _both(rt, runc_rt):
        p = r.cmd("--log", bad, "--log-format", fmt, "list", check=False)
        assert p.returncode == 1, (name, p.stdout)
        assert p.stdout == ""
        if name == "pyrunc":
            err = one_line_error(p)
            if fmt == "json":
                err = json.loads(err)
                assert err["level"] == "error"
                err = err["msg"]
            assert str(bad) in err and "No such file or directory" in err
    assert rt.cmd("--log", bad, "--version").returncode == 0  # as runc
    assert not bad.parent.exists()


# ------------------------------------------------------------------ a shared --root


def test_list_and_state_in_a_root_shared_with_other_runtimes(rt, runc_rt):
    # Docker 20.10 keeps every runtime's state in one directory: list skips what is not
    # pyrunc's (with a warning) and exits 0; state of such an id is a one-line error.
    runc_rt.root = rt.root
    ours, theirs = new_id(), new_id()
    rt.create(ours, rt.bundle(["sleep", "30"]))
    runc_rt.create(theirs, runc_rt.bundle(["sleep", "30"]))
    root = Path(rt.root)
    bad = {"corrupt": "{bad", "array": "[1, 2]", "other-shape": '{"id": "x", "init_pid": 1}'}
    for name, text in bad.items():
        (root / name).mkdir()
        (root / name / "state.json").write_text(text)
    (root / "in-creation").mkdir()  # no state.json yet: skipped without a word
    p = rt.cmd("list", "--format", "json")
    assert [c["id"] for c in json.loads(p.stdout)] == [ours]
    warned = p.stderr.splitlines()
    assert len(warned) == 4 and all("level=warning" in w for w in warned), p.stderr
    assert all(any(n in w for w in warned) for n in (theirs, *bad)), p.stderr
    assert rt.cmd("list", "-q").stdout.split() == [ours]
    for cid in (theirs, *bad):
        err = one_line_error(rt.cmd("state", cid, check=False))
        assert cid in err and "internal error" not in err, err
    # runc's list in the same root: also 0, also skipping what it cannot read
    assert json.loads(runc_rt.cmd("list", "--format", "json").stdout)[0]["id"] == theirs
