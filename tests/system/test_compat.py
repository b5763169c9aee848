"""create/run refuse only what runc refuses (pyrunc/config/compat.py): each config here is
outside the JSON schema or a MUST of the spec text, runc 1.1.5 runs it, and so must
pyrunc, with the same result; `pyrunc validate` reports it as a warning with its JSON
pointer (exit 0), `validate --strict` fails on it."""
import json
import subprocess

import pytest

from support.compare import both_runs
from support.host import pyrunc_binary


def _linux(c):
    return c["linux"]


def _res(c):
    return c["linux"].setdefault("resources", {})


# (name, edit, JSON pointer validate warns about, shell command whose output both compare)
CASES = [
    ("rootfs-rshared", lambda c: _linux(c).update(rootfsPropagation="rshared"), "/linux/rootfsPropagation", None),
    ("rootfs-rslave", lambda c: _linux(c).update(rootfsPropagation="rslave"), "/linux/rootfsPropagation", None),
    ("rootfs-rprivate", lambda c: _linux(c).update(rootfsPropagation="rprivate"), "/linux/rootfsPropagation", None),
    ("rootfs-empty", lambda c: _linux(c).update(rootfsPropagation=""), "/linux/rootfsPropagation", None),
    ("null-seccomp", lambda c: _linux(c).update(seccomp=None), "/linux/seccomp", None),
    ("null-capabilities", lambda c: c["process"].update(capabilities=None), "/process/capabilities",
     "grep Cap /proc/self/status"),
    ("null-rlimits", lambda c: c["process"].update(rlimits=None), "/process/rlimits", None),
    ("null-masked", lambda c: _linux(c).update(maskedPaths=None), "/linux/maskedPaths", None),
    ("null-hooks", lambda c: c.update(hooks=None), "/hooks", None),
    ("null-annotations", lambda c: c.update(annotations=None), "/annotations", None),
    ("null-resources", lambda c: _linux(c).update(resources=None), "/linux/resources", None),
    ("null-hostname", lambda c: c.update(hostname=None), "/hostname", "hostname"),
    ("null-mount-options", lambda c: c["mounts"][0].update(options=None), "/mounts/0/options", None),
    ("null-root-readonly", lambda c: c["root"].update(readonly=None), "/root/readonly", None),
    ("null-sysctl-value", lambda c: _linux(c).update(sysctl={"kernel.shmmni": None}),
     "/linux/sysctl/kernel.shmmni", None),
    ("no-ociVersion", lambda c: c.pop("ociVersion"), "/ociVersion", None),
    ("ociVersion-junk", lambda c: c.update(ociVersion="junk"), "/ociVersion", None),
    ("ociVersion-2", lambda c: c.update(ociVersion="2.0.0"), "/ociVersion", None),
    ("user-no-uid", lambda c: c["process"]["user"].pop("uid"), "/process/user/uid", "id -u"),
    ("console-no-width", lambda c: c["process"].update(consoleSize={"height": 10}),
     "/process/consoleSize/width", None),
    ("rlimit-duplicate", lambda c: c["process"]["rlimits"].extend(
        [{"type": "RLIMIT_NOFILE", "soft": 300, "hard": 400}, {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]),
     "/process/rlimits/0", "ulimit -n; ulimit -Hn"),
    ("personality-flags", lambda c: _linux(c).update(personality={"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}),
     "/linux/personality/flags/0", None),
    ("uidmap-without-userns", lambda c: _linux(c).update(uidMappings=[{"containerID": 0, "hostID": 0, "size": 1}]),
     "/linux/uidMappings", "cat /proc/self/uid_map"),
    ("device-rule-type-empty", lambda c: _res(c).update(devices=[{"allow": False, "type": "", "access": "rwm"}]),
     "/linux/resources/devices/0/type", "head -c1 /dev/null && echo null-ok || echo null-denied"),
    ("device-rule-no-allow", lambda c: _res(c).update(devices=[{"type": "c", "major": 1, "minor": 3, "access": "rwm"}]),
     "/linux/resources/devices/0", "head -c1 /dev/null && echo null-ok || echo null-denied"),
    ("device-filemode-type-bits", lambda c: _linux(c).update(devices=[
        {"path": "/dev/fuse2", "type": "c", "major": 10, "minor": 229, "fileMode": 0o20640}]),
     "/linux/devices/0/fileMode", "stat -c %a /dev/fuse2"),
    ("device-no-path", lambda c: _linux(c).update(devices=[{"type": "c", "major": 10, "minor": 229}]),
     "/linux/devices/0", None),
    ("pids-no-limit", lambda c: _res(c).update(pids={}), "/linux/resources/pids", None),
    ("masked-relative", lambda c: _linux(c)["maskedPaths"].append("etc/group"), "/linux/maskedPaths/10",
     "wc -c < /etc/group"),
    ("readonly-empty", lambda c: _linux(c)["readonlyPaths"].append(""), "/linux/readonlyPaths/5", None),
    ("seccomp-no-default", lambda c: _linux(c).update(seccomp={"defaultAction": ""}), "/linux/seccomp", None),
    ("seccomp-rule-no-names", lambda c: _linux(c).update(seccomp={
        "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}),
     "/linux/seccomp/syscalls/0", None),
    ("hook-relative", lambda c: c.update(hooks={"poststop": [{"path": "missing-hook"}]}),
     "/hooks/poststop/0/path", None),
    ("hook-timeout-0", lambda c: c.update(hooks={"poststop": [{"path": "/bin/true", "timeout": 0}]}),
     "/hooks/poststop/0/timeout", None),
    ("annotation-empty-key", lambda c: c.update(annotations={"": "x"}), "/annotations", None),
]


def _validate(bundle, *extra):
    return subprocess.run([pyrunc_binary(), "validate", *extra, "--bundle", str(bundle)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("edit,where,cmd", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_runc_accepts_so_pyrunc_runs(rt, runc_rt, edit, where, cmd):
    (rc, out, err, bundle), (runc_code, runc_out, runc_err, _) = both_runs(rt, runc_rt, edit, cmd)
    assert runc_code == 0, f"runc refuses it: not a compat case: {runc_err}"
    assert rc == 0, err
    assert out == runc_out
    v = _validate(bundle)
    assert v.returncode == 0, v.stdout + v.stderr
    assert any(line.startswith(f"{where}: warning: ") for line in v.stdout.splitlines()), v.stdout
    assert _validate(bundle, "--strict").returncode == 1


def test_no_capabilities_is_every_set_empty(rt, runc_rt):
    """No process.capabilities: runc empties every set (bounding too); pyrunc kept them all."""
    (rc, out, err, _), (runc_code, runc_out, _, _) = both_runs(
        rt, runc_rt, lambda c: c["process"].pop("capabilities"), "grep Cap /proc/self/status")
    assert rc == runc_code == 0, err
    assert out == runc_out and "CapBnd:\t0000000000000000" in out


def test_debug_log_notes_each_deviation(rt):
    b = rt.bundle(["true"], edit=lambda c: c["linux"].update(rootfsPropagation="rslave"))
    log = rt.tmp / "debug.log"
    rt.cmd("--debug", "--log", log, "--log-format", "json", "run", "--bundle", b, "c-debug")
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    notes = [x for x in lines if "/linux/rootfsPropagation" in x["msg"]]
    assert notes and all(x["level"] == "debug" for x in notes), lines
    # without --debug: not a word
    p = rt.run("c-quiet", b)
    assert p.stderr == ""


# What runc refuses, pyrunc refuses (current runc's validation where 1.1.5 ignores the field).
REFUSED = [
    ("rootfs-bogus", lambda c: _linux(c).update(rootfsPropagation="bogus"), "/linux/rootfsPropagation"),
    ("seccomp-rule-no-action", lambda c: _linux(c).update(seccomp={
        "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getcwd"]}]}), "/linux/seccomp/syscalls/0"),
    ("cwd-relative", lambda c: c["process"].update(cwd="tmp"), "/process/cwd"),
    ("env-no-equals", lambda c: c["process"]["env"].append("FOO"), "/process/env/2"),
    ("oom-out-of-range", lambda c: c["process"].update(oomScoreAdj=2000), "/process/oomScoreAdj"),
    ("uid-as-string", lambda c: c["process"]["user"].update(uid="0"), "/process/user/uid"),
]


@pytest.mark.parametrize("edit,where", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_runc_refuses_so_pyrunc_refuses(rt, runc_rt, edit, where):
    (rc, _, err, bundle), (runc_code, _, _, _) = both_runs(rt, runc_rt, edit, None)
    assert runc_code != 0 and rc != 0
    assert where in err and len(err.strip().splitlines()) == 1, err
    v = _validate(bundle)
    assert v.returncode == 1 and any(line.startswith(where + ": ") and ": warning: " not in line
                                     for line in v.stdout.splitlines()), v.stdout
