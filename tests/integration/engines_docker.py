"""Docker 20.10 for the engine tests and the corpus capture: dockerd started privately
(its own --data-root, --exec-root, --pidfile, socket, cgroup parent, no host network set-up)
on a private containerd (as Debian's docker.service runs it: `--containerd`), the runtimes
registered with --add-runtime, a busybox image from `docker load`; stopped and cleaned up
by pid, mount, cgroup and path (see README.md)."""
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from .engines import (IMAGE, Containerd, HostLeftovers, _check_exit, cgroup_dirs, remove_cgroup_tree, run_cmd, stop_child,
                      unmount_under, wait_for)

# Paths dockerd 20.10 writes whatever its flags say: the trust key (a deprecated
# --config-dir default) and the plugin socket dir. Removed afterwards if new.
DOCKER_HOST_PATHS = ("/etc/docker", "/etc/docker/key.json", "/run/docker", "/run/docker/plugins")


def docker_binaries():
    """(dockerd, docker client) of Debian's docker.io, or skip. The client is the one
    beside the daemon's package (/usr/bin/docker) before any other on PATH."""
    dockerd = shutil.which("dockerd") or ("/usr/sbin/dockerd" if os.path.exists("/usr/sbin/dockerd") else None)
    client = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else shutil.which("docker")
    if not dockerd or not client:
        pytest.skip("dockerd/docker not installed (apt-get install --no-install-recommends docker.io)")
    return dockerd, client


def docker_name(runtime):
    """The name a WrappedRuntime is registered under (dockerd reserves "runc")."""
    return "runc-itest" if runtime.name == "runc" else runtime.name


def docker_archive_bytes(rootfs_tar, ref):
    """A `docker save` archive (what Docker 20.10's `docker load` reads; OCI layouts it
    does not): manifest.json, the image config, one uncompressed layer."""
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(platform.machine(), platform.machine())
    diff_id = hashlib.sha256(rootfs_tar).hexdigest()
    config = json.dumps({
        "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id]},
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [ref], "Layers": [f"{diff_id}/layer.tar"]}]).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in ((config_name, config), (f"{diff_id}/layer.tar", rootfs_tar), ("manifest.json", manifest)):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o644
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


class DockerContainerd(Containerd):
    """The private containerd under dockerd: Docker's containers live in its "moby"
    namespace (what stop() removes if dockerd did not)."""
    NAMESPACE = "moby"


class Docker:
    def __init__(self, base: Path, runtimes, rootfs_tar):
        """`runtimes`: WrappedRuntimes, each registered as docker_name(runtime)."""
        self.dockerd_bin, self.client = docker_binaries()
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.sock = base / "docker.sock"
        self.data_root, self.exec_root = base / "data", base / "exec"
        # Docker 20.10 gives every runtime the same shim Root: exec-root/runtime-runc
        self.runtime_root = self.exec_root / "runtime-runc" / "moby"
        self.cgroup_parent = f"/pyrunc-itest-{uuid.uuid4().hex[:8]}-docker"
        self.runtimes = {docker_name(r): r for r in runtimes}
        self.host_leftovers = HostLeftovers(*DOCKER_HOST_PATHS)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        self.env["DOCKER_CONFIG"] = str(base / "client")  # not ~/.docker
        self.proc = None
        self.log = None
        self.containerd = DockerContainerd(base / "containerd", None)
        try:
            self._start()
            archive = base / "busybox-docker.tar"
            archive.write_bytes(docker_archive_bytes(Path(rootfs_tar).read_bytes(), IMAGE))
            self.cmd("load", "-i", archive, check=True, timeout=120)
        except BaseException:
            self.stop()
            raise

    def dockerd_argv(self):
        (self.base / "daemon.json").write_text("{}\n")  # not /etc/docker/daemon.json
        argv = [self.dockerd_bin, "--data-root", self.data_root, "--exec-root", self.exec_root,
                "--pidfile", self.base / "docker.pid", "-H", f"unix://{self.sock}",
                "--config-file", self.base / "daemon.json", "--containerd", self.containerd.address,
                # no bridge, no iptables rules, no sysctl: nothing on the host's network
                "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
                "--ip-forward=false", "--exec-opt", "native.cgroupdriver=cgroupfs",
                "--cgroup-parent", self.cgroup_parent, "--shutdown-timeout", "3"]
        for name, rt in self.runtimes.items():
            argv += ["--add-runtime", f"{name}={rt.path}"]
        return [str(a) for a in argv]

    def _start(self):
        self.log = open(self.base / "dockerd.log", "w")
        self.proc = subprocess.Popen(self.dockerd_argv(), stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        wait_for(lambda: self.proc.poll() is not None or self.cmd("version", timeout=10).returncode == 0,
                 timeout=60, interval=0.2, what="dockerd to answer")
        if self.proc.poll() is not None:
            raise AssertionError("dockerd exited:\n" + (self.base / "dockerd.log").read_text()[-3000:])

    def cmd(self, *args, runtime=None, check=False, timeout=60, **kw):
        argv = [self.client, "-H", f"unix://{self.sock}", *[str(a) for a in args]]
        p = run_cmd(argv, env=self.env, timeout=timeout, **kw)
        if check:
            _check_exit(p, argv, runtime)
        return p

    def run(self, runtime, *args, **kw):
        """`docker run` with the runtime and no network (the test's cgroup parent is dockerd's)."""
        return self.cmd("run", "--network", "none", "--runtime", docker_name(runtime), *args, runtime=runtime, **kw)

    def inspect(self, cid, fmt):
        return self.cmd("inspect", "--format", fmt, cid, check=True).stdout.strip()

    def cgroup_file(self, cid, *names):
        """The first of `names` (v1 or v2 file names) in the container's cgroups on the host."""
        for d in cgroup_dirs(f"{self.cgroup_parent}/{cid}"):
            for n in names:
                if (d / n).exists():
                    return d / n
        raise AssertionError(f"none of {names} in the cgroups of {cid}")

    def stop(self):
        """Containers, dockerd (by pid), the containerd under it and its shims, runtime state,
        mounts under the tmp dir, the test cgroups, new host paths. Returns what was left."""
        problems = []
        if self.proc is not None and self.proc.poll() is None:
            ids = self.cmd("ps", "-a", "-q", "--no-trunc").stdout.split()
            for cid in ids:
                self.cmd("unpause", cid)  # (fails unless paused)
                self.cmd("rm", "-f", "-v", cid, timeout=60)
            left = self.cmd("ps", "-a", "-q").stdout.split()
            if left:
                problems.append(f"docker containers left: {left}")
            stop_child(self.proc, timeout=20)
        if self.log:
            self.log.close()
        problems += self.containerd.stop()
        if self.runtime_root.is_dir():
            for d in self.runtime_root.iterdir():
                problems.append(f"runtime state left: {d.name}")
                for rt in self.runtimes.values():
                    run_cmd([rt.real, "--root", str(self.runtime_root), "delete", "--force", d.name])
        unmount_under(str(self.base))
        left = remove_cgroup_tree(self.cgroup_parent)
        if left:
            problems.append(f"cgroups left: {left}")
        self.host_leftovers.remove_new()
        return problems
