"""Lifecycle through the CLI (runtime.md "Operations", "Lifecycle"), seen from outside."""
import json
import os
import signal
from pathlib import Path

import pytest
from support.checks import one_line_error, wait_for


def test_create_start_stop_delete(rt, tmp_path):
    b = rt.bundle(["sh", "-c", "echo started > /tmp/mark; sleep 0.3"])
    pidfile = tmp_path / "pid"
    rt.create("c1", b, "--pid-file", pidfile)
    st = rt.state("c1")
    assert st["status"] == "created"
    assert st["id"] == "c1" and st["bundle"] == str(b)
    # pid file: decimal digits, no newline, the init's host pid
    assert pidfile.read_text() == str(st["pid"])
    assert Path(f"/proc/{st['pid']}").exists()
    assert not (b / "rootfs/tmp/mark").exists(), "the user process must not run before start"
    rt.cmd("start", "c1")
    assert wait_for(lambda: (b / "rootfs/tmp/mark").exists())
    assert wait_for(lambda: rt.state("c1")["status"] == "stopped")
    assert rt.state("c1")["pid"] == 0
    rt.cmd("delete", "c1")
    p = rt.cmd("state", "c1", check=False)
    assert "does not exist" in one_line_error(p)
    assert os.listdir(rt.root) == []


def test_state_json_shape(rt):
    b = rt.bundle(["sleep", "10"], annotations={"org.example.key": "value"})
    rt.create("shape", b)
    st = rt.state("shape")
    for key in ("ociVersion", "id", "status", "pid", "bundle", "rootfs", "created", "owner"):
        assert key in st
    assert st["annotations"] == {"org.example.key": "value"}
    assert st["rootfs"] == str(b / "rootfs")
    assert st["created"].endswith("Z") and "." in st["created"]  # RFC3339Nano


def test_dead_init_is_stopped_without_any_call(rt):
    b = rt.bundle(["sleep", "30"])
    rt.create("dead", b)
    pid = rt.state("dead")["pid"]
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: rt.state("dead")["status"] == "stopped")


def test_recycled_pid_is_not_alive(rt):
    """A stopped container is recognised by pid and start time, not pid alone."""
    b = rt.bundle(["true"])
    rt.run("recycled", b, "--keep")
    state_file = Path(rt.root) / "recycled" / "state.json"
    rec = json.loads(state_file.read_text())
    rec["init_pid"] = os.getpid()  # a live process, but not the container's init
    state_file.write_text(json.dumps(rec))
    assert rt.state("recycled")["status"] == "stopped"


def test_error_cases_change_nothing(rt):
    b = rt.bundle(["sleep", "30"])
    rt.create("e1", b)
    # kill a created container is allowed (runc), start twice is not
    rt.cmd("start", "e1")
    assert rt.state("e1")["status"] == "running"
    assert "running" in one_line_error(rt.cmd("start", "e1", check=False))
    # delete of a running container without --force: error, no effect
    one_line_error(rt.cmd("delete", "e1", check=False))
    assert rt.state("e1")["status"] == "running"
    # duplicate id
    err = one_line_error(rt.create("e1", b, check=False))
    assert "exists" in err
    assert rt.state("e1")["status"] == "running"
    rt.cmd("kill", "e1", "KILL")
    assert wait_for(lambda: rt.state("e1")["status"] == "stopped")
    # kill a stopped container: runc's wording, which engines match
    assert "container not running" in one_line_error(rt.cmd("kill", "e1", check=False))
    # ... but kill --all of a stopped container is fine (containerd, podman)
    rt.cmd("kill", "--all", "e1", "KILL")
    assert "cannot start a container that has stopped" in one_line_error(rt.cmd("start", "e1", check=False))
    rt.cmd("delete", "e1")


