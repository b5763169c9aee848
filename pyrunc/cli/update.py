import sys

from pyrunc.cli.flags import Flag
from pyrunc.errors import PyruncError, UsageError
from pyrunc.api import Container
from pyrunc.config.load import load_json_object, parse_config

USAGE = "[command options] <container-id>"
NARGS = 1
# runc's individual flags: flag -> (resources section, key, parser)
_FIELDS = {
    "blkio_weight": ("blockIO", "weight", "int"),
    "cpu_period": ("cpu", "period", "int"),
    "cpu_quota": ("cpu", "quota", "int"),
    "cpu_share": ("cpu", "shares", "int"),
    "cpu_rt_period": ("cpu", "realtimePeriod", "int"),
    "cpu_rt_runtime": ("cpu", "realtimeRuntime", "int"),
    "cpu_idle": ("cpu", "idle", "int"),
    "cpuset_cpus": ("cpu", "cpus", "str"),
    "cpuset_mems": ("cpu", "mems", "str"),
    "memory": ("memory", "limit", "bytes"),
    "memory_reservation": ("memory", "reservation", "bytes"),
    "memory_swap": ("memory", "swap", "bytes"),
    "kernel_memory": ("memory", "kernel", "bytes"),
    "kernel_memory_tcp": ("memory", "kernelTCP", "bytes"),
    "pids_limit": ("pids", "limit", "int"),
}
FLAGS = [
    Flag("resources,r", "str", "", "path to the file containing the resources to update or '-' to read from the standard input"),
    Flag("blkio-weight", "str", "", "Specifies per cgroup weight, range is from 10 to 1000"),
    Flag("cpu-period", "str", "", "CPU CFS period to be used for hardcapping (in usecs). 0 to use system default"),
    Flag("cpu-quota", "str", "", "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period"),
    Flag("cpu-share", "str", "", "CPU shares (relative weight vs. other containers)"),
    Flag("cpu-rt-period", "str", "", "CPU realtime period to be used for hardcapping (in usecs)"),
    Flag("cpu-rt-runtime", "str", "", "CPU realtime hardcap limit (in usecs)"),
    Flag("cpu-idle", "str", "", "set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE"),
    Flag("cpuset-cpus", "str", "", "CPU(s) to use"),
    Flag("cpuset-mems", "str", "", "Memory node(s) to use"),
    Flag("kernel-memory", "str", "", "(obsoleted; do not use)"),
    Flag("kernel-memory-tcp", "str", "", "(obsoleted; do not use)"),
    Flag("memory", "str", "", "Memory limit (in bytes)"),
    Flag("memory-reservation", "str", "", "Memory reservation or soft_limit (in bytes)"),
    Flag("memory-swap", "str", "", "Total memory usage (memory + swap); set '-1' to enable unlimited swap"),
    Flag("pids-limit", "str", "", "Maximum number of pids allowed in the container"),
]
_UNITS = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_bytes(text, flag):
    """runc's RAMInBytes: 1024, 512k, 100m, 1g (also kb/kib/mb/...), -1 for unlimited."""
    import re

    t = text.strip().lower()
    if t == "-1":
        return -1
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?", t)
    if not m:
        raise UsageError(f"invalid value for --{flag}: {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2) or "b"])


def run(ctx, opts, args):
    resources = {}
    source = opts["resources"] or "resources"
    if opts["resources"] == "-":
        source = "resources (standard input)"
        try:
            data = sys.stdin.buffer.read()
        except OSError as e:
            raise PyruncError(f"reading {source}: {e.strerror}") from None
        resources = parse_config(data, source)
    elif opts["resources"]:
        resources = load_json_object(opts["resources"])
    for dest, (section, key, kind) in _FIELDS.items():
        val = opts[dest]
        if val == "":
            continue
        if kind == "int":
            try:
                v = int(val)
            except ValueError:
                raise UsageError(f"invalid value for --{dest.replace('_', '-')}: {val!r}") from None
        elif kind == "bytes":
            v = parse_bytes(val, dest.replace("_", "-"))
        else:
            v = val
        resources.setdefault(section, {})[key] = v
    from pyrunc.config.validate import check

    # As config.json's linux.resources (runc's JSON decoding refuses wrong types too).
    check(resources, "resources", source=source)
    Container(args[0], root=ctx.root).update(resources)
    return 0
