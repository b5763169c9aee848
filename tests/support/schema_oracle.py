"""The schema oracle's material, shared by tests/unit/test_schema_oracle.py,
test_fastschema.py and test_validate.py: realistic full documents touching every Linux
field of the spec, their mutations (exhaustive and hypothesis strategies), and Draft-4
validators for our specs/ and the official runtime-spec v1.3.0 schemas (read from
../shared at run time, never copied into the project)."""
import copy
import functools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from support.paths import REPO, SCHEMA_DIR

SPECS = REPO / "specs"
OFFICIAL = SCHEMA_DIR
ROOT_FILES = {"config": "config-schema.json", "state": "state-schema.json", "features": "features-schema.json"}
KINDS = tuple(ROOT_FILES)

needs_official = pytest.mark.skipif(not OFFICIAL.is_dir(), reason=f"official runtime-spec schemas not found at {OFFICIAL}")

# hypothesis settings of the mutation tests
HYPO = settings(
    max_examples=100,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ---------------------------------------------------------------------------
# realistic documents touching every Linux field of the spec

FULL_CONFIG = {
    "ociVersion": "1.3.0",
    "process": {
        "terminal": True,
        "consoleSize": {"height": 25, "width": 80},
        "user": {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [5, 6], "username": "app"},
        "args": ["/bin/sh", "-c", "echo hello"],
        "commandLine": "sh -c 'echo hello'",
        "env": ["PATH=/usr/local/bin:/usr/bin:/bin", "TERM=xterm", "EMPTY="],
        "cwd": "/srv",
        "capabilities": {
            "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "effective": ["CAP_AUDIT_WRITE", "CAP_KILL"],
            "inheritable": [],
            "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "ambient": ["CAP_NET_BIND_SERVICE"],
        },
        "rlimits": [
            {"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024},
            {"type": "RLIMIT_CORE", "hard": 0, "soft": 0},
        ],
        "noNewPrivileges": True,
        "apparmorProfile": "acme_secure_profile",
        "selinuxLabel": "system_u:system_r:svirt_lxc_net_t:s0:c124,c675",
        "oomScoreAdj": 100,
        "scheduler": {
            "policy": "SCHED_DEADLINE",
            "nice": 0,
            "priority": 0,
            "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM"],
            "runtime": 10000000,
            "deadline": 20000000,
            "period": 40000000,
        },
        "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
        "execCPUAffinity": {"initial": "0", "final": "0-3,7"},
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "slartibartfast",
    "domainname": "foobarbaz.test",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/data",
            "type": "bind",
            "source": "/srv/data",
            "options": ["rbind", "ridmap", "ro"],
            "uidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}],
        },
    ],
    "hooks": {
        "prestart": [{"path": "/usr/bin/fix-mounts", "args": ["fix-mounts", "arg1"], "env": ["key1=value1"]}],
        "createRuntime": [{"path": "/usr/bin/setup-network"}],
        "createContainer": [{"path": "/usr/bin/mount-hook", "args": ["-mount"], "timeout": 10}],
        "startContainer": [{"path": "/usr/bin/refresh-ldcache"}],
        "poststart": [{"path": "/usr/bin/notify-start", "timeout": 5}],
        "poststop": [{"path": "/usr/sbin/cleanup.sh", "args": ["cleanup.sh", "-f"]}],
    },
    "annotations": {"com.example.key1": "value1", "org.opencontainers.image.os": "linux"},
    "linux": {
        "namespaces": [
            {"type": "pid"},
            {"type": "network"},
            {"type": "ipc"},
            {"type": "uts"},
            {"type": "mount"},
            {"type": "user"},
            {"type": "cgroup", "path": "/proc/1/ns/cgroup"},
            {"type": "time"},
        ],
        "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "timeOffsets": {"monotonic": {"secs": 3600, "nanosecs": 0}, "boottime": {"secs": -60, "nanosecs": 500}},
        "devices": [
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0},
            {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0, "fileMode": 432},
            {"path": "/run/fifo", "type": "p"},
        ],
        "netDevices": {"eth1": {"name": "ceth1"}, "ens4": {}, "dummy0": {"name": "net%d"}},
        "cgroupsPath": "/pyrunc/full",
        "resources": {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
            ],
            "memory": {
                "limit": 536870912,
                "reservation": 268435456,
                "swap": 1073741824,
                "kernel": -1,
                "kernelTCP": -1,
                "swappiness": 0,
                "disableOOMKiller": False,
                "useHierarchy": False,
                "checkBeforeUpdate": True,
            },
            "cpu": {
                "shares": 1024,
                "quota": 1000000,
                "burst": 500000,
                "period": 500000,
                "realtimeRuntime": 950000,
                "realtimePeriod": 1000000,
                "cpus": "0-3",
                "mems": "0",
                "idle": 0,
            },
            "blockIO": {
                "weight": 10,
                "leafWeight": 10,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 16, "rate": 300}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 20}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 10}],
            },
            "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}, {"pageSize": "1GB", "limit": 0}],
            "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
            "pids": {"limit": 32771},
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "rxe3": {"hcaObjects": 1}},
            "unified": {"io.max": "8:0 rbps=1048576", "memory.high": "max"},
        },
        "intelRdt": {
            "closID": "guaranteed_group",
            "l3CacheSchema": "L3:0=7f0;1=1f",
            "memBwSchema": "MB:0=20;1=70",
            "schemata": ["L2:0=f;1=f"],
            "enableMonitoring": True,
        },
        "memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "0-1", "flags": ["MPOL_F_STATIC_NODES"]},
        "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "4096"},
        "seccomp": {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "listenerPath": "/run/seccomp-agent.socket",
            "listenerMetadata": "opaque",
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {
                    "names": ["personality"],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": 1,
                    "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}],
                },
                {"names": ["ioctl"], "action": "SCMP_ACT_NOTIFY"},
            ],
        },
        "rootfsPropagation": "slave",
        "maskedPaths": ["/proc/kcore", "/proc/keys"],
        "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"],
        "mountLabel": "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811",
        "personality": {"domain": "LINUX", "flags": []},
    },
}

