"""config.md#process: what the container process gets (args, env, cwd, user, caps, rlimits...)."""
from __future__ import annotations

import os

from conformance.bundle import exe_of, DEFAULT_PATH, expect, pid_alive
from conformance.cases import case

CAP_NUM = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_KILL": 5, "CAP_SETGID": 6,
           "CAP_SETUID": 7, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13, "CAP_SYS_CHROOT": 18,
           "CAP_AUDIT_WRITE": 29}


def capmask(names) -> int:
    m = 0
    for n in names:
        m |= 1 << CAP_NUM[n]
    return m


def status_fields(text: str) -> dict[str, str]:
    out = {}
    for line in (text or "").splitlines():
        k, _, v = line.partition(":")
        out[k.strip()] = v.strip()
    return out


def run_status(ctx, b) -> dict[str, str]:
    """Run the bundle's program (which must write /out/status) and parse /proc/<pid>/status."""
    ctx.run(b)
    text = b.read_out("status")
    expect(text, "the program wrote no /out/status")
    return status_fields(text)


STATUS_PROG = ["sh", "-c", "cat /proc/$$/status > /out/status"]


@case("process-args", "config.md#process")
def process_args(ctx):
    """args are passed exactly (spaces, empty strings, globs untouched) and args[0] is looked up in PATH.

    config.md#process: args "with similar semantics to IEEE Std 1003.1-2008 execvp's argv
    ... that entry is used with the same semantics as execvp's file".
    """
    args = ["sh", "-c", 'for a in "$0" "$@"; do printf "<%s>\\n" "$a"; done > /out/args',
            "zero", "a b", "", "*", "--x=$HOME"]
    b = ctx.bundle(args)
    ctx.run(b)
    got = (b.read_out("args") or "").splitlines()
    want = [f"<{a}>" for a in args[3:]]
    expect(got == want, f"program saw argv {got}, expected {want}")


@case("process-env", "config.md#process")
def process_env(ctx):
    """The process gets exactly the configured environment (HOME given, so nothing need be added).

    config.md#process: env "with the same semantics as IEEE Std 1003.1-2008's environ".
    """
    env = [f"PATH={DEFAULT_PATH}", "FOO=bar baz", "EMPTY=", "WITH_EQ=a=b=c", "HOME=/home/tester",
           "UNICODE=\u00e9t\u00e9"]
    b = ctx.bundle(["sleep", "1000"], env=env)
    c = ctx.create(b)
    ctx.start(c.id)
    ctx.wait_for(lambda: exe_of(c.pid).endswith("/bin/busybox"), "the program to be executed")
    with open(f"/proc/{c.pid}/environ", "rb") as f:  # the environment execve gave it
        raw = f.read()
    got = [e.decode(errors="replace") for e in raw.split(b"\0") if e]
    missing = [e for e in env if e not in got]
    expect(not missing, f"missing from the process environment: {missing}; got {got}")
    extra = [e for e in got if e not in env]
    expect(not extra, f"unexpected entries in the process environment: {extra}")


@case("process-cwd", "config.md#process")
def process_cwd(ctx):
    """The process starts in the configured cwd.

    config.md#process: "cwd (string, REQUIRED) is the working directory that will be set for
    the executable."
    """
    b = ctx.bundle(["sh", "-c", "readlink /proc/$$/cwd > /out/cwd"], cwd="/home/tester")
    ctx.run(b)
    got = (b.read_out("cwd") or "").strip()
    expect(got == "/home/tester", f"process cwd is {got!r}, expected '/home/tester'")


