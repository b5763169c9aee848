"""linux.seccomp: filters seen from inside busybox containers (config-linux.md "Seccomp"),
compared with runc where the behaviour is runc's; the notify listener protocol; errors."""
import errno
import fcntl
import json
import os
import select
import socket
import struct
import threading
import uuid

import pytest

from support.checks import one_line_error

ALLOW = "SCMP_ACT_ALLOW"
SIGSYS_STATUS = 128 + 31


def _libseccomp():
    try:
        from pyrunc.linux import seccomp

        return seccomp.libseccomp_version()
    except Exception:  # noqa: BLE001
        return None


pytestmark = pytest.mark.skipif(_libseccomp() is None, reason="libseccomp.so.2 is not loadable")


def profile(*rules, default=ALLOW, **extra):
    p = {"defaultAction": default, "syscalls": list(rules)}
    p.update(extra)
    return p


def rule(names, action="SCMP_ACT_ERRNO", **kw):
    r = {"names": list(names), "action": action}
    r.update(kw)
    return r


def run_sh(rt, script, seccomp, nnp=True, check=False, edit=None):
    def ed(c):
        c["linux"]["seccomp"] = seccomp
        c["process"]["noNewPrivileges"] = nnp
        if edit:
            edit(c)

    b = rt.bundle(["sh", "-c", script], edit=ed)
    return rt.run(f"s-{uuid.uuid4().hex[:8]}", b, check=check)


# ---------------------------------------------------------------- actions


@pytest.mark.parametrize("nnp", [True, False])
def test_errno_denied_others_work(rt, nnp):
    # mkdir: the configured errno; chmod: EPERM (the default errnoRet); the rest works.
    # Without noNewPrivileges the filter must still load (while CAP_SYS_ADMIN is held).
    sec = profile(rule(["mkdir", "mkdirat"], errnoRet=errno.EACCES),
                  rule(["chmod", "fchmodat", "fchmodat2"]))
    p = run_sh(rt, "mkdir /tmp/d; echo mkdir=$?; touch /tmp/f; echo touch=$?; "
                   "chmod 600 /tmp/f; echo chmod=$?; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status",
               sec, nnp=nnp)
    assert p.returncode == 0, p.stderr
    out = p.stdout.split()
    assert out[:3] == ["mkdir=1", "touch=0", "chmod=1"]
    assert "Permission denied" in p.stderr  # EACCES for mkdir
    assert "Operation not permitted" in p.stderr  # EPERM for chmod
    status = dict(zip(out[3::2], out[4::2]))
    assert status["Seccomp:"] == "2"
    assert status["NoNewPrivs:"] == ("1" if nnp else "0")


def test_same_as_runc(rt, runc_rt):
    sec = profile(rule(["mkdir", "mkdirat"], errnoRet=errno.EACCES), rule(["chmod", "fchmodat"]),
                  rule(["kill"], errnoRet=errno.EXDEV, args=[{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]))
    script = "mkdir /tmp/d; echo $?; chmod 1 /; echo $?; kill -0 $$; echo $?; kill -CONT $$; echo $?"
    ours, theirs = run_sh(rt, script, sec), run_sh(runc_rt, script, sec)
    assert ours.returncode == theirs.returncode == 0
    assert ours.stdout == theirs.stdout == "1\n1\n1\n0\n"
    assert ours.stderr.splitlines() == theirs.stderr.splitlines()


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                                    "SCMP_ACT_TRAP"])
def test_kill_and_trap_actions(rt, action):
    # the process making the syscall dies of SIGSYS; its parent goes on
    p = run_sh(rt, "(sync); echo status=$?; echo after", profile(rule(["sync"], action)))
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [f"status={SIGSYS_STATUS}", "after"]


