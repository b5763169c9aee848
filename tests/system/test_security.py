"""Known container-runtime attack classes, each reproduced against a malicious rootfs or
container process; every test shows the attack fails. AppArmor/SELinux settings."""
import json
import os
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from support.checks import one_line_error
from support.bundles import new_id


# ---------------------------------------------------------------- CVE-2019-5736 class
# A process in the container opens /proc/PID/exe of a runtime process that entered the
# container (for pyrunc: the host's Python interpreter) and later writes through it,
# replacing the host binary. Defence: such processes are non-dumpable, so /proc/PID/exe
# and /proc/PID/fd/* of them stay out of reach of the container. (The tests only probe
# with stat/open for reading: nothing is ever written.)

ATTACKER = r"""
seen=" 1 $$ "
end=$(( $(date +%s) + 25 ))
while [ $(date +%s) -lt $end ]; do
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    case "$seen" in *" $p "*) continue;; esac
    seen="$seen$p "
    read -r _ _ _ ppid _ < $d/stat 2>/dev/null || continue
    [ "$ppid" = "$$" ] && continue
    kill -STOP $p 2>/dev/null || continue
    name=""
    while read -r k v; do [ "$k" = Name: ] && name=$v && break; done < $d/status
    got=""
    [ -e $d/exe ] && got="$got exe"
    true 2>/dev/null 9<$d/exe && got="$got exe-open"
    for f in $d/fd/*; do [ -e "$f" ] && got="$got fd"; done
    echo "$p $name:$got" >> /tmp/attack.log
    kill -CONT $p
  done
done
"""


def _attack_log(bundle):
    f = Path(bundle) / "rootfs" / "tmp" / "attack.log"
    return f.read_text().splitlines() if f.exists() else []


def _runtime_entries(lines):
    out = []
    for line in lines:
        pid, rest = line.split(" ", 1)
        name, _, got = rest.partition(":")
        if name in ("pyrunc", "python", "python3") or name.startswith("python3"):
            out.append((pid, name, got.split()))
    return out


def test_cve_2019_5736_exec_process_exe_unreachable(rt):
    # The attacker (the container's init) freezes every new process and probes its exe
    # and fds while `pyrunc exec` joins the container.
    b = rt.bundle(["sh", "-c", ATTACKER])
    c = new_id("x")
    rt.run(c, b, "--detach")
    caught = []
    for _ in range(15):
        rt.cmd("exec", c, "true", check=False)
        caught = _runtime_entries(_attack_log(b))
        if caught:
            break
    assert caught, f"the attacker never saw the joining runtime process: {_attack_log(b)}"
    for pid, name, got in caught:
        assert got == [], f"{name} (pid {pid} in the container) exposed {got} to the container"


def test_cve_2019_5736_created_init_exe_unreachable(rt):
    # The init of a created (not yet started) container is still the runtime (Python);
    # a process exec'd into the container must not reach its exe or fds either.
    b = rt.bundle(["true"])
    c = new_id("x")
    rt.create(c, b)
    p = rt.cmd("exec", c, "sh", "-c",
               "[ -e /proc/1/exe ] && echo EXE; true 2>/dev/null 9</proc/1/exe && echo EXE-OPEN; "
               "for f in /proc/1/fd/*; do [ -e $f ] && echo FD $f; done; "
               "read -r k v < /proc/1/status; echo $v", check=False)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split("\n")
    assert "EXE" not in lines and "EXE-OPEN" not in lines, p.stdout
    assert not [x for x in lines if x.startswith("FD ")], p.stdout


# With CAP_SYS_PTRACE (privileged containers) non-dumpable is no bar: ptrace access to a
# process whose mm belongs to the host's user namespace is granted by that capability.
# Issue 14.2: such a container reached the host's Python through /proc/PID/exe of the
# created init and of exec's processes, and read the caller's environment (an engine's
# secrets) in /proc/PID/environ. Defences: the runtime process that enters a container
# runs an interpreter from a detached read-only overlay (scripts/pyrunc.c; a sealed memfd
# copy where overlayfs is unavailable), never the host file; the container side wipes
# the caller's environment before it joins or makes the container's namespaces. The
# probes open for reading only: nothing is ever written.

