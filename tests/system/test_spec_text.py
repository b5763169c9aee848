"""Where the runtime-spec v1.3.0 text says what to do, pyrunc does it, also where runc
(Debian's 1.1.5, run alongside) does otherwise; each test says where runc differs."""
import errno
import json
from pathlib import Path

import pytest

from support.bundles import new_id

UNKNOWN_CAPS = ["CAP_PYRUNC_UNKNOWN", "CAP_ALSO_NOT_A_CAP"]


# ------------------------------------------------------------------ capabilities


def _with_unknown_caps(c):
    caps = c["process"]["capabilities"]
    caps["bounding"].append(UNKNOWN_CAPS[0])
    caps["effective"].append(UNKNOWN_CAPS[1])
    caps["permitted"].append(UNKNOWN_CAPS[0])


def test_unknown_capabilities_are_a_warning_not_a_failure(rt, runc_rt):
    # config.md "Linux Process": capabilities that cannot be mapped "MUST be logged as a
    # warning"; "Runtimes SHOULD NOT fail". runc 1.1.5 does the same.
    script = "grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status"
    outs = {}
    for name, r in (("pyrunc", rt), ("runc", runc_rt)):
        b = r.bundle(["sh", "-c", script], edit=_with_unknown_caps)
        p = r.run(new_id(), b, check=False)
        assert p.returncode == 0, (name, p.stderr)
        warn = [ln for ln in p.stderr.splitlines() if "level=warning" in ln]
        assert len(warn) == 1 and all(n in warn[0] for n in UNKNOWN_CAPS), (name, p.stderr)
        outs[name] = p.stdout
    assert outs["pyrunc"] == outs["runc"]  # the known ones granted as runc grants them


def test_capability_warning_reaches_the_json_log(rt, tmp_path):
    log = tmp_path / "log.json"
    b = rt.bundle(["true"], edit=_with_unknown_caps)
    cid = new_id()
    rt.ids.add(cid)
    p = rt.cmd("--log", log, "--log-format", "json", "run", "--bundle", b, cid)
    assert p.returncode == 0
    lines = [json.loads(ln) for ln in log.read_text().splitlines()]
    warn = [ln for ln in lines if ln["level"] == "warning"]
    assert len(warn) == 1 and all(n in warn[0]["msg"] for n in UNKNOWN_CAPS), lines
    assert "process.capabilities" in warn[0]["msg"]


def test_exec_with_an_unknown_capability_warns_and_runs(rt):
    cid = new_id()
    rt.create(cid, rt.bundle(["sleep", "30"]))
    rt.cmd("start", cid)
    p = rt.cmd("exec", "--cap", UNKNOWN_CAPS[0], cid, "sh", "-c", "echo ran", check=False)
    assert p.returncode == 0 and p.stdout == "ran\n", p.stderr
    assert "level=warning" in p.stderr and UNKNOWN_CAPS[0] in p.stderr


def test_capabilities_beyond_the_hosts_last_cap_are_left_out(monkeypatch):
    # A kernel older than the table (its cap_last_cap lower) cannot grant the newer
    # ones: left out with the same warning as unknown names.
    from pyrunc import log
    from pyrunc.linux import capabilities

    monkeypatch.setattr(capabilities, "_last_cap", capabilities.CAPABILITIES["CAP_AUDIT_READ"])
    mask, ignored = capabilities.usable_mask(["CAP_KILL", "CAP_BPF", "CAP_PERFMON"])
    assert mask == 1 << capabilities.CAPABILITIES["CAP_KILL"]
    assert ignored == ["CAP_BPF", "CAP_PERFMON"]
    seen = []
    monkeypatch.setattr(log, "warning", seen.append)
    capabilities.warn_ignored({"bounding": ["CAP_BPF"], "ambient": ["CAP_PERFMON", "CAP_KILL"]})
    assert seen == ["process.capabilities: ignoring unknown or unavailable capabilities: "
                    "[CAP_BPF CAP_PERFMON]"]


