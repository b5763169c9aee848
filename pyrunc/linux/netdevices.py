"""linux.netDevices: move host network interfaces into the container's network namespace
(config-linux.md "Network Devices"); the netlink plumbing, and the per-interface counters
of ``events --stats``, are in netlink.py.

The whole module is imported lazily, only for a config with a non-empty
``linux.netDevices`` (or by ``events`` for a container with its own network namespace);
pyroute2, ~200 ms to import, is imported inside the functions that talk netlink.

Create, step by step:

1. ``check_config`` (in ``create`` right after the config is loaded, before anything is
   made or forked): the container gets a new network namespace (neither the runtime's
   own nor another one joined by path), every interface name is valid (at most 15 bytes,
   no '/', ':' or white space, not '.' or '..'), every host device exists.
2. ``move_devices`` (when stage-1 reports the init's pid, so the namespace exists): the
   target names must be free inside the namespace (a name with ``%d`` is a template the
   kernel fills in); then each device is moved and renamed in one RTM_NEWLINK
   (IFLA_NET_NS_FD + IFLA_IFNAME), its MTU and MAC are checked (and set back if the move
   changed them), its permanent global-scope addresses of every family (IFA_F_PERMANENT,
   RT_SCOPE_UNIVERSE; the kernel drops all addresses when a device changes namespace)
   are added again with their prefix, peer, broadcast, label and settable flags, and it
   is set up.
3. A failure at any point moves the devices already moved back where they were, under
   their host names, with their addresses, MTU, MAC, bridge master and up/down state,
   then reports one line. ``move_devices`` returns an object whose ``undo()`` does the
   same if ``create`` fails later (a failing hook, a bad mount); it holds the namespace
   open (one fd, closed when the object goes away) so that the undo works even if the
   container's init already died.

Lifecycle -- the runtime does NOT move devices back when the container ends (the spec
says it MUST NOT): a network namespace's devices belong to it. When the last process of
the namespace exits, the kernel moves physical devices back to the *initial* network
namespace (under the name they had in the container; ``dev%d`` if that name is taken
there) and destroys virtual ones (veth -- its peer too --, macvlan, vlan, ...). Who wants
them elsewhere uses a poststop hook or the namespace's owner (network_namespaces(7)).
"""
import os
import weakref

from pyrunc.errors import PyruncError
from pyrunc.linux.netlink import (Dev, add_addr, carried, errno_of, find_arrival, iproute_in,
                                  link_indexes, restorable, show_addr, strerror)
from pyrunc.native.constants import IFF_UP, IFNAMSIZ
from pyrunc import log


def invalid_name(name):
    """Why ``name`` cannot be a Linux interface name (dev_valid_name), or None."""
    if not isinstance(name, str) or name == "":
        return "is empty"
    if len(name.encode("utf-8", "surrogateescape")) >= IFNAMSIZ:
        return f"is longer than {IFNAMSIZ - 1} bytes"
    if name in (".", ".."):
        return "is not a valid interface name"
    if any(c in "/:\0" or c.isspace() for c in name):
        return "is not a valid interface name (no '/', ':' or white space)"
    return None


def _target(host_name, dev):
    name = (dev or {}).get("name") if isinstance(dev, dict) else None
    return name if name else host_name


def _err(msg):
    return PyruncError(f"linux.netDevices: {msg}")


# --- checks before anything is made -----------------------------------------------------


def check_config(config):
    """The checks that need no container namespace; run before create makes anything."""
    import socket

    linux = config.get("linux") or {}
    devices = linux.get("netDevices") or {}
    if not devices:
        return
    netns = [ns for ns in linux.get("namespaces") or () if ns.get("type") == "network"]
    if not netns:
        raise _err("the container would share the runtime's network namespace: moving "
                   "devices needs a new one (a \"network\" entry without a path in linux.namespaces)")
    if netns[0].get("path"):
        raise _err(f"the container joins the network namespace {netns[0]['path']}: devices "
                   "are moved only into a new one (a \"network\" entry without a path)")
    targets = {}
    for host_name, dev in devices.items():
        why = invalid_name(host_name)
        if why:
            raise _err(f"host interface name {host_name!r} {why}")
        target = _target(host_name, dev)
        why = invalid_name(target)
        if why:
            raise _err(f"{host_name}: name {target!r} {why}")
        if "%d" not in target:
            if target in targets:
                raise _err(f"{host_name} and {targets[target]} would both be named {target!r} "
                           "in the container")
            targets[target] = host_name
        try:
            socket.if_nametoindex(host_name)
        except OSError:
            raise _err(f"network device {host_name} does not exist") from None


