"""cgroups manager: cgroup v1 (``v1.py``) or the unified v2 hierarchy (``v2.py``),
chosen by the host (the cgroupfs driver); with --systemd-cgroup, ``systemd.py`` over them.

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

import errno
import os

CGROUP_ROOT = "/sys/fs/cgroup"

# What a rootless runtime may not do to a cgroup, and then goes on without (as runc).
ROOTLESS_JOIN_ERRNOS = (errno.EACCES, errno.EPERM, errno.ENOENT, errno.EROFS)


def is_unified(root=CGROUP_ROOT):
    """True if ``root`` is a cgroup2 mount (a pure v2 host)."""
    # Only the root of a cgroup2 mount has cgroup.controllers at this path;
    # on v1/hybrid hosts /sys/fs/cgroup is a tmpfs of per-controller mounts.
    return os.path.exists(os.path.join(root, "cgroup.controllers"))


class Manager:
    """The interface both managers implement.

    ``paths`` maps controller -> absolute cgroup directory (v2: the single key
    ``""``, as in runc's state.json ``cgroup_paths``).
    """

    cgroup_version = 0
    paths: dict

    def create(self) -> None:
        """mkdir the container's cgroup in every controller, creating missing
        parents; remember exactly which directories were made."""
        raise NotImplementedError

    def apply(self, pid: int, skip=()) -> None:
        """Put ``pid`` into the container's cgroup (every controller but the
        directories in ``skip``, already joined)."""
        raise NotImplementedError

    def placement_targets(self):
        """(v2 directory a child can be cloned into, [(controller, v1 directory)] a
        single-threaded process can join by itself); what is in neither is left to
        apply(). The v2 manager offers none: it sets limits before its process joins."""
        return None, []

    def set(self, resources: dict, *, linux_devices=None, skip_devices=False) -> None:
        """Apply OCI ``linux.resources`` (runc semantics: 0/absent = leave alone).

        Device rules are the config's ``resources.devices`` then runc's default
        allowed devices, and they are applied on every call, as runc does (only
        the minimal transition is written): on ``update`` pass the container's
        full resources, or ``skip_devices=True`` to leave devices untouched.
        ``linux_devices`` (the config's ``linux.devices``) only drops a default
        rule whose device path it lists, like runc."""
        raise NotImplementedError

    def destroy(self) -> None:
        """rmdir every directory create() made, deepest first, never another."""
        raise NotImplementedError

    def freeze(self) -> None:
        raise NotImplementedError

    def thaw(self) -> None:
        raise NotImplementedError

    def frozen(self) -> bool:
        raise NotImplementedError

    def exists(self) -> bool:
        raise NotImplementedError

    def pids(self) -> list:
        raise NotImplementedError

    def all_pids(self) -> list:
        """Every process in the container's cgroup of every hierarchy (and their
        sub-cgroups): a half-made container's may be in some hierarchies only."""
        from pyrunc.cgroups.fs import read_procs

        out = set()
        for p in set(self.paths.values()):
            out.update(read_procs(p))
        return sorted(out)

    def planned_state(self) -> dict:
        """to_state() as it will be once create() has run: ``created`` lists the
        directories that do not exist yet. Saved before create(), it lets a process
        that finds the creation interrupted remove them (and nothing else)."""
        from pyrunc.cgroups.fs import missing_dirs

        st = self.to_state()
        st["created"] = missing_dirs(self._leaf_dirs())
        return st

    def _leaf_dirs(self):
        """[(mount point, container's directory)]"""
        raise NotImplementedError

    def kill_all(self) -> bool:
        """SIGKILL every process in the cgroup subtree at once if the kernel can
        (cgroup v2's cgroup.kill, Linux >= 5.14); False if it cannot."""
        return False

    def stats(self) -> dict:
        raise NotImplementedError

    def to_state(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_state(cls, saved):
        """The manager ``to_state()`` described: ``saved`` goes to the
        subclass's constructor as ``_state`` (which reads no cgroup files)."""
        try:
            return cls(saved.get("container_id"), saved.get("cgroups_path"),
                       rootless=bool(saved.get("rootless")), _state=saved)
        except (KeyError, TypeError, AttributeError):
            from pyrunc.errors import PyruncError

            raise PyruncError("cgroup: invalid saved cgroup state") from None

    def oom_eventfd(self):
        return None

    def oom_watch(self):
        """OOM notifications for `events` (cgroups/oomwatch.py), or None."""
        fd = self.oom_eventfd()
        if fd is None:
            return None
        from pyrunc.cgroups.oomwatch import EventfdWatch

        return EventfdWatch(self, fd)


def new_manager(container_id, cgroups_path, *, rootless=False, systemd=False, annotations=None):
    """The manager for this host: v2 if /sys/fs/cgroup is cgroup2, else v1; with
    ``systemd`` (--systemd-cgroup) the systemd driver over either (``annotations``: the
    config's, for its org.systemd.property.* unit properties)."""
    if systemd:
        from pyrunc.cgroups.systemd.driver import SystemdManager

        return SystemdManager(container_id, cgroups_path, rootless=rootless, annotations=annotations)
    if is_unified():
        from pyrunc.cgroups.v2.manager import V2Manager

        return V2Manager(container_id, cgroups_path, rootless=rootless)
    from pyrunc.cgroups.v1.manager import V1Manager

    return V1Manager(container_id, cgroups_path, rootless=rootless)


def load_manager(saved):
    """A manager from ``Manager.to_state()`` (reads no cgroup files)."""
    from pyrunc.errors import PyruncError

    if not isinstance(saved, dict):
        raise PyruncError("cgroup: invalid saved cgroup state")
    v = saved.get("cgroup_version")
    if saved.get("driver") == "systemd":
        from pyrunc.cgroups.systemd.driver import SystemdManager

        return SystemdManager.from_state(saved)
    if v == 1:
        from pyrunc.cgroups.v1.manager import V1Manager

        return V1Manager.from_state(saved)
    if v == 2:
        from pyrunc.cgroups.v2.manager import V2Manager

        return V2Manager.from_state(saved)
    raise PyruncError(f"cgroup: invalid saved cgroup state (cgroup_version {v!r})")


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
