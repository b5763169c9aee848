"""pyrunc.config.load.load_config and pyrunc.config.validate: messages, pointers, robustness."""

import copy
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc.errors import ConfigError, PyruncError
from pyrunc.config import specs_dir
from pyrunc.config.load import MAX_CONFIG_BYTES, load_config, parse_config
from pyrunc.config import validate as pipeline
from pyrunc.config.problems import pointer
from pyrunc.config.schema.messages import schema_problems
from pyrunc.config.semantic.checks import semantic_problems
from support.paths import REPO

pytestmark = pytest.mark.unit

from support import schema_oracle as oracle

FULL = oracle.FULL_CONFIG


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def full():
    return copy.deepcopy(FULL)


# The pipeline's strict reading (no runc compatibility): what the linter calls problems.
def validate(config, bundle_dir=None):
    return pipeline.problems(config, bundle=bundle_dir, compat=False, strict=True)[0]


def check_config(config, bundle_dir=None):
    return pipeline.check(config, source="config.json", bundle=bundle_dir, strict=True)


def load_and_validate(bundle_dir):
    return pipeline.load_bundle_config(bundle_dir, strict=True)


def write_config(bundle, doc):
    (bundle / "config.json").write_text(json.dumps(doc))


# ---------------------------------------------------------------------------
# the full config is clean


def test_full_config_has_no_problems(bundle):
    assert validate(full(), str(bundle)) == []
    check_config(full(), str(bundle))


def test_official_minimal_configs_are_clean(bundle):
    for name in ("minimal.json", "minimal-for-start.json", "linux-rdma.json"):
        path = oracle.OFFICIAL / "test" / "config" / "good" / name
        if not path.exists():
            pytest.skip("official test documents not available")
        assert validate(json.loads(path.read_text()), str(bundle)) == [], name


# ---------------------------------------------------------------------------
# semantic checks: (edit of the full config, expected pointer, expected words)


def _del(path):
    def edit(c):
        parent = oracle.get_at(c, path[:-1])
        del parent[path[-1]]

    return edit


def _set(path, value):
    def edit(c):
        oracle.get_at(c, path[:-1])[path[-1]] = value

    return edit


def _drop_ns(t):
    def edit(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != t]

    return edit


def _chain(*edits):
    def edit(c):
        for e in edits:
            e(c)

    return edit


