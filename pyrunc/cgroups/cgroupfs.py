"""The cgroupfs driver: the v1 or v2 manager, made new or loaded from a saved state (the
package picks this driver or systemd/, which runs one of these under its scope)."""
from pyrunc.errors import PyruncError


def new_manager(container_id, cgroups_path, *, rootless=False, unified):
    if unified:
        from pyrunc.cgroups.v2.manager import V2Manager

        return V2Manager(container_id, cgroups_path, rootless=rootless)
    from pyrunc.cgroups.v1.manager import V1Manager

    return V1Manager(container_id, cgroups_path, rootless=rootless)


def load_manager(saved):
    """A v1 or v2 manager from its ``Manager.to_state()`` (reads no cgroup files)."""
    if not isinstance(saved, dict):
        raise PyruncError("cgroup: invalid saved cgroup state")
    v = saved.get("cgroup_version")
    if v == 1:
        from pyrunc.cgroups.v1.manager import V1Manager

        return V1Manager.from_state(saved)
    if v == 2:
        from pyrunc.cgroups.v2.manager import V2Manager

        return V2Manager.from_state(saved)
    raise PyruncError(f"cgroup: invalid saved cgroup state (cgroup_version {v!r})")
