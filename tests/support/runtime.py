"""A runtime binary driven through its command line, as the engines drive it."""
import errno
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from support.host import busybox_path, prefix_dirs



def run_cmd(argv, *, env=None, timeout=60, input=None, check=False, stdin=None, cwd=None, **kw):
    """Run a command with stdout/stderr in files, not pipes: a container started by the
    command may inherit them and hold a pipe open long after the command returned."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        io = {"input": input} if input is not None else {"stdin": stdin if stdin is not None else subprocess.DEVNULL}
        p = subprocess.run(argv, stdout=out, stderr=err, text=True, env=env, timeout=timeout, cwd=cwd,
                           **io, **kw)
        out.seek(0)
        err.seek(0)
        p.stdout, p.stderr = out.read(), err.read()
    if check and p.returncode != 0:
        raise AssertionError(f"{argv} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p

class ConsoleReceiver:
    """A --console-socket listener (as conmon/containerd's shim): takes the pty master
    sent with SCM_RIGHTS, and reads what the container writes to it."""

    def __init__(self, path):
        import socket
        import threading

        self.path = str(path)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(1)
        self.fd = None
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self):
        import socket

        conn, _ = self.srv.accept()
        _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        self.fd = fds[0] if fds else None
        conn.close()

    def master(self, timeout=10):
        self.thread.join(timeout)
        self.srv.close()
        assert self.fd is not None, "no pty master received on the console socket"
        return self.fd

    def read_until(self, marker: bytes, timeout=10):
        import time

        fd = self.master()
        data = b""
        end = time.monotonic() + timeout
        while marker not in data and time.monotonic() < end:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        os.close(fd)
        return data


class Runtime:
    """One runtime binary, one private --root, bundles in a private dir."""

    def __init__(self, binary, tmp: Path):
        self.binary = binary
        self.tmp = tmp
        self.root = str(tmp / "state")
        self.cgroup_prefix = f"pyrunc-test-{uuid.uuid4().hex[:10]}"
        self._rootfs_template = None
        self.ids = set()

    def cmd(self, *args, check=True, input=None, timeout=60, env=None, **kw):
        """Run the runtime; stdout/stderr go to files, not pipes, since a created
        container's init inherits them and would hold a pipe open after create exits."""
        argv = [self.binary, "--root", self.root, *map(str, args)]
        return run_cmd(argv, env=env, timeout=timeout, input=input, check=check, **kw)

    def bundle(self, args=("sh",), name=None, edit=None, **top):
        """Make a busybox bundle; edit(config) may change the config in place."""
        from pyrunc.tooling.bundle import make_rootfs
        from pyrunc.config.default import default_config

        name = name or f"b-{uuid.uuid4().hex[:8]}"
        b = self.tmp / name
        b.mkdir()
        if self._rootfs_template is None:
            self._rootfs_template = self.tmp / "rootfs-template"
            make_rootfs(str(self._rootfs_template), busybox_path())
        shutil.copytree(self._rootfs_template, b / "rootfs", symlinks=True)
        config = default_config()
        config["process"]["terminal"] = False
        config["process"]["args"] = list(args)
        config["root"]["readonly"] = False
        config["linux"]["cgroupsPath"] = f"{self.cgroup_prefix}/{name}"
        config.update(top)
        if edit:
            edit(config)
        (b / "config.json").write_text(json.dumps(config, indent=2))
        return b

    def config(self, bundle):
        return json.loads((Path(bundle) / "config.json").read_text())

    def create(self, cid, bundle, *extra, check=True, **kw):
        self.ids.add(cid)
        return self.cmd("create", "--bundle", bundle, *extra, cid, check=check, **kw)

    def run(self, cid, bundle, *extra, check=True, **kw):
        self.ids.add(cid)
        return self.cmd("run", "--bundle", bundle, *extra, cid, check=check, **kw)

    def state(self, cid):
        return json.loads(self.cmd("state", cid).stdout)

    def output_of(self, args, edit=None, **kw):
        """Run a container in the foreground and return its stdout (asserting exit 0)."""
        b = self.bundle(args, edit=edit)
        cid = f"c-{uuid.uuid4().hex[:8]}"
        p = self.run(cid, b, **kw)
        return p.stdout

    def cleanup(self):
        for cid in list(self.ids):
            self.cmd("delete", "--force", cid, check=False)
        found = []
        for d in prefix_dirs(self.cgroup_prefix):
            for top, dirs, _ in os.walk(d, onerror=lambda e: None):
                found.extend(Path(top) / n for n in dirs)
            if d.exists():
                found.append(d)
        # A container's own cgroup left behind is a failure. The shared prefix dir may
        # stay (like runc, a container removes its parents only when it made them and
        # they are empty): remove it here. Deepest first.
        leftover = [str(d) for d in found if d.name != self.cgroup_prefix]
        for d in sorted(found, key=lambda p: len(str(p)), reverse=True):
            # A v1 memory cgroup may answer EBUSY for a moment after its last task exits.
            for _ in range(40):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        break
                    time.sleep(0.05)
            if d.exists() and str(d) not in leftover:
                leftover.append(str(d))  # still there: the test reports it
        return leftover


def oom_watching(pid):
    """Whether an `events` process (pid) watches for OOM kills: an eventfd (cgroup v1) or
    an inotify on memory.events (v2); runc's too."""
    try:
        return any(kind in os.readlink(f"/proc/{pid}/fd/{fd}")
                   for fd in os.listdir(f"/proc/{pid}/fd") for kind in ("inotify", "eventfd"))
    except OSError:
        return False


def events_during(r, cid, action, interval="30s", timeout=30):
    """The types of the events `R events CID` prints while action() runs: started, then
    (once it watches for OOM kills) action(), which must end with the container stopped,
    so that `events` ends by itself."""
    from support.checks import wait_for

    events = subprocess.Popen([r.binary, "--root", r.root, "events", "--interval", interval, cid],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: oom_watching(events.pid), 15), "events never watched for OOM kills"
        action()
        text, _ = events.communicate(timeout=timeout)
    finally:
        if events.poll() is None:
            events.kill()
            events.wait()
    return [json.loads(line)["type"] for line in text.splitlines() if line.strip()]
