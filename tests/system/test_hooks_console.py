"""Hooks (config.md "POSIX-platform Hooks") and the console socket."""
import json
import os
import stat
import time
from pathlib import Path

from support.host import busybox_path
from support.runtime import ConsoleReceiver
from support.checks import one_line_error, wait_for


def hook_script(tmp_path, name, body="cat > \"$1\"", shell="/bin/sh"):
    p = tmp_path / f"{name}.sh"
    p.write_text(f"#!{shell}\n{body}\n")
    p.chmod(0o755)
    return str(p)


def test_hooks_run_in_order_with_state(rt, tmp_path):
    out = tmp_path / "hooks"
    out.mkdir()
    log = out / "order"
    rec = hook_script(tmp_path, "rec",
                      f'echo "$2 $(readlink /proc/self/ns/mnt)" >> {log}; cat > {out}/"$2".json')

    def h(kind):
        return [{"path": rec, "args": ["rec", "unused", kind]}]

    def edit(c):
        c["hooks"] = {k: h(k) for k in ("prestart", "createRuntime", "createContainer", "poststart",
                                         "poststop")}
        # startContainer resolves in the container: use the rootfs's own shell.
        c["hooks"]["startContainer"] = [{"path": "/bin/sh", "args": [
            "sh", "-c", "cat > /tmp/startContainer.json"]}]

    b = rt.bundle(["sh", "-c", "sleep 0.2"], edit=edit)
    rt.create("h1", b)
    lines = log.read_text().splitlines()
    assert [l.split()[0] for l in lines] == ["prestart", "createRuntime", "createContainer"]
    host_mnt = os.readlink("/proc/self/mnt".replace("mnt", "ns/mnt"))
    assert lines[0].split()[1] == host_mnt  # runtime namespace
    assert lines[2].split()[1] != host_mnt  # container namespace
    st = json.loads((out / "createRuntime.json").read_text())
    assert st["id"] == "h1" and st["pid"] == rt.state("h1")["pid"] and st["bundle"] == str(b)
    rt.cmd("start", "h1")
    assert (b / "rootfs/tmp/startContainer.json").exists()
    assert json.loads((out / "poststart.json").read_text())["id"] == "h1"
    assert wait_for(lambda: rt.state("h1")["status"] == "stopped")
    rt.cmd("delete", "h1")
    assert json.loads((out / "poststop.json").read_text())["status"] == "stopped"


def test_failing_create_runtime_hook_leaves_nothing(rt, tmp_path):
    bad = hook_script(tmp_path, "bad", "echo hook-says-no >&2; exit 3")

    def edit(c):
        c["hooks"] = {"createRuntime": [{"path": bad}]}

    b = rt.bundle(["sleep", "30"], edit=edit)
    p = rt.create("hf", b, check=False)
    err = one_line_error(p)
    assert "createRuntime" in err and "hook-says-no" in err
    assert not (Path(rt.root) / "hf").exists()
    # no process left: nothing in our test cgroups, no sleep 30 child of ours
    from support.host import prefix_dirs

    for d in prefix_dirs(rt.cgroup_prefix):
        assert not d.exists() or not [p for p in d.iterdir() if p.is_dir()], d


def test_hook_timeout(rt, tmp_path):
    slow = hook_script(tmp_path, "slow", "sleep 10")

    def edit(c):
        c["hooks"] = {"prestart": [{"path": slow, "timeout": 1}]}

    b = rt.bundle(["true"], edit=edit)
    t = time.monotonic()
    err = one_line_error(rt.create("ht", b, check=False))
    assert time.monotonic() - t < 8
    assert "timed out" in err


def test_failing_poststop_only_warns(rt, tmp_path):
    bad = hook_script(tmp_path, "bad", "exit 1")
    b = rt.bundle(["true"], edit=lambda c: c.update(hooks={"poststop": [{"path": bad}]}))
    rt.run("ps1", b)
    assert not (Path(rt.root) / "ps1").exists()


def test_console_socket(rt, tmp_path):
    console = ConsoleReceiver(tmp_path / "console.sock")

    def edit(c):
        c["process"]["terminal"] = True
        c["process"]["consoleSize"] = {"height": 33, "width": 111}

    b = rt.bundle(["sh", "-c", "tty; stty size; echo done"], edit=edit)
    rt.create("tty1", b, "--console-socket", console.path)
    assert stat.S_ISCHR(os.fstat(console.master()).st_mode)
    rt.cmd("start", "tty1")
    text = console.read_until(b"done").decode(errors="replace")
    assert "/dev/pts/" in text or "/dev/console" in text
    assert "33 111" in text