SEMANTIC_CASES = [
    # namespaces
    ("dup-namespace", lambda c: c["linux"]["namespaces"].append({"type": "pid"}),
     "/linux/namespaces/8/type", 'duplicate namespace "pid"'),
    ("ns-path-relative", _set(("linux", "namespaces", 6, "path"), "proc/1/ns/cgroup"),
     "/linux/namespaces/6/path", "must be an absolute path"),
    # absolute paths
    ("cwd-relative", _set(("process", "cwd"), "srv"), "/process/cwd", "must be an absolute path"),
    ("cwd-nul", _set(("process", "cwd"), "/s\0rv"), "/process/cwd", "NUL"),
    ("hook-relative", _set(("hooks", "poststop", 0, "path"), "cleanup.sh"),
     "/hooks/poststop/0/path", "must be an absolute path"),
    ("hook-empty", _set(("hooks", "prestart", 0, "path"), ""), "/hooks/prestart/0/path", "must not be empty"),
    ("device-relative", _set(("linux", "devices", 0, "path"), "dev/fuse"),
     "/linux/devices/0/path", "must be an absolute path"),
    ("masked-relative", _set(("linux", "maskedPaths", 1), "proc/keys"),
     "/linux/maskedPaths/1", "must be an absolute path"),
    ("readonly-relative", _set(("linux", "readonlyPaths", 0), "proc/sys"),
     "/linux/readonlyPaths/0", "must be an absolute path"),
    ("mount-dest-empty", _set(("mounts", 2, "destination"), ""), "/mounts/2/destination", "must not be empty"),
    # version
    ("version-2", _set(("ociVersion",), "2.0.0"), "/ociVersion", "supported versions are 1.0.0 to 1.3.x"),
    ("version-0.9", _set(("ociVersion",), "0.9"), "/ociVersion", "supported versions are 1.0.0 to 1.3.x"),
    ("version-1.4", _set(("ociVersion",), "1.4.0"), "/ociVersion", "unsupported runtime-spec version"),
    ("version-0.5-dev", _set(("ociVersion",), "0.5.0-dev"), "/ociVersion", "unsupported runtime-spec version"),
    ("version-rc", _set(("ociVersion",), "1.0.0-rc5"), "/ociVersion", "unsupported runtime-spec version"),
    # root and process
    ("root-missing", _del(("root",)), "/", '"root" is required'),
    ("root-empty", _set(("root", "path"), ""), "/root/path", "must not be empty"),
    ("args-missing", _del(("process", "args")), "/process", '"args" is required'),
    ("args-empty", _set(("process", "args"), []), "/process/args", "at least one entry"),
    ("args-empty-program", _set(("process", "args"), [""]), "/process/args/0", "must not be empty"),
    ("env-no-equals", _set(("process", "env", 1), "TERM"), "/process/env/1", "NAME=value"),
    ("env-no-name", _set(("process", "env", 1), "=x"), "/process/env/1", "NAME=value"),
    ("user-no-uid", _del(("process", "user", "uid")), "/process/user", '"uid" is required'),
    ("rlimit-dup", _set(("process", "rlimits", 1, "type"), "RLIMIT_NOFILE"),
     "/process/rlimits/1/type", 'duplicate rlimit "RLIMIT_NOFILE"'),
    ("rlimit-unknown", _set(("process", "rlimits", 1, "type"), "RLIMIT_FOO"),
     "/process/rlimits/1/type", "unknown rlimit"),
    ("rlimit-soft-above-hard", _set(("process", "rlimits", 0, "soft"), 5000),
     "/process/rlimits/0", "greater than the hard limit"),
    ("oom-range", _set(("process", "oomScoreAdj"), 1001), "/process/oomScoreAdj", "-1000 to 1000"),
    ("ioprio-range", _set(("process", "ioPriority", "priority"), 8), "/process/ioPriority/priority", "0 (highest) to 7"),
    ("ioprio-missing", _del(("process", "ioPriority", "priority")), "/process/ioPriority", '"priority" is required'),
    ("sched-nice", _set(("process", "scheduler", "nice"), 20), "/process/scheduler/nice", "-20 to 19"),
    ("sched-dl-fields", _set(("process", "scheduler", "policy"), "SCHED_OTHER"),
     "/process/scheduler/runtime", "only used by SCHED_DEADLINE"),
    ("sched-fifo-prio", _chain(_set(("process", "scheduler"), {"policy": "SCHED_FIFO", "priority": 0})),
     "/process/scheduler/priority", "1 to 99"),
    ("sched-dl-order", _set(("process", "scheduler", "deadline"), 50000000),
     "/process/scheduler/deadline", "greater than period"),
    ("affinity", _set(("process", "execCPUAffinity", "final"), "3-1"), "/process/execCPUAffinity/final", "CPU list"),
    # mounts
    ("mount-uid-only", _del(("mounts", 2, "gidMappings")), "/mounts/2", '"uidMappings" is given without "gidMappings"'),
    ("mount-idmap-no-userns", _chain(_drop_ns("user"), _del(("linux", "uidMappings")), _del(("linux", "gidMappings")),
                                     _set(("mounts", 1, "options"), ["idmap"])),
     "/mounts/1/options", '"idmap" needs uidMappings/gidMappings or a user namespace'),
    # id mappings and user namespace
    ("uidmap-no-userns", _chain(_drop_ns("user"), _del(("linux", "gidMappings"))),
     "/linux/uidMappings", "needs a user namespace"),
    ("userns-no-uidmap", _del(("linux", "uidMappings")), "/linux/namespaces/5", "needs linux.uidMappings"),
    ("idmap-size-0", _set(("linux", "uidMappings", 0, "size"), 0), "/linux/uidMappings/0/size", "greater than 0"),
    ("idmap-overflow", _set(("linux", "gidMappings", 0, "hostID"), 4294967295),
     "/linux/gidMappings/0", "beyond the largest id"),
    ("idmap-overlap", lambda c: c["linux"]["uidMappings"].append({"containerID": 100, "hostID": 1, "size": 1}),
     "/linux/uidMappings/1", "containerID range overlaps entry 0"),
    # UTS
    ("hostname-no-uts", _drop_ns("uts"), "/domainname", "needs a UTS namespace"),
    # time namespace
    ("offsets-no-timens", _drop_ns("time"), "/linux/timeOffsets", "needs a new time namespace"),
    ("offsets-joined-timens", _set(("linux", "namespaces", 7, "path"), "/proc/1/ns/time"),
     "/linux/timeOffsets", "joining an existing time namespace"),
    ("offsets-nanosecs", _set(("linux", "timeOffsets", "monotonic", "nanosecs"), 1000000000),
     "/linux/timeOffsets/monotonic/nanosecs", "not less than 1000000000"),
    ("offsets-clock", _set(("linux", "timeOffsets", "realtime"), {"secs": 1}),
     "/linux/timeOffsets/realtime", "unknown clock"),
    # devices
    ("device-no-major", _del(("linux", "devices", 0, "major")), "/linux/devices/0", '"major" is required unless type is "p"'),
    ("cgroup-device-type", _set(("linux", "resources", "devices", 1, "type"), "x"),
     "/linux/resources/devices/1/type", 'not one of "a", "b", "c"'),
    ("cgroup-device-access", _set(("linux", "resources", "devices", 1, "access"), "rwx"),
     "/linux/resources/devices/1/access", "combination of r, w and m"),
    # network devices
    ("netdev-bad-name", _set(("linux", "netDevices", "eth1", "name"), "eth/0"),
     "/linux/netDevices/eth1/name", "not a valid interface name"),
    ("netdev-empty-name", _set(("linux", "netDevices", "eth1", "name"), ""),
     "/linux/netDevices/eth1/name", "must not be empty"),
    ("netdev-long-key", _set(("linux", "netDevices", "averyveryverylongname0"), {}),
     "/linux/netDevices/averyveryverylongname0", "longer than 15 bytes"),
    ("netdev-slash-key", _set(("linux", "netDevices", "a/b"), {}),
     "/linux/netDevices/a~1b", "not a valid interface name"),
    ("netdev-same-target", _set(("linux", "netDevices", "eth2"), {"name": "ceth1"}),
     "/linux/netDevices/eth2", 'would both be named "ceth1"'),
    ("netdev-no-netns", _chain(_drop_ns("network"), _set(("linux", "sysctl"), {})),
     "/linux/netDevices", "needs a network namespace"),
    # cgroup resources
    ("blkio-no-weight", _set(("linux", "resources", "blockIO", "weightDevice", 0), {"major": 8, "minor": 0}),
     "/linux/resources/blockIO/weightDevice/0", '"weight" or "leafWeight"'),
    ("rdma-empty", _set(("linux", "resources", "rdma", "mlx5_1"), {}),
     "/linux/resources/rdma/mlx5_1", '"hcaHandles" or "hcaObjects"'),
    ("cpu-burst", _set(("linux", "resources", "cpu", "burst"), 2000000),
     "/linux/resources/cpu/burst", "greater than quota"),
    ("unified-slash", _set(("linux", "resources", "unified", "a/b"), "1"),
     "/linux/resources/unified/a~1b", "cgroup file name"),
    # sysctl
    ("sysctl-ipc", _drop_ns("ipc"), "/linux/sysctl/kernel.shmmax", "IPC namespace"),
    ("sysctl-global", _set(("linux", "sysctl", "vm.swappiness"), "10"), "/linux/sysctl/vm.swappiness", "not namespaced"),
    ("sysctl-hostname", _set(("linux", "sysctl", "kernel.hostname"), "x"),
     "/linux/sysctl/kernel.hostname", 'conflicts with the "hostname" field'),
    ("sysctl-empty-key", _set(("linux", "sysctl", ""), "1"), "/linux/sysctl", "must not be empty"),
    # seccomp
    ("seccomp-meta", _del(("linux", "seccomp", "listenerPath")), "/linux/seccomp/listenerMetadata",
     'must not be set without "listenerPath"'),
    ("seccomp-default-notify", _set(("linux", "seccomp", "defaultAction"), "SCMP_ACT_NOTIFY"),
     "/linux/seccomp/defaultAction", "cannot be the default action"),
    ("seccomp-errno-allow", _set(("linux", "seccomp", "syscalls", 0, "errnoRet"), 1),
     "/linux/seccomp/syscalls/0/errnoRet", "does not return an errno"),
    ("seccomp-default-errno", _set(("linux", "seccomp", "defaultAction"), "SCMP_ACT_KILL"),
     "/linux/seccomp/defaultErrnoRet", "does not return an errno"),
    ("seccomp-arg-index", _set(("linux", "seccomp", "syscalls", 1, "args", 0, "index"), 6),
     "/linux/seccomp/syscalls/1/args/0/index", "0 to 5"),
    # personality, memory policy, RDT
    ("personality-domain", _del(("linux", "personality", "domain")), "/linux/personality", '"domain" is required'),
    ("personality-flags", _set(("linux", "personality", "flags"), ["X"]), "/linux/personality/flags/0", "not supported"),
    ("mempolicy-mode", _del(("linux", "memoryPolicy", "mode")), "/linux/memoryPolicy", '"mode" is required'),
    ("mempolicy-default-nodes", _set(("linux", "memoryPolicy", "mode"), "MPOL_DEFAULT"),
     "/linux/memoryPolicy/nodes", "must be empty for MPOL_DEFAULT"),
    ("mempolicy-bind-no-nodes", _chain(_set(("linux", "memoryPolicy", "mode"), "MPOL_BIND"),
                                       _del(("linux", "memoryPolicy", "nodes"))),
     "/linux/memoryPolicy", 'MPOL_BIND needs "nodes"'),
    ("mempolicy-nodes-format", _set(("linux", "memoryPolicy", "nodes"), "0-x"), "/linux/memoryPolicy/nodes", "node list"),
    ("mempolicy-flags", _set(("linux", "memoryPolicy", "flags"), ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]),
     "/linux/memoryPolicy/flags", "exclude each other"),
    ("rdt-newline", _set(("linux", "intelRdt", "memBwSchema"), "MB:0=20\n"), "/linux/intelRdt/memBwSchema", "newline"),
    ("rdt-closid", _set(("linux", "intelRdt", "closID"), "a/b"), "/linux/intelRdt/closID", "not a valid resctrl group"),
    # annotations
    ("annotation-empty-key", _set(("annotations", ""), "x"), "/annotations", "must not be empty"),
]


