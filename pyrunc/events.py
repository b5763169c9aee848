"""A running container's statistics and events (runc's `events`)."""
import time


def stats(c):
    """The cgroup statistics of container c (a state.Container with cgroups), and with
    its own network namespace runc's network_interfaces: the counters of its netns."""
    data = c.cgroup_manager().stats()
    if any(ns.get("type") == "network" and not ns.get("path")
           for ns in (c.config.get("linux") or {}).get("namespaces") or ()):
        from pyrunc.linux.netlink import interface_stats

        data["network_interfaces"] = interface_stats(c.record["init_pid"])
    return data


def events(c, interval):
    """Yield {"type": "stats", "id", "data"} every interval seconds and {"type": "oom",
    "id"} for each OOM kill, until container c stops."""
    import select

    mgr = c.cgroup_manager()
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
                    yield {"type": "oom", "id": c.id}
                continue
            yield {"type": "stats", "id": c.id, "data": stats(c)}
            due = time.monotonic() + interval
        # Stopped or empty: an OOM kill that ended it may have come after the last select,
        # or its notification may still be on the kernel's timer (MemoryEventsWatch.final).
        if watch is not None:
            for _ in range(watch.final()):
                yield {"type": "oom", "id": c.id}
    finally:
        if watch is not None:
            watch.close()