def _with_ptrace(c):
    for kind in ("bounding", "effective", "permitted"):
        c["process"]["capabilities"][kind].append("CAP_SYS_PTRACE")


def _host_interpreter_ids():
    import sys

    st = os.stat(os.path.realpath(sys.executable))
    return f"{st.st_dev}:{st.st_ino}"


def _secret_env():
    secret = f"pyrunc-secret-{uuid.uuid4().hex}"
    return secret, dict(os.environ, PYRUNC_TEST_SECRET=secret)


PROBE_INIT = ("stat -L -c %d:%i /proc/1/exe; "
              "tr '\\0' '\\n' < /proc/1/environ | grep -c PYRUNC_TEST_SECRET; true")


@pytest.mark.parametrize("sealing", ["overlay", "memfd"])
def test_privileged_container_cannot_reach_the_host_interpreter_of_the_created_init(rt, sealing):
    import shutil

    secret, env = _secret_env()
    b = rt.bundle(["true"], edit=_with_ptrace)
    c = new_id("x")
    if sealing == "overlay":
        rt.create(c, b, env=env)
    else:  # no overlayfs (fsopen fails): the sealed memfd copy
        if not shutil.which("strace"):
            pytest.skip("strace is not installed")
        rt.ids.add(c)
        subprocess.run(["strace", "-o", "/dev/null", "-e", "trace=fsopen", "-e", "inject=fsopen:error=ENOSYS",
                        rt.binary, "--root", rt.root, "create", "--bundle", str(b), c],
                       env=env, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
    exe = os.readlink(f"/proc/{rt.state(c)['pid']}/exe")
    assert exe.startswith("/memfd:") if sealing == "memfd" else not exe.startswith("/memfd:"), exe
    p = rt.cmd("exec", c, "sh", "-c", PROBE_INIT, env=env)
    ids, secrets = p.stdout.split()[:2]
    # runc's init shows a sealed copy of runc; pyrunc's an overlay/memfd interpreter
    assert ids != _host_interpreter_ids(), "the created init's /proc/1/exe is the host's interpreter file"
    assert secrets == "0", f"the created init's /proc/1/environ shows the caller's environment: {p.stdout}"
    assert secret not in p.stdout


def test_privileged_container_sees_exec_processes_without_host_interpreter_or_environment(rt):
    """The attacker (the container's init, with CAP_SYS_PTRACE) freezes every new process
    while `pyrunc exec` joins the container and records what its exe and environ are."""
    secret, env = _secret_env()
    attacker = ATTACKER.replace(
        'echo "$p $name:$got" >> /tmp/attack.log',
        'echo "$p $name: $(stat -L -c %d:%i $d/exe 2>/dev/null) '
        '$(tr \'\\0\' \'\\n\' < $d/environ 2>/dev/null | grep -c PYRUNC_TEST_SECRET)" >> /tmp/attack.log')
    b = rt.bundle(["sh", "-c", attacker], edit=_with_ptrace)
    c = new_id("x")
    rt.run(c, b, "--detach", env=env)
    caught = []
    for _ in range(15):
        rt.cmd("exec", c, "true", check=False, env=env)
        caught = _runtime_entries(_attack_log(b))
        if caught:
            break
    assert caught, f"the attacker never saw the joining runtime process: {_attack_log(b)}"
    host = _host_interpreter_ids()
    for pid, name, got in caught:
        assert got and got[0] != host, f"{name} (pid {pid}) has the host's interpreter as exe: {got}"
        assert got[-1] == "0", f"{name} (pid {pid}) shows the caller's environment: {got}"


# ---------------------------------------------------------------- CVE-2024-21626 class
# A descriptor of the runtime's (a host directory) leaks into the container process, and
# process.cwd "/proc/self/fd/N" (or a later chdir through it) walks out of the rootfs.
# Defence: no descriptor but stdio (and --preserve-fds) reaches the container, and the
# cwd is inside the container's root.

ESCAPE_CHECK = ("i=0; while [ $i -lt 40 ]; do cd -P .. 2>/dev/null || break; i=$((i+1)); done; "
                "[ \"$(stat -c %d:%i .)\" = \"$(stat -c %d:%i /)\" ] && echo inside || echo ESCAPED")


def test_cve_2024_21626_cwd_through_leaked_fd(rt):
    for n in range(3, 10):
        def ed(c, n=n):
            c["process"]["cwd"] = f"/proc/self/fd/{n}"

        b = rt.bundle(["sh", "-c", ESCAPE_CHECK], edit=ed)
        p = rt.run(new_id("x"), b, check=False)
        if p.returncode == 0:
            assert p.stdout.strip() == "inside", (n, p.stdout, p.stderr)
        else:
            assert "cwd" in one_line_error(p) or p.stdout.strip() == "inside", (n, p.stdout, p.stderr)


def test_cve_2024_21626_cwd_outside_root_refused(rt, tmp_path):
    # A host directory fd that does reach the container (here on purpose, --preserve-fds)
    # must still not become its cwd: the cwd is checked to be inside the root (runc's
    # verifyCwd), or the process would start outside the rootfs.
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "host-secret").write_text("x")

    def ed(c):
        c["process"]["cwd"] = "/proc/self/fd/3"

    b = rt.bundle(["sh", "-c", "ls; " + ESCAPE_CHECK], edit=ed)
    c = new_id("x")
    rt.ids.add(c)
    p = subprocess.run(["sh", "-c", f'exec 3<"{host}"; exec "$0" "$@"', rt.binary, "--root", rt.root,
                        "run", "--preserve-fds", "1", "--bundle", str(b), c],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert "host-secret" not in p.stdout and "ESCAPED" not in p.stdout, p.stdout
    assert "outside" in one_line_error(p)


def test_cve_2024_21626_exec_cwd_through_leaked_fd(rt):
    b = rt.bundle(["sleep", "30"])
    c = new_id("x")
    rt.run(c, b, "--detach")
    for n in range(3, 10):
        p = rt.cmd("exec", "--cwd", f"/proc/self/fd/{n}", c, "sh", "-c", ESCAPE_CHECK, check=False)
        assert "ESCAPED" not in p.stdout, (n, p.stdout, p.stderr)


def test_cve_2024_21626_no_leaked_fds(rt):
    # only stdio in the container process; the created init holds no host directory
    b = rt.bundle(["sh", "-c", "ls /proc/self/fd"])
    assert rt.run(new_id("x"), b).stdout.split() == ["0", "1", "2", "3"]  # 3: ls's own
    b = rt.bundle(["true"])
    c = new_id("x")
    rt.create(c, b)
    init = rt.state(c)["pid"]
    for fd in os.listdir(f"/proc/{init}/fd"):
        if int(fd) < 3:
            continue
        target = os.readlink(f"/proc/{init}/fd/{fd}")
        assert not os.path.isdir(f"/proc/{init}/fd/{fd}"), f"the init holds directory fd {fd}: {target}"


# ---------------------------------------------------------------- CVE-2021-30465 class
# A mount target in a volume the attacker controls is swapped between a directory and a
# symlink to a host path while the runtime mounts: a target resolved on the host puts
# the mount outside the rootfs (and makes directories on the host). Defence: targets are
# resolved inside the rootfs, atomically with the mount.


def test_cve_2021_30465_symlink_swap_race(rt, tmp_path):
    host_dir = tmp_path / "host-target"
    host_dir.mkdir()
    (host_dir / "keep").write_text("host\n")

    def ed(c):
        c["mounts"].append({"destination": "/vol/t/sub", "type": "tmpfs", "source": "tmpfs",
                            "options": ["size=1240k"]})

    b = rt.bundle(["cat", "/proc/self/mountinfo"], edit=ed)
    vol = b / "rootfs" / "vol"
    vol.mkdir()
    stop = threading.Event()

    def racer():  # the other container, flipping the shared volume's entry
        d, ln = vol / "t.dir", vol / "t.lnk"
        while not stop.is_set():
            try:
                d.mkdir(exist_ok=True)
                os.rename(d, vol / "t")
                if not ln.is_symlink():
                    ln.symlink_to(str(host_dir))
                os.rename(ln, vol / "t")
            except OSError:
                pass

    t = threading.Thread(target=racer, daemon=True)
    t.start()
    try:
        outcomes = []
        for _ in range(12):
            p = rt.run(new_id("x"), b, check=False)
            if p.returncode == 0:
                mounted = [line for line in p.stdout.splitlines() if "size=1240k" in line]
                assert mounted, f"the tmpfs went somewhere outside the rootfs:\n{p.stdout}"
                outcomes.append(mounted[0].split()[4])
            assert sorted(os.listdir(host_dir)) == ["keep"], "the runtime made files on the host"
    finally:
        stop.set()
        t.join()
    assert outcomes, "no run succeeded"
    # wherever the race sent it, the mount is inside the container: /vol/t/sub or the
    # symlink's target taken inside the rootfs
    assert set(outcomes) <= {"/vol/t/sub", f"{host_dir}/sub"}, outcomes


# ---------------------------------------------------------------- CVE-2019-16884 class
# The rootfs makes /proc a symlink to a directory of its own with fake proc files, so
# that procfs is mounted elsewhere and the LSM label written by the runtime to
# /proc/self/attr/* lands in a plain file. Defence: procfs only on a real directory,
# and the runtime writes labels only to files on procfs.


def test_cve_2019_16884_proc_symlink(rt, runc_rt):
    for r in (rt, runc_rt):
        b = r.bundle(["sh", "-c", "stat -f -c %T /proc; ls /evil"])
        proc = b / "rootfs" / "proc"
        if proc.exists():
            proc.rmdir()
        evil = b / "rootfs" / "evil" / "self" / "attr"
        evil.mkdir(parents=True)
        (evil / "exec").write_text("")
        proc.symlink_to("/evil")
        p = r.run(new_id("x"), b, check=False)
        if p.returncode == 0:  # then /proc must be the kernel's
            assert p.stdout.split()[0] == "proc", (r.binary, p.stdout)
        else:
            assert "proc" in p.stderr, (r.binary, p.stderr)
        assert (evil / "exec").read_text() == ""


def test_lsm_labels_only_written_to_procfs(tmp_path):
    from pyrunc.linux.lsm.apparmor import write_proc_attr
    from pyrunc.errors import PyruncError

    fake = tmp_path / "exec"
    fake.write_text("")
    with pytest.raises(PyruncError, match="not on procfs"):
        write_proc_attr((str(fake),), b"exec evil", "process.apparmorProfile")
    assert fake.read_text() == ""
    # the kernel's file passes the check and the kernel answers (no such profile / no LSM)
    with pytest.raises(PyruncError, match="write /proc/thread-self/attr/exec"):
        write_proc_attr(("/proc/thread-self/attr/nonexistent", "/proc/thread-self/attr/exec"),
                        b"exec pyrunc-no-such-profile-" + uuid.uuid4().hex.encode(), "process.apparmorProfile")


# ---------------------------------------------------------------- CVE-2022-29162 class
# The runtime must not hand out inheritable capabilities beyond the config (runc < 1.1.2
# set them to the bounding set), which a file with inheritable caps could then raise.

def _caps(text):
    return {line.split(":")[0]: int(line.split()[1], 16) for line in text.splitlines()
            if line.startswith("Cap")}


def test_cve_2022_29162_no_inheritable_caps_beyond_config(rt):
    from pyrunc.linux.capabilities import cap_number

    b = rt.bundle(["sleep", "30"])
    c = new_id("x")
    rt.run(c, b, "--detach")
    init = rt.state(c)["pid"]
    caps = _caps(Path(f"/proc/{init}/status").read_text())
    assert caps["CapInh"] == 0 and caps["CapAmb"] == 0
    caps = _caps(rt.cmd("exec", c, "cat", "/proc/self/status").stdout)
    assert caps["CapInh"] == 0 and caps["CapAmb"] == 0

    def ed(conf):
        conf["process"]["capabilities"]["inheritable"] = ["CAP_KILL"]

    out = rt.output_of(["cat", "/proc/self/status"], edit=ed)
    assert _caps(out)["CapInh"] == 1 << cap_number("CAP_KILL")


# ---------------------------------------------------------------- path traversal
# Container ids, --root and the bundle's root.path must never name a place outside what
# they are meant to: an id like "../x" would read, write or delete another directory.

BAD_IDS = ["..", ".", "../victim", "a/b", "/abs", "x/../../victim", "", " ", "x\ny"]


def test_container_id_traversal(rt, tmp_path):
    root = Path(rt.root)
    victim = root.parent / "victim"
    victim.mkdir()
    (victim / "state.json").write_text(json.dumps({"id": "victim", "init_pid": 1}))
    b = rt.bundle(["true"])
    for bad in BAD_IDS:
        for argv in (["create", "--bundle", b, bad], ["state", bad], ["kill", bad, "KILL"],
                     ["delete", "--force", bad], ["exec", bad, "true"], ["start", bad]):
            p = rt.cmd(*argv, check=False)
            assert p.returncode != 0, (argv, p.stdout)
            assert "Traceback" not in p.stderr
    assert (victim / "state.json").exists(), "a bad id reached outside --root"
    assert sorted(os.listdir(root.parent)) == sorted(set(os.listdir(root.parent)))
    leftovers = [n for n in (os.listdir(root) if root.exists() else []) if n not in ("victim",)]
    assert leftovers == [], leftovers


def test_planted_symlink_under_root_is_not_followed(rt, tmp_path):
    # A symlink planted in --root in place of a container's directory (a shared or
    # pre-existing root) must not make the runtime read or delete files elsewhere.
    root = Path(rt.root)
    root.mkdir(parents=True, exist_ok=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("x")
    (root / "evil").symlink_to(victim)
    for argv in (["delete", "--force", "evil"], ["delete", "evil"], ["state", "evil"],
                 ["kill", "evil", "KILL"], ["start", "evil"]):
        rt.cmd(*argv, check=False)
    assert sorted(os.listdir(victim)) == ["precious"]


def test_bundle_root_path_host_root_refused(rt):
    for path in ("/", "../../../../../../../../../..", "rootfs/../../../../../../../.."):
        def ed(c, path=path):
            c["root"]["path"] = path

        b = rt.bundle(["true"], edit=ed)
        p = rt.run(new_id("x"), b, check=False)
        assert "root.path" in one_line_error(p), path


# ---------------------------------------------------------------- AppArmor / SELinux


def _apparmor_on():
    from pyrunc.linux.lsm import apparmor

    return apparmor.enabled()


def _selinux_on():
    from pyrunc.linux.lsm import selinux

    return selinux.enabled()


@pytest.mark.skipif(_apparmor_on(), reason="the host has AppArmor")
def test_apparmor_profile_without_apparmor_is_an_error(rt, runc_rt):
    # as runc: a profile that cannot be applied fails the container, never silently dropped
    def ed(c):
        c["process"]["apparmorProfile"] = "pyrunc-test"

    assert runc_rt.run(new_id("x"), runc_rt.bundle(["true"], edit=ed), check=False).returncode != 0
    err = one_line_error(rt.run(new_id("x"), rt.bundle(["true"], edit=ed), check=False))
    assert "apparmorProfile" in err and "pyrunc-test" in err and "not enabled" in err


@pytest.mark.skipif(_selinux_on(), reason="the host has SELinux")
def test_selinux_label_without_selinux_is_an_error(rt, runc_rt):
    # runc's validateProcessSpec: "selinux label is specified in config, but selinux is
    # disabled or not supported", for create and exec alike
    label = "system_u:system_r:container_t:s0"

    def ed(c):
        c["process"]["selinuxLabel"] = label

    theirs = runc_rt.run(new_id("x"), runc_rt.bundle(["true"], edit=ed), check=False)
    assert theirs.returncode != 0 and "selinux is disabled" in theirs.stderr
    err = one_line_error(rt.run(new_id("x"), rt.bundle(["true"], edit=ed), check=False))
    assert "process.selinuxLabel" in err and "selinux is disabled" in err
    c = new_id("x")
    rt.run(c, rt.bundle(["sleep", "30"]), "--detach")
    p = rt.cmd("exec", "--process-label", label, c, "true", check=False)
    assert "selinux is disabled" in one_line_error(p)
