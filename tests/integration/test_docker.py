"""Docker 20.10 (dockerd -> containerd -> runc shim) with pyrunc registered by
`dockerd --add-runtime`, runc as the reference: `docker run --runtime X` against a private
dockerd (engines_docker.py). Each check runs for both runtimes (`runtime` fixture).

Docker's own exit codes: 125 the daemon refused, 126/127 the runtime could not exec the
command (from the error's words), 137 killed.
"""
import json
import os
import re

import pytest

from .engines import IMAGE, cgroup_dirs, run_cmd, wait_for
from .engines_docker import docker_name
from .test_containerd import run_with_pty

LOOP = 'trap "echo got-term; exit 0" TERM; trap "echo got-usr1" USR1; echo started; while :; do sleep 0.1; done'


def logs(docker, cid):
    p = docker.cmd("logs", cid)
    return p.stdout + p.stderr


def detached(docker, runtime, *args):
    """A running container of `runtime` (docker run -d ... IMAGE args); its full id."""
    cid = docker.run(runtime, "-d", *args, check=True).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid), cid
    return cid


def no_state_left(docker, cid):
    return not (docker.runtime_root / cid).exists()


def test_run_rm_echo(docker, runtime):
    p = docker.run(runtime, "--rm", IMAGE, "echo", "hi")
    assert (p.returncode, p.stdout) == (0, "hi\n"), (p.stdout, p.stderr, runtime.last_calls())
    # the runc shim's command lines, with Docker 20.10's shared runtime root
    create, start, delete = runtime.calls()[-4:-1]
    prefix = f"--root {docker.runtime_root} --log "
    assert create.startswith(prefix) and " --log-format json create --bundle " in create, create
    assert " --pid-file " in create and create.split()[-1] in start and start.endswith(" start " + start.split()[-1])
    assert delete.startswith(prefix) and " delete " in delete
    assert runtime.calls()[-1].endswith(f" delete --force {create.split()[-1]}")
    assert no_state_left(docker, create.split()[-1])


def test_exit_codes(docker, runtime):
    p = docker.run(runtime, "--rm", IMAGE, "sh", "-c", "echo out; echo err >&2; exit 42")
    assert (p.returncode, p.stdout, p.stderr) == (42, "out\n", "err\n"), (p.stderr, runtime.last_calls())
    p = docker.run(runtime, "--rm", IMAGE, "/nonexistent")
    assert p.returncode == 127, (p.stdout, p.stderr, runtime.last_calls())
    assert "OCI runtime create failed" in p.stderr and "/nonexistent" in p.stderr
    p = docker.run(runtime, "--rm", IMAGE, "/etc/notexec")
    assert p.returncode == 126 and "permission denied" in p.stderr, (p.stderr, runtime.last_calls())


def test_detached_exec_stop(docker, runtime):
    cid = detached(docker, runtime, IMAGE, "sh", "-c", LOOP)
    assert (docker.runtime_root / cid).is_dir(), "no state in the shim's --root"
    wait_for(lambda: "started" in logs(docker, cid), what="the container's first output")

    p = docker.cmd("exec", cid, "sh", "-c", "echo in-exec $$; exit 5", runtime=runtime)
    assert p.returncode == 5 and p.stdout.startswith("in-exec ") and p.stdout != "in-exec 1\n", \
        (p.stdout, p.stderr, runtime.last_calls())
    p = docker.cmd("exec", "-u", "1000", "-w", "/tmp", "-e", "X=y", cid, "sh", "-c", "id -u; pwd; echo $X",
                   check=True, runtime=runtime)
    assert p.stdout == "1000\n/tmp\ny\n"
    p = docker.cmd("exec", cid, "/nonexistent")
    assert p.returncode == 126 and "OCI runtime exec failed" in p.stdout + p.stderr, (p.stdout, runtime.last_calls())
    assert any(" exec --process " in c and " --detach --pid-file " in c for c in runtime.calls()[-3:])

    docker.cmd("exec", "-d", cid, "sleep", "30", check=True)
    top = docker.cmd("top", cid, check=True, runtime=runtime).stdout
    assert "sleep 30" in top, top
    assert f"--log-format json ps --format json {cid}" in runtime.last_calls()

    docker.cmd("stop", "-t", "10", cid, check=True, runtime=runtime)
    assert "got-term" in logs(docker, cid)
    assert docker.inspect(cid, "{{.State.Status}} {{.State.ExitCode}}") == "exited 0"
    assert any(c.endswith(f" kill {cid} 15") for c in runtime.calls())
    docker.cmd("rm", cid, check=True)
    assert no_state_left(docker, cid)


