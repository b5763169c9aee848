"""systemd cgroup driver (`--systemd-cgroup`), after runc's libcontainer/cgroups/systemd.

The container's cgroup is a transient scope that systemd makes over D-Bus
(StartTransientUnit: Slice, Delegate=yes, the init's pid in PIDs, the resource
properties), named from cgroupsPath "slice:prefix:name" ("system.slice:runc:<id>" when
empty). Everything else goes through the cgroupfs manager of the host's hierarchy
(``v2.V2Manager`` or ``v1.V1Manager``) on the scope's directories, as runc's drivers
wrap fs2/fs: what systemd cannot express, freezing, pids, stats, joining for exec. On
cgroup v1 the hierarchies systemd does not manage (cpuset, freezer, ...) get their
directories from the cgroupfs manager, which also puts the init there. Delete stops the
scope (StopUnit, waiting for its job) and resets it if it failed.

The scope needs the init's pid, so it is made by ``apply`` (after the fork, before the
init runs anything of the container): ``set`` before that only keeps the resources,
which go into StartTransientUnit.
"""
import os

from pyrunc.cgroups.base import Manager, is_unified
from pyrunc.cgroups.systemd import props as sp
from pyrunc.cgroups.fs import missing_dirs, own_cgroups, warn
from pyrunc.errors import OptionError, PyruncError
from pyrunc.cgroups import fs as u

PRIVATE_SOCKET = "/run/systemd/private"
_DEST, _PATH = "org.freedesktop.systemd1", "/org/freedesktop/systemd1"
_MGR = "org.freedesktop.systemd1.Manager"
_TIMEOUT = 30.0  # runc's wait for a unit's job


# The v1 hierarchies systemd makes a unit's cgroup in ("" : the hybrid v2 one).
_SYSTEMD_V1 = frozenset(("name=systemd", "cpu", "cpuacct", "blkio", "memory", "devices", "pids", ""))


def running_systemd():
    """sd_booted(3): systemd is the init system."""
    return os.path.isdir("/run/systemd/system") and not os.path.islink("/run/systemd/system")


def _err(msg):
    return PyruncError(f"cgroup systemd: {msg}")


class _Systemd:
    """One D-Bus connection to systemd's manager: root uses systemd's private socket (as
    systemctl does), else (or when it is missing) the system bus."""

    def __init__(self):
        from pyrunc.cgroups.systemd import dbus

        self.dbus = dbus
        self.conn = None
        errors = []
        if os.geteuid() == 0 and os.path.exists(PRIVATE_SOCKET):
            try:
                self.conn = dbus.Connection(PRIVATE_SOCKET, bus=False, timeout=_TIMEOUT)
            except dbus.DBusError as e:
                errors.append(str(e))
        if self.conn is None:
            addr = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "")
            path = addr[len("unix:path="):].split(",")[0] if addr.startswith("unix:path=") else dbus.SYSTEM_BUS
            try:
                self.conn = dbus.Connection(path, bus=True, timeout=_TIMEOUT)
                self.conn.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "AddMatch", "s", (f"type='signal',sender='{_DEST}',interface='{_MGR}',"
                                                 "member='JobRemoved'",))
            except dbus.DBusError as e:
                errors.append(str(e))
                raise _err("cannot connect to systemd over D-Bus: " + "; ".join(errors)) from None

    def close(self):
        self.conn.close()

    def call(self, member, sig="", args=()):
        return self.conn.call(_DEST, _PATH, _MGR, member, sig, args)

    def version(self):
        (v,) = self.conn.call(_DEST, _PATH, "org.freedesktop.DBus.Properties", "Get", "ss",
                              (_MGR, "Version"))
        digits = ""
        for ch in str(v).lstrip('"v'):
            if not ch.isdigit():
                break
            digits += ch
        return int(digits) if digits else -1

    def wait_job(self, job):
        """The result of a job ("done", "failed", ...) from its JobRemoved signal."""
        msg = self.conn.wait_signal(lambda m: m.member == "JobRemoved" and m.body[1:2] == (job,),
                                    timeout=_TIMEOUT)
        return msg.body[3]

    def start_unit(self, unit, props):
        """runc's startUnit: StartTransientUnit, a leftover unit of that name reset and
        the start retried once; waits for the job."""
        for retry in (True, False):
            try:
                (job,) = self.call("StartTransientUnit", "ssa(sv)a(sa(sv))", (unit, "replace", props, []))
                break
            except self.dbus.DBusError as e:
                if e.name != "org.freedesktop.systemd1.UnitExists" or not retry:
                    raise _err(f"unable to start unit \"{unit}\": {e}") from None
                self.reset_failed(unit)
        try:
            result = self.wait_job(job)
        except self.dbus.DBusError as e:
            self.reset_failed(unit)
            raise _err(f"waiting for systemd to create {unit}: {e}") from None
        if result != "done":
            self.reset_failed(unit)
            raise _err(f"error creating systemd unit `{unit}`: got `{result}`")

    def stop_unit(self, unit):
        """runc's stopUnit: StopUnit and its job; a unit that is gone already is fine."""
        try:
            (job,) = self.call("StopUnit", "ss", (unit, "replace"))
        except self.dbus.DBusError as e:
            if e.name not in ("org.freedesktop.systemd1.NoSuchUnit", "org.freedesktop.DBus.Error.UnknownObject"):
                raise _err(f"stopping unit {unit}: {e}") from None
        else:
            try:
                result = self.wait_job(job)
            except self.dbus.DBusError as e:
                raise _err(f"timed out while waiting for systemd to remove {unit}: {e}") from None
            if result != "done":
                warn(f"error removing unit `{unit}`: got `{result}`. Continuing...")
        self.reset_failed(unit)

    def reset_failed(self, unit):
        try:
            self.call("ResetFailedUnit", "s", (unit,))
        except self.dbus.DBusError:
            pass

    def set_properties(self, unit, props):
        try:
            self.call("SetUnitProperties", "sba(sv)", (unit, True, props))
        except self.dbus.DBusError as e:
            raise _err(f"unable to set unit properties of {unit}: {e}") from None