@pytest.mark.parametrize("edit,where,words", [c[1:] for c in SEMANTIC_CASES], ids=[c[0] for c in SEMANTIC_CASES])
def test_semantic_check(bundle, edit, where, words):
    config = full()
    edit(config)
    problems = semantic_problems(config, str(bundle))
    matching = [p for p in problems if p.startswith(where + ": ") and words in p]
    assert matching, problems
    for p in problems:
        assert "\n" not in p


def test_semantic_cases_report_nothing_else(bundle):
    """Most edits give exactly one problem (so the checks don't overlap by accident)."""
    multi = {"hostname-no-uts", "sched-dl-fields", "sysctl-ipc", "uidmap-no-userns", "userns-no-uidmap", "seccomp-meta",
             "seccomp-default-notify"}
    for name, edit, where, _words in SEMANTIC_CASES:
        config = full()
        edit(config)
        problems = semantic_problems(config, str(bundle))
        if name not in multi:
            assert len(problems) == 1, (name, problems)


@pytest.mark.parametrize(
    "edit",
    [
        _set(("linux", "cgroupsPath"), "pyrunc/full"),  # relative cgroupsPath is allowed
        _set(("linux", "cgroupsPath"), "system.slice:pyrunc:full"),
        _set(("mounts", 2, "destination"), "data"),  # relative destinations: deprecated, allowed
        _set(("ociVersion",), "1.0.0"),
        _set(("ociVersion",), "1.0.2-dev"),
        _set(("ociVersion",), "1.3.7+build.5"),
        _set(("ociVersion",), "1.2.1"),
        _set(("linux", "namespaces", 1, "path"), "/var/run/netns/x"),
        _set(("linux", "namespaces", 6, "path"), ""),  # empty path: create a new one
        _set(("linux", "sysctl", "net/ipv4/conf/eth0.100/forwarding"), "1"),
        _set(("linux", "sysctl", "fs.mqueue.queues_max"), "10"),
        _set(("linux", "sysctl", "kernel.domainname"), "x"),
        _set(("process", "scheduler"), {"policy": "SCHED_RR", "priority": 99}),
        _set(("process", "env"), []),
        _del(("process", "user")),
        _del(("linux", "netDevices")),
        _set(("linux", "netDevices"), {"eth1": {"name": "c%d"}, "eth2": {"name": "c%d"}}),
        _set(("linux", "memoryPolicy"), {"mode": "MPOL_LOCAL"}),
        _set(("linux", "memoryPolicy"), {"mode": "MPOL_PREFERRED", "nodes": ""}),
        _set(("linux", "intelRdt", "closID"), "/"),
        _set(("linux", "resources", "cpu", "quota"), -1),
        _chain(_drop_ns("user"), _del(("linux", "uidMappings")), _del(("linux", "gidMappings"))),
        _set(("linux", "namespaces", 5, "path"), "/proc/1/ns/user"),
        lambda c: c.pop("linux"),
        lambda c: c.pop("process"),
    ],
)
def test_accepted_variants(bundle, edit):
    config = full()
    edit(config)
    if "linux" not in config:
        config.pop("hostname")
        config.pop("domainname")
    assert validate(config, str(bundle)) == []


