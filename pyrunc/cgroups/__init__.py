"""cgroups manager: cgroup v1 (``v1/``) or the unified v2 hierarchy (``v2/``), chosen by
the host (the cgroupfs driver, ``cgroupfs.py``); with --systemd-cgroup, ``systemd/`` over
them. The interface they implement is ``base.Manager``; this module only picks one.

Typical use on the create path::

    m = new_manager(cid, spec["linux"].get("cgroupsPath"))
    m.create()                       # mkdir (records exactly what it made)
    m.set(resources, linux_devices=spec["linux"].get("devices"))
    m.apply(pid)                     # limits are in place before the process joins

(create and exec place their processes with ``placement.Placement`` instead: the
process joins by itself, which spares the kernel's ~10 ms stall of a migration.)
    state["cgroup"] = m.to_state()   # later: load_manager(state["cgroup"])

Paths follow runc's cgroupfs driver: an absolute ``cgroupsPath`` is taken
relative to each hierarchy's mount point; a relative one (or, when it is absent
or empty, the container id) is placed under the runtime's own cgroup of each
controller, read from /proc/self/cgroup (on v2: under the parent of its own
cgroup, as runc does, since its own cgroup has processes in it).

Errors are ``pyrunc.errors.PyruncError`` with one line naming the controller,
the file and the value.
"""

import os


def new_manager(container_id, cgroups_path, *, rootless=False, systemd=False, annotations=None):
    """The manager for this host: v2 if /sys/fs/cgroup is cgroup2, else v1; with
    ``systemd`` (--systemd-cgroup) the systemd driver over either (``annotations``: the
    config's, for its org.systemd.property.* unit properties)."""
    if systemd:
        from pyrunc.cgroups.systemd.driver import SystemdManager

        return SystemdManager(container_id, cgroups_path, rootless=rootless, annotations=annotations)
    from pyrunc.cgroups import cgroupfs
    from pyrunc.cgroups.base import is_unified

    return cgroupfs.new_manager(container_id, cgroups_path, rootless=rootless, unified=is_unified())


def load_manager(saved):
    """A manager from ``Manager.to_state()`` (reads no cgroup files)."""
    if isinstance(saved, dict) and saved.get("driver") == "systemd":
        from pyrunc.cgroups.systemd.driver import SystemdManager

        return SystemdManager.from_state(saved)
    from pyrunc.cgroups import cgroupfs

    return cgroupfs.load_manager(saved)


def frozen_from_state(saved):
    """Whether a container's cgroup is frozen, from its saved state: the `state` and
    `list` paths read one file instead of importing and building a manager."""
    if saved.get("driver") == "systemd":
        saved = saved.get("fs") or {}  # the scope's cgroupfs manager (SystemdManager.to_state)
    if saved.get("cgroup_version") == 2:
        path, name, frozen = saved.get("path"), "cgroup.freeze", "1"  # V2Manager.to_state
    else:
        path, name, frozen = (saved.get("paths") or {}).get("freezer"), "freezer.state", None
    if not path:
        return False
    try:
        fd = os.open(os.path.join(path, name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            value = os.read(fd, 64).decode().strip()  # a one-word file
        finally:
            os.close(fd)
    except OSError:
        return False
    if frozen is not None:
        return value == frozen
    if value == "THAWED":
        return False
    return load_manager(saved).frozen()  # FROZEN or FREEZING: the manager's full check
