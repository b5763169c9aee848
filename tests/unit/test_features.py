"""pyrunc.features: the runtime-spec features document."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pyrunc import features as features_mod

from pyrunc.linux import capabilities
from pyrunc.features import features, features_json
from pyrunc.config.default import OCI_VERSION, default_config
from support.paths import SCHEMA_DIR
from support.schemas import official_validator, schema_errors

pytestmark = pytest.mark.cgroups


@pytest.fixture(scope="module")
def feat():
    return features()


@pytest.fixture(scope="module")
def runc_features():
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc not on PATH")
    proc = subprocess.run([runc, "features"], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        pytest.skip(f"this runc has no features command: {proc.stderr.strip()}")
    return proc.stdout


# ---------------------------------------------------------------- schema


@pytest.mark.unit
def test_valid_against_official_schema(feat):
    assert schema_errors(official_validator("features-schema.json"), feat) == []


@pytest.mark.unit
def test_seccomp_disabled_variant_valid(monkeypatch):
    monkeypatch.setattr(features_mod, "libseccomp_version", lambda: None)
    doc = features()
    assert doc["linux"]["seccomp"] == {"enabled": False}
    assert not any("libseccomp" in k for k in doc["annotations"])
    assert schema_errors(official_validator("features-schema.json"), doc) == []


@pytest.mark.unit
def test_official_examples_still_validate():
    """The validator set-up is sound: the spec's own good/bad examples behave."""
    validator = official_validator("features-schema.json")
    good = sorted((SCHEMA_DIR / "test" / "features" / "good").glob("*.json"))
    bad = sorted((SCHEMA_DIR / "test" / "features" / "bad").glob("*.json"))
    for path in good:
        assert schema_errors(validator, json.loads(path.read_text())) == [], path.name
    for path in bad:
        assert schema_errors(validator, json.loads(path.read_text())) != [], path.name


# ---------------------------------------------------------------- content


@pytest.mark.unit
def test_versions(feat):
    assert feat["ociVersionMin"] == "1.0.0"
    assert feat["ociVersionMax"] == "1.3.0" == OCI_VERSION == default_config()["ociVersion"]
    assert list(feat)[:2] == ["ociVersionMin", "ociVersionMax"]


@pytest.mark.unit
def test_hooks(feat):
    assert feat["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer",
                             "poststart", "poststop"]


@pytest.mark.unit
def test_mount_options(feat):
    opts = feat["mountOptions"]
    assert opts == sorted(set(opts))
    for name in ("bind", "rbind", "ro", "rro", "nosuid", "rprivate", "tmpcopyup", "nosymfollow"):
        assert name in opts
    # Everything the default config uses that is not a filesystem data option.
    flag_like = {o for m in default_config()["mounts"] for o in m.get("options", []) if "=" not in o}
    flag_like.discard("newinstance")  # devpts data option
    assert flag_like <= set(opts)


@pytest.mark.unit
def test_linux(feat):
    linux = feat["linux"]
    assert linux["namespaces"] == ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]
    assert linux["capabilities"] == capabilities.known_names()
    assert linux["capabilities"][-1] == "CAP_CHECKPOINT_RESTORE"
    assert linux["cgroup"] == {"v1": True, "v2": True, "systemd": True, "systemdUser": False, "rdma": True}
    assert linux["intelRdt"] == {"enabled": False}
    assert linux["netDevices"] == {"enabled": True}
    assert linux["mountExtensions"] == {"idmap": {"enabled": features_mod.kernel_version() >= (5, 12)}}
    assert list(linux) == ["namespaces", "capabilities", "cgroup", "seccomp", "apparmor", "selinux",
                           "intelRdt", "memoryPolicy", "mountExtensions", "netDevices"]


def _spec_list(md, field):
    """The values config-linux.md lists under a field (`* `MPOL_...`` bullets)."""
    text = (SCHEMA_DIR.parent / md).read_text()
    part = text.split(f"* **`{field}`**", 1)[1].split("\n* **", 1)[0]
    return sorted(line.strip().strip("*` ") for line in part.splitlines()
                  if line.strip().startswith("* `MPOL_"))


@pytest.mark.unit
def test_memory_policy_is_the_spec_list(feat):
    """features-linux.md memoryPolicy: the modes and flags config-linux.md#memory-policy
    defines (all of them: pyrunc applies each)."""
    if not SCHEMA_DIR.is_dir():
        pytest.skip(f"the runtime-spec text is not at {SCHEMA_DIR.parent}")
    mp = feat["linux"]["memoryPolicy"]
    assert mp["modes"] == _spec_list("config-linux.md", "mode")
    assert mp["flags"] == _spec_list("config-linux.md", "flags")
    assert len(mp["modes"]) == 7 and len(mp["flags"]) == 3


