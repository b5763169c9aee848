"""What this host is and has, read independently of pyrunc."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def systemd_is_init():
    """sd_booted(3), and PID 1 is systemd (not a container's init that left the dir)."""
    try:
        comm = Path("/proc/1/comm").read_text().strip()
    except OSError:
        comm = ""
    return os.path.isdir("/run/systemd/system") and comm == "systemd"


def pyrunc_binary():
    cand = Path(sys.executable).parent / "pyrunc"
    if cand.exists():
        return str(cand)
    found = shutil.which("pyrunc")
    if not found:
        pytest.skip("the pyrunc console script is not installed (pip install -e .)")
    return found


def busybox_path():
    for p in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(p):
            return p
    pytest.skip("busybox-static is not installed")


def mountinfo(text):
    """[{mountpoint, opts (set), optional (list of names), fstype, source, super (set), root}]"""
    out = []
    for line in text.splitlines():
        if " - " not in line:
            continue
        left, _, right = line.partition(" - ")
        a, b = left.split(), right.split()
        out.append({"id": a[0], "parent": a[1], "dev": a[2], "root": a[3], "mountpoint": a[4],
                    "opts": set(a[5].split(",")),
                    "optional": [o.split(":")[0] for o in a[6:]],
                    "fstype": b[0], "source": b[1], "super": set(b[2].split(",")) if len(b) > 2 else set()})
    return out


def cgroup_v2_host():
    """True on a pure cgroup v2 host (/sys/fs/cgroup is cgroup2), independently of pyrunc."""
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def by_mountpoint(info, mp):
    """The last (topmost) mountinfo() entry at mountpoint mp."""
    found = [m for m in info if m["mountpoint"] == mp]
    assert found, f"{mp} not mounted: {[m['mountpoint'] for m in info]}"
    return found[-1]


def prefix_dirs(prefix):
    """Where a relative cgroupsPath under `prefix` lands: below this process's own cgroup
    in every mounted hierarchy (runc's cgroupfs placement); on a cgroup v2 host below its
    parent (runc's fs2: our own cgroup has processes, so no controllers for children)."""
    own = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctls, path = line.split(":", 2)
        for c in ctls.split(",") if ctls else [""]:
            own[c.replace("name=", "")] = path
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        fstype, opts = fields[sep + 1], fields[sep + 3].split(",")
        if fstype == "cgroup2":
            key = ""
        elif fstype == "cgroup":
            keys = [o.replace("name=", "") for o in opts if o in own or o.replace("name=", "") in own]
            if not keys:
                continue
            key = keys[0]
        else:
            continue
        rel = own.get(key, "/")
        if fstype == "cgroup2" and fields[4] == "/sys/fs/cgroup":
            rel = os.path.dirname(rel.rstrip("/")) or "/"
        out.append(Path(fields[4]) / rel.lstrip("/") / prefix)
    return out


def container_cgroup_dir(rt, cid, controller=""):
    """The container's cgroup dir of a controller (cgroup v2: the one dir), from its
    init's /proc/PID/cgroup."""
    pid = rt.state(cid)["pid"]
    if cgroup_v2_host():
        return Path("/sys/fs/cgroup") / Path(f"/proc/{pid}/cgroup").read_text().split("0::", 1)[1].strip().lstrip("/")
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctls, path = line.split(":", 2)
        if controller in ctls.split(","):
            for mline in Path("/proc/self/mountinfo").read_text().splitlines():
                f = mline.split()
                sep = f.index("-")
                if f[sep + 1] == "cgroup" and controller in f[sep + 3].split(","):
                    # mount root (f[3]) may itself be a sub-path
                    rel = os.path.relpath(path, f[3])
                    return Path(f[4]) / rel
    raise AssertionError(f"no {controller} cgroup for {cid}")


def open_path_for_userns(path):
    """A user-namespaced root is not root for the host's 0700 directories (pytest's
    tmp dirs): let it traverse them, as a real deployment would."""
    p = path
    while str(p) not in ("/", "/tmp"):
        os.chmod(p, os.stat(p).st_mode | 0o011)
        p = p.parent


def systemctl_show(unit, *props):
    """`systemctl show` of a unit: {property: value} (DeviceAllow: a list)."""
    p = subprocess.run(["systemctl", "show", unit, *(a for n in props for a in ("-p", n))],
                       capture_output=True, text=True, timeout=60)
    out = {}
    for line in p.stdout.splitlines():
        k, _, v = line.partition("=")
        if k == "DeviceAllow":
            out.setdefault(k, []).append(v)
        else:
            out[k] = v
    return out


def attached_device_programs(cgroup_dir):
    """The ids of the BPF device programs attached to a cgroup v2 directory (bpf(2)
    BPF_PROG_QUERY through pyrunc's own wrapper)."""
    from pyrunc.cgroups.v2 import ebpf

    fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return ebpf.attached_programs(fd)
    finally:
        os.close(fd)


def imported_modules(argv, prefix=()):
    """The modules `python -X importtime -m pyrunc ARGV` imports (prefix: a command that
    runs it, such as nsenter). A create's set has its container side's imports too (the
    init is forked, and writes to the same stderr). The command must succeed."""
    import tempfile

    with tempfile.TemporaryFile("w+") as err:
        p = subprocess.run([*prefix, sys.executable, "-X", "importtime", "-m", "pyrunc",
                            *map(str, argv)], stdout=subprocess.DEVNULL, stderr=err,
                           stdin=subprocess.DEVNULL, text=True, timeout=60)
        err.seek(0)
        log = err.read()
    assert p.returncode == 0, log[-2000:]
    return {line.split("|")[-1].strip() for line in log.splitlines() if "|" in line}