@pytest.mark.parametrize("cmd", [["state"], ["start"], ["kill"], ["delete"], ["pause"], ["resume"], ["ps"]])
def test_unknown_id(rt, cmd):
    p = rt.cmd(*cmd, "nosuch", check=False)
    assert "does not exist" in one_line_error(p)


def test_delete_force_of_missing_container_is_ok(rt):
    assert rt.cmd("delete", "--force", "gone", check=False).returncode == 0


@pytest.mark.parametrize("bad", ["../x", "a/b", ".", "..", "", "x" * 1025, "sp ace"])
def test_bad_ids_rejected(rt, bad):
    b = rt.bundle(["true"])
    p = rt.create(bad, b, check=False)
    one_line_error(p)
    assert not os.path.exists(rt.root) or os.listdir(rt.root) == []


def test_delete_force_running(rt):
    b = rt.bundle(["sleep", "30"])
    rt.create("f1", b)
    rt.cmd("start", "f1")
    pid = rt.state("f1")["pid"]
    rt.cmd("delete", "--force", "f1")
    assert wait_for(lambda: not Path(f"/proc/{pid}").exists() or
                    Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z")
    assert os.listdir(rt.root) == []


def test_delete_created_without_force_fails(rt):
    """runtime.md "delete": a container that is not stopped MUST not be deleted
    (runc 1.1.5 deletes a created one: a deviation from the spec)."""
    b = rt.bundle(["true"])
    rt.create("d1", b)
    one_line_error(rt.cmd("delete", "d1", check=False))
    assert rt.state("d1")["status"] == "created"


def test_kill_signals_by_name_and_number(rt, tmp_path):
    """A signal by name (SIGUSR1), by a number (12: SIGUSR2 on x86 and arm), and a name
    that is none: each reaches the init as that signal (its trap says which)."""
    import signal

    trap = ("trap 'echo {0} > /tmp/sig; exit 3' {0}; echo ready > /tmp/ready; "
            "while true; do sleep 0.05; done")
    for cid, sig, arg in (("k1", "USR1", "SIGUSR1"), ("k2", "USR2", str(int(signal.SIGUSR2)))):
        b = rt.bundle(["sh", "-c", trap.format(sig)])
        rt.create(cid, b)
        rt.cmd("start", cid)
        assert wait_for(lambda: (b / "rootfs/tmp/ready").exists())
        rt.cmd("kill", cid, arg)
        assert wait_for(lambda: rt.state(cid)["status"] == "stopped")
        assert (b / "rootfs/tmp/sig").read_text().strip() == sig, arg
    one_line_error(rt.cmd("kill", "k2", "NOTASIGNAL", check=False))


def test_missing_executable_fails_create(rt):
    b = rt.bundle(["/bin/no-such-binary"])
    err = one_line_error(rt.create("nobin", b, check=False))
    assert "no such file or directory" in err
    b2 = rt.bundle(["no-such-binary"])
    err = one_line_error(rt.create("nobin2", b2, check=False))
    assert "executable file not found in $PATH" in err
    assert not os.path.exists(rt.root) or os.listdir(rt.root) == []


def test_run_exit_code(rt):
    b = rt.bundle(["sh", "-c", "exit 7"])
    assert rt.run("x7", b, check=False).returncode == 7
    assert os.listdir(rt.root) == []  # run deletes the container


def test_run_exit_code_signal(rt):
    """Killed by a signal: 128+N. (pid 1 cannot SIGKILL itself in its own pid ns.)"""
    import subprocess

    b = rt.bundle(["sleep", "30"])
    p = subprocess.Popen([rt.binary, "--root", rt.root, "run", "--bundle", str(b), "x9"])
    rt.ids.add("x9")
    assert wait_for(lambda: rt.cmd("state", "x9", check=False).returncode == 0
                    and rt.state("x9")["status"] == "running")
    rt.cmd("kill", "x9", "KILL")
    assert p.wait(timeout=20) == 128 + 9


def test_run_forwards_signals(rt):
    """A signal sent the moment the process is up goes to it, never to run itself (run
    blocks what it forwards before the init may exec: repeated, as that was a race)."""
    import subprocess

    b = rt.bundle(["sh", "-c", "trap 'echo term-received; exit 42' TERM; echo up; "
                              "while true; do sleep 0.05; done"])
    for i in range(8):
        p = subprocess.Popen([rt.binary, "--root", rt.root, "run", "--bundle", str(b), f"fwd{i}"],
                             stdout=subprocess.PIPE, text=True)
        rt.ids.add(f"fwd{i}")
        assert p.stdout.readline().strip() == "up"
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=20)
        assert "term-received" in out, (i, out)
        assert p.returncode == 42