@pytest.mark.unit
def test_memory_policy_matches_process(feat):
    """What features advertises is what the process code can apply (process.py's tables
    are pyrunc.native.constants')."""
    from pyrunc.native import constants

    mp = feat["linux"]["memoryPolicy"]
    assert set(mp["modes"]) == set(constants.MPOL_MODES)
    assert set(mp["flags"]) == set(constants.MPOL_FLAGS)


@pytest.mark.unit
def test_host_probes(feat):
    linux = feat["linux"]
    apparmor = os.path.isdir("/sys/kernel/security/apparmor") and Path(
        "/sys/module/apparmor/parameters/enabled").exists() and Path(
        "/sys/module/apparmor/parameters/enabled").read_text().startswith("Y")
    assert linux["apparmor"] == {"enabled": apparmor}
    assert linux["selinux"] == {"enabled": os.path.exists("/sys/fs/selinux/enforce")}


def _libseccomp_loadable():
    """pyrunc reaches libseccomp through its compiled module (pyrunc.native): seccomp is
    usable when both load (without the module, as in `pytest -m unit`, it is not)."""
    import ctypes

    try:
        import pyrunc.native._lowlevel  # noqa: F401
        ctypes.CDLL("libseccomp.so.2")
        return True
    except (ImportError, OSError):
        return False


@pytest.mark.unit
def test_seccomp(feat):
    sc = feat["linux"]["seccomp"]
    assert sc["enabled"] is _libseccomp_loadable()
    if not sc["enabled"]:
        assert sc == {"enabled": False}
        return
    assert list(sc) == ["enabled", "actions", "operators", "archs", "knownFlags", "supportedFlags"]
    for key in ("actions", "operators", "archs", "knownFlags", "supportedFlags"):
        assert sc[key] == sorted(set(sc[key])), key
    assert len(sc["actions"]) == 9 and "SCMP_ACT_NOTIFY" in sc["actions"]
    assert len(sc["operators"]) == 7
    assert {"SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64", "SCMP_ARCH_RISCV64"} <= set(sc["archs"])
    assert set(sc["supportedFlags"]) <= set(sc["knownFlags"])
    version = feat["annotations"].get("io.github.pyrunc.libseccomp.version")
    if version is not None:
        assert feat["annotations"]["io.github.seccomp.libseccomp.version"] == version
        lib = tuple(int(x) for x in version.split("."))
        assert ("SCMP_ARCH_LOONGARCH64" in sc["archs"]) == (lib >= (2, 6, 0))
        if lib >= (2, 5, 0) and features_mod.kernel_version() >= (4, 17):
            assert "SECCOMP_FILTER_FLAG_SPEC_ALLOW" in sc["supportedFlags"]


@pytest.mark.unit
def test_seccomp_flags_follow_versions(monkeypatch):
    monkeypatch.setattr(features_mod, "libseccomp_version", lambda: (2, 4, 1))
    monkeypatch.setattr(features_mod, "kernel_version", lambda: (4, 15))
    sc = features()["linux"]["seccomp"]
    assert sc["supportedFlags"] == ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC"]
    monkeypatch.setattr(features_mod, "libseccomp_version", lambda: (2, 6, 0))
    monkeypatch.setattr(features_mod, "kernel_version", lambda: (6, 1))
    sc = features()["linux"]["seccomp"]
    assert len(sc["supportedFlags"]) == 4
    assert "SCMP_ARCH_LOONGARCH64" in sc["archs"]
    assert schema_errors(official_validator("features-schema.json"), features()) == []


@pytest.mark.unit
def test_idmap_follows_kernel(monkeypatch):
    monkeypatch.setattr(features_mod, "kernel_version", lambda: (5, 11))
    assert features()["linux"]["mountExtensions"]["idmap"]["enabled"] is False
    monkeypatch.setattr(features_mod, "kernel_version", lambda: (5, 12))
    assert features()["linux"]["mountExtensions"]["idmap"]["enabled"] is True


@pytest.mark.unit
def test_kernel_version(monkeypatch):
    class U:
        def __init__(self, release):
            self.release = release

    for release, expected in [("6.18.44-fc-v669", (6, 18)), ("5.4.0-150-generic", (5, 4)),
                              ("5.12", (5, 12)), ("4.19.0+", (4, 19)), ("6-rc1", (6, 0)), ("x", (0, 0))]:
        monkeypatch.setattr(features_mod.os, "uname", lambda r=release: U(r))
        assert features_mod.kernel_version() == expected, release


@pytest.mark.unit
def test_annotations(feat):
    ann = feat["annotations"]
    assert "io.github.pyrunc.version" in ann
    assert list(ann) == sorted(ann)
    assert all(isinstance(v, str) for v in ann.values())


