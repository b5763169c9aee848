"""Capture the corpus again from the engines installed here (as root):

    .venv/bin/python tests/corpus/capture.py [NAME...]

Writes tests/corpus/<name>.json, sanitised (see README.md): what `runc spec` and
`runc spec --rootless` write; what podman 4.3 writes into its bundle (`podman init`, then
the bundle's config.json); what containerd 1.6 stores for `ctr run`-style containers
(`ctr containers create`, then `ctr containers info --spec`); what Docker 20.10 hands the
runtime for a typical `docker run` (the logging wrapper copies the bundle's config.json at
`create`). Podman, containerd and Docker run privately as the integration tests set them
up (tests/integration/engines.py, engines_docker.py). The CRI-style config is written
from containerd's source (cri_style below).
"""
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent.parent))

from integration.engines import (IMAGE, Containerd, Podman, WrappedRuntime,  # noqa: E402
                                 rootfs_tar_bytes, runc_binary)
from integration.engines_docker import Docker  # noqa: E402

ID64 = re.compile(r"[0-9a-f]{64}")


def sanitise(config, host_paths=()):
    """Host-specific values out: root.path "rootfs", no cgroupsPath (the test sets one),
    namespace paths dropped (a new namespace instead), 64-hex ids replaced, hooks that run
    the engine's own binary by pid (/proc/PID/exe: Docker's libnetwork-setkey) dropped, and
    bind sources under the engine's private dirs replaced by @BUNDLE@/<name> (the test
    makes them)."""
    config = json.loads(ID64.sub("0" * 64, json.dumps(config)))
    config["root"]["path"] = "rootfs"
    linux = config.get("linux", {})
    linux.pop("cgroupsPath", None)
    for ns in linux.get("namespaces", []):
        ns.pop("path", None)
    hooks = config.get("hooks", {})
    for kind in list(hooks):
        hooks[kind] = [h for h in hooks[kind] if not h.get("path", "").startswith("/proc/")]
        if not hooks[kind]:
            del hooks[kind]
    if "hooks" in config and not hooks:
        del config["hooks"]
    for m in config.get("mounts", []):
        src = m.get("source", "")
        if any(src.startswith(p) for p in host_paths):
            m["source"] = "@BUNDLE@/" + Path(src).name
    return config


def write(name, config, host_paths=()):
    path = HERE / f"{name}.json"
    path.write_text(json.dumps(sanitise(config, host_paths), indent=2, sort_keys=True) + "\n")
    print("wrote", path)


def runc_spec(rootless=False):
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([runc_binary(), "spec", *(["--rootless"] if rootless else [])], cwd=d, check=True)
        return json.loads((Path(d) / "config.json").read_text())


def podman_config(tmp):
    tar = tmp / "rootfs.tar"
    tar.write_bytes(rootfs_tar_bytes())
    runtimes = {"runc": WrappedRuntime("runc", runc_binary(), tmp)}
    pm = Podman(tmp / "podman", runtimes, tar)
    try:
        name = pm.name("corpus")
        pm.cmd("create", "--name", name, "--network", "none", "--cgroup-parent", pm.cgroup_parent,
               IMAGE, "sh", "-c", "true", runtime=runtimes["runc"], check=True)
        pm.cmd("init", name, runtime=runtimes["runc"], check=True)
        cid = pm.container_id(name)
        found = list((tmp / "podman").rglob(f"{cid}/userdata/config.json"))
        return json.loads(found[0].read_text()), [str(tmp)]
    finally:
        pm.cleanup()


def ctr_config(tmp, *opts):
    tar = tmp / "rootfs.tar"
    tar.write_bytes(rootfs_tar_bytes())
    import uuid

    cd = Containerd(tmp / f"containerd-{uuid.uuid4().hex[:6]}", tar)
    try:
        cid = cd.new_id("corpus")
        cd.ids.add(cid)
        cd.ctr("containers", "create", *opts, IMAGE, cid, "true", check=True)
        return json.loads(cd.ctr("containers", "info", "--spec", cid, check=True).stdout), [str(tmp)]
    finally:
        cd.stop()