def test_stop_kills_after_the_timeout(docker, runtime):
    """sleep as pid 1 has no TERM handler, so TERM does nothing: after -t 1, SIGKILL."""
    cid = detached(docker, runtime, IMAGE, "sleep", "1000")
    docker.cmd("stop", "-t", "1", cid, check=True, runtime=runtime)
    assert docker.inspect(cid, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    calls = runtime.calls()
    assert calls.index(next(c for c in calls if c.endswith(f" kill {cid} 15"))) < \
        calls.index(next(c for c in calls if c.endswith(f" kill {cid} 9")))
    docker.cmd("rm", cid, check=True)


def test_pause_unpause_kill(docker, runtime):
    cid = detached(docker, runtime, IMAGE, "sh", "-c", LOOP)
    wait_for(lambda: "started" in logs(docker, cid), what="the container's first output")
    docker.cmd("pause", cid, check=True, runtime=runtime)
    assert docker.inspect(cid, "{{.State.Status}}") == "paused"
    freezer = docker.cgroup_file(cid, "freezer.state", "cgroup.freeze")
    assert freezer.read_text().strip() in ("FROZEN", "1")
    docker.cmd("unpause", cid, check=True, runtime=runtime)
    assert docker.inspect(cid, "{{.State.Status}}") == "running"
    assert freezer.read_text().strip() in ("THAWED", "0")
    assert f" pause {cid}" in "\n".join(runtime.calls()) and f" resume {cid}" in "\n".join(runtime.calls())

    docker.cmd("kill", "-s", "USR1", cid, check=True, runtime=runtime)
    wait_for(lambda: "got-usr1" in logs(docker, cid), what="USR1 to reach the container")
    docker.cmd("kill", cid, check=True, runtime=runtime)
    wait_for(lambda: docker.inspect(cid, "{{.State.Status}}") == "exited", what="the container to exit")
    assert docker.inspect(cid, "{{.State.ExitCode}}") == "137"
    assert any(c.endswith(f" kill {cid} 10") for c in runtime.calls())
    docker.cmd("rm", cid, check=True)


def test_rm_force_running_and_paused(docker, runtime):
    for pause in (False, True):
        cid = detached(docker, runtime, IMAGE, "sleep", "1000")
        if pause:
            docker.cmd("pause", cid, check=True, runtime=runtime)
        pid = int(docker.inspect(cid, "{{.State.Pid}}"))
        docker.cmd("rm", "-f", cid, check=True, runtime=runtime)
        assert docker.cmd("ps", "-a", "-q", "--filter", f"id={cid}").stdout.strip() == ""
        wait_for(lambda: not os.path.exists(f"/proc/{pid}"), timeout=5, what=f"the container's pid {pid} to go")
        assert no_state_left(docker, cid)
        assert cgroup_dirs(f"{docker.cgroup_parent}/{cid}") == [], "cgroup left after rm -f"


def test_bind_volume(docker, runtime, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "in").write_text("from-host\n")
    p = docker.run(runtime, "--rm", "-v", f"{vol}:/data", "-v", f"{vol}:/ro:ro", IMAGE, "sh", "-c",
                   "cat /data/in; echo from-container > /data/out; touch /ro/x 2>/dev/null || echo ro")
    assert (p.returncode, p.stdout) == (0, "from-host\nro\n"), (p.stderr, runtime.last_calls())
    assert (vol / "out").read_text() == "from-container\n"


def test_memory_limit_in_the_cgroup(docker, runtime):
    cid = detached(docker, runtime, "--memory", "64m", IMAGE, "sleep", "1000")
    host = docker.cgroup_file(cid, "memory.limit_in_bytes", "memory.max")
    assert host.read_text().strip() == str(64 << 20)
    inside = docker.cmd("exec", cid, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                        "/sys/fs/cgroup/memory.max 2>/dev/null", runtime=runtime).stdout
    assert str(64 << 20) in inside
    docker.cmd("update", "--memory", "96m", "--memory-swap", "200m", cid, check=True, runtime=runtime)
    assert host.read_text().strip() == str(96 << 20)
    assert f"json update --resources - {cid}" in runtime.last_calls()
    docker.cmd("rm", "-f", cid, check=True)


def test_read_only_cap_add_user(docker, runtime):
    p = docker.run(runtime, "--rm", "--read-only", "--cap-add", "SYS_PTRACE", "--user", "1000", IMAGE, "sh", "-c",
                   "id; grep -E '^Cap(Bnd|Eff):' /proc/self/status; touch /x 2>&1; "
                   "grep -E '^Seccomp:' /proc/self/status")
    assert p.returncode == 0, (p.stdout, p.stderr, runtime.last_calls())
    lines = p.stdout.splitlines()
    assert lines[0] == "uid=1000(user) gid=1000(user) groups=1000(user)", lines
    assert lines[1].split() == ["CapEff:", "0" * 16], "uid 1000: no effective capabilities"
    bnd = int(lines[2].split()[1], 16)
    assert bnd & (1 << 19) and not bnd & (1 << 21), "CAP_SYS_PTRACE added, CAP_SYS_ADMIN not"
    assert "Read-only file system" in lines[3]
    assert lines[4].split() == ["Seccomp:", "2"], "Docker's default seccomp profile"


def test_init_prestart_hook_and_netns(docker, runtime):
    """--init bind-mounts docker-init as pid 1; Docker's libnetwork-setkey prestart hook
    reads the state on stdin and makes dockerd bind the container's netns to SandboxKey."""
    cid = detached(docker, runtime, "--init", IMAGE, "sleep", "1000")
    ps = docker.cmd("exec", cid, "ps", "-o", "pid,args", check=True).stdout
    assert re.search(r"^\s*1 /sbin/docker-init -- sleep 1000$", ps, re.M), ps
    pid = docker.inspect(cid, "{{.State.Pid}}")
    key = docker.inspect(cid, "{{.NetworkSettings.SandboxKey}}")
    assert key.startswith(str(docker.exec_root)), key
    assert os.stat(key).st_ino == os.stat(f"/proc/{pid}/ns/net").st_ino != os.stat("/proc/self/ns/net").st_ino
    docker.cmd("rm", "-f", cid, check=True)


def test_run_tty_and_exec_tty(docker, runtime):
    """-t: the shim passes --console-socket and gets the pty master."""
    base = [docker.client, "-H", f"unix://{docker.sock}"]
    code, out = run_with_pty(base + ["run", "--rm", "-t", "--network", "none", "--runtime", docker_name(runtime),
                                     IMAGE, "sh", "-c", "tty; test -t 1 && echo out-is-tty; exit 3"])
    assert code == 3 and "/dev/pts/0" in out and "out-is-tty" in out, (out, runtime.last_calls())
    assert any(" create --bundle " in c and " --console-socket " in c for c in runtime.calls()[-4:])
    cid = detached(docker, runtime, IMAGE, "sleep", "1000")
    code, out = run_with_pty(base + ["exec", "-t", cid, "sh", "-c", "tty; exit 4"])
    assert code == 4 and "/dev/pts/" in out, (out, runtime.last_calls())
    assert any(" exec --process " in c and " --console-socket " in c for c in runtime.calls()[-3:])
    docker.cmd("rm", "-f", cid, check=True)


def test_list_and_state_in_the_shared_runtime_root(docker, runtime, wrapped_runtimes):
    """Docker 20.10 gives every runtime the same --root (exec-root/runtime-runc/moby): `list`
    there meets the other runtime's state directories. runc 1.1.5 skips them with a
    "load container" line on stderr and exits 0; `state` of such an id is a one-line error."""
    other = next((r for r in wrapped_runtimes.values() if r.name != runtime.name), None)
    if other is None:
        pytest.skip("needs both runtimes")
    mine = detached(docker, runtime, IMAGE, "sleep", "1000")
    theirs = detached(docker, other, IMAGE, "sleep", "1000")
    try:
        root = str(docker.runtime_root)
        p = run_cmd([runtime.real, "--root", root, "list", "--format", "json"])
        assert p.returncode == 0, p.stderr
        assert [c["id"] for c in json.loads(p.stdout)] == [mine]
        assert theirs in p.stderr and "Traceback" not in p.stderr and "internal error" not in p.stderr
        p = run_cmd([runtime.real, "--root", root, "state", theirs])
        assert p.returncode == 1 and p.stdout == "", p.stdout
        assert len(p.stderr.strip().splitlines()) == 1 and "internal error" not in p.stderr, p.stderr
    finally:
        docker.cmd("rm", "-f", mine, theirs)


def test_privileged(docker, runtime):
    """--privileged asks for every capability Docker 20.10.24 knows (up to CAP_AUDIT_READ,
    37) and no seccomp filter. Where the host's root lacks some
    (this test machine: CAP_SYS_RESOURCE), runc 1.1.5 fails "unable to apply caps";
    pyrunc grants what it holds and warns, as config.md "Linux Process" asks."""
    from pyrunc.linux.capabilities import last_cap

    own = int(next(ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("CapBnd:")), 16)
    asked = (1 << (min(last_cap(), 37) + 1)) - 1
    p = docker.run(runtime, "--rm", "--privileged", IMAGE, "grep", "-E", "^(CapEff|Seccomp):", "/proc/self/status")
    if runtime.name == "runc" and asked & ~own:
        assert p.returncode == 125 and "unable to apply caps" in p.stderr, (p.stdout, p.stderr)
        return
    assert p.returncode == 0, (p.stdout, p.stderr, runtime.last_calls())
    assert p.stdout.split() == ["CapEff:", f"{asked & own:016x}", "Seccomp:", "0"], p.stdout
