"""Engine integration tests: podman (through conmon) and containerd (through its runc shim)
drive pyrunc exactly as they drive runc. Every check runs for both runtimes in the same
session, runc being the reference.

What the fixtures isolate and clean up (also when a test fails):
- each runtime is reached through `runtime-wrapper.sh` (a shim named `runc` / `pyrunc`:
  engines key their behaviour on the runtime's file name), which logs every command line
  to a per-runtime calls log; a failing check shows the last calls;
- podman: private --root/--runroot/--tmpdir, its own containers.conf and storage.conf,
  cgroupfs under a test-only parent `/pyrunc-itest-<rand>-podman`; at the end
  `podman rm -fa`, the runtimes' state for our container ids, mounts under our tmp dir,
  the tmp dir and the test cgroups are removed;
- containerd: its own root/state/socket/config, started here and stopped by pid; ctr uses
  a private --runc-root and --fifo-dir; containers go under `/pyrunc-itest-<rand>-ctr`;
- Docker: dockerd with its own --data-root/--exec-root/--pidfile/socket on a private
  containerd, no bridge/iptables/ip forwarding, --cgroup-parent `/pyrunc-itest-<rand>-docker`,
  both runtimes registered with --add-runtime; at the end the containers, dockerd and its
  containerd and shims (by pid), runtime state, mounts, cgroups and the host paths dockerd
  wrote that did not exist before (engines_docker.py).

Nothing is installed here: without podman/conmon, containerd/ctr or docker.io the tests skip.
"""

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from .engines import (DELAY_PIDFD_OPEN, RUNTIME_NAMES, Containerd, Podman, WrappedRuntime, need,
                      pyrunc_binary, rootfs_tar_bytes, runc_binary, unmount_under)
from .engines_docker import Docker, docker_binaries


@pytest.fixture(scope="session")
def itest_dir():
    """One short tmp dir for the whole session (unix socket paths stay short)."""
    d = Path(tempfile.mkdtemp(prefix="pyrunc-it-", dir="/tmp"))
    yield d
    unmount_under(str(d))
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def wrapped_runtimes(itest_dir):
    out = {}
    for name in RUNTIME_NAMES:
        try:
            real = runc_binary() if name == "runc" else pyrunc_binary()
        except pytest.skip.Exception:
            continue
        out[name] = WrappedRuntime(name, real, itest_dir)
    return out


@pytest.fixture(params=RUNTIME_NAMES)
def runtime(request, wrapped_runtimes):
    """Each engine check runs once per runtime: runc (the reference) and pyrunc."""
    if request.param not in wrapped_runtimes:
        pytest.skip(f"{request.param} is not installed")
    return wrapped_runtimes[request.param]


@pytest.fixture(scope="session")
def slow_pidfd_runtimes(itest_dir, wrapped_runtimes):
    if not shutil.which("strace"):
        return {}
    return {n: WrappedRuntime(n, r.real, itest_dir, variant="slowpidfd", start_under=DELAY_PIDFD_OPEN)
            for n, r in wrapped_runtimes.items()}


@pytest.fixture
def slow_pidfd_runtime(runtime, slow_pidfd_runtimes):
    """`runtime`, with its `start` command run under strace delaying pidfd_open."""
    if runtime.name not in slow_pidfd_runtimes:
        pytest.skip("strace is not installed")
    return slow_pidfd_runtimes[runtime.name]


@pytest.fixture
def text_log_runtime(runtime, itest_dir):
    """`runtime` under a file name podman does not list in runtime_supports_json
    (`<name>-text`): create/exec get no --log-format=json, errors come as text on stderr."""
    return WrappedRuntime(runtime.name, runtime.real, itest_dir, variant="text",
                          filename=f"{runtime.name}-text")


@pytest.fixture(scope="session")
def rootfs_tar(itest_dir):
    p = itest_dir / "busybox-rootfs.tar"
    p.write_bytes(rootfs_tar_bytes())
    return p


# ---------------------------------------------------------------------------- podman

@pytest.fixture(scope="session")
def podman(itest_dir, wrapped_runtimes, rootfs_tar):
    need("podman", "conmon", apt="podman conmon")
    pm = Podman(itest_dir / "podman", wrapped_runtimes, rootfs_tar)
    try:
        yield pm
    finally:
        problems = pm.cleanup()
        if problems:
            print("podman cleanup:", *problems, sep="\n  ", file=sys.stderr)


# ---------------------------------------------------------------------------- containerd

@pytest.fixture(scope="session")
def containerd(itest_dir, rootfs_tar):
    need("containerd", "ctr", "containerd-shim-runc-v2", apt="containerd")
    cd = Containerd(itest_dir / "containerd", rootfs_tar)
    try:
        yield cd
    finally:
        problems = cd.stop()
        if problems:
            print("containerd cleanup:", *problems, sep="\n  ", file=sys.stderr)


# ---------------------------------------------------------------------------- Docker

@pytest.fixture(scope="session")
def docker(itest_dir, wrapped_runtimes, rootfs_tar):
    docker_binaries()
    need("containerd", "containerd-shim-runc-v2", apt="containerd")
    d = Docker(itest_dir / "docker", wrapped_runtimes.values(), rootfs_tar)
    try:
        yield d
    finally:
        problems = d.stop()
        if problems:
            print("docker cleanup:", *problems, sep="\n  ", file=sys.stderr)
