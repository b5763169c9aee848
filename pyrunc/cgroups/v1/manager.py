"""cgroup v1 manager (cgroupfs driver): one directory per hierarchy.

Controller semantics and file names follow runc's libcontainer/cgroups/fs.
This module places the cgroup (one path per hierarchy), creates, joins and
removes it, freezes, lists pids and reads stats; the per-controller setters
(a "wants" predicate and a setter each) are in ``controllers.py``, applied
by ``set`` in runc's order (``ORDER``).
"""

import errno
import os
import time

from pyrunc.cgroups.base import ROOTLESS_JOIN_ERRNOS, Manager
from pyrunc.cgroups import fs as u
from pyrunc.cgroups.fs import CgroupError, error, write_file
from pyrunc.errors import PyruncError

# runc's fs.subsystems order (Set is applied in this order).
ORDER = ("cpuset", "devices", "memory", "cpu", "cpuacct", "pids", "blkio", "hugetlb",
         "net_cls", "net_prio", "perf_event", "freezer", "rdma", "name=systemd", "misc",
         "")  # "": the v2 hierarchy of a hybrid host (runc joins it too)


def _label(sub):
    return sub or "unified"


# ---------------------------------------------------------------------------


class V1Manager(Manager):
    cgroup_version = 1

    def __init__(self, container_id, cgroups_path, *, rootless=False, mountinfo=None,
                 self_cgroup=None, _state=None):
        """``mountinfo``/``self_cgroup``: text of /proc/self/{mountinfo,cgroup}
        (injectable for tests; read from /proc when None)."""
        self.container_id = container_id
        self.cgroups_path = cgroups_path
        self.rootless = rootless
        self.created = []
        self._linux_devices = None
        self.fresh = False  # made by create() here: no process in it yet
        if _state is not None:
            self.paths = dict(_state["paths"])
            self.created = list(_state.get("created") or ())
            self._mountpoints = dict(_state.get("mountpoints") or {})
            return
        inner = u.clean_path(cgroups_path or "") or u.clean_path(container_id or "")
        if not inner or inner == "/":
            raise PyruncError(f"cgroup: invalid cgroups path {cgroups_path!r}")
        mounts = u.v1_mounts(mountinfo)
        own = None
        self.paths = {}
        self._mountpoints = {}
        for sub in ORDER:
            if sub not in mounts:
                continue
            mnt, root = mounts[sub]
            if inner.startswith("/"):
                p = os.path.join(mnt, inner.lstrip("/"))
            else:
                if own is None:
                    own = u.own_cgroups(self_cgroup)
                base = own.get(sub, root)
                inside = root == "/" or base == root or base.startswith(root.rstrip("/") + "/")
                rel = os.path.relpath(base, root) if inside else "."
                p = os.path.normpath(os.path.join(mnt, rel, inner))
            self.paths[sub] = p
            self._mountpoints[sub] = mnt

    # -- state ---------------------------------------------------------------

    def to_state(self):
        return {
            "cgroup_version": 1,
            "driver": "cgroupfs",
            "container_id": self.container_id,
            "cgroups_path": self.cgroups_path,
            "rootless": self.rootless,
            "paths": dict(self.paths),
            "mountpoints": dict(self._mountpoints),
            "created": list(self.created),
        }

    # -- create / apply / destroy ----------------------------------------------

    def _leaf_dirs(self):
        return [(self._mountpoints.get(sub, "/"), p) for sub, p in self._unique()]

    def _unique(self):
        """(controller, path) with co-mounted hierarchies (same path) once."""
        seen = set()
        for sub in ORDER:
            p = self.paths.get(sub)
            if p is None or p in seen:
                continue
            seen.add(p)
            yield sub, p

    def create(self):
        try:
            for sub, path in list(self._unique()):
                mnt = self._mountpoints.get(sub, "/")
                try:
                    self._mkdir_p(sub, mnt, path)
                except CgroupError as e:
                    # The v2 hierarchy of a hybrid host holds no controllers
                    # here: joining it is best effort. Rootless: skip what we
                    # may not create (set() fails if limits need it).
                    if sub == "" or (self.rootless and e.errno in (errno.EACCES, errno.EPERM, errno.EROFS)):
                        for k in [k for k, v in self.paths.items() if v == path]:
                            del self.paths[k]
                        continue
                    raise
        except BaseException:
            u.rmdir_created(self.created, (), timeout=0)
            self.created = []
            raise
        self.fresh = True

    def _mkdir_p(self, sub, mnt, path):
        rel = os.path.relpath(path, mnt)
        if rel.startswith(".."):
            raise error(_label(sub), f"cgroup path {path} is outside the hierarchy {mnt}")
        cur = mnt
        parts = [] if rel == "." else rel.split("/")
        for comp in parts:
            parent, cur = cur, os.path.join(cur, comp)
            u.make_dir(_label(sub), cur, self.created)
            if sub == "cpuset":
                # As runc's cpusetEnsureParent: a cpuset cgroup with empty
                # cpus/mems cannot hold tasks, so fill new directories (and an
                # existing one only where it is still empty) from the parent.
                self._cpuset_copy(cur, parent)

    @staticmethod
    def _cpuset_copy(cur, parent):
        for f in ("cpuset.cpus", "cpuset.mems"):
            v = u.try_read(cur, f)
            if v is not None and v.strip() == "":
                pv = (u.try_read(parent, f) or "").strip()
                if pv:
                    write_file("cpuset", cur, f, pv)

    def placement_targets(self):
        return self.paths.get(""), [(_label(sub), p) for sub, p in self._unique() if sub]

    def apply(self, pid, skip=()):
        for sub, path in self._unique():
            if path in skip:
                continue
            try:
                u.write_procs(_label(sub), path, pid)
            except CgroupError as e:
                if sub == "" or (self.rootless and e.errno in ROOTLESS_JOIN_ERRNOS):
                    continue
                raise

    def destroy(self):
        if not self.created:
            return
        left, err = u.rmdir_created(self.created, set(self.paths.values()))
        self.created = [d for d in self.created if d in set(left)]
        if left:
            raise PyruncError(f"cgroup: {err}")

    def exists(self):
        p = self._primary()
        return p is not None and os.path.isdir(p)

    # -- resources -------------------------------------------------------------

    def set(self, resources, *, linux_devices=None, skip_devices=False):
        r = resources or {}
        if not isinstance(r, dict):
            raise PyruncError("cgroup: linux.resources must be an object")
        if r.get("unified"):
            raise PyruncError("cgroup: linux.resources.unified needs cgroup v2 (this host uses cgroup v1)")
        from pyrunc.cgroups.v1.controllers import CONTROLLERS

        self._linux_devices = linux_devices
        todo = []
        for sub in ORDER:
            ent = CONTROLLERS.get(sub)
            if ent is None:
                continue
            wants, setter = ent
            path = self.paths.get(sub)
            if path is None:
                if wants(r) and not (sub == "devices" and (self.rootless or skip_devices)):
                    raise error(sub, "cannot set limits: the controller is not available "
                                + ("(no permission to create the cgroup, rootless)" if self.rootless
                                   else "(not mounted on this cgroup v1 host)"))
                continue
            if (sub == "devices" and not skip_devices) or wants(r):
                todo.append((sub, path, setter))
        for sub, path, setter in todo:
            try:
                setter(path, r, self)
            except CgroupError:
                if self.rootless and sub == "devices":
                    continue
                raise

    # -- freezer ---------------------------------------------------------------

    def _freezer(self):
        p = self.paths.get("freezer")
        if p is None:
            raise error("freezer", "not available (not mounted on this host)")
        return p

    def freeze(self):
        p = self._freezer()
        try:
            # runc's loop: v1 freezing can get stuck in FREEZING while tasks keep
            # appearing; an occasional thaw + short sleep gets it unstuck.
            for i in range(1000):
                if i % 50 == 49:
                    write_file("freezer", p, "freezer.state", "THAWED")
                    time.sleep(0.01)
                write_file("freezer", p, "freezer.state", "FROZEN")
                if i % 25 == 24:
                    time.sleep(0.00001)
                st = u.read_file(p, "freezer.state").strip()
                if st == "FROZEN":
                    return
                if st != "FREEZING":
                    raise error("freezer", f"unexpected state {st} while freezing")
            raise error("freezer", "unable to freeze (stuck in FREEZING)")
        except BaseException:
            try:
                write_file("freezer", p, "freezer.state", "THAWED")
            except PyruncError:
                pass
            raise

    def thaw(self):
        p = self._freezer()
        write_file("freezer", p, "freezer.state", "THAWED")
        for _ in range(1000):
            st = u.read_file(p, "freezer.state").strip()
            if st == "THAWED":
                return
            time.sleep(0.001)
        raise error("freezer", f"unable to thaw (state {st})")

    def frozen(self):
        p = self.paths.get("freezer")
        if p is None:
            return False
        for _ in range(1000):
            st = u.try_read(p, "freezer.state")
            if st is None:
                return False
            st = st.strip()
            if st == "THAWED":
                return False
            if st == "FROZEN":
                # Frozen by itself, not only through a frozen ancestor.
                self_f = u.try_read(p, "freezer.self_freezing")
                return self_f is None or self_f.strip() == "1"
            time.sleep(0.001)  # FREEZING: wait for a stable state
        return False

    # -- pids ------------------------------------------------------------------

    def _primary(self):
        for sub in ("devices", "freezer", "pids", "memory", "cpu", "cpuset", "name=systemd"):
            if sub in self.paths:
                return self.paths[sub]
        return next(iter(self.paths.values()), None)

    def pids(self):
        p = self._primary()
        if p is None:
            return []
        return sorted(set(u.read_procs(p)))

    # -- events ----------------------------------------------------------------

    def oom_eventfd(self):
        p = self.paths.get("memory")
        if p is None:
            return None
        efd = os.eventfd(0, os.EFD_CLOEXEC)
        try:
            cfd = os.open(os.path.join(p, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
            try:
                write_file("memory", p, "cgroup.event_control", f"{efd} {cfd}")
            finally:
                os.close(cfd)
        except OSError as e:
            os.close(efd)
            raise error("memory", f"registering an OOM eventfd: {os.strerror(e.errno)}") from None
        except BaseException:
            os.close(efd)
            raise
        return efd

    # -- stats -----------------------------------------------------------------

    def stats(self):
        from pyrunc.cgroups import stats as st

        out = {
            "cpu": st.v1_cpu(self.paths.get("cpu"), self.paths.get("cpuacct")),
            "cpuset": st.v1_cpuset(self.paths.get("cpuset")),
            "memory": st.v1_memory(self.paths.get("memory")),
            "pids": st.v1_pids(self.paths.get("pids")),
            "blkio": st.v1_blkio(self.paths.get("blkio")),
            "hugetlb": st.v1_hugetlb(self.paths.get("hugetlb")),
            # Not cgroup data, but part of runc's stats object: the caller may
            # fill them in.
            "intel_rdt": {},
            "network_interfaces": None,
        }
        return out