@case("process-user", "config.md#posix-platform-user")
def process_user(ctx):
    """uid, gid and additionalGids are applied (real/effective/saved/fs ids, supplementary groups).

    config.md#posix-platform-user: uid "specifies the user ID in the container namespace",
    gid "the group ID", additionalGids "additional group IDs in the container namespace to be
    added to the process".
    """
    b = ctx.bundle(STATUS_PROG)
    b.process["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [10, 2000]}
    st = run_status(ctx, b)
    expect(st.get("Uid", "").split() == ["1000"] * 4, f"Uid: {st.get('Uid')!r}, expected 1000 x4")
    expect(st.get("Gid", "").split() == ["1000"] * 4, f"Gid: {st.get('Gid')!r}, expected 1000 x4")
    groups = {int(g) for g in st.get("Groups", "").split()}
    expect({10, 2000} <= groups, f"supplementary groups {sorted(groups)} lack additionalGids [10, 2000]")
    expect(groups <= {10, 2000, 1000}, f"unexpected supplementary groups {sorted(groups - {10, 2000, 1000})}")


@case("process-capabilities", "config.md#linux-process")
def process_capabilities(ctx):
    """The capability sets of a root process are the configured ones.

    config.md#linux-process: capabilities "specifies the sets of capabilities for the
    process" (effective, bounding, inheritable, permitted, ambient: "kept for the process").
    For uid 0 the kernel makes effective = permitted on exec, so all three are set equal.
    """
    caps = ["CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_NET_RAW"]
    b = ctx.bundle(STATUS_PROG)
    b.process["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps,
                                 "inheritable": [], "ambient": []}
    st = run_status(ctx, b)
    want = capmask(caps)
    for key, exp in (("CapBnd", want), ("CapPrm", want), ("CapEff", want), ("CapInh", 0), ("CapAmb", 0)):
        got = int(st.get(key, "-1"), 16) if st.get(key) else None
        expect(got == exp, f"{key} is {st.get(key)}, expected {exp:016x}")


@case("process-capabilities-ambient", "config.md#linux-process")
def process_capabilities_ambient(ctx):
    """A non-root process keeps its ambient (and so effective) capabilities across exec.

    config.md#linux-process: ambient "is an array of ambient capabilities that are kept for
    the process".
    """
    caps = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    b = ctx.bundle(STATUS_PROG)
    b.process["user"] = {"uid": 1000, "gid": 1000}
    b.process["capabilities"] = {k: list(caps) for k in
                                 ("bounding", "effective", "permitted", "inheritable", "ambient")}
    st = run_status(ctx, b)
    want = capmask(caps)
    for key in ("CapAmb", "CapEff", "CapPrm", "CapInh", "CapBnd"):
        got = int(st[key], 16) if st.get(key) else None
        expect(got == want, f"{key} is {st.get(key)}, expected {want:016x}")


@case("process-rlimits", "config.md#posix-process")
def process_rlimits(ctx):
    """rlimits are applied: getrlimit gives the configured soft and hard values.

    config.md#posix-process: "rlim.rlim_cur MUST match the configured value" and
    "rlim.rlim_max MUST match the configured value".
    """
    b = ctx.bundle(["sh", "-c", "cat /proc/$$/limits > /out/limits"])
    b.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1021, "hard": 1022},
                            {"type": "RLIMIT_CORE", "soft": 4096, "hard": 8192}]
    ctx.run(b)
    text = b.read_out("limits") or ""
    rows = {}
    for line in text.splitlines():
        parts = line.split()
        if line.startswith("Max open files"):
            rows["NOFILE"] = parts[3:5]
        elif line.startswith("Max core file size"):
            rows["CORE"] = parts[4:6]
    expect(rows.get("NOFILE") == ["1021", "1022"], f"RLIMIT_NOFILE is {rows.get('NOFILE')}, expected 1021/1022")
    expect(rows.get("CORE") == ["4096", "8192"], f"RLIMIT_CORE is {rows.get('CORE')}, expected 4096/8192")


@case("process-rlimits-duplicate", "config.md#posix-process",
      runc_deviation="runc 1.1.5 accepts duplicated rlimits entries (the last one wins)")
def process_rlimits_duplicate(ctx):
    """Two rlimits entries of the same type make create fail.

    config.md#posix-process: "If rlimits contains duplicated entries with same type, the
    runtime MUST generate an error."
    """
    b = ctx.bundle(["true"])
    b.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024},
                            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 512}]
    c = ctx.create(b, ok=False)
    expect(not c.result.ok, "create accepted duplicated RLIMIT_NOFILE entries")


@case("process-rlimits-invalid", "config.md#posix-process")
def process_rlimits_invalid(ctx):
    """An rlimit type that maps to no kernel resource makes create fail.

    config.md#posix-process: "The runtime MUST generate an error for any values which cannot
    be mapped to a relevant kernel interface."
    """
    b = ctx.bundle(["true"])
    b.process["rlimits"] = [{"type": "RLIMIT_NOSUCHTHING", "soft": 1, "hard": 1}]
    c = ctx.create(b, ok=False)
    expect(not c.result.ok, "create accepted rlimit type RLIMIT_NOSUCHTHING")