def docker_config(tmp):
    """`docker run -d --network none -v DIR:/data --memory 64m IMAGE sleep 1000` on a
    private dockerd (no bridge network: --bridge=none) with the default seccomp profile,
    capabilities, masked and read-only paths; the config.json the runc shim hands the
    runtime, copied by the logging wrapper at `create`."""
    tar = tmp / "rootfs.tar"
    tar.write_bytes(rootfs_tar_bytes())
    capture = tmp / "captured"
    capture.mkdir()
    rt = WrappedRuntime("runc", runc_binary(), tmp, capture=capture)
    dk = Docker(tmp / "docker", [rt], tar)
    try:
        vol = tmp / "vol-data"
        vol.mkdir()
        cid = dk.run(rt, "-d", "-v", f"{vol}:/data", "--memory", "64m", IMAGE, "sleep", "1000",
                     check=True).stdout.strip()
        text = (capture / f"{cid}.json").read_text()
        # the hostname (and HOSTNAME=) is the id's first 12 hex digits
        return json.loads(text.replace(cid[:12], "0" * 12)), [str(tmp)]
    finally:
        dk.stop()


def cri_style():
    """By hand from containerd 1.6's CRI plugin source (pkg/cri/opts/spec_linux.go
    WithMounts, WithoutDefaultSecuritySettings' masked/readonly paths, WithOOMScoreAdj,
    WithSysctls, WithAnnotation; pkg/cri/server/container_create_linux.go): the CRI plugin
    needs a kubelet to drive it. A Bidirectional volume is "rbind","rshared" and makes
    rootfsPropagation "rshared"; HostToContainer "rslave"; the rest "rprivate". Built on
    what `ctr` wrote with containerd's default seccomp profile (the CRI's RuntimeDefault)."""
    c = json.loads((HERE / "ctr-1.6-seccomp.json").read_text())
    c["root"]["readonly"] = False
    c["hostname"] = "pod-0"
    c["process"].update(oomScoreAdj=1000, user={"uid": 0, "gid": 0, "additionalGids": [0, 10]},
                        env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=pod-0",
                             "KUBERNETES_SERVICE_HOST=10.96.0.1"])
    linux = c["linux"]
    linux["rootfsPropagation"] = "rshared"
    linux["maskedPaths"] = ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                            "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"]
    linux["readonlyPaths"] = ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    linux["sysctl"] = {"net.ipv4.ip_unprivileged_port_start": "0"}
    linux["resources"].update(cpu={"shares": 2, "period": 100000}, memory={})
    c["annotations"] = {"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.container-name": "app",
                        "io.kubernetes.cri.image-name": "busybox:latest", "io.kubernetes.cri.sandbox-id": "0" * 64,
                        "io.kubernetes.cri.sandbox-name": "pod-0", "io.kubernetes.cri.sandbox-namespace": "default"}
    c["mounts"] += [
        {"destination": "/etc/hosts", "type": "bind", "source": "@BUNDLE@/hosts", "options": ["rbind", "rprivate", "rw"]},
        {"destination": "/dev/termination-log", "type": "bind", "source": "@BUNDLE@/termination-log",
         "options": ["rbind", "rprivate", "rw"]},
        {"destination": "/etc/hostname", "type": "bind", "source": "@BUNDLE@/hostname", "options": ["rbind", "rprivate", "rw"]},
        {"destination": "/etc/resolv.conf", "type": "bind", "source": "@BUNDLE@/resolv.conf",
         "options": ["rbind", "rprivate", "rw"]},
        {"destination": "/dev/shm", "type": "bind", "source": "@BUNDLE@/shm", "options": ["rbind", "rprivate", "rw"]},
        {"destination": "/data", "type": "bind", "source": "@BUNDLE@/vol-bidirectional", "options": ["rbind", "rshared", "rw"]},
        {"destination": "/host", "type": "bind", "source": "@BUNDLE@/vol-hosttocontainer", "options": ["rbind", "rslave", "ro"]},
    ]
    return c


def main(names):
    names = names or ["runc-spec", "runc-spec-rootless", "podman-4.3", "ctr-1.6", "ctr-1.6-seccomp", "cri-style-1.6",
                      "docker-20.10"]
    with tempfile.TemporaryDirectory(prefix="corpus-", dir="/tmp") as d:
        tmp = Path(d)
        for name in names:
            if name == "runc-spec":
                write(name, runc_spec())
            elif name == "runc-spec-rootless":
                write(name, runc_spec(rootless=True))
            elif name == "podman-4.3":
                write(name, *podman_config(tmp))
            elif name == "ctr-1.6":
                write(name, *ctr_config(tmp))
            elif name == "ctr-1.6-seccomp":  # containerd's default seccomp profile, read-only root
                write(name, *ctr_config(tmp, "--seccomp", "--read-only"))
            elif name == "cri-style-1.6":
                write(name, cri_style())
            elif name == "docker-20.10":
                write(name, *docker_config(tmp))
            else:
                raise SystemExit(f"unknown corpus entry {name}")


if __name__ == "__main__":
    main(sys.argv[1:])