FULL_STATE = {
    "ociVersion": "1.3.0",
    "id": "oci-container1",
    "status": "running",
    "pid": 4422,
    "bundle": "/containers/redis",
    "annotations": {"myKey": "myValue"},
}

FULL_FEATURES = {
    "ociVersionMin": "1.0.0",
    "ociVersionMax": "1.3.0",
    "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
    "mountOptions": ["bind", "rbind", "ro", "idmap"],
    "annotations": {"org.opencontainers.runc.version": "1.2.0"},
    "potentiallyUnsafeConfigAnnotations": ["bundle", "org.systemd.property."],
    "linux": {
        "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
        "capabilities": ["CAP_CHOWN", "CAP_SYS_ADMIN"],
        "cgroup": {"v1": True, "v2": True, "systemd": True, "systemdUser": True, "rdma": True},
        "seccomp": {
            "enabled": True,
            "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_NOTIFY"],
            "operators": ["SCMP_CMP_EQ", "SCMP_CMP_NE"],
            "archs": ["SCMP_ARCH_X86_64", "SCMP_ARCH_RISCV64"],
            "knownFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG"],
        },
        "apparmor": {"enabled": True},
        "selinux": {"enabled": True},
        "intelRdt": {"enabled": True},
        "mountExtensions": {"idmap": {"enabled": True}},
        "netDevices": {"enabled": True},
    },
}

FULL_DOCS = {"config": FULL_CONFIG, "state": FULL_STATE, "features": FULL_FEATURES}

# ---------------------------------------------------------------------------
# mutations