@case("process-no-new-privileges", "config.md#linux-process")
def process_nnp(ctx):
    """noNewPrivileges true sets no_new_privs on the process.

    config.md#linux-process: "noNewPrivileges (bool, OPTIONAL) setting noNewPrivileges to
    true prevents the process from gaining additional privileges."
    """
    b = ctx.bundle(STATUS_PROG)
    b.process["noNewPrivileges"] = True
    st = run_status(ctx, b)
    expect(st.get("NoNewPrivs") == "1", f"NoNewPrivs is {st.get('NoNewPrivs')!r}, expected 1")


@case("process-oom-score-adj", "config.md#linux-process")
def process_oom_set(ctx):
    """oomScoreAdj is written to the process's oom_score_adj.

    config.md#linux-process: "If oomScoreAdj is set, the runtime MUST set oom_score_adj to
    the given value."
    """
    b = ctx.bundle(["sh", "-c", "cat /proc/$$/oom_score_adj > /out/oom"])
    b.process["oomScoreAdj"] = 345
    ctx.run(b)
    got = (b.read_out("oom") or "").strip()
    expect(got == "345", f"oom_score_adj is {got!r}, expected '345'")


def _set_own_oom_score_adj():  # preexec_fn: runs in the runtime's child before exec
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("123")


@case("process-oom-score-adj-unset", "config.md#linux-process")
def process_oom_unset(ctx):
    """Without oomScoreAdj the process keeps the oom_score_adj it inherits from the runtime's caller.

    config.md#linux-process: "If oomScoreAdj is not set, the runtime MUST NOT change the value
    of oom_score_adj." (The runtime is started with oom_score_adj 123.)
    """
    b = ctx.bundle(["sh", "-c", "cat /proc/$$/oom_score_adj > /out/oom"])
    b.process.pop("oomScoreAdj", None)
    c = ctx.create(b, preexec_fn=_set_own_oom_score_adj)
    ctx.start(c.id)
    ctx.wait_stopped(c)
    got = (b.read_out("oom") or "").strip()
    expect(got == "123", f"oom_score_adj is {got!r}, expected the inherited '123'")


@case("process-args0-missing", "config.md#process")
def args0_missing(ctx):
    """args[0] missing from the rootfs (absolute, or not in PATH) makes create fail, leaving no container.

    runtime.md#lifecycle step 2: "If the runtime is unable to create the environment
    specified in the config.json, it MUST generate an error"; runtime.md#errors: the error
    leaves the state as if the operation were never attempted. runc 1.1.5 looks args[0] up
    before create returns, so a drop-in must fail at create (not only at start).
    """
    for args in (["/no/such/binary"], ["no-such-command-in-path"]):
        b = ctx.bundle(args)
        c = ctx.create(b, ok=False)
        expect(not c.result.ok, f"create with args[0] {args[0]!r} missing succeeded")
        expect(not ctx.state_result(c.id).ok,
               f"state of the failed create ({args[0]!r}) succeeds: a container was left")
        if c.pid:
            expect(not pid_alive(c.pid), "a container process was left running")


@case("process-fds-stdio-only", "runtime-linux.md#file-descriptors")
def fds_stdio_only(ctx):
    """The container process has only fds 0, 1 and 2 open (no runtime fd leaks into it).

    runtime-linux.md#file-descriptors: "By default, only the stdin, stdout and stderr file
    descriptors are kept open for the application by the runtime."
    """
    b = ctx.bundle(["sleep", "1000"])
    c = ctx.create(b)
    ctx.start(c.id)
    ctx.wait_for(lambda: exe_of(c.pid).endswith("/bin/busybox"), "the program to be executed")
    fds = sorted(int(x) for x in os.listdir(f"/proc/{c.pid}/fd"))
    extra = {}
    for fd in fds:
        if fd > 2:
            try:
                extra[fd] = os.readlink(f"/proc/{c.pid}/fd/{fd}")
            except OSError:
                extra[fd] = "?"
    expect(not extra, f"extra fds open in the container process: {extra}")
