"""exec: a new process inside a running container, seen from inside and outside."""
import json
import os

import pytest

from support.runtime import ConsoleReceiver
from support.checks import one_line_error, wait_for


@pytest.fixture
def running(rt):
    b = rt.bundle(["sleep", "60"])
    rt.run("ex", b, "--detach")
    return rt


def test_exec_joins_namespaces_and_cgroups(running):
    rt = running
    init = rt.state("ex")["pid"]
    out = rt.cmd("exec", "ex", "sh", "-c",
                 "cat /proc/1/cmdline | tr '\\0' ' '; echo; "
                 "for n in pid mnt net ipc uts; do readlink /proc/self/ns/$n; done").stdout.splitlines()
    assert out[0].strip() == "sleep 60"  # pid 1 of the container is its init
    for line, n in zip(out[1:], ("pid", "mnt", "net", "ipc", "uts")):
        assert line == os.readlink(f"/proc/{init}/ns/{n}")


def test_exec_in_container_cgroups(running, tmp_path):
    rt = running
    pidfile = tmp_path / "exec.pid"
    rt.cmd("exec", "--detach", "--pid-file", pidfile, "ex", "sleep", "30")
    pid = int(pidfile.read_text())
    assert "\n" not in pidfile.read_text()
    init = rt.state("ex")["pid"]
    mine = open(f"/proc/{pid}/cgroup").read()
    assert mine == open(f"/proc/{init}/cgroup").read()
    ps = json.loads(rt.cmd("ps", "--format", "json", "ex").stdout)
    assert pid in ps and init in ps


def test_exec_exit_codes(running):
    rt = running
    assert rt.cmd("exec", "ex", "sh", "-c", "exit 5", check=False).returncode == 5
    assert rt.cmd("exec", "ex", "true").returncode == 0
    p = rt.cmd("exec", "ex", "no-such-cmd", check=False)
    assert "executable file not found in $PATH" in one_line_error(p)


def test_exec_overrides(running, tmp_path):
    rt = running
    out = rt.cmd("exec", "--env", "X=1", "-e", "Y=two", "--cwd", "/tmp", "--user", "1000:1001",
                 "--additional-gids", "2000", "ex", "sh", "-c",
                 'echo $X $Y; pwd; id -u; id -g; id -G').stdout.split()
    assert out[:5] == ["1", "two", "/tmp", "1000", "1001"]
    assert "2000" in out[5:]


def test_exec_process_file_and_caps_from_config(running, tmp_path):
    rt = running
    cfg = rt.config(next(p for p in rt.tmp.iterdir() if p.name.startswith("b-")))
    proc = dict(cfg["process"], args=["cat", "/proc/self/status"], terminal=False)
    pf = tmp_path / "process.json"
    pf.write_text(json.dumps(proc))
    status = rt.cmd("exec", "--process", pf, "ex").stdout
    bnd = [l for l in status.splitlines() if l.startswith("CapBnd:")][0].split()[1]
    from pyrunc.linux.capabilities import cap_number

    assert int(bnd, 16) == sum(1 << cap_number(c) for c in cfg["process"]["capabilities"]["bounding"])
    nnp = [l for l in status.splitlines() if l.startswith("NoNewPrivs:")][0].split()[1]
    assert nnp == "1"  # runc's default spec sets noNewPrivileges


# The container's init (all capabilities but CAP_SYS_PTRACE, which the runtime lacks as
# well) turns /etc/passwd into a FIFO: the process `exec` forks in the container blocks
# there (looking up $HOME) before it execs, still the runtime's Python. The init probes it
# (stat of /proc/PID/exe and its fds: reading only), then releases it. With the same uid
# and no fewer capabilities, only non-dumpability keeps those out of the container's
# reach (ptrace_may_access, PTRACE_MODE_READ).
PROBE_EXEC = r"""
rm -f /etc/passwd; mkfifo /etc/passwd; : > /tmp/ready
end=$(( $(date +%s) + 20 ))
while [ $(date +%s) -lt $end ]; do
  for d in /proc/[0-9]*; do
    read -r _ name < $d/status 2>/dev/null || continue
    case "$name" in python*|pyrunc*) ;; *) continue;; esac
    got=""
    [ -e $d/exe ] && got="$got exe"
    for f in $d/fd/*; do [ -e "$f" ] && got="$got fd"; done
    echo "${d#/proc/} $name:$got" > /tmp/probe
    echo > /etc/passwd
    exec sleep 60
  done
  usleep 20000
done
echo none > /tmp/probe
"""
CAP_SYS_PTRACE = 19