def all_paths(doc, prefix=()):
    """Every location in ``doc`` (tuples of keys / indexes), the root included."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.extend(all_paths(v, prefix + (k,)))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.extend(all_paths(v, prefix + (i,)))
    return out


def get_at(doc, path):
    for p in path:
        doc = doc[p]
    return doc


def replaced(doc, path, value):
    doc = copy.deepcopy(doc)
    if not path:
        return value
    get_at(doc, path[:-1])[path[-1]] = value
    return doc


def deleted(doc, path):
    doc = copy.deepcopy(doc)
    parent = get_at(doc, path[:-1])
    if isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent.pop(path[-1])
    return doc


BOUNDARY_INTS = (
    -1, 0, 1, 7, 8, 100, 101, 127, 128, 255, 256, 511, 512, 65535, 65536,
    2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**32 - 1, 2**32,
    2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64,
)
WRONG_TYPES = (None, True, False, 0, -1, 1.0, 1.5, "", "x", [], {}, ["x"], [1], {"x": 1}, {"x": "y"}, [{}])
EDGE_STRINGS = (
    "", " ", "\n", "x", "RLIMIT_NOFILE", "RLIMIT_nofile", "RLIMIT_", "RLIMIT_CORE\n", "XRLIMIT_CORE",
    "2MB", "64KB", "0MB", "64kB", "2MB\n", "10TB", "MB:0=20", "MB:", "MB:0\n", "MB:0\n1", "mb:0",
    "c", "b", "u", "p", "a", "cb", "c\n", "CAP_SYS_ADMIN", "CAP_sys", "CAP_X\n", "0-3,7", "0-3;7", "0 - 3, 7",
    "SCMP_ACT_ALLOW", "SCMP_ACT_KILLALL", "pid", "PID", "time", "user", "new", "inherit", "disable",
    "SCHED_OTHER", "SCHED_DEADLINE", "IOPRIO_CLASS_RT", "MPOL_LOCAL", "LINUX32", "slave", "rslave",
    "running", "paused", "relative/path", "/abs/path",
)


def string_tweaks(s):
    return [s + "\n", s + "X", s.lower(), s.upper(), "\n" + s, s[:-1], " " + s]


def mutate(doc, path, kind, value):
    """Apply one mutation; None when it does not apply at ``path``."""
    try:
        node = get_at(doc, path)
    except (KeyError, IndexError, TypeError):
        return None
    if kind == "delete":
        return deleted(doc, path) if path else None
    if kind == "wrong-type":
        return replaced(doc, path, copy.deepcopy(value))
    if kind == "int-boundary":
        if isinstance(node, int) and not isinstance(node, bool):
            return replaced(doc, path, value)
        return None
    if kind == "int-as-float":
        if isinstance(node, int) and not isinstance(node, bool):
            return replaced(doc, path, float(node))
        return None
    if kind == "string-edge":
        return replaced(doc, path, value) if isinstance(node, str) else None
    if kind == "string-tweak":
        if isinstance(node, str):
            tweaks = string_tweaks(node)
            return replaced(doc, path, tweaks[len(repr(value)) % len(tweaks)])
        return None
    if kind == "extra-key":
        if isinstance(node, dict):
            n = copy.deepcopy(node)
            key = value if isinstance(value, str) else "unknownField"
            n[key] = {"nested": value} if isinstance(value, str) else value
            return replaced(doc, path, n)
        return None
    if kind == "extra-key-bad-value":
        if isinstance(node, dict):
            n = copy.deepcopy(node)
            for key in ("newKey", "", "\n"):
                n[key] = value
            return replaced(doc, path, n)
        return None
    if kind == "dup-item":
        if isinstance(node, list) and node:
            return replaced(doc, path, node + [copy.deepcopy(node[0])])
        return None
    if kind == "bad-item":
        if isinstance(node, list):
            return replaced(doc, path, node + [copy.deepcopy(value)])
        return None
    if kind == "empty":
        if isinstance(node, (list, dict, str)):
            return replaced(doc, path, type(node)())
        return None
    raise AssertionError(kind)


MUTATION_KINDS = (
    "delete", "wrong-type", "int-boundary", "int-as-float", "string-edge", "string-tweak",
    "extra-key", "extra-key-bad-value", "dup-item", "bad-item", "empty",
)
VALUE_POOL = WRONG_TYPES + BOUNDARY_INTS + EDGE_STRINGS


def values_for(kind):
    if kind == "int-boundary":
        return st.sampled_from(BOUNDARY_INTS)
    if kind == "string-edge":
        return st.sampled_from(EDGE_STRINGS)
    return st.sampled_from(VALUE_POOL)


@st.composite
def mutated_docs(draw, doc, max_mutations=3):
    """A document derived from ``doc`` by 1..max_mutations mutations."""
    n = draw(st.integers(min_value=1, max_value=max_mutations))
    for _ in range(n):
        paths = all_paths(doc)
        path = draw(st.sampled_from(paths))
        kind = draw(st.sampled_from(MUTATION_KINDS))
        value = draw(values_for(kind))
        new = mutate(doc, path, kind, value)
        if new is not None:
            doc = new
    return doc


def pruned(doc, path, keep=0):
    """(smaller document, path in it) for judging a mutation at ``path`` cheaply.

    Along ``path`` only the containers leading to the target survive (other
    list elements and nested siblings are dropped; scalar siblings stay), except
    in the ``keep`` innermost levels where every sibling stays.  Callers use the
    smallest ``keep`` for which the unmutated result is still valid.
    """
    n = len(path)

    def rec(node, rest):
        if not rest:
            return copy.deepcopy(node), ()
        key = rest[0]
        child, sub = rec(node[key], rest[1:])
        depth = n - len(rest)
        if isinstance(node, dict):
            out = {
                k: v for k, v in node.items()
                if k != key and (depth >= n - keep or not isinstance(v, (dict, list)))
            }
            out[key] = child
            return out, (key,) + sub
        if depth >= n - keep:
            out = list(node)
            out[key] = child
            return out, (key,) + sub
        return [child], (0,) + sub

    return rec(doc, path)


def enum_lists(schema_dir):
    """Every string enum found in the schema files of ``schema_dir``."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            values = node.get("enum")
            if isinstance(values, list) and all(isinstance(v, str) for v in values):
                found.append(tuple(values))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for f in sorted(Path(schema_dir).glob("*.json")):
        walk(json.loads(f.read_text()))
    return found


