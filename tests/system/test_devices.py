"""Devices: the default set, linux.devices (mknod with type, numbers, mode, owner), bind
mounts from the host in a user namespace; proved against runc."""
import os
import shutil
import subprocess
import uuid
from pathlib import Path

STAT = "stat -c '%n %F %t:%T %a %u %g'"


def test_default_devices_match_runc(rt, runc_rt):
    args = ["sh", "-c", "cd /dev && for f in null zero full random urandom tty; do " + STAT + " $f; done; "
            "for l in ptmx fd stdin stdout stderr; do echo $l $(readlink $l); done; ls /dev | tr '\\n' ' '"]
    out = rt.output_of(args)
    assert out == runc_rt.output_of(args)
    lines = out.splitlines()
    assert lines[0] == "null character special file 1:3 666 0 0"
    assert lines[5] == "tty character special file 5:0 666 0 0"
    assert lines[6:11] == ["ptmx pts/ptmx", "fd /proc/self/fd", "stdin /proc/self/fd/0",
                           "stdout /proc/self/fd/1", "stderr /proc/self/fd/2"]
    assert {"pts", "shm", "mqueue"} <= set(lines[11].split())


def test_linux_devices_match_runc(rt, runc_rt):
    def edit(c):
        c["linux"]["devices"] = [
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 12, "gid": 34},
            {"path": "/dev/myblk", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600},
            {"path": "/dev/unbuf", "type": "u", "major": 1, "minor": 3, "fileMode": 0o444, "uid": 5},
            {"path": "/dev/sub/dir/fifo", "type": "p", "fileMode": 0o620, "gid": 7},
            {"path": "/elsewhere/zero2", "type": "c", "major": 1, "minor": 5},
            {"path": "/dev/full", "type": "c", "major": 1, "minor": 7, "fileMode": 0o600, "uid": 1},
        ]
    args = ["sh", "-c", STAT + " /dev/fuse /dev/myblk /dev/unbuf /dev/sub/dir/fifo /elsewhere/zero2 /dev/full"]
    out = rt.output_of(args, edit=edit)
    assert out == runc_rt.output_of(args, edit=edit)
    assert out.splitlines() == [
        "/dev/fuse character special file a:e5 640 12 34",
        "/dev/myblk block special file 7:c8 600 0 0",
        "/dev/unbuf character special file 1:3 444 5 0",
        "/dev/sub/dir/fifo fifo 0:0 620 0 7",
        "/elsewhere/zero2 character special file 1:5 666 0 0",
        "/dev/full character special file 1:7 600 1 0",  # overrides the default
    ]


def test_existing_file_that_does_not_match_is_an_error(rt):
    """runtime-spec: "If a file already exists at path that does not match the requested
    device, the runtime MUST generate an error" (runc 1.1 silently keeps the file)."""
    def edit(c):
        c["linux"]["devices"] = [{"path": "/etc/hostname", "type": "c", "major": 1, "minor": 3}]
    p = rt.run("c-devmismatch", rt.bundle(["true"], edit=edit), check=False)
    assert p.returncode != 0
    assert "/etc/hostname" in p.stderr and "already exists" in p.stderr
    assert not os.path.exists(os.path.join(rt.root, "c-devmismatch"))

    def same(c):  # an existing node that matches is fine
        c["linux"]["devices"] = [{"path": "/mydev", "type": "c", "major": 1, "minor": 5}]
    b = rt.bundle(["true"], edit=same)
    os.mknod(b / "rootfs" / "mydev", 0o600 | 0o020000, os.makedev(1, 5))
    rt.run("c-devsame", b)


def test_devices_bind_mounted_in_a_user_namespace(tmp_path):
    from support.bundles import drop_namespace, userns
    from support.host import pyrunc_binary
    from support.runtime import Runtime

    base = Path(f"/tmp/pyrunc-devus-{uuid.uuid4().hex[:8]}")
    base.mkdir(mode=0o755)
    os.chmod(base, 0o755)  # the container's root (host uid 100000) must reach its rootfs
    r = Runtime(pyrunc_binary(), base)
    try:
        def edit(c):
            # (no network namespace: /sys is then the host's, bound read-only, as sysfs
            # cannot be mounted by a user namespace that does not own the network one)
            drop_namespace(c, "network")
            userns(c, host_id=100000)
            c["mounts"][2]["options"].remove("gid=5")
            # /dev/kmsg: a node every host has (/dev/fuse is missing where the module is not loaded)
            c["linux"]["devices"] = [{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}]
        out = r.output_of(["sh", "-c", "grep -E ' /dev/(null|tty|kmsg) ' /proc/self/mountinfo | cut -d' ' -f4,5; "
                           "echo x > /dev/null && head -c 3 /dev/zero | wc -c; "
                           "awk '$5==\"/sys\" {print $6}' /proc/self/mountinfo"], edit=edit)
        assert out.splitlines() == ["/null /dev/null", "/tty /dev/tty", "/kmsg /dev/kmsg", "3",
                                    "ro,nosuid,nodev,noexec,relatime"]
    finally:
        leftover = r.cleanup()
        shutil.rmtree(base, ignore_errors=True)
    assert not leftover


def test_no_device_setup_when_dev_is_a_bind_mount(rt, tmp_path):
    devdir = tmp_path / "mydev"
    devdir.mkdir()
    (devdir / "marker").write_text("")

    def edit(c):
        c["mounts"] = [m for m in c["mounts"] if not m["destination"].startswith("/dev")]
        c["mounts"].append({"destination": "/dev", "type": "bind", "source": str(devdir), "options": ["rbind"]})
    out = rt.output_of(["ls", "/dev"], edit=edit)
    assert out.split() == ["marker"]
    assert subprocess.run(["ls", devdir], capture_output=True, text=True).stdout.split() == ["marker"]


def test_device_error_names_the_device(rt):
    def edit(c):  # the device's parent is a file
        c["linux"]["devices"] = [{"path": "/etc/passwd/x", "type": "c", "major": 1, "minor": 3}]
    p = rt.run("c-devbad", rt.bundle(["true"], edit=edit), check=False)
    assert p.returncode != 0 and "/etc/passwd/x" in p.stderr and len(p.stderr.splitlines()) == 1, p.stderr
    assert not os.path.exists(os.path.join(rt.root, "c-devbad"))