def test_terminal_without_console_socket_is_error(rt):
    b = rt.bundle(["true"], edit=lambda c: c["process"].update(terminal=True))
    err = one_line_error(rt.create("tty2", b, check=False))
    assert "console socket" in err
    assert not (Path(rt.root) / "tty2").exists()


def test_run_foreground_terminal_without_socket_proxies_a_pty(rt):
    """As `runc run` with terminal true: the runtime takes the pty itself."""
    b = rt.bundle(["sh", "-c", "tty; echo proxied-ok; exit 4"],
                  edit=lambda c: c["process"].update(terminal=True))
    p = rt.run("tproxy", b, check=False)
    assert p.returncode == 4, p.stderr
    assert "/dev/pts/" in p.stdout and "proxied-ok" in p.stdout


def test_failing_start_container_hook_fails_start(rt, tmp_path):
    """runtime.md "Lifecycle" step 7: error, stop the container, destroy, poststop."""
    marker = tmp_path / "poststop-ran"
    rec = hook_script(tmp_path, "post", f"touch {marker}")

    def edit(c):
        c["hooks"] = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 9"]}],
                      "poststop": [{"path": rec}]}

    b = rt.bundle(["sh", "-c", "touch /tmp/user-ran"], edit=edit)
    rt.create("sch", b)
    err = one_line_error(rt.cmd("start", "sch", check=False))
    assert "startContainer" in err
    assert not (b / "rootfs/tmp/user-ran").exists()
    assert marker.exists()
    assert not (Path(rt.root) / "sch").exists()


def test_run_keep_with_failing_start_container_hook_destroys_as_the_spec_says(rt, runc_rt, tmp_path):
    """runtime.md "Lifecycle" step 7: a failing startContainer hook means error, stop the
    container and continue at step 12 (destroy) and 13 (poststop); `run --keep` does not
    change that. runc 1.1.5 differs: with --keep it leaves a "stopped" container whose
    destroy and poststop wait for `delete`. pyrunc follows the text."""
    results = {}
    for name, r in (("pyrunc", rt), ("runc", runc_rt)):
        marker = tmp_path / f"poststop-{name}"
        rec = hook_script(tmp_path, f"post-{name}", f"touch {marker}")

        def edit(c):
            c["hooks"] = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 9"]}],
                          "poststop": [{"path": rec}]}

        b = r.bundle(["true"], name=f"keep-{name}", edit=edit)
        p = r.run("kh", b, "--keep", check=False)
        assert p.returncode != 0, (name, p.stderr)
        results[name] = (marker.exists(), (Path(r.root) / "kh").exists())
        if name == "pyrunc":
            assert "startContainer" in one_line_error(p)
        else:
            assert r.state("kh")["status"] == "stopped"
            r.cmd("delete", "kh")
            assert marker.exists()
    assert results["pyrunc"] == (True, False)  # destroyed, poststop ran: nothing to delete
    assert results["runc"] == (False, True)  # kept, stopped; poststop ran at delete


def test_failing_create_hooks_run_poststop(rt, tmp_path):
    marker = tmp_path / "poststop-ran"
    rec = hook_script(tmp_path, "post", f"touch {marker}")
    bad = hook_script(tmp_path, "bad", "exit 1")
    for kind in ("prestart", "createRuntime", "createContainer"):
        marker.unlink(missing_ok=True)
        b = rt.bundle(["true"], edit=lambda c: c.update(hooks={kind: [{"path": bad}],
                                                               "poststop": [{"path": rec}]}))
        one_line_error(rt.create(f"pc-{kind}", b, check=False))
        assert marker.exists(), kind
        assert not (Path(rt.root) / f"pc-{kind}").exists()


def test_hook_env_and_args(rt, tmp_path):
    """A hook runs path with its args (args[0] is argv[0]: busybox dispatches on it) and
    exactly its env (nothing from the runtime's environment)."""
    import os as _os

    out = tmp_path / "hook-env"
    hook = {"path": busybox_path(), "args": ["sh", "-c", f'echo "$1|$HOOKVAR|${{LEAK:-none}}" > {out}',
                                             "sh", "first"], "env": ["HOOKVAR=hello"]}
    b = rt.bundle(["true"], edit=lambda c: c.update(hooks={"createRuntime": [hook]}))
    rt.run("henv", b, env=dict(_os.environ, LEAK="from-the-runtime"))
    assert out.read_text().strip() == "first|hello|none"