def _runtime_without_sys_ptrace():
    from pyrunc.native import constants as C
    from pyrunc.native import syscalls as sc

    sc.prctl(C.PR_CAPBSET_DROP, CAP_SYS_PTRACE)


def test_exec_not_dumpable_and_no_host_fds(rt):
    """The joining process is non-dumpable while it holds host state (CVE-2019-5736
    class) and no host descriptor reaches the exec'd process (CVE-2024-21626 class)."""
    from pyrunc.linux.capabilities import known_names

    caps = [c for c in known_names() if c != "CAP_SYS_PTRACE"]

    def edit(c):
        c["process"]["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}

    b = rt.bundle(["sh", "-c", PROBE_EXEC], edit=edit)
    rt.run("ex", b, "--detach", preexec_fn=_runtime_without_sys_ptrace)
    assert wait_for(lambda: (b / "rootfs/tmp/ready").exists())
    out = rt.cmd("exec", "ex", "ls", "/proc/self/fd", timeout=30,
                 preexec_fn=_runtime_without_sys_ptrace).stdout.split()
    assert sorted(out) == ["0", "1", "2", "3"]
    probe = (b / "rootfs/tmp/probe").read_text().strip()
    pid, _, got = probe.partition(":")
    assert pid != "none" and got == "", f"the container reached exec's process: {probe}"


def test_exec_stopped_and_paused(rt):
    b = rt.bundle(["sleep", "60"])
    rt.run("ps1", b, "--detach")
    rt.cmd("pause", "ps1")
    assert rt.state("ps1")["status"] == "paused"
    assert "paused" in one_line_error(rt.cmd("exec", "ps1", "true", check=False))
    rt.cmd("resume", "ps1")
    assert rt.state("ps1")["status"] == "running"
    rt.cmd("kill", "ps1", "KILL")
    assert wait_for(lambda: rt.state("ps1")["status"] == "stopped")
    assert "stopped" in one_line_error(rt.cmd("exec", "ps1", "true", check=False))


def test_exec_tty_console_socket(running, tmp_path):
    rt = running
    console = ConsoleReceiver(tmp_path / "c.sock")
    rt.cmd("exec", "--tty", "--detach", "--console-socket", console.path, "ex", "sh", "-c",
           "tty; echo tty-done; sleep 1")
    assert b"/dev/pts/" in console.read_until(b"tty-done")


def test_exec_process_file_without_attributes_takes_the_containers(rt, runc_rt, tmp_path):
    """runc 1.1.5 (newInitConfig): a --process document without capabilities gets the
    container's (noNewPrivileges and rlimits are the document's: absent is off/unset).
    pyrunc gave such a process every capability of the runtime."""
    def edit(c):
        c["process"]["noNewPrivileges"] = True
        c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 777, "soft": 555}]

    pf = tmp_path / "process.json"
    pf.write_text(json.dumps({"args": ["sh", "-c", "grep -E '^(Cap|NoNewPrivs)' /proc/self/status; ulimit -n; ulimit -Hn"],
                              "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}))
    seen = {}
    for r in (runc_rt, rt):
        r.run("exd", r.bundle(["sleep", "60"], edit=edit), "--detach")
        seen[r.binary] = r.cmd("exec", "--process", pf, "exd").stdout
    runc_out, ours = seen.values()
    assert "CapEff:\t0000000020000420" in runc_out, runc_out  # the default spec's three
    # rlimits unset: inherited from the caller. (runc 1.1.5, built with Go 1.19, raises its
    # own soft NOFILE to the hard one and its children inherit that; Go >= 1.21 restores
    # it. Where the caller's soft and hard differ - the cgroup v2 guest - they differ.)
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert ours.splitlines()[:-2] == runc_out.splitlines()[:-2]
    assert ours.splitlines()[-2:] == [str(soft), str(hard)]
    assert runc_out.splitlines()[-1:] == [str(hard)]


@pytest.mark.parametrize("runtime", ["pyrunc", "runc"])
def test_failed_exec_leaves_no_process(rt, runc_rt, runtime):
    """exec fails after its process started (the pid file cannot be written): exit 255
    as runc, and the process is killed, as runc does (issue 14)."""
    r = rt if runtime == "pyrunc" else runc_rt
    b = r.bundle(["sleep", "60"])
    r.run("fx", b, "--detach")
    init = r.state("fx")["pid"]
    p = r.cmd("exec", "--detach", "--pid-file", "/no/such/dir/pid", "fx", "sleep", "1000",
              check=False)
    assert p.returncode == 255
    if r is rt:
        assert "/no/such/dir" in one_line_error(p)
    assert json.loads(r.cmd("ps", "--format", "json", "fx").stdout) == [init]
    r.cmd("delete", "--force", "fx")
