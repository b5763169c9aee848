"""podman (4.x, through conmon) with pyrunc as its OCI runtime, runc as the reference.

Each check runs for both runtimes (`runtime` fixture). The container ids podman makes are
64 hex digits; containers go to the runtimes' default roots (podman passes no --root).
"""
import os
import re

import pytest

from support.host import cgroup_v2_host

from .engines import IMAGE, wait_for

pytestmark = pytest.mark.cgroups

V2 = cgroup_v2_host()

LOOP = 'trap "echo got-term; exit 0" TERM; trap "echo got-usr1" USR1; echo started; while :; do sleep 0.1; done'


def logs(podman, name):
    p = podman.cmd("logs", name)
    return p.stdout + p.stderr


def test_run_rm_echo(podman, runtime):
    p = podman.run(runtime, "--rm", IMAGE, "echo", "hello", "world", check=True)
    assert p.stdout == "hello world\n"
    # create/start/delete went through this runtime, create with json logging (runtime_supports_json)
    calls = runtime.calls()[-3:]
    assert calls[0].startswith("--log-format=json --log ") and " create --bundle " in calls[0], calls
    assert calls[1].startswith("start ") and calls[2].startswith("delete --force "), calls


def test_start_when_the_process_exits_at_once(podman, slow_pidfd_runtime):
    """conmon reaps the container's process at once (it is a subreaper): `start` must
    succeed even when the process has already exited by the time `start` checks on it
    (race made deterministic by delaying pidfd_open: DELAY_PIDFD_OPEN in engines.py)."""
    rt = slow_pidfd_runtime
    p = podman.run(rt, "--rm", IMAGE, "echo", "ran")
    assert (p.returncode, p.stdout) == (0, "ran\n"), (p.stdout, p.stderr, rt.last_calls())


def test_exit_code_propagates(podman, runtime):
    p = podman.run(runtime, "--rm", IMAGE, "sh", "-c", "echo out; echo err >&2; exit 42")
    assert p.returncode == 42, (p.stdout, p.stderr, runtime.last_calls())
    assert "out" in p.stdout and "err" in p.stderr


def test_command_not_found_is_127(podman, runtime):
    """Podman maps the runtime's error words to 127 ("no such file or directory")."""
    p = podman.run(runtime, "--rm", IMAGE, "/nonexistent")
    assert p.returncode == 127, (p.stdout, p.stderr, runtime.last_calls())
    assert "/nonexistent" in p.stderr and "no such file or directory" in p.stderr


def test_not_executable_is_126(podman, runtime):
    """...and to 126 for "permission denied"."""
    p = podman.run(runtime, "--rm", IMAGE, "/etc/notexec")
    assert p.returncode == 126, (p.stdout, p.stderr, runtime.last_calls())
    assert "permission denied" in p.stderr.lower()


def test_errors_as_text_without_runtime_supports_json(podman, text_log_runtime):
    """A runtime whose file name is not in runtime_supports_json: no --log-format=json;
    podman takes the error from stderr (runc's text log line) and still maps it to 127."""
    rt = text_log_runtime
    p = podman.run(rt, "--rm", IMAGE, "/nonexistent")
    assert p.returncode == 127, (p.stdout, p.stderr, rt.last_calls())
    assert 'level=error msg="' in p.stderr and "no such file or directory" in p.stderr, p.stderr
    assert rt.calls() and rt.calls()[0].startswith("create --bundle "), rt.calls()
    p = podman.run(rt, "--rm", IMAGE, "sh", "-c", "exit 9")
    assert p.returncode == 9, (p.stdout, p.stderr, rt.last_calls())


def test_device(podman, runtime):
    """--device: podman writes linux.devices[].fileMode with the file-type bits (st_mode,
    e.g. 0o20666 for /dev/null); runc accepts that."""
    p = podman.run(runtime, "--rm", "--device", "/dev/null:/dev/mynull", IMAGE, "sh", "-c",
                   "ls -l /dev/mynull; echo x > /dev/mynull && echo writable")
    assert p.returncode == 0, (p.stdout, p.stderr, runtime.last_calls())
    assert p.stdout.startswith("crw-rw-rw-") and "1,   3" in p.stdout and "writable" in p.stdout, p.stdout