def test_log_trace_allow_actions(rt):
    # LOG and ALLOW let the call through; TRACE without a tracer fails it with ENOSYS
    sec = profile(rule(["mkdir", "mkdirat"], "SCMP_ACT_LOG"), rule(["rmdir"], "SCMP_ACT_TRACE"),
                  rule(["uname"], ALLOW), default="SCMP_ACT_ALLOW")
    p = run_sh(rt, "mkdir /tmp/d && echo made; rmdir /tmp/d; echo rmdir=$?; uname -s", sec)
    assert p.stdout.split() == ["made", "rmdir=1", "Linux"], p.stderr
    assert "Function not implemented" in p.stderr


def test_default_action_and_errno_ret(rt):
    # defaultAction ERRNO with defaultErrnoRet: what is not listed fails with that errno
    from pyrunc.config.default import default_seccomp

    sec = default_seccomp()
    sec["defaultErrnoRet"] = errno.ENOSYS
    p = run_sh(rt, "echo hello; ls / >/dev/null && echo ls; unshare -u true; echo unshare=$?", sec)
    assert p.stdout.split() == ["hello", "ls", "unshare=1"], p.stderr
    assert "Function not implemented" in p.stderr


def test_unknown_syscall_names_are_skipped(rt):
    sec = profile(rule(["no_such_syscall_pyrunc", "mkdir", "mkdirat", "also_not_a_syscall"]),
                  rule(["definitely_unknown"], "SCMP_ACT_KILL"))
    p = run_sh(rt, "mkdir /tmp/d; echo $?", sec)
    assert p.stdout == "1\n" and "Operation not permitted" in p.stderr


def test_runtime_setup_is_not_filtered(rt, runc_rt):
    # The filter is the last step before execve: denying what only the runtime uses
    # (user and capability changes, umask, chdir, sched affinity, closing fds) must not
    # break the container's start.
    sec = profile(rule(["capset", "setresuid", "setresgid", "setgroups", "umask", "chdir",
                        "close_range", "sched_setaffinity"], "SCMP_ACT_KILL_PROCESS"))

    def ed(c):
        c["process"]["cwd"] = "/tmp"

    for r in (rt, runc_rt):
        p = run_sh(r, "pwd; grep ^Seccomp: /proc/self/status", sec, edit=ed)
        assert p.returncode == 0, (r.binary, p.stderr)
        assert p.stdout.split() == ["/tmp", "Seccomp:", "2"]


# ---------------------------------------------------------------- argument conditions

KILL_SCRIPT = "for s in 0 CONT WINCH; do kill -$s $$ 2>/dev/null; echo $?; done"


@pytest.mark.parametrize("args,denied", [
    ([{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}], [0]),
    ([{"index": 1, "value": 0, "op": "SCMP_CMP_NE"}], [18, 28]),
    ([{"index": 1, "value": 18, "op": "SCMP_CMP_LT"}], [0]),
    ([{"index": 1, "value": 18, "op": "SCMP_CMP_LE"}], [0, 18]),
    ([{"index": 1, "value": 18, "op": "SCMP_CMP_GT"}], [28]),
    ([{"index": 1, "value": 18, "op": "SCMP_CMP_GE"}], [18, 28]),
    # (sig & 0x18) == 0x10: CONT (0b10010) only
    ([{"index": 1, "value": 0x18, "valueTwo": 0x10, "op": "SCMP_CMP_MASKED_EQ"}], [18]),
    # several conditions on one argument: one rule each, ORed (runc)
    ([{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 28, "op": "SCMP_CMP_EQ"}], [0, 28]),
    # conditions on distinct arguments: ANDed in one rule
    ([{"index": 1, "value": 18, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 1 << 30, "op": "SCMP_CMP_LT"}], [18]),
    ([{"index": 1, "value": 18, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 1 << 30, "op": "SCMP_CMP_GT"}], []),
])
def test_argument_conditions(rt, args, denied):
    p = run_sh(rt, KILL_SCRIPT, profile(rule(["kill"], args=args)))
    assert p.returncode == 0, p.stderr
    got = [sig for sig, rc in zip((0, 18, 28), p.stdout.split()) if rc != "0"]
    assert got == denied