CAP_SYS_BOOT = 22  # a capability the runtime never needs: dropped for these tests


def _runtime_without_sys_boot():
    """preexec_fn: the runtime runs without CAP_SYS_BOOT (root's permitted set after execve
    is its bounding set), as in a restricted environment."""
    from pyrunc.native import constants as C
    from pyrunc.native import syscalls as sc

    sc.prctl(C.PR_CAPBSET_DROP, CAP_SYS_BOOT)


def _own_bounding():
    return int(next(ln.split()[1] for ln in Path("/proc/self/status").read_text().splitlines()
                    if ln.startswith("CapBnd:")), 16)


def _all_caps(c):
    """Every capability in every set, as Docker's --privileged asks."""
    from pyrunc.linux.capabilities import CAPABILITIES, last_cap

    names = sorted(n for n, v in CAPABILITIES.items() if v <= last_cap())
    c["process"]["capabilities"] = {k: list(names) for k in ("bounding", "effective", "permitted", "inheritable")}


def test_capabilities_the_runtime_lacks_are_a_warning_not_a_failure(rt, runc_rt):
    # config.md "Linux Process": a capability that "cannot be granted otherwise MUST be
    # logged as a warning"; "Runtimes SHOULD NOT fail ... for example, if the runtime
    # operates in a restricted environment with limited capabilities" (Docker's
    # --privileged on a host whose root lacks some). runc 1.1.5 fails: "unable to apply
    # caps: operation not permitted".
    from pyrunc.linux.capabilities import last_cap

    script = "grep -E '^Cap(Eff|Prm|Bnd|Inh)' /proc/self/status"
    b = rt.bundle(["sh", "-c", script], edit=_all_caps)
    p = rt.run(new_id(), b, check=False, preexec_fn=_runtime_without_sys_boot)
    assert p.returncode == 0, p.stderr
    expect = _own_bounding() & ((1 << (last_cap() + 1)) - 1) & ~(1 << CAP_SYS_BOOT)
    got = {ln.split()[0]: int(ln.split()[1], 16) for ln in p.stdout.splitlines()}
    assert got == {"CapInh:": expect, "CapPrm:": expect, "CapEff:": expect, "CapBnd:": expect}, p.stdout
    warn = [ln for ln in p.stderr.splitlines() if "level=warning" in ln]
    assert len(warn) == 1 and "CAP_SYS_BOOT" in warn[0] and "unavailable capabilities" in warn[0], p.stderr

    p = runc_rt.run(new_id(), runc_rt.bundle(["true"], edit=_all_caps), check=False,
                    preexec_fn=_runtime_without_sys_boot)
    assert p.returncode != 0 and "unable to apply caps" in p.stderr, "runc 1.1.5 fails here"


def test_exec_with_a_capability_the_runtime_lacks_warns_and_runs(rt):
    cid = new_id()
    rt.create(cid, rt.bundle(["sleep", "30"]))
    rt.cmd("start", cid)
    p = rt.cmd("exec", "--cap", "CAP_SYS_BOOT", cid, "grep", "CapEff", "/proc/self/status", check=False,
               preexec_fn=_runtime_without_sys_boot)
    assert p.returncode == 0, p.stderr
    assert not int(p.stdout.split()[1], 16) & (1 << CAP_SYS_BOOT)
    assert "level=warning" in p.stderr and "CAP_SYS_BOOT" in p.stderr, p.stderr


def test_a_user_namespace_grants_what_the_runtime_lacks(rt):
    # In a new user namespace the init holds every capability (of that namespace): no
    # warning, nothing left out.
    from pyrunc.linux.capabilities import last_cap

    def edit(c):
        _all_caps(c)
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]

    p = rt.run(new_id(), rt.bundle(["grep", "CapEff", "/proc/self/status"], edit=edit), check=False,
               preexec_fn=_runtime_without_sys_boot)
    assert p.returncode == 0, p.stderr
    assert int(p.stdout.split()[1], 16) == (1 << (last_cap() + 1)) - 1
    assert "level=warning" not in p.stderr, p.stderr


