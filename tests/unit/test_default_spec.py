"""pyrunc.config.default (the `pyrunc spec` template) and pyrunc.linux.capabilities."""

import copy
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyrunc.cgroups.base import is_unified
from pyrunc.linux import capabilities
from pyrunc.errors import ConfigError, PyruncError
from pyrunc.config.default import (
    OCI_VERSION,
    default_config,
    default_config_json,
    dumps_config,
    write_default_config,
)
from support.paths import REPO
from support.schemas import official_validator, schema_errors

pytestmark = pytest.mark.unit


# Fields where pyrunc deliberately differs from `runc spec`.
DELIBERATE = ("ociVersion", "hostname")


# ---------------------------------------------------------------- schema


@pytest.mark.parametrize("rootless", [False, True])
def test_default_config_valid_against_official_schema(rootless):
    validator = official_validator("config-schema.json")
    assert schema_errors(validator, default_config(rootless)) == []


def test_schema_validator_is_not_vacuous():
    validator = official_validator("config-schema.json")
    bad = default_config()
    bad["process"]["rlimits"][0]["hard"] = "lots"
    bad["linux"]["namespaces"].append({"type": "bogus"})
    del bad["ociVersion"]
    assert len(schema_errors(validator, bad)) >= 3


# ---------------------------------------------------------------- content


