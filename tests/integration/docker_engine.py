"""A private dockerd (Debian's docker.io 20.10) for the engine tests: its own data root,
exec root, socket and managed containerd, no bridge and no iptables; the runtimes are
added with --add-runtime (behind the logging wrapper). Its cgroup driver is the default
(systemd on a cgroup v2 host with systemd; set explicitly elsewhere)."""
import json
import subprocess
from pathlib import Path

from .engines import (IMAGE, HostLeftovers, _check_exit, kill_pid, run_cmd, unmount_under,
                      wait_for)


class Docker:
    def __init__(self, base: Path, runtimes, rootfs_tar, *, exec_opts=()):
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.sock = base / "docker.sock"
        self.host = f"unix://{self.sock}"
        self.runtimes = runtimes
        self.host_leftovers = HostLeftovers("/etc/docker", "/etc/docker/key.json", "/run/docker",
                                            "/var/lib/docker")
        argv = ["dockerd", "--data-root", str(base / "root"), "--exec-root", str(base / "exec"),
                "--pidfile", str(base / "docker.pid"), "-H", self.host, "--bridge", "none",
                "--iptables=false", "--ip6tables=false", "--ip-masq=false", "--userland-proxy=false",
                "--storage-driver", "overlay2", "--log-level", "warn"]
        for o in exec_opts:
            argv += ["--exec-opt", o]
        for name, r in runtimes.items():
            argv += ["--add-runtime", f"{self.runtime_name(r)}={r.path}"]
        self.log = open(base / "dockerd.log", "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.names = set()
        try:
            wait_for(lambda: self.proc.poll() is not None or self.cmd("version", timeout=30).returncode == 0,
                     timeout=180, interval=0.5, what="dockerd to answer")
            if self.proc.poll() is not None:
                raise AssertionError("dockerd exited:\n" + (base / "dockerd.log").read_text()[-3000:])
            self.cmd("import", str(rootfs_tar), IMAGE, check=True, timeout=300)
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def runtime_name(runtime):
        # "runc" is dockerd's own (reserved) runtime name
        return "wrapped-runc" if runtime.name == "runc" else runtime.name

    def cmd(self, *args, runtime=None, check=False, timeout=120, **kw):
        argv = ["docker", "-H", self.host, *map(str, args)]
        p = run_cmd(argv, timeout=timeout, **kw)
        if check:
            _check_exit(p, argv, runtime)
        return p

    def run(self, runtime, *args, **kw):
        return self.cmd("run", "--runtime", self.runtime_name(runtime), "--network", "none", *args,
                        runtime=runtime, **kw)

    def info(self):
        return json.loads(self.cmd("info", "--format", "{{json .}}", check=True).stdout)

    def inspect(self, name):
        return json.loads(self.cmd("inspect", name, check=True).stdout)[0]

    def stop(self):
        problems = []
        if self.proc.poll() is None:
            ids = self.cmd("ps", "-aq").stdout.split()
            if ids:
                self.cmd("rm", "-f", *ids, timeout=300)
            left = self.cmd("ps", "-aq").stdout.split()
            if left:
                problems.append(f"docker containers left: {left}")
            kill_pid(self.proc.pid, timeout=60)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                problems.append("dockerd did not stop")
        self.log.close()
        unmount_under(str(self.base))
        self.host_leftovers.remove_new()
        return problems