@pytest.mark.unit
def test_fresh_dict_each_call(feat):
    doc = features()
    doc["linux"]["capabilities"].append("CAP_X")
    doc["hooks"].clear()
    assert features()["hooks"] and "CAP_X" not in features()["linux"]["capabilities"]


@pytest.mark.unit
def test_features_json(feat):
    text = features_json()
    assert text.startswith('{\n    "ociVersionMin": "1.0.0",\n    "ociVersionMax": "1.3.0",\n    "hooks": [\n')
    assert not text.endswith("\n")
    assert json.loads(text) == features()


# ---------------------------------------------------------------- against runc


@pytest.mark.unit
def test_compared_to_runc(feat, runc_features):
    theirs = json.loads(runc_features)
    # Same indentation as runc's output.
    assert runc_features.startswith('{\n    "ociVersionMin": ')
    assert feat["hooks"] == theirs["hooks"]
    assert feat["ociVersionMin"] == theirs["ociVersionMin"]
    assert set(theirs["linux"]["namespaces"]) <= set(feat["linux"]["namespaces"])
    assert set(theirs["linux"]["capabilities"]) <= set(feat["linux"]["capabilities"])
    # runc >= 1.2 dropped acl/noacl (MS_POSIXACL cannot be set through mount(2)).
    assert set(theirs["mountOptions"]) - {"acl", "noacl"} <= set(feat["mountOptions"])
    if "acl" in theirs["mountOptions"]:
        assert feat["mountOptions"] == theirs["mountOptions"]
    sc_theirs = theirs["linux"].get("seccomp")
    sc_ours = feat["linux"]["seccomp"]
    if sc_theirs and sc_ours["enabled"]:
        assert sc_ours["actions"] == sc_theirs["actions"]
        assert sc_ours["operators"] == sc_theirs["operators"]
        assert set(sc_theirs["archs"]) - {"SCMP_ARCH_LOONGARCH64"} <= set(sc_ours["archs"])
        lib = theirs.get("annotations", {}).get("io.github.seccomp.libseccomp.version")
        if lib is not None:
            assert feat["annotations"]["io.github.seccomp.libseccomp.version"] == lib


# ---------------------------------------------------------------- this host's cgroups


def _host_hierarchy():
    """Told apart from /proc/self/mountinfo, independently of pyrunc."""
    types = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        post = line.split(" - ", 1)[1].split()
        mountpoint = line.split(" - ", 1)[0].split()[4]
        if post[0] == "cgroup2" and mountpoint == "/sys/fs/cgroup":
            return "v2"
        if post[0] in ("cgroup", "cgroup2"):
            types.add(post[0])
    return {frozenset({"cgroup", "cgroup2"}): "hybrid", frozenset({"cgroup"}): "v1"}.get(
        frozenset(types), "none")


@pytest.mark.unit
def test_cgroup_annotations_tell_this_host(feat):
    """features-linux.md: linux.cgroup is the implementation ("irrelevant to the cgroup
    version of the host"): v1 and v2 (with eBPF device rules) and the systemd driver yes,
    the user's systemd (rootless) no. What this host has and how pyrunc manages it there
    is in the annotations, the systemd driver's availability included."""
    assert feat["linux"]["cgroup"] == {"v1": True, "v2": True, "systemd": True,
                                       "systemdUser": False, "rdma": True}
    ann = feat["annotations"]
    systemd = os.path.isdir("/run/systemd/system")
    assert ann["io.github.pyrunc.cgroup.systemd"].startswith("available" if systemd else "unavailable")
    host = _host_hierarchy()
    assert ann["io.github.pyrunc.cgroup.host"] == host
    if host == "v2":
        assert ann["io.github.pyrunc.cgroup.manager"] == "cgroupfs v2"
        assert ann["io.github.pyrunc.cgroup.devices"] == "ebpf"  # as root on a stock kernel
    elif host in ("hybrid", "v1"):
        assert ann["io.github.pyrunc.cgroup.manager"] == "cgroupfs v1"
        assert ann["io.github.pyrunc.cgroup.devices"] == "v1 devices controller"


@pytest.mark.unit
def test_cgroup_devices_annotation_when_bpf_fails(monkeypatch):
    from pyrunc.cgroups import base
    from pyrunc.cgroups.v2 import ebpf

    def refused():
        raise OSError(1, "bpf(BPF_PROG_LOAD): Operation not permitted")

    monkeypatch.setattr(base, "is_unified", lambda root=None: True)
    monkeypatch.setattr(ebpf, "probe", refused)
    ann = features()["annotations"]
    assert ann["io.github.pyrunc.cgroup.host"] == "v2"
    assert ann["io.github.pyrunc.cgroup.devices"] == \
        "none: cannot load a device program (bpf(BPF_PROG_LOAD): Operation not permitted)"
