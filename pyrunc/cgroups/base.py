"""What every cgroup manager shares: the Manager interface (v1, v2 and the systemd driver
implement it), where cgroups are mounted, is_unified(), the errnos a rootless runtime
goes on without. The managers import this module; the package (pyrunc.cgroups) picks one.
"""
import errno
import os

from pyrunc.cgroups.fs import missing_dirs, read_procs
from pyrunc.errors import PyruncError

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
        out = set()
        for p in set(self.paths.values()):
            out.update(read_procs(p))
        return sorted(out)

    def planned_state(self) -> dict:
        """to_state() as it will be once create() has run: ``created`` lists the
        directories that do not exist yet. Saved before create(), it lets a process
        that finds the creation interrupted remove them (and nothing else)."""
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