# --- create -----------------------------------------------------------------------------


class Moved:
    """Devices moved into a container's network namespace; ``undo()`` puts them back."""

    def __init__(self, devs, ns_fd):
        self.devs = devs
        self.ns_fd = ns_fd
        self._closer = weakref.finalize(self, os.close, ns_fd)

    def close(self):
        self._closer()

    def undo(self):
        """Move every device back to the runtime's network namespace, as it was there.
        Never raises: problems are logged as warnings."""
        try:
            for problem in _move_back(self.devs, self.ns_fd):
                log.warning(f"linux.netDevices: {problem}")
        except Exception as e:  # noqa: BLE001 - undo runs while create fails already
            log.warning(f"linux.netDevices: moving devices back: {strerror(e)}")
        finally:
            self.close()


def move_devices(init_pid, net_devices):
    """Move ``net_devices`` ({host name: {"name": new name}}) into the network namespace
    of ``init_pid`` (a new one, made by the container's stage-1).

    All or nothing: on failure, the devices already moved go back, then PyruncError.
    The devices stay in the container's namespace for its whole life; the runtime never
    moves them back when the container ends (see the module's docstring)."""
    try:
        ns_fd = os.open(f"/proc/{init_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise _err(f"opening the container's network namespace: {e.strerror}") from None
    try:
        if os.fstat(ns_fd).st_ino == os.stat("/proc/thread-self/ns/net").st_ino:
            raise _err("the container has no network namespace of its own")
        devs = _move_all(net_devices, ns_fd)
    except BaseException:
        os.close(ns_fd)
        raise
    return Moved(devs, ns_fd)


def _move_all(net_devices, ns_fd):
    from pyroute2.netlink.exceptions import NetlinkError

    host = iproute_in()
    try:
        cont = iproute_in(ns_fd)
    except BaseException as e:
        host.close()
        if isinstance(e, OSError):
            raise _err(f"entering the container's network namespace: {strerror(e)}") from None
        raise
    devs = []
    moved = []
    try:
        # Every check before the first move.
        in_cont = {link.get_attr("IFLA_IFNAME") for link in cont.get_links()}
        for host_name, dev in net_devices.items():
            target = _target(host_name, dev)
            found = host.link_lookup(ifname=host_name)
            if not found:
                raise _err(f"network device {host_name} does not exist")
            link = host.get_links(found[0])[0]
            if "%d" not in target and target in in_cont:
                raise _err(f"{host_name}: an interface named {target!r} already exists in the "
                           "container's network namespace (end the name with %d to let the "
                           "kernel pick a free one)")
            devs.append(Dev(host_name, target, link, host.get_addr(index=found[0])))
        for d in devs:
            before = link_indexes(cont)
            try:
                host.link("set", index=d.host_index, net_ns_fd=ns_fd, ifname=d.target)
            except NetlinkError as e:
                # The kernel may have moved the device and then failed to rename it.
                arrived = find_arrival(cont, before, d.mac)
                if arrived is not None:
                    d.cont_index = arrived["index"]
                    d.cont_name = arrived.get_attr("IFLA_IFNAME")
                    moved.append(d)
                raise _err(f"moving {d.host_name} into the container's network namespace as "
                           f"{d.target}: {strerror(e)}") from None
            arrived = find_arrival(cont, before, d.mac)
            if arrived is None:
                raise _err(f"{d.host_name} did not arrive in the container's network namespace")
            d.cont_index = arrived["index"]
            d.cont_name = arrived.get_attr("IFLA_IFNAME")
            moved.append(d)
            _configure_in_container(cont, d, arrived)
        return devs
    except BaseException as e:
        try:
            problems = _move_back(moved, ns_fd, host=host, cont=cont) if moved else []
        except Exception as e2:  # noqa: BLE001 - reported with the first error
            problems = [strerror(e2)]
        if not isinstance(e, Exception):
            raise
        what = str(e).removeprefix("linux.netDevices: ") if isinstance(e, PyruncError) \
            else f"moving devices into the container's network namespace: {strerror(e)}"
        if problems:
            what += f"; and putting the devices back failed: {'; '.join(problems)}"
        raise _err(what) from None
    finally:
        host.close()
        cont.close()


def _configure_in_container(cont, d, link):
    """Inside the container's namespace: MTU and MAC as on the host, the permanent
    global addresses back, link up."""
    where = f"{d.host_name} (now {d.cont_name} in the container)"
    try:
        if d.mtu is not None and link.get_attr("IFLA_MTU") != d.mtu:
            cont.link("set", index=d.cont_index, mtu=d.mtu)
        if d.mac is not None and link.get_attr("IFLA_ADDRESS") != d.mac:
            cont.link("set", index=d.cont_index, address=d.mac)
    except Exception as e:  # noqa: BLE001 - NetlinkError and friends, reported in one line
        raise _err(f"{where}: restoring MTU/MAC: {strerror(e)}") from None
    for spec in d.addrs:
        if not carried(spec):
            continue
        try:
            add_addr(cont, d.cont_index, spec, d.host_name, d.cont_name)
        except Exception as e:  # noqa: BLE001
            if errno_of(e) != 17:  # EEXIST: already there
                raise _err(f"{where}: adding address {show_addr(spec)}: {strerror(e)}") from None
    try:
        cont.link("set", index=d.cont_index, state="up")
    except Exception as e:  # noqa: BLE001
        raise _err(f"{where}: setting it up: {strerror(e)}") from None


def _move_back(devs, ns_fd, host=None, cont=None):
    """Put moved devices back in the runtime's namespace as they were; returns the
    problems met (one string each), doing as much as it can."""
    own_host = host is None
    if own_host:
        host = iproute_in()
        cont = iproute_in(ns_fd)
    problems = []
    own_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        for d in reversed(devs):
            if d.cont_index is None:
                continue
            before = link_indexes(host)
            try:
                cont.link("set", index=d.cont_index, net_ns_fd=own_fd, ifname=d.host_name)
            except Exception as e:  # noqa: BLE001
                problems.append(f"{d.cont_name} stays in the container's namespace: "
                                f"{strerror(e)}")
                continue
            back = find_arrival(host, before, d.mac)
            if back is None:
                problems.append(f"{d.host_name} was moved back but cannot be found")
                continue
            d.cont_index = None
            problems.extend(_restore_on_host(host, d, back))
    finally:
        os.close(own_fd)
        if own_host:
            host.close()
            cont.close()
    return problems


def _restore_on_host(host, d, link):
    problems = []
    idx = link["index"]

    def attempt(what, fn):
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            if errno_of(e) != 17:
                problems.append(f"{d.host_name}: {what}: {strerror(e)}")

    if d.mtu is not None and link.get_attr("IFLA_MTU") != d.mtu:
        attempt("restoring MTU", lambda: host.link("set", index=idx, mtu=d.mtu))
    if d.mac is not None and link.get_attr("IFLA_ADDRESS") != d.mac:
        attempt("restoring MAC", lambda: host.link("set", index=idx, address=d.mac))
    if d.master:
        attempt("restoring its master", lambda: host.link("set", index=idx, master=d.master))
    for spec in d.addrs:
        if restorable(spec):
            attempt(f"restoring address {show_addr(spec)}",
                    lambda spec=spec: add_addr(host, idx, spec, d.host_name, d.host_name))
    if d.flags & IFF_UP:
        attempt("setting it up", lambda: host.link("set", index=idx, state="up"))
    return problems