def test_root_path_checks(bundle, tmp_path):
    config = full()
    assert semantic_problems(config, str(bundle / "nowhere")) == [
        f'/root/path: "rootfs" does not exist ({bundle / "nowhere" / "rootfs"})'
    ]
    (bundle / "file").write_text("")
    config["root"]["path"] = "file"
    assert semantic_problems(config, str(bundle)) == [f"/root/path: {bundle / 'file'} is not a directory"]
    config["root"]["path"] = str(bundle / "rootfs")  # absolute
    assert semantic_problems(config, "/nonexistent-bundle") == []
    config["root"]["path"] = "rootfs"
    assert semantic_problems(config, None) == []  # no file system checks


def test_semantic_problems_ignore_wrong_types():
    assert semantic_problems([], None) == []
    assert semantic_problems({"ociVersion": 1, "root": "x", "process": [], "linux": 5, "mounts": {}}, None) == []


@settings(max_examples=150, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(oracle.mutated_docs(FULL, max_mutations=4))
def test_semantic_problems_never_raise(doc):
    problems = semantic_problems(doc, "/nonexistent")
    assert all(isinstance(p, str) and p.startswith("/") and "\n" not in p for p in problems)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6)
    | st.sampled_from(["pid", "user", "/abs", "rel", "", "1-3", "9" * 5000, "\ud800", "\n", "SCMP_ACT_NOTIFY"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=80, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.sampled_from(oracle.all_paths(FULL)), _json_values)
def test_validate_never_raises_on_odd_values(path, value):
    doc = oracle.replaced(FULL, path, value)
    for problem in validate(doc, "/nonexistent"):
        assert problem.startswith("/") and len(problem.splitlines()) == 1, problem
        problem.encode("utf-8")


# ---------------------------------------------------------------------------
# schema problems: format


def test_enum_problem_format():
    config = full()
    config["linux"]["namespaces"][2]["type"] = "foo"
    assert schema_problems(config) == [
        '/linux/namespaces/2/type: "foo" is not one of '
        '["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]'
    ]


def test_required_and_root_pointer():
    assert schema_problems({}) == ['/: "ociVersion" is a required property']
    assert schema_problems([]) == ['/: [] is not of type "object"']
    config = full()
    del config["process"]["cwd"]
    assert schema_problems(config) == ['/process: "cwd" is a required property']


def test_problem_messages():
    config = full()
    config["process"]["terminal"] = "yes"
    config["process"]["rlimits"][0]["type"] = "RLIMIT_nofile"
    config["linux"]["resources"]["memory"]["limit"] = 2**63
    config["linux"]["resources"]["blockIO"]["weight"] = -1
    config["linux"]["seccomp"]["syscalls"][0]["names"] = []
    config["linux"]["uidMappings"][0]["size"] = 1.0
    assert schema_problems(config) == [
        '/linux/resources/blockIO/weight: -1 is less than the minimum of 0',
        '/linux/resources/memory/limit: 9223372036854775808 is greater than the maximum of 9223372036854775807',
        '/linux/seccomp/syscalls/0/names: must contain at least one entry',
        '/linux/uidMappings/0/size: 1.0 is not of type "integer"',
        '/process/rlimits/0/type: "RLIMIT_nofile" does not match "^RLIMIT_[A-Z]+$"',
        '/process/terminal: "yes" is not of type "boolean"',
    ]


def test_problems_sorted_numerically_and_escaped():
    config = full()
    config["process"]["args"] = ["a"] * 11
    config["process"]["args"][2] = 2
    config["process"]["args"][10] = 10
    config["annotations"] = {"a/b~c": 1}
    assert schema_problems(config) == [
        '/annotations/a~1b~0c: 1 is not of type "string"',
        '/process/args/2: 2 is not of type "string"',
        '/process/args/10: 10 is not of type "string"',
    ]
    assert schema_problems(config) == schema_problems(copy.deepcopy(config))


def test_long_values_are_shortened_to_one_line():
    config = full()
    config["process"]["user"] = ["line\n" * 100] * 50
    (problem,) = schema_problems(config)
    assert problem.startswith('/process/user: ["line\\n')
    assert problem.endswith('... is not of type "object"')
    assert len(problem) < 200 and "\n" not in problem


def test_state_and_features_schemas():
    assert schema_problems(oracle.FULL_STATE, "state") == []
    assert schema_problems(oracle.FULL_FEATURES, "features") == []
    assert schema_problems(dict(oracle.FULL_STATE, status="paused"), "state") == [
        '/status: "paused" is not one of ["creating", "created", "running", "stopped"]'
    ]
    with pytest.raises(ValueError):
        schema_problems({}, "nope")


def test_validate_lists_schema_problems_first(bundle):
    config = full()
    config["process"]["cwd"] = 5
    config["process"]["args"] = []
    config["ociVersion"] = "9.9.9"
    problems = validate(config, str(bundle))
    assert problems == [
        '/process/cwd: 5 is not of type "string"',
        '/ociVersion: unsupported runtime-spec version "9.9.9"; supported versions are 1.0.0 to 1.3.x',
        "/process/args: must contain at least one entry",
    ]


def test_pointer():
    assert pointer() == "/"
    assert pointer("linux", "namespaces", 3, "type") == "/linux/namespaces/3/type"
    assert pointer("annotations", "a/b~") == "/annotations/a~1b~0"


# ---------------------------------------------------------------------------
# load_config


def _config_error(fn, *args):
    with pytest.raises(ConfigError) as info:
        fn(*args)
    message = str(info.value)
    assert message and "\n" not in message and "Traceback" not in message
    assert isinstance(info.value, PyruncError)
    return message


@pytest.mark.parametrize(
    "content,words",
    [
        (b"", "file is empty"),
        (b"  \n\t ", "file is empty"),
        (b'{"ociVersion": }', "not valid JSON: Expecting value at line 1 column 16"),
        (b'{\n  "a": 1,\n  "b": [1, 2,]\n}', "line 3 column"),
        (b"[]", "must contain a JSON object, not an array"),
        (b'"config"', "must contain a JSON object, not a string"),
        (b"null", "must contain a JSON object, not null"),
        (b"42", "must contain a JSON object, not a number"),
        (b'{"ociVersion": NaN}', "NaN is not valid JSON"),
        (b'{"a": -Infinity}', "-Infinity is not valid JSON"),
        (b'\xef\xbb\xbf{"ociVersion": "1.0.0"}', "byte order mark"),
        (b'{"ociVersion": "1.0\xff"}', "not valid UTF-8 at line 1 column 20"),
        (b"[" * 200000, "nested too deeply"),
        (b'{"a": 1} {"b": 2}', "Extra data at line 1 column 10"),
        (b'{"n": 1' + b"0" * 5000 + b"}", "not valid JSON"),
    ],
)
def test_load_config_errors(bundle, content, words):
    (bundle / "config.json").write_bytes(content)
    message = _config_error(load_config, str(bundle))
    assert message.startswith(f"{bundle / 'config.json'}: ")
    assert words in message


def test_load_config_missing(tmp_path):
    message = _config_error(load_config, str(tmp_path))
    assert message == f"{tmp_path / 'config.json'}: no such file: the bundle has no config.json"
    message = _config_error(load_config, str(tmp_path / "nope"))
    assert "bundle directory" in message and str(tmp_path / "nope") in message
    (tmp_path / "afile").write_text("")
    message = _config_error(load_config, str(tmp_path / "afile"))
    assert "is not a directory" in message


def test_load_config_not_a_regular_file(tmp_path):
    (tmp_path / "config.json").mkdir()
    assert "is a directory" in _config_error(load_config, str(tmp_path))
    os.rmdir(tmp_path / "config.json")
    os.mkfifo(tmp_path / "config.json")  # must not block
    assert "not a regular file" in _config_error(load_config, str(tmp_path))


def test_load_config_huge(tmp_path):
    with open(tmp_path / "config.json", "wb") as f:
        f.truncate(MAX_CONFIG_BYTES + 1)  # sparse: refused before being read
    message = _config_error(load_config, str(tmp_path))
    assert "too large" in message and "16 MiB" in message


def test_load_config_ok(bundle):
    write_config(bundle, FULL)
    assert load_config(str(bundle)) == FULL
    link = bundle.parent / (bundle.name + "-link")
    os.symlink(bundle, link)
    assert load_config(link) == FULL  # path-like and symlinked bundles


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(st.binary(max_size=64) | st.text(alphabet='{}[]":,. \n0123456789aeflnrstu\\', max_size=40).map(str.encode))
def test_parse_config_only_raises_config_error(data):
    try:
        value = parse_config(data, "config.json")
    except ConfigError as e:
        assert "\n" not in str(e) and str(e).startswith("config.json: ")
    else:
        assert isinstance(value, dict)


# ---------------------------------------------------------------------------
# load_and_validate / check_config: one-line errors for invalid content


@pytest.mark.parametrize(
    "edit,words",
    [
        (_del(("ociVersion",)), '/: "ociVersion" is a required property'),
        (_set(("process", "terminal"), "yes"), '/process/terminal: "yes" is not of type "boolean"'),
        (_set(("root",), "rootfs"), '/root: "rootfs" is not of type "object"'),
        (_set(("linux", "namespaces", 0, "type"), "pods"), '/linux/namespaces/0/type: "pods" is not one of'),
        (_set(("ociVersion",), "2.0.0"), "supported versions are 1.0.0 to 1.3.x"),
        (_set(("process", "cwd"), "relative"), '/process/cwd: "relative" must be an absolute path'),
    ],
)
def test_load_and_validate_errors(bundle, edit, words):
    config = full()
    edit(config)
    write_config(bundle, config)
    message = _config_error(load_and_validate, str(bundle))
    assert message.startswith(f"{bundle / 'config.json'}: ")
    assert words in message


def test_load_and_validate_counts_more_problems(bundle):
    config = full()
    config["process"]["terminal"] = "yes"
    config["process"]["cwd"] = "relative"
    config["ociVersion"] = "2.0.0"
    write_config(bundle, config)
    message = _config_error(load_and_validate, str(bundle))
    assert message.endswith("(and 2 more problems: run 'pyrunc validate')")


def test_load_and_validate_ok(bundle):
    write_config(bundle, FULL)
    assert load_and_validate(str(bundle)) == FULL


# ---------------------------------------------------------------------------
# import cost and install layout


def _importtime(module):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return [line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if "|" in line]


@pytest.mark.parametrize("module", ["pyrunc.config.validate", "pyrunc.config.schema.messages", "pyrunc.config.load", "pyrunc.config"])
def test_import_does_not_load_jsonschema(module):
    imported = _importtime(module)
    assert module in imported
    heavy = [m for m in imported if m.split(".")[0] in ("jsonschema", "referencing", "rpds", "attrs")]
    assert heavy == []


def test_specs_dir_falls_back_to_install_prefix(tmp_path):
    pkg = tmp_path / "site" / "pyrunc" / "config"
    pkg.mkdir(parents=True)
    source = (REPO / "pyrunc" / "config" / "__init__.py").read_text()
    (pkg / "__init__.py").write_text(source)
    spec = importlib.util.spec_from_file_location("_installed_spec", pkg / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert Path(module.specs_dir()) == Path(sys.prefix) / "share" / "pyrunc" / "specs"
    assert Path(specs_dir()) == REPO / "specs"