# ------------------------------------------------------------------ hook state


def test_create_phase_hooks_see_status_created(rt, runc_rt, tmp_path):
    # runtime.md "Lifecycle": prestart, createRuntime and createContainer hooks run at
    # steps 3-5, after the create operation's step 2; runtime.md "State": "creating" is
    # step 2, "created" after it. runc 1.1.5 passes "creating" (a deviation).
    rec = tmp_path / "rec.sh"
    rec.write_text('#!/bin/sh\ncat > "$1"\n')
    rec.chmod(0o755)
    seen = {}
    for name, r in (("pyrunc", rt), ("runc", runc_rt)):
        out = tmp_path / f"out-{name}"
        out.mkdir()

        def edit(c, out=out):
            c["hooks"] = {k: [{"path": str(rec), "args": ["rec", f"{out}/{k}.json"]}]
                          for k in ("prestart", "createRuntime", "createContainer")}

        cid = new_id()
        r.create(cid, r.bundle(["true"], edit=edit))
        seen[name] = {k: json.loads((out / f"{k}.json").read_text())["status"]
                      for k in ("prestart", "createRuntime", "createContainer")}
        assert r.state(cid)["status"] == "created"
    assert seen["pyrunc"] == dict.fromkeys(("prestart", "createRuntime", "createContainer"), "created")
    assert set(seen["runc"].values()) == {"creating"}  # runc's deviation, for the record


# ------------------------------------------------------------------ device rules