def test_detached_ps_exec_logs_stop_rm(podman, runtime):
    name = podman.name("d")
    podman.run(runtime, "-d", "--name", name, IMAGE, "sh", "-c", LOOP, check=True)
    cid = podman.container_id(name)
    default_root = "/run/runc" if runtime.name == "runc" else "/run/pyrunc"
    assert os.path.isdir(os.path.join(default_root, cid)), "no state under the runtime's default root"
    wait_for(lambda: "started" in logs(podman, name), what="the container's first output")

    ps = podman.cmd("ps", "--format", "{{.Names}} {{.Status}}", check=True).stdout
    assert re.search(rf"^{name} Up", ps, re.M), ps

    p = podman.cmd("exec", name, "sh", "-c", "echo in-exec $$; exit 5", runtime=runtime)
    assert p.returncode == 5, (p.stdout, p.stderr, runtime.last_calls())
    assert p.stdout.startswith("in-exec ") and p.stdout.strip() != "in-exec 1"

    p = podman.cmd("exec", name, "/nonexistent")
    assert p.returncode == 127, (p.stdout, p.stderr, runtime.last_calls())

    p = podman.cmd("exec", "-d", name, "sleep", "30", check=True)
    # podman top lists the cgroup, then reads each /proc/PID/stat: the loop's `sleep 0.1`s
    # come and go, so it fails now and then with "no such process" (with runc as well).
    for _ in range(10):
        p = podman.cmd("top", name, "pid", "args")
        if p.returncode == 0 or "no such process" not in p.stderr:
            break
    assert p.returncode == 0 and "sleep 30" in p.stdout, (p.stdout, p.stderr)

    p = podman.cmd("stop", "-t", "10", name, check=True)
    out = logs(podman, name)
    assert "started" in out and "got-term" in out, out
    assert podman.inspect(name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 0"

    podman.cmd("rm", name, check=True)
    assert podman.cmd("ps", "-a", "--filter", f"name={name}", "-q").stdout.strip() == ""
    assert not os.path.exists(os.path.join(default_root, cid)), "runtime state left after podman rm"
    calls = runtime.calls()
    assert f"kill {cid} 15" in calls and f"delete --force {cid}" in calls


def test_run_tty(podman, runtime):
    """-t: conmon passes --console-socket and receives the pty master."""
    p = podman.run(runtime, "--rm", "-t", IMAGE, "sh", "-c", "tty; test -t 1 && echo out-is-tty")
    assert p.returncode == 0, (p.stdout, p.stderr, runtime.last_calls())
    assert "/dev/pts/0" in p.stdout and "out-is-tty" in p.stdout, p.stdout
    assert any(" --console-socket " in c for c in runtime.calls()[-3:])


def test_exec_tty(podman, runtime):
    name = podman.name("t")
    podman.run(runtime, "-d", "--name", name, IMAGE, "sleep", "60", check=True)
    try:
        p = podman.cmd("exec", "-t", name, "sh", "-c", "tty; test -t 1 && echo out-is-tty", runtime=runtime)
        assert p.returncode == 0, (p.stdout, p.stderr, runtime.last_calls())
        assert re.search(r"/dev/pts/\d+", p.stdout) and "out-is-tty" in p.stdout, p.stdout
        assert any(c.startswith("--log-format=json") and " exec " in c and " --tty --console-socket " in c
                   for c in runtime.calls()), runtime.last_calls()
    finally:
        podman.cmd("rm", "-f", "-t", "0", name)


def test_memory_and_pids_limit_visible_inside(podman, runtime):
    if V2:
        return _memory_and_pids_limit_v2(podman, runtime)
    p = podman.run(runtime, "--rm", "--memory", "64m", "--pids-limit", "57", IMAGE, "sh", "-c",
                   "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; "
                   "grep -E ':(memory|pids):' /proc/self/cgroup")
    assert p.returncode == 0, (p.stdout, p.stderr, runtime.last_calls())
    lines = p.stdout.split()
    assert lines[0] == str(64 * 1024 * 1024) and lines[1] == "57", p.stdout
    # the container's cgroup is under the test-only parent podman was given
    assert f":memory:{podman.cgroup_parent}/libpod-" in p.stdout, p.stdout


def _memory_and_pids_limit_v2(podman, runtime):
    """cgroup v2: podman gives the container its own cgroup namespace (it sees its cgroup
    at /); where it is on the host is read from its init's /proc/PID/cgroup."""
    name = podman.name("m")
    podman.run(runtime, "-d", "--name", name, "--memory", "64m", "--pids-limit", "57", IMAGE,
               "sleep", "60", check=True)
    try:
        p = podman.cmd("exec", name, "sh", "-c", "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max "
                       "/proc/self/cgroup", check=True)
        assert p.stdout.split() == [str(64 * 1024 * 1024), "57", "0::/"], p.stdout
        pid = podman.cmd("inspect", "--format", "{{.State.Pid}}", name, check=True).stdout.strip()
        where = open(f"/proc/{pid}/cgroup").read()
        assert f"0::{podman.cgroup_parent}/libpod-" in where, where
    finally:
        podman.cmd("rm", "-f", "-t", "0", name)


def test_update_memory(podman, runtime):
    """podman update: `RT update --resources=FILE ID`."""
    name = podman.name("u")
    podman.run(runtime, "-d", "--name", name, "--memory", "64m", IMAGE, "sleep", "60", check=True)
    try:
        podman.cmd("update", "--memory", "96m", name, runtime=runtime, check=True)
        p = podman.cmd("exec", name, "cat", "/sys/fs/cgroup/memory.max" if V2 else
                       "/sys/fs/cgroup/memory/memory.limit_in_bytes", check=True)
        assert p.stdout.strip() == str(96 * 1024 * 1024)
        assert any(c.startswith("update --resources=") for c in runtime.calls())
    finally:
        podman.cmd("rm", "-f", "-t", "0", name)


def test_user(podman, runtime):
    p = podman.run(runtime, "--rm", "--user", "1000:1000", IMAGE, "sh", "-c", "id -u; id -g; id -G", check=True)
    assert p.stdout.split() == ["1000", "1000", "1000"], p.stdout
    p = podman.run(runtime, "--rm", "--user", "user", "--group-add", "65534", IMAGE, "id", check=True)
    assert p.stdout.strip().startswith("uid=1000(user) gid=1000(user) groups=")
    assert "65534" in p.stdout


def test_exec_user(podman, runtime):
    name = podman.name("eu")
    podman.run(runtime, "-d", "--name", name, IMAGE, "sleep", "60", check=True)
    try:
        p = podman.cmd("exec", "--user", "1000", name, "id", "-u", runtime=runtime, check=True)
        assert p.stdout.strip() == "1000"
        p = podman.cmd("exec", "--workdir", "/tmp", "--env", "FOO=bar", name, "sh", "-c", 'echo "$PWD $FOO"',
                       runtime=runtime, check=True)
        assert p.stdout.strip() == "/tmp bar"
    finally:
        podman.cmd("rm", "-f", "-t", "0", name)


def test_read_only(podman, runtime):
    p = podman.run(runtime, "--rm", "--read-only", IMAGE, "sh", "-c",
                   "touch /x 2>&1; echo rc=$?; touch /tmp/y && echo tmp-ok")
    assert p.returncode == 0, (p.stdout, p.stderr, runtime.last_calls())
    assert "Read-only file system" in p.stdout and "rc=1" in p.stdout and "tmp-ok" in p.stdout, p.stdout


def test_cap_drop_all(podman, runtime):
    p = podman.run(runtime, "--rm", "--cap-drop", "ALL", IMAGE, "grep", "^Cap", "/proc/self/status", check=True)
    caps = dict(line.split(":\t") for line in p.stdout.strip().splitlines())
    assert int(caps["CapEff"], 16) == 0 and int(caps["CapBnd"], 16) == 0 and int(caps["CapPrm"], 16) == 0, caps
    # the default set (no --cap-drop) keeps e.g. CAP_CHOWN (bit 0)
    p = podman.run(runtime, "--rm", IMAGE, "grep", "^CapEff", "/proc/self/status", check=True)
    assert int(p.stdout.split()[1], 16) & 1


def test_pause_unpause(podman, runtime):
    name = podman.name("p")
    podman.run(runtime, "-d", "--name", name, IMAGE, "sh", "-c", LOOP, check=True)
    try:
        podman.cmd("pause", name, runtime=runtime, check=True)
        assert podman.inspect(name, "{{.State.Status}}") == "paused"
        assert "pause " in runtime.last_calls(3)
        p = podman.cmd("exec", name, "true")
        assert p.returncode != 0, "exec in a paused container must fail"
        podman.cmd("unpause", name, runtime=runtime, check=True)
        assert podman.inspect(name, "{{.State.Status}}") == "running"
        assert "resume " in runtime.last_calls(3)
        podman.cmd("exec", name, "true", check=True)
    finally:
        podman.cmd("rm", "-f", "-t", "0", name)


def test_kill_signal(podman, runtime):
    name = podman.name("k")
    podman.run(runtime, "-d", "--name", name, IMAGE, "sh", "-c", LOOP, check=True)
    try:
        wait_for(lambda: "started" in logs(podman, name), what="start")
        podman.cmd("kill", "-s", "USR1", name, runtime=runtime, check=True)
        wait_for(lambda: "got-usr1" in logs(podman, name), what="SIGUSR1 to arrive")
        assert podman.inspect(name, "{{.State.Status}}") == "running"
        podman.cmd("kill", "-s", "KILL", name, runtime=runtime, check=True)
        p = podman.cmd("wait", name, check=True)
        assert p.stdout.strip() == "137"
        cid = podman.container_id(name)
        assert f"kill {cid} 10" in runtime.calls() and f"kill {cid} 9" in runtime.calls()
    finally:
        podman.cmd("rm", "-f", "-t", "0", name)


def test_stop_shared_pid_namespace_kills_all(podman, runtime):
    """--pid host: podman stops with `kill --all ID 15`."""
    name = podman.name("h")
    podman.run(runtime, "-d", "--pid", "host", "--name", name, IMAGE, "sleep", "60", check=True)
    try:
        podman.cmd("stop", "-t", "2", name, runtime=runtime, check=True)
        assert podman.inspect(name, "{{.State.Status}}") == "exited"
        cid = podman.container_id(name)
        assert f"kill --all {cid} 15" in runtime.calls()
    finally:
        podman.cmd("rm", "-f", "-t", "0", name)


def test_rm_force_running(podman, runtime):
    name = podman.name("f")
    podman.run(runtime, "-d", "--name", name, IMAGE, "sleep", "60", check=True)
    cid = podman.container_id(name)
    podman.cmd("rm", "-f", "-t", "0", name, runtime=runtime, check=True)
    default_root = "/run/runc" if runtime.name == "runc" else "/run/pyrunc"
    assert not os.path.exists(os.path.join(default_root, cid))
    assert podman.cmd("ps", "-a", "--filter", f"name={name}", "-q").stdout.strip() == ""


def test_restart_and_preserve_fds(podman, runtime):
    name = podman.name("r")
    podman.run(runtime, "-d", "--name", name, IMAGE, "sleep", "60", check=True)
    try:
        podman.cmd("restart", "-t", "0", name, runtime=runtime, check=True)
        assert podman.inspect(name, "{{.State.Status}}") == "running"
    finally:
        podman.cmd("rm", "-f", "-t", "0", name)
    # --preserve-fds 1: fd 3 of podman reaches the container (`create --preserve-fds 1`)
    r, w = os.pipe()
    try:
        p = podman.run(runtime, "--rm", "--preserve-fds", "1", IMAGE, "sh", "-c", "echo via-fd3 >&3; echo ok",
                       fd3=w)
    finally:
        os.close(w)
    data = os.read(r, 100)
    os.close(r)
    assert p.returncode == 0, (p.stdout, p.stderr, runtime.last_calls())
    assert data == b"via-fd3\n"


def test_stdin_env_workdir_hostname(podman, runtime):
    p = podman.run(runtime, "--rm", "-i", "--env", "FOO=bar baz", "--workdir", "/home/user",
                   "--hostname", "itest-host", IMAGE, "sh", "-c", 'read line; echo "$line|$FOO|$PWD|$(hostname)"',
                   input="from-stdin\n")
    assert p.returncode == 0, (p.stdout, p.stderr, runtime.last_calls())
    assert p.stdout == "from-stdin|bar baz|/home/user|itest-host\n"


def test_bind_mount_and_tmpfs(podman, runtime, tmp_path):
    (tmp_path / "in.txt").write_text("host data\n")
    out = tmp_path / "out"
    out.mkdir()
    p = podman.run(runtime, "--rm", "-v", f"{tmp_path}/in.txt:/data/in.txt:ro", "-v", f"{out}:/out",
                   "--tmpfs", "/scratch:size=1m", IMAGE, "sh", "-c",
                   "cat /data/in.txt; echo x > /data/in.txt 2>/dev/null || echo ro-ok; echo written > /out/f; "
                   "grep ' /scratch ' /proc/self/mounts | cut -d' ' -f3")
    assert p.returncode == 0, (p.stdout, p.stderr, runtime.last_calls())
    assert p.stdout.split("\n")[:3] == ["host data", "ro-ok", "tmpfs"], p.stdout
    assert (out / "f").read_text() == "written\n"


def test_default_seccomp_and_privileged(podman, runtime):
    """podman applies its default seccomp profile; --privileged drops it and gives every
    capability and the host's devices."""
    p = podman.run(runtime, "--rm", IMAGE, "grep", "^Seccomp:", "/proc/self/status", check=True)
    assert p.stdout.split() == ["Seccomp:", "2"], p.stdout
    p = podman.run(runtime, "--rm", "--security-opt", "seccomp=unconfined", IMAGE,
                   "grep", "^Seccomp:", "/proc/self/status", check=True)
    assert p.stdout.split() == ["Seccomp:", "0"], p.stdout
    p = podman.run(runtime, "--rm", "--privileged", IMAGE, "sh", "-c",
                   "grep -E '^(Seccomp|CapEff):' /proc/self/status; test -e /dev/loop-control -o -e /dev/kmsg && echo host-devs",
                   check=True)
    f = dict(line.split(":\t") for line in p.stdout.splitlines() if ":\t" in line)
    assert f["Seccomp"] == "0" and int(f["CapEff"], 16) == int(open("/proc/self/status").read().split("CapBnd:\t")[1].split()[0], 16)
    assert "host-devs" in p.stdout