def _init_cgroups():
    """pid 1's cgroups by v1 controller, "init.scope" trimmed (runc's getSubsystemPath)."""
    try:
        with open("/proc/1/cgroup", "rb") as f:
            text = f.read().decode(errors="surrogateescape")
    except OSError:
        return {}
    out = {}
    for k, v in own_cgroups(text).items():
        v = os.path.normpath(v)
        if v.endswith("/init.scope") or v == "init.scope":
            v = v[:-len("init.scope")]
        out[k] = "/" + v.strip("/")
    return out


class SystemdManager(Manager):
    def __init__(self, container_id, cgroups_path, *, rootless=False, annotations=None, _state=None):
        self.container_id = container_id
        self.cgroups_path = cgroups_path
        self.rootless = rootless
        self._pending = None
        if _state is not None:
            from pyrunc.cgroups import cgroupfs

            self.unit, self.slice, self.name = _state["unit"], _state["slice"], _state["name"]
            self.fs = cgroupfs.load_manager(_state["fs"])
            self.started = True
            self.extra = []
            return
        if rootless:
            raise OptionError("systemd_cgroup", "{option}: rootless containers (a user's systemd "
                              "manager) are not supported")
        self.extra = sp.annotation_properties(annotations)  # runc checks them first
        self.slice, prefix, self.name = sp.parse_cgroups_path(cgroups_path, container_id)
        self.unit = sp.unit_name(prefix, self.name)
        self.started = False
        rel = sp.expand_slice(self.slice).rstrip("/") + "/" + self.unit
        if is_unified():
            from pyrunc.cgroups.v2.manager import V2Manager

            self.fs = V2Manager(container_id, rel)
        else:
            from pyrunc.cgroups.v1.manager import V1Manager

            self.fs = V1Manager(container_id, rel)
            init = _init_cgroups()
            for sub, p in list(self.fs.paths.items()):
                base = init.get(sub, "/")
                if base != "/":
                    mnt = self.fs._mountpoints[sub]
                    self.fs.paths[sub] = os.path.join(mnt, base.strip("/"), rel.lstrip("/"))

    @property
    def cgroup_version(self):
        return self.fs.cgroup_version

    @property
    def v2(self):
        return self.fs.cgroup_version == 2

    @property
    def paths(self):
        return self.fs.paths

    def to_state(self):
        return {
            "cgroup_version": self.fs.cgroup_version,
            "driver": "systemd",
            "container_id": self.container_id,
            "cgroups_path": self.cgroups_path,
            "rootless": self.rootless,
            "unit": self.unit,
            "slice": self.slice,
            "name": self.name,
            "paths": dict(self.fs.paths),
            "fs": self.fs.to_state(),
        }

    def planned_state(self):
        """to_state() once create() has run, for an interrupted create's recovery: the
        directories the cgroupfs manager would make (v1: in the hierarchies systemd does
        not manage; v2: none, systemd makes the scope's) and the unit to stop."""
        st = self.to_state()
        fs = st["fs"]
        if self.v2:
            fs["created"] = []
        else:
            mine = [(self.fs._mountpoints.get(sub, "/"), p) for sub, p in self.fs._unique()
                    if sub not in _SYSTEMD_V1]
            fs["created"] = missing_dirs(mine)
        return st

    # -- create / apply / destroy ------------------------------------------------

    def create(self):
        if not running_systemd():
            raise PyruncError("systemd not running on this host, cannot use systemd cgroups manager")

    def placement_targets(self):
        if not self.started:
            return None, []  # the scope is made with the init's pid in it
        return self.fs.placement_targets()

    def apply(self, pid, skip=()):
        if self.started:
            self.fs.apply(pid, skip)
            return
        r, linux_devices, skip_devices = self._pending or ({}, None, False)
        sd = _Systemd()
        try:
            version = sd.version()
            props = sp.base_properties(self.name, self.unit, self.slice, pid, v2=self.v2) + self.extra
            res, exact = sp.resource_properties(r, linux_devices, version, v2=self.v2)
            if skip_devices:
                res = [p for p in res if not p[0].startswith("Device")]
            sd.start_unit(self.unit, props + res)
            self.started = True
            try:
                # As runc: the v2 path's parents get every controller enabled (systemd
                # enables only those it manages); v1: the hierarchies systemd does not
                # manage get their directories, and every one the pid.
                self.fs.create()
                if not self.v2:
                    self.fs.apply(pid)
                self._set_fs(r, linux_devices, skip_devices, exact)
            except BaseException:
                self._stop(sd)
                raise
        finally:
            sd.close()

    def _set_fs(self, r, linux_devices, skip_devices, exact):
        # On v2 systemd's own device program enforces rules it could express exactly;
        # the cgroupfs manager applies the others (v1: always, as runc).
        self.fs.set(r, linux_devices=linux_devices,
                    skip_devices=skip_devices or (self.v2 and exact))

    def _stop(self, sd):
        sd.stop_unit(self.unit)
        self.started = False

        leaves = set(self.fs.paths.values())
        left, err = u.rmdir_created(sorted(set(self.fs.created) | leaves), leaves)
        self.fs.created = [d for d in self.fs.created if d in set(left)]
        if left:
            raise PyruncError(f"cgroup: {err}")

    def destroy(self):
        if not self.started:
            return
        sd = _Systemd()
        try:
            self._stop(sd)
        finally:
            sd.close()

    def exists(self):
        return self.fs.exists()

    def pids(self):
        return self.fs.pids() if self.started else []

    # -- resources -----------------------------------------------------------------

    def set(self, resources, *, linux_devices=None, skip_devices=False):
        r = resources or {}
        if not isinstance(r, dict):
            raise PyruncError("cgroup: linux.resources must be an object")
        if not self.started:
            self._pending = (r, linux_devices, skip_devices)  # for apply's StartTransientUnit
            return
        sd = _Systemd()
        try:
            props, exact = sp.resource_properties(r, linux_devices, sd.version(), v2=self.v2)
            if skip_devices:
                props = [p for p in props if not p[0].startswith("Device")]
            # runc (v1): systemd rewrites device rules with a deny-all first; the
            # container is frozen meanwhile so that it sees no spurious EPERM.
            thaw = not self.v2 and not skip_devices and not self.fs.frozen()
            if thaw:
                try:
                    self.fs.freeze()
                except PyruncError:
                    thaw = False
            try:
                sd.set_properties(self.unit, props)
            finally:
                if thaw:
                    self.fs.thaw()
        finally:
            sd.close()
        self._set_fs(r, linux_devices, skip_devices, exact)

    # -- the rest: the cgroupfs manager's ----------------------------------------------

    def freeze(self):
        self.fs.freeze()

    def thaw(self):
        self.fs.thaw()

    def frozen(self):
        return self.fs.frozen()

    def stats(self):
        return self.fs.stats()

    def oom_eventfd(self):
        return self.fs.oom_eventfd()
