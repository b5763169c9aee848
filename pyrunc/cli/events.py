from pyrunc.cli.flags import Flag

USAGE = "[command options] <container-id>"
NARGS = 1
FLAGS = [
    Flag("interval", "str", "5s", "set the stats collection interval"),
    Flag("stats", help="display the container's stats then exit"),
]


def parse_duration(text):
    """Go durations as runc takes them: 500ms, 5s, 1m, 1h30m."""
    import re

    from pyrunc.errors import UsageError

    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise UsageError(f"invalid duration {text!r}")
    total = sum(float(a) * units[b] for a, b in parts)
    if total <= 0:
        raise UsageError("duration interval must be greater than 0")
    return total


def run(ctx, opts, args):
    import json
    import select
    import sys
    import time

    from pyrunc.container import open_container
    from pyrunc.errors import PyruncError

    interval = parse_duration(opts["interval"])
    c = open_container(ctx.root, args[0])
    if c.status() == "stopped":
        raise PyruncError(f"container with id {args[0]} is not running")
    mgr = c.cgroup_manager()
    if mgr is None:
        raise PyruncError(f"container {args[0]} has no cgroups")

    def emit(kind, data=None):
        ev = {"type": kind, "id": c.id}
        if data is not None:
            ev["data"] = data
        sys.stdout.write(json.dumps(ev) + "\n")
        sys.stdout.flush()

    own_netns = any(ns.get("type") == "network" and not ns.get("path")
                    for ns in (c.config.get("linux") or {}).get("namespaces") or ())

    def stats():
        data = mgr.stats()
        if own_netns:  # runc's network_interfaces: counters of the container's own netns
            from pyrunc.netdevices import interface_stats

            data["network_interfaces"] = interface_stats(c.record["init_pid"])
        return data

    if opts["stats"]:
        emit("stats", stats())
        return 0
    watch = mgr.oom_watch()
    try:
        due = time.monotonic() + interval
        while c.status() != "stopped":
            wait = max(due - time.monotonic(), 0)
            ready = select.select([watch] if watch is not None else [], [], [], wait)[0]
            if ready:
                n = watch.read()
                if n is None:  # the cgroup is gone or empty
                    break
                for _ in range(n):
                    emit("oom")
                continue
            emit("stats", stats())
            due = time.monotonic() + interval
        else:
            # Stopped: an OOM that killed it may have come after the last select.
            if watch is not None:
                for _ in range(watch.final()):
                    emit("oom")
    finally:
        if watch is not None:
            watch.close()
    return 0