def field_mutations(doc, path, enums=()):
    """Every mutation of the value at ``path``: deleted, each wrong type, integer
    boundaries, edge strings, every value of an enum the current string belongs
    to, unknown keys, duplicated and foreign list items."""
    node = get_at(doc, path)
    out = []
    if path:
        out.append(deleted(doc, path))
    out.extend(replaced(doc, path, copy.deepcopy(v)) for v in WRONG_TYPES)
    if isinstance(node, int) and not isinstance(node, bool):
        out.append(replaced(doc, path, float(node)))
        out.extend(replaced(doc, path, b) for b in BOUNDARY_INTS)
    if isinstance(node, str):
        # Tweaks of the current value, and a third of the edge strings (which
        # third depends on the location, so that all of them get used).
        edge = EDGE_STRINGS[len(repr(path)) % 3::3]
        out.extend(replaced(doc, path, s) for s in tuple(string_tweaks(node)) + edge)
        for values in enums:
            if node in values:
                out.extend(replaced(doc, path, v) for v in values if v != node)
    if isinstance(node, dict):
        for key, value in (("unknownField", 1), ("", 1), ("\n", 1), ("newKey", "x"), ("newKey", {})):
            n = dict(node)
            n[key] = value
            out.append(replaced(doc, path, n))
    if isinstance(node, list) and node:
        out.append(replaced(doc, path, node + [copy.deepcopy(node[0])]))
        out.append(replaced(doc, path, node + [None]))
        out.append(replaced(doc, path, node + [{}]))
    return out


def exhaustive_variants(doc, is_valid, enums=()):
    """field_mutations() at every location of ``doc``, each on a pruned copy
    (``is_valid`` judges the unmutated pruned copies)."""
    out = []
    for path in all_paths(doc):
        for keep in range(len(path) + 1):
            base, p = pruned(doc, path, keep)
            if is_valid(base):
                break
        else:
            base, p = doc, path
        out.extend(field_mutations(base, p, enums))
    return out


# ---------------------------------------------------------------------------
# validators


def load_dir_validators(directory):
    """{kind: Draft4Validator} for a schema directory, refs resolved by file name."""
    from jsonschema import Draft4Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    docs = {p.name: json.loads(p.read_text()) for p in Path(directory).glob("*.json")}
    registry = Registry().with_resources(
        (name, Resource.from_contents(doc, default_specification=DRAFT4)) for name, doc in docs.items()
    )
    return {kind: Draft4Validator(docs[f], registry=registry) for kind, f in ROOT_FILES.items()}


@functools.lru_cache(maxsize=None)
def official():
    return load_dir_validators(OFFICIAL)


@functools.lru_cache(maxsize=None)
def ours():
    return load_dir_validators(SPECS)


def official_docs():
    """(kind, expected verdict, file) for every official test document."""
    out = []
    for kind in KINDS:
        for verdict in ("good", "bad"):
            for f in sorted((OFFICIAL / "test" / kind / verdict).glob("*.json")):
                out.append(pytest.param(kind, verdict == "good", f, id=f"{kind}/{verdict}/{f.name}"))
    return out


def read_doc(path):
    """The parsed document, or None when it is not JSON at all."""
    try:
        return json.loads(Path(path).read_text())
    except ValueError:
        return None