# ---------------------------------------------------------------- flags and architectures


def test_flags_and_architectures(rt):
    sec = profile(rule(["mkdir", "mkdirat"]),
                  flags=["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                         "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                  architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
                  if os.uname().machine == "x86_64" else [])
    p = run_sh(rt, "mkdir /tmp/d; echo $?; grep ^Seccomp_filters: /proc/self/status", sec)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["1", "Seccomp_filters:", "1"]


def test_errors_name_the_field():
    from pyrunc.linux import seccomp
    from pyrunc.errors import PyruncError

    cases = [
        (profile(rule(["a"]), rule(["b"]), rule(["c"]), rule(["mkdir"], "SCMP_ACT_FOO")),
         'linux.seccomp.syscalls[3]: unknown action "SCMP_ACT_FOO"'),
        (profile(default="SCMP_ACT_NOTIFY"), "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot"),
        (profile(default="SCMP_ACT_BAR"), 'linux.seccomp.defaultAction: unknown action "SCMP_ACT_BAR"'),
        (profile(default="SCMP_ACT_KILL", defaultErrnoRet=5), "linux.seccomp.defaultErrnoRet: SCMP_ACT_KILL does not"),
        (profile(rule(["mkdir"], "SCMP_ACT_KILL", errnoRet=1)), "linux.seccomp.syscalls[0].errnoRet: SCMP_ACT_KILL"),
        (profile(rule(["mkdir"], "SCMP_ACT_NOTIFY")), "linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY needs"),
        (profile(rule(["write"], "SCMP_ACT_NOTIFY"), listenerPath="/x"), "cannot be used for the write syscall"),
        (profile(rule(["kill"], args=[{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}])),
         "linux.seccomp.syscalls[0].args[0].index: 6 is not an integer from 0 to 5"),
        (profile(rule(["kill"], args=[{"index": 0, "value": 0, "op": "SCMP_CMP_XX"}])),
         'linux.seccomp.syscalls[0].args[0].op: unknown operator "SCMP_CMP_XX"'),
        (profile(rule(["kill"], args=[{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}])),
         "linux.seccomp.syscalls[0].args[0].value: -1 is not an integer"),
        (profile(architectures=["SCMP_ARCH_PDP11"]), "linux.seccomp.architectures[0]: architecture SCMP_ARCH_PDP11"),
        (profile(rule([])), "linux.seccomp.syscalls[0].names: must be a non-empty array"),
    ]
    for cfg, want in cases:
        with pytest.raises(PyruncError) as ei:
            seccomp.compile(cfg)
        msg = str(ei.value)
        assert want in msg and "\n" not in msg, (want, msg)


def test_flags_given_to_the_kernel():
    from pyrunc.linux import seccomp
    from pyrunc.native import constants as C

    f = seccomp.compile(profile(rule(["mkdir"]), flags=["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_NOPE",
                                                        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]))
    assert f.flags == seccomp.FLAGS["SECCOMP_FILTER_FLAG_LOG"]  # unknown skipped; WAIT_KILLABLE_RECV needs a listener
    f = seccomp.compile(notify_profile("/x", flags=["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]))
    want = C.SECCOMP_FILTER_FLAG_NEW_LISTENER
    if seccomp.flag_supported(seccomp.FLAGS["SECCOMP_FILTER_FLAG_TSYNC"] | C.SECCOMP_FILTER_FLAG_TSYNC_ESRCH):
        want |= seccomp.FLAGS["SECCOMP_FILTER_FLAG_TSYNC"] | C.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
    if seccomp.flag_supported(seccomp.FLAGS["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]):
        want |= seccomp.FLAGS["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    assert f.flags == want


def test_config_error_is_one_line(rt):
    p = run_sh(rt, "true", profile(rule(["mkdir"], "SCMP_ACT_KILL", errnoRet=3)))
    assert "errnoRet" in one_line_error(p)


def test_exec_gets_the_filter(rt):
    b = rt.bundle(["sleep", "30"], edit=lambda c: c["linux"].__setitem__(
        "seccomp", profile(rule(["mkdir", "mkdirat"], errnoRet=errno.EROFS))))
    rt.run("ex", b, "--detach")
    p = rt.cmd("exec", "ex", "sh", "-c", "mkdir /tmp/x; echo $?; grep ^Seccomp: /proc/self/status",
               check=False)
    assert p.stdout.split() == ["1", "Seccomp:", "2"]
    assert "Read-only file system" in p.stderr


def test_spec_default_profile(rt, tmp_path):
    # `pyrunc spec` writes the engines' default profile: ordinary work goes on, the
    # namespace, mount and kernel-wide calls are refused with EPERM.
    rt.cmd("spec", "--bundle", tmp_path)
    (tmp_path / "rootfs").mkdir()
    assert rt.cmd("validate", "--bundle", tmp_path).returncode == 0
    sec = json.loads((tmp_path / "config.json").read_text())["linux"]["seccomp"]
    assert sec["defaultAction"] == "SCMP_ACT_ERRNO" and sec["defaultErrnoRet"] == 1
    script = ("echo hi > /tmp/f && cat /tmp/f; mkdir /tmp/d && chmod 700 /tmp/d && ls -d /tmp/d; "
              "ps >/dev/null && echo ps; unshare -n true; echo unshare=$?; "
              "mount -t tmpfs none /mnt; echo mount=$?; hostname x; echo hostname=$?")
    p = run_sh(rt, script, sec)
    assert p.stdout.split() == ["hi", "/tmp/d", "ps", "unshare=1", "mount=1", "hostname=1"], p.stderr
    assert "Operation not permitted" in p.stderr


# ---------------------------------------------------------------- SCMP_ACT_NOTIFY

NOTIF_RECV = 0xC0502100  # SECCOMP_IOCTL_NOTIF_RECV: _IOWR('!', 0, struct seccomp_notif)
NOTIF_SEND = 0xC0182101  # SECCOMP_IOCTL_NOTIF_SEND: _IOWR('!', 1, struct seccomp_notif_resp)


class Agent:
    """A seccomp agent: takes the ContainerProcessState and fd from the runtime, then
    answers every notified syscall with -answer_errno."""

    def __init__(self, path, answer_errno=errno.EOPNOTSUPP, connections=1):
        self.path = str(path)
        self.answer = answer_errno
        self.docs, self.calls, self.errors = [], [], []
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(4)
        self.threads = []
        t = threading.Thread(target=self._accept, args=(connections,), daemon=True)
        t.start()
        self.threads.append(t)

    def _accept(self, n):
        for _ in range(n):
            r, _, _ = select.select([self.srv], [], [], 20)
            if not r:
                return
            conn, _ = self.srv.accept()
            with conn:
                data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 4)
                while True:  # a stream: the JSON may come in pieces (runc 1.1 keeps it open)
                    try:
                        doc = json.loads(data)
                        break
                    except ValueError:
                        more = conn.recv(1 << 16)
                        if not more:
                            raise
                        data += more
            self.docs.append((doc, len(fds)))
            t = threading.Thread(target=self._serve, args=(fds[0],), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, fd):
        try:
            while True:
                r, _, _ = select.select([fd], [], [], 20)
                if not r:
                    return
                buf = bytearray(80)  # struct seccomp_notif, zeroed
                try:
                    fcntl.ioctl(fd, NOTIF_RECV, buf, True)
                except OSError as e:
                    if e.errno == errno.ENOENT:  # the target died meanwhile
                        continue
                    return
                nid, pid, _flags, nr = struct.unpack_from("=QIIi", buf)
                self.calls.append((pid, nr))
                resp = bytearray(struct.pack("=QqiI", nid, 0, -self.answer, 0))
                try:
                    fcntl.ioctl(fd, NOTIF_SEND, resp, True)
                except OSError as e:
                    self.errors.append(e)
        finally:
            os.close(fd)

    def close(self):
        self.srv.close()


def notify_profile(path, **extra):
    return profile(rule(["mkdir", "mkdirat"], "SCMP_ACT_NOTIFY"), listenerPath=str(path),
                   listenerMetadata="agent-metadata", **extra)


@pytest.mark.parametrize("nnp", [True, False])
def test_notify_listener_answers(rt, tmp_path, nnp):
    agent = Agent(tmp_path / "agent.sock")
    try:
        def ed(c):
            c["annotations"] = {"org.example.k": "v"}

        p = run_sh(rt, "mkdir /tmp/n; echo mkdir=$?; test -d /tmp/n || echo absent", notify_profile(agent.path),
                   nnp=nnp, edit=ed)
    finally:
        agent.close()
    assert p.stdout.split() == ["mkdir=1", "absent"], p.stderr
    assert os.strerror(errno.EOPNOTSUPP) in p.stderr  # the agent's answer
    assert len(agent.docs) == 1
    doc, nfds = agent.docs[0]
    assert nfds == 1 and agent.calls and not agent.errors
    # runc's ContainerProcessState: key order, the init's host pid, status "creating"
    assert list(doc) == ["ociVersion", "fds", "pid", "metadata", "state"]
    assert doc["fds"] == ["seccompFd"] and doc["metadata"] == "agent-metadata"
    st = doc["state"]
    assert list(st) == ["ociVersion", "id", "status", "pid", "bundle", "annotations"]
    assert st["status"] == "creating" and st["pid"] == doc["pid"] > 1
    assert st["annotations"] == {"org.example.k": "v"} and os.path.isabs(st["bundle"])


def test_notify_same_document_as_runc(rt, runc_rt, tmp_path):
    docs = {}
    for name, r in (("pyrunc", rt), ("runc", runc_rt)):
        agent = Agent(tmp_path / f"{name}.sock")
        try:
            p = run_sh(r, "mkdir /tmp/n; echo $?", notify_profile(agent.path))
        finally:
            agent.close()
        assert p.stdout == "1\n", p.stderr
        docs[name] = agent.docs[0][0]

    def shape(d):
        return {k: (shape(v) if isinstance(v, dict) else type(v).__name__) for k, v in d.items()}

    assert shape(docs["pyrunc"]) == shape(docs["runc"])
    assert list(docs["pyrunc"]) == list(docs["runc"])
    assert docs["pyrunc"]["state"]["status"] == docs["runc"]["state"]["status"] == "creating"


def test_notify_exec(rt, tmp_path):
    # runc: an exec'd process's state says "running", its pid is the process's own and the
    # state's pid the init's
    agent = Agent(tmp_path / "agent.sock", answer_errno=errno.EXDEV, connections=2)
    try:
        flags = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
        b = rt.bundle(["sleep", "30"], edit=lambda c: c["linux"].__setitem__(
            "seccomp", notify_profile(agent.path, flags=flags)))
        rt.run("nx", b, "--detach")
        init = rt.state("nx")["pid"]
        p = rt.cmd("exec", "nx", "sh", "-c", "mkdir /tmp/e; echo $?", check=False)
    finally:
        agent.close()
    assert p.stdout == "1\n" and os.strerror(errno.EXDEV) in p.stderr
    assert [d["state"]["status"] for d, _ in agent.docs] == ["creating", "running"]
    doc = agent.docs[1][0]
    assert doc["state"]["pid"] == init and doc["pid"] not in (init, 0)


def test_notify_listener_unreachable(rt, tmp_path):
    p = run_sh(rt, "true", notify_profile(tmp_path / "nobody-listens.sock"))
    err = one_line_error(p)
    assert "listenerPath" in err and "nobody-listens.sock" in err