def test_run_keep_and_detach(rt):
    b = rt.bundle(["true"])
    rt.run("keep", b, "--keep")
    assert rt.state("keep")["status"] == "stopped"
    b2 = rt.bundle(["sleep", "30"])
    rt.run("det", b2, "--detach")
    assert rt.state("det")["status"] == "running"


def test_run_keep_process_that_exits_while_run_saves_state(rt):
    """The init may exec and exit as soon as `run` opens exec.fifo; `state` must still
    say "stopped" afterwards, never "running" (the start time was read from a zombie).
    strace delays run's opening of the fifo so that the process is sure to have exited."""
    import shutil
    import subprocess

    if not shutil.which("strace"):
        pytest.skip("strace is not installed")
    b = rt.bundle(["true"])
    fifo = os.path.join(rt.root, "k", "exec.fifo")
    rt.ids.add("k")
    subprocess.run(["strace", "-qq", "-o", "/dev/null", "-P", fifo, "-e", "trace=openat",
                    "-e", "inject=openat:delay_exit=300000",
                    rt.binary, "--root", rt.root, "run", "--keep", "--bundle", str(b), "k"],
                   check=True, timeout=60)
    st = rt.state("k")
    assert (st["status"], st["pid"]) == ("stopped", 0)


def test_kill_signal_zero_checks_liveness(rt):
    """runc accepts signal 0 (a liveness check); unknown names are runc's error."""
    b = rt.bundle(["sleep", "30"])
    rt.run("k0", b, "--detach")
    rt.cmd("kill", "k0", "0")
    assert rt.state("k0")["status"] == "running"
    assert 'unknown signal \\"SIGNOPE' in one_line_error(rt.cmd("kill", "k0", "SIGNOPE", check=False))


def test_device_file_mode_with_type_bits_is_accepted(rt):
    """podman writes fileMode with the file-type bits (runc accepts them)."""
    def edit(c):
        c["linux"]["devices"] = [{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
                                  "fileMode": 0o20666, "uid": 0, "gid": 0}]

    out = rt.output_of(["stat", "-c", "%F %a %t:%T", "/dev/mynull"], edit=edit)
    assert out.strip() == "character special file 666 1:3"


@pytest.mark.unit
def test_signal_names_as_runc():
    from pyrunc.container.kill import parse_signal
    from pyrunc.errors import PyruncError

    assert [parse_signal(s) for s in ("KILL", "SIGKILL", "9", "term", "RTMIN+3", "SIGRTMAX-1")] == \
        [9, 9, 9, 15, 37, 63]
    for bad in ("NOPE", "RTMIN+99", "-1", "65"):
        with pytest.raises(PyruncError):
            parse_signal(bad)


def test_run_of_a_process_that_exits_at_once(rt):
    """run opens exec.fifo as soon as the init is ready, so the process may exec and
    exit before run's own start step looks at it: that is a started container, not
    "cannot start a container that has stopped"."""
    b = rt.bundle(["true"])
    for i in range(15):
        p = rt.run(f"quick{i}", b, check=False)
        assert (p.returncode, p.stderr) == (0, ""), (i, p.stderr)
    assert os.listdir(rt.root) == []
