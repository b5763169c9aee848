"""cgroup v2 manager (unified hierarchy, cgroupfs driver), after runc's fs2.

The mount root is injectable (``mount_root``) so that the file writes can be
tested against a fake tree on a host without a pure v2 hierarchy.

Limits (set()) are in resources.py, a mixin of V2Manager.

Device rules: cgroup v2 has no devices controller; they are enforced by an eBPF
program attached to the container's cgroup (``ebpf.py``), replaced on every set().
"""

import errno
import os
import time

from pyrunc.cgroups.base import CGROUP_ROOT, ROOTLESS_JOIN_ERRNOS, Manager
from pyrunc.cgroups import fs as u
from pyrunc.cgroups.fs import CgroupError, error, write_file
from pyrunc.cgroups.v2.resources import V2Resources
from pyrunc.errors import PyruncError


class V2Manager(V2Resources, Manager):
    cgroup_version = 2

    def __init__(self, container_id, cgroups_path, *, rootless=False, mount_root=CGROUP_ROOT,
                 self_cgroup=None, _state=None):
        """``mount_root``: the cgroup2 mount; ``self_cgroup``: text of
        /proc/self/cgroup (both injectable for tests)."""
        self.container_id = container_id
        self.cgroups_path = cgroups_path
        self.rootless = rootless
        self.mount_root = mount_root
        self.created = []
        if _state is not None:
            self.path = _state["path"]
            self.mount_root = _state.get("mount_root") or CGROUP_ROOT
            self.created = list(_state.get("created") or ())
            return
        inner = u.clean_path(cgroups_path or "") or u.clean_path(container_id or "")
        if not inner or inner == "/":
            raise PyruncError(f"cgroup: invalid cgroups path {cgroups_path!r}")
        if inner.startswith("/"):
            self.path = os.path.join(mount_root, inner.lstrip("/"))
        else:
            own = u.own_cgroups(self_cgroup).get("", "/")
            # runc: the parent of our own cgroup, which has processes in it
            # and so cannot have controllers enabled for its children.
            parent = os.path.dirname(own.rstrip("/")) or "/"
            self.path = os.path.normpath(os.path.join(mount_root, parent.lstrip("/"), inner))

    @property
    def paths(self):
        return {"": self.path}

    def to_state(self):
        return {
            "cgroup_version": 2,
            "driver": "cgroupfs",
            "container_id": self.container_id,
            "cgroups_path": self.cgroups_path,
            "rootless": self.rootless,
            "mount_root": self.mount_root,
            "path": self.path,
            "created": list(self.created),
        }

    # -- create / apply / destroy ------------------------------------------------

    def _leaf_dirs(self):
        return [(self.mount_root, self.path)]

    def create(self):
        root = self.mount_root
        rel = os.path.relpath(self.path, root)
        if rel == "." or rel.startswith(".."):
            raise PyruncError(f"cgroup: invalid cgroup path {self.path} (not below {root})")
        ctrls = (u.try_read(root, "cgroup.controllers") or "").split()
        enable = " ".join("+" + c for c in ctrls)
        parts = rel.split("/")
        cur = root
        try:
            for i in range(len(parts) + 1):
                if i > 0:
                    cur = os.path.join(cur, parts[i - 1])
                    u.make_dir("unified", cur, self.created)
                    t = (u.try_read(cur, "cgroup.type") or "").strip()
                    if t == "domain invalid":
                        raise error("unified", f"cannot enter {cur}: it is in an invalid state "
                                    "(domain invalid)")
                if i < len(parts) and enable:
                    self._enable(cur, enable)
        except BaseException:
            u.rmdir_created(self.created, (), timeout=0)
            self.created = []
            raise

    @staticmethod
    def _enable(d, enable):
        # Enable every controller the host has for the children of d (as runc
        # does); one at a time if all at once fails. Errors are not fatal: set()
        # reports a controller that is missing when limits need it.
        try:
            write_file("unified", d, "cgroup.subtree_control", enable)
        except PyruncError:
            for c in enable.split():
                try:
                    write_file("unified", d, "cgroup.subtree_control", c)
                except PyruncError:
                    pass

    def apply(self, pid, skip=()):
        if self.path in skip:
            return
        try:
            u.write_procs("unified", self.path, pid)
        except CgroupError as e:
            if self.rootless and e.errno in ROOTLESS_JOIN_ERRNOS:
                return
            raise

    def destroy(self):
        if not self.created:
            return
        left, err = u.rmdir_created(self.created, (self.path,))
        self.created = [d for d in self.created if d in set(left)]
        if left:
            raise PyruncError(f"cgroup: {err}")

    def exists(self):
        return os.path.isdir(self.path)

    def pids(self):
        return sorted(set(u.read_procs(self.path)))

    def kill_all(self):
        try:
            write_file("unified", self.path, "cgroup.kill", "1")
        except CgroupError as e:
            if e.errno == errno.ENOENT:
                # no cgroup left: nothing to kill; no cgroup.kill (Linux < 5.14): signal pids
                return not os.path.isdir(self.path)
            if self.rootless and e.errno in ROOTLESS_JOIN_ERRNOS:
                return False
            raise
        return True

    # -- freezer ---------------------------------------------------------------

    def _set_freeze(self, val):
        try:
            write_file("freezer", self.path, "cgroup.freeze", val)
        except CgroupError as e:
            if val == "0" and e.errno == errno.ENOENT:
                return  # no freezer: thawing is a no-op
            raise

    def freeze(self):
        self._set_freeze("1")
        try:
            for _ in range(500):  # ~5 s like runc's bounded wait (runc: 10 s)
                ev = u.parse_flat_keyed(u.try_read(self.path, "cgroup.events") or "")
                if ev.get("frozen") == 1:
                    return
                if "frozen" not in ev:
                    raise error("freezer", "cgroup.events has no \"frozen\" line")
                time.sleep(0.01)
            raise error("freezer", "timed out waiting for the cgroup to freeze")
        except BaseException:
            try:
                self._set_freeze("0")
            except PyruncError:
                pass
            raise

    def thaw(self):
        self._set_freeze("0")
        for _ in range(500):
            ev = u.parse_flat_keyed(u.try_read(self.path, "cgroup.events") or "")
            if ev.get("frozen", 0) == 0:
                return
            time.sleep(0.01)
        raise error("freezer", "timed out waiting for the cgroup to thaw")

    def frozen(self):
        s = u.try_read(self.path, "cgroup.freeze")
        return s is not None and s.strip() == "1"

    # -- events / stats ----------------------------------------------------------

    def oom_watch(self):
        if not os.path.exists(os.path.join(self.path, "memory.events")):
            return None
        from pyrunc.cgroups.oomwatch import MemoryEventsWatch

        try:
            return MemoryEventsWatch(self.path)
        except OSError as e:
            raise error("memory", f"watching memory.events: {os.strerror(e.errno)}") from None

    def stats(self):
        from pyrunc.cgroups import stats as st

        p = self.path
        return {
            "cpu": st.v2_cpu(p),
            "cpuset": st.v2_cpuset(p),
            "memory": st.v2_memory(p),
            "pids": st.v2_pids(p),
            "blkio": st.v2_blkio(p),
            "hugetlb": st.v2_hugetlb(p),
            "intel_rdt": {},
            "network_interfaces": None,
        }