V1_DEVICES = Path("/sys/fs/cgroup/devices")
RULES = [{"allow": False, "access": "rwm"},
         {"allow": True, "type": "c", "major": 42, "minor": 7, "access": "rw"},
         {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "r"},
         {"allow": True, "type": "c", "major": 4, "access": "rwm"},
         {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"}]


@pytest.mark.skipif(not V1_DEVICES.is_dir(), reason="needs the cgroup v1 devices controller")
def test_device_rules_applied_in_the_listed_order(rt, runc_rt):
    # config-linux.md "Allowed Device List": "The runtime MUST apply entries in the listed
    # order." As runc builds them: the config's entries, then the default allowances; the
    # kernel lists exceptions in the order they were added. runc 1.1.5 ends in the same
    # state but writes it sorted by type and numbers (its devices.list is sorted).
    def edit(c):
        c["linux"]["resources"]["devices"] = RULES

    args = ["cat", "/sys/fs/cgroup/devices/devices.list"]
    ours, theirs = rt.output_of(args, edit=edit).splitlines(), runc_rt.output_of(args, edit=edit).splitlines()
    assert sorted(ours) == sorted(theirs)
    assert ours == ["c 42:7 rw", "b 8:0 r", "c 4:* rwm", "c 1:3 rwm",  # the config's, c 1:3 +wm from
                    "c *:* m", "b *:* m", "c 1:8 rwm", "c 1:7 rwm",      # its default, then the
                    "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm", "c 136:* rwm",  # other defaults
                    "c 5:2 rwm", "c 10:200 rwm"]
    assert theirs != ours  # runc: sorted


# ------------------------------------------------------------------ seccomp, last


# Syscalls the runtime itself makes in the container on its way to execve: checking the
# cwd, opening exec.fifo through /proc, closing descriptors, restoring signals, ...
RUNTIME_SYSCALLS = ["getcwd", "close_range", "close", "fstat", "newfstatat", "statx", "openat",
                    "open", "openat2", "readlink", "readlinkat", "rt_sigaction", "rt_sigprocmask",
                    "chdir", "fchdir", "umask", "prctl", "setresuid", "setresgid", "setgroups",
                    "sched_setaffinity", "getdents64", "read", "lseek", "fcntl", "dup2", "dup3",
                    "sendmsg", "recvmsg", "socket", "connect", "getpid", "kill", "wait4", "clone",
                    "clone3", "mount", "umount2", "pivot_root", "chroot", "capget"]


# what static busybox's `echo` makes itself (strace): not killed by the KILL variant
ECHO_SYSCALLS = {"prctl", "readlink"}


def _late_filter(nnp, action="SCMP_ACT_ERRNO"):
    names = RUNTIME_SYSCALLS if action == "SCMP_ACT_ERRNO" else \
        [n for n in RUNTIME_SYSCALLS if n not in ECHO_SYSCALLS]

    def edit(c):
        c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                 "syscalls": [{"names": names, "action": action}]}
        c["process"]["noNewPrivileges"] = nnp
        c["process"]["cwd"] = "/tmp"
    return edit


@pytest.mark.parametrize("nnp", [True, False])
def test_seccomp_filter_is_the_last_step(rt, runc_rt, nnp):
    # config-linux.md "Seccomp" and runtime.md: the filter applies to the container's
    # process, not to what the runtime still does in the container before it executes it.
    # Without noNewPrivileges too (loading then needs CAP_SYS_ADMIN, kept until then).
    # runc 1.1.5 runs its fifo/fd handling under the filter and fails (a deviation).
    for action in ("SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS"):
        b = rt.bundle(["echo", "ok"], edit=_late_filter(nnp, action))
        p = rt.run(new_id(), b, check=False)
        assert p.returncode == 0 and p.stdout == "ok\n", (action, p.stderr)
    p = runc_rt.run(new_id(), runc_rt.bundle(["echo", "ok"], edit=_late_filter(nnp)), check=False)
    assert p.returncode != 0  # runc's deviation, for the record


def test_exec_process_gets_its_filter_last(rt):
    cid = new_id()
    rt.create(cid, rt.bundle(["sleep", "30"], edit=_late_filter(False)))
    rt.cmd("start", cid)
    for extra in ((), ("--no-new-privs",)):
        p = rt.cmd("exec", *extra, cid, "echo", "exec-ok", check=False)
        assert p.returncode == 0 and p.stdout == "exec-ok\n", (extra, p.stderr)


@pytest.mark.parametrize("nnp", [True, False])
def test_seccomp_without_nnp_leaves_the_configured_capabilities(rt, runc_rt, nnp):
    # CAP_SYS_ADMIN, kept for loading the filter, is gone by execve: the sets are the
    # config's, as with runc.
    def edit(c):
        c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES}]}
        c["process"]["noNewPrivileges"] = nnp
        c["process"]["capabilities"]["inheritable"] = ["CAP_KILL"]

    args = ["sh", "-c", "grep -E '^(Cap|Seccomp:|NoNewPrivs)' /proc/self/status; mkdir /tmp/d; echo $?"]
    ours, theirs = rt.output_of(args, edit=edit), runc_rt.output_of(args, edit=edit)
    assert ours == theirs
    assert "Seccomp:\t2" in ours and ours.endswith("1\n")


def test_seccomp_without_nnp_for_a_user(rt, runc_rt):
    # A non-root user: its capability sets are cleared by the uid change and restored
    # from the config's; the filter still loads (with the kept CAP_SYS_ADMIN).
    def edit(c):
        c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}
        c["process"]["noNewPrivileges"] = False
        c["process"]["user"] = {"uid": 1000, "gid": 1000}

    args = ["sh", "-c", "id -u; grep -E '^(Cap|Seccomp:)' /proc/self/status"]
    ours = rt.output_of(args, edit=edit)
    assert ours.startswith("1000\n") and "Seccomp:\t2" in ours
    assert "CapEff:\t0000000000000000" in ours and "CapPrm:\t0000000000000000" in ours
    # runc 1.1.5 (with the CVE-2024-21626 fix) calls getcwd(2) under the filter: fails
    p = runc_rt.run(new_id(), runc_rt.bundle(args, edit=edit), check=False)
    assert p.returncode != 0 and "current working directory" in p.stderr
