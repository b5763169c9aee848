"""A process of a running container placed in existing sub-cgroups of the container's
cgroup instead of the cgroup itself (runc's `exec --cgroup`, libcontainer's
Process.SubCgroupPaths).

``SubCgroups(manager, subpaths)`` offers what cgroups.placement.Placement uses of a
manager (placement_targets, apply, rootless), with the manager's directories moved down:
``subpaths`` maps a controller (a key of ``manager.paths``: "memory", "name=systemd",
... on cgroup v1) to a path below it, or "" to one path for every controller (the only
form on cgroup v2, where the container has one directory). The sub-cgroups must exist:
nothing is created.
"""
import os
import posixpath

from pyrunc.cgroups.base import ROOTLESS_JOIN_ERRNOS
from pyrunc.cgroups import fs as u
from pyrunc.cgroups.fs import CgroupError
from pyrunc.errors import PyruncError


def _below(base, sub):
    # As runc's path.Join: a leading "/" is still relative to the container's cgroup.
    # The result must be the directory or under it: a shared name prefix ("../c1x" of
    # ".../c1") is not (runc 1.1.5 compared prefixes; later runc compares directories).
    d = posixpath.normpath(base + "/" + sub)
    if d != base and not d.startswith(base.rstrip("/") + "/"):
        raise PyruncError(f"cgroup: {sub} is not a sub cgroup path of {base}")
    return d


class SubCgroups:
    def __init__(self, manager, subpaths):
        self.rootless = bool(getattr(manager, "rootless", False))
        self.v2 = manager.cgroup_version == 2
        base = dict(manager.paths)
        for ctrl in subpaths:
            if ctrl and ctrl not in base:
                raise PyruncError(f"cgroup: unknown controller {ctrl} (the container's are "
                                  f"{', '.join(sorted(k for k in base if k)) or 'none: cgroup v2'})")
        # Co-mounted controllers (cpu,cpuacct) share a directory: a sub-cgroup given for
        # one of them moves both.
        moved = {}
        for ctrl, d in base.items():
            sub = subpaths.get("", subpaths.get(ctrl))
            if sub is not None:
                moved[d] = _below(d, sub)
        self.paths = {ctrl: moved.get(d, d) for ctrl, d in base.items()}

    def _unique(self):
        seen = set()
        for ctrl, d in self.paths.items():
            if d not in seen:
                seen.add(d)
                yield ctrl, d

    def placement_targets(self):
        if self.v2:
            return None, []  # apply() writes cgroup.procs, as the v2 manager
        return self.paths.get(""), [(ctrl, d) for ctrl, d in self._unique() if ctrl]

    def apply(self, pid, skip=()):
        for ctrl, d in self._unique():
            if d in skip:
                continue
            try:
                u.write_procs(ctrl or "unified", d, pid)
            except CgroupError as e:
                # A hybrid host's v2 hierarchy holds no controllers: best effort, as the
                # v1 manager joins it.
                if (ctrl == "" and not self.v2) or (self.rootless and e.errno in ROOTLESS_JOIN_ERRNOS):
                    continue
                why = os.strerror(e.errno) if e.errno else str(e)
                raise CgroupError(f"cgroup {ctrl or 'unified'}: joining {d}: {why}", e.errno) from None