def test_default_config_content():
    c = default_config()
    assert c["ociVersion"] == OCI_VERSION == "1.3.0"
    assert c["hostname"] == "pyrunc"
    p = c["process"]
    assert p["terminal"] is True
    assert p["user"] == {"uid": 0, "gid": 0}
    assert p["args"] == ["sh"]
    assert p["env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"]
    assert p["cwd"] == "/"
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    assert p["capabilities"] == {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps}
    assert p["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    assert p["noNewPrivileges"] is True
    assert c["root"] == {"path": "rootfs", "readonly": True}
    assert [m["destination"] for m in c["mounts"]] == [
        "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]
    v2 = ["cgroup"] if is_unified() else []
    assert [ns["type"] for ns in c["linux"]["namespaces"]] == ["pid", "network", "ipc", "uts", "mount"] + v2
    assert c["linux"]["resources"] == {"devices": [{"allow": False, "access": "rwm"}]}
    assert "/proc/kcore" in c["linux"]["maskedPaths"]
    assert "/proc/sys" in c["linux"]["readonlyPaths"]
    assert "uidMappings" not in c["linux"]
    for caps_list in p["capabilities"].values():
        for name in caps_list:
            capabilities.cap_number(name)


@pytest.mark.cgroups
def test_cgroup_namespace_on_cgroup_v2():
    """runc's specconv.Example adds a cgroup namespace when the host is cgroup v2; with
    --rootless it stays before the user namespace (ToRootless appends that last).
    test_matches_runc_spec checks it against `runc spec` on the host it runs on."""
    types = [ns["type"] for ns in default_config(cgroupns=True)["linux"]["namespaces"]]
    assert types == ["pid", "network", "ipc", "uts", "mount", "cgroup"]
    types = [ns["type"] for ns in default_config(rootless=True, cgroupns=True)["linux"]["namespaces"]]
    assert types == ["pid", "ipc", "uts", "mount", "cgroup", "user"]
    types = [ns["type"] for ns in default_config(cgroupns=False)["linux"]["namespaces"]]
    assert types == ["pid", "network", "ipc", "uts", "mount"]
    assert ("cgroup" in [ns["type"] for ns in default_config()["linux"]["namespaces"]]) == is_unified()


def test_rootless_config_content():
    c = default_config(rootless=True)
    linux = c["linux"]
    types = [ns["type"] for ns in linux["namespaces"]]
    assert "network" not in types and types[-1] == "user" and types.count("user") == 1
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    assert "resources" not in linux
    sys_mount = next(m for m in c["mounts"] if m["destination"] == "/sys")
    assert sys_mount == {"destination": "/sys", "type": "none", "source": "/sys",
                         "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
    for m in c["mounts"]:
        assert not any(o.startswith(("uid=", "gid=")) for o in m.get("options", []))


def test_default_config_is_fresh_each_call():
    a = default_config()
    a["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    a["mounts"][1]["options"].append("x")
    b = default_config()
    assert "CAP_SYS_ADMIN" not in b["process"]["capabilities"]["bounding"]
    assert "x" not in b["mounts"][1]["options"]
    assert b["process"]["capabilities"]["effective"] is not b["process"]["capabilities"]["bounding"]
    rootless = default_config(rootless=True)
    rootless["linux"]["uidMappings"][0]["size"] = 7
    assert default_config(rootless=True)["linux"]["uidMappings"][0]["size"] == 1
    with_seccomp = default_config(seccomp=True)
    with_seccomp["linux"]["seccomp"]["syscalls"][0]["names"].append("x")
    assert "x" not in default_config(seccomp=True)["linux"]["seccomp"]["syscalls"][0]["names"]


def test_json_format_is_runcs():
    text = default_config_json()
    assert text.startswith('{\n\t"ociVersion": "1.3.0",\n\t"process": {\n\t\t"terminal": true,')
    assert not text.endswith("\n")
    assert json.loads(text) == default_config(seccomp=True)
    assert dumps_config(default_config(True, seccomp=True)) == default_config_json(True)


# ---------------------------------------------------------------- write_default_config


def test_write_default_config(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_default_config(tmp_path)
    finally:
        os.umask(old)
    assert path == os.path.join(tmp_path, "config.json")
    assert Path(path).read_text() == default_config_json()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == ["config.json"]


def test_write_default_config_rootless(tmp_path):
    write_default_config(str(tmp_path), rootless=True)
    assert json.loads((tmp_path / "config.json").read_text()) == default_config(rootless=True, seccomp=True)


def test_write_default_config_refuses_to_overwrite(tmp_path):
    (tmp_path / "config.json").write_text("mine")
    with pytest.raises(PyruncError, match=r"^File config\.json exists\. Remove it first$"):
        write_default_config(tmp_path)
    assert (tmp_path / "config.json").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["config.json"]


def test_write_default_config_refuses_dangling_symlink(tmp_path):
    (tmp_path / "config.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(PyruncError, match="exists. Remove it first"):
        write_default_config(tmp_path)
    assert not (tmp_path / "elsewhere.json").exists()


def test_write_default_config_missing_bundle(tmp_path):
    with pytest.raises(PyruncError, match="no such file or directory"):
        write_default_config(tmp_path / "nope")
    (tmp_path / "file").write_text("")
    with pytest.raises(PyruncError, match="not a directory"):
        write_default_config(tmp_path / "file")


def test_write_default_config_unwritable_bundle():
    # Nobody, root included, can create files in sysfs' root.
    if not os.path.isdir("/sys/kernel"):
        pytest.skip("no sysfs")
    with pytest.raises(PyruncError, match=r"^open /sys/config\.json: "):
        write_default_config("/sys")


# ---------------------------------------------------------------- against runc


def _runc_spec(tmp_path, rootless):
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc not on PATH")
    d = tmp_path / ("rootless" if rootless else "rootful")
    d.mkdir()
    subprocess.run([runc, "spec"] + (["--rootless"] if rootless else []), cwd=d, check=True,
                   capture_output=True, timeout=30)
    text = (d / "config.json").read_text()
    out = subprocess.run([runc, "--version"], check=True, capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"runc version (\d+)\.(\d+)", out)
    version = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    return text, version


def _strip_version_dependent(cfg):
    """Drop what changed between runc releases (we follow runc 1.1)."""
    cfg = copy.deepcopy(cfg)
    cfg["process"].get("capabilities", {}).pop("ambient", None)  # gone in runc 1.2
    linux = cfg["linux"]
    linux["maskedPaths"] = [p for p in linux["maskedPaths"] if p != "/sys/devices/virtual/tpm"]  # 1.2
    return cfg


@pytest.mark.cgroups  # runc spec adds a cgroup namespace on cgroup v2
@pytest.mark.parametrize("rootless", [False, True])
def test_matches_runc_spec(tmp_path, rootless):
    runc_text, runc_version = _runc_spec(tmp_path, rootless)
    theirs = json.loads(runc_text)
    ours = default_config(rootless)
    for key in DELIBERATE:
        assert key in theirs and key in ours
        ours[key] = theirs[key]
    if runc_version[:2] == (1, 1):
        assert ours == theirs
        # Byte for byte: key order, tab indentation, no trailing newline.
        assert dumps_config(ours) == runc_text
    else:
        assert _strip_version_dependent(ours) == _strip_version_dependent(theirs)


# ---------------------------------------------------------------- capabilities


def test_capability_table():
    names = capabilities.known_names()
    assert len(names) == 41 == capabilities.CAP_LAST_CAP + 1
    assert names[0] == "CAP_CHOWN" and names[-1] == "CAP_CHECKPOINT_RESTORE"
    assert capabilities.cap_number("CAP_CHECKPOINT_RESTORE") == 40
    assert capabilities.cap_number("CAP_SYS_ADMIN") == 21
    assert capabilities.cap_number("CAP_NET_BIND_SERVICE") == 10
    assert capabilities.cap_number("CAP_AUDIT_READ") == 37
    assert capabilities.cap_number("CAP_BPF") == 39
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"CAP_[A-Z_]+", n) for n in names)
    for number, name in enumerate(names):
        assert capabilities.cap_number(name) == number
        assert capabilities.cap_name(number) == name
    assert capabilities.to_mask(["CAP_CHOWN", "CAP_KILL"]) == 0b100001
    assert capabilities.to_mask(names) == (1 << 41) - 1


def test_capability_table_matches_kernel_header():
    header = Path("/usr/include/linux/capability.h")
    if not header.exists():
        pytest.skip("no linux/capability.h")
    found = dict(
        (m.group(1), int(m.group(2)))
        for m in re.finditer(r"^#define\s+(CAP_[A-Z_]+)\s+(\d+)\s*$", header.read_text(), re.M)
    )
    found.pop("CAP_LAST_CAP", None)
    for name, number in found.items():
        assert capabilities.cap_number(name) == number


@pytest.mark.parametrize("bad", ["CAP_BOGUS", "cap_kill", "KILL", "", None, 5])
def test_unknown_capability_raises_config_error(bad):
    with pytest.raises(ConfigError) as exc:
        capabilities.cap_number(bad)
    assert repr(bad) in str(exc.value)


@given(st.text(max_size=30))
def test_cap_number_total(name):
    if name in capabilities.CAPABILITIES:
        assert capabilities.cap_name(capabilities.cap_number(name)) == name
    else:
        with pytest.raises(ConfigError, match="unknown capability"):
            capabilities.cap_number(name)


@pytest.mark.parametrize("bad", [-1, 41, 1000, "5", None])
def test_cap_name_unknown(bad):
    with pytest.raises(ValueError):
        capabilities.cap_name(bad)


def test_last_cap_covered():
    last = capabilities.last_cap()
    with open("/proc/sys/kernel/cap_last_cap") as f:
        assert last == int(f.read())
    assert capabilities.last_cap() is last  # cached
    if last > capabilities.CAP_LAST_CAP:
        pytest.skip(f"kernel knows caps up to {last}, the table only to {capabilities.CAP_LAST_CAP}")
    for number in range(last + 1):
        assert capabilities.cap_number(capabilities.cap_name(number)) == number


def test_light_imports():
    code = (
        "import sys\n"
        "import pyrunc.linux.capabilities, pyrunc.config.default, pyrunc.features\n"
        "print([m for m in ('jsonschema', 'subprocess', 'ctypes', 'argparse', 'pyroute2') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, {str(REPO)!r})\n" + code],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "[]"
