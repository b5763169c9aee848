"""linux.netDevices: move host network interfaces into the container's network namespace
(config-linux.md "Network Devices"), and the per-interface counters of ``events --stats``.

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

from pyrunc.errors import PyruncError
from pyrunc.native.constants import (CLONE_NEWNET, IFA_F_HOMEADDRESS, IFA_F_MANAGETEMPADDR,
                                     IFA_F_MCAUTOJOIN, IFA_F_NODAD, IFA_F_NOPREFIXROUTE,
                                     IFA_F_OPTIMISTIC, IFA_F_PERMANENT, IFF_UP, IFNAMSIZ,
                                     RT_SCOPE_UNIVERSE)

# Address flags user space may set (the rest -- tentative, deprecated, secondary,
# permanent, dadfailed -- the kernel owns).
_SETTABLE_ADDR_FLAGS = (IFA_F_NODAD | IFA_F_OPTIMISTIC | IFA_F_HOMEADDRESS | IFA_F_MANAGETEMPADDR
                        | IFA_F_NOPREFIXROUTE | IFA_F_MCAUTOJOIN)

# events --stats: (our key, IFLA_STATS64 field), in runc's field order.
# runc's types.NetworkInterface has no JSON tags: its events print the Go field names.
STATS_KEYS = (
    ("RxBytes", "rx_bytes"), ("RxPackets", "rx_packets"), ("RxErrors", "rx_errors"),
    ("RxDropped", "rx_dropped"), ("TxBytes", "tx_bytes"), ("TxPackets", "tx_packets"),
    ("TxErrors", "tx_errors"), ("TxDropped", "tx_dropped"),
)


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


# --- netlink plumbing -------------------------------------------------------------------


def _iproute_in(ns_fd=None):
    """An IPRoute whose socket lives in the network namespace ``ns_fd`` (a netlink socket
    belongs to the namespace it was made in): setns there, make it, setns back."""
    from pyroute2 import IPRoute

    if ns_fd is None:
        return IPRoute()
    from pyrunc.native import syscalls as sc

    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(ns_fd, CLONE_NEWNET)
        try:
            return IPRoute()
        finally:
            sc.setns(own, CLONE_NEWNET)
    finally:
        os.close(own)


def _strerror(e):
    code = getattr(e, "code", None) or (e.args[0] if e.args and isinstance(e.args[0], int) else None)
    if isinstance(code, int) and code > 0:
        return os.strerror(code)
    return str(e)


def _errno(e):
    code = getattr(e, "code", None)
    if code is None and e.args and isinstance(e.args[0], int):
        code = e.args[0]
    return code


class _Dev:
    """A device to move: what it was on the host, where it went in the container."""

    def __init__(self, host_name, target, link, addrs):
        self.host_name = host_name
        self.target = target
        self.host_index = link["index"]
        self.flags = link["flags"]
        self.mtu = link.get_attr("IFLA_MTU")
        self.mac = link.get_attr("IFLA_ADDRESS")
        self.master = link.get_attr("IFLA_MASTER")
        self.addrs = [_addr_spec(a) for a in addrs]
        self.cont_index = None  # set once the device is in the container's namespace
        self.cont_name = None


def _addr_spec(msg):
    """An address dump as the keyword arguments that add it again."""
    flags = msg.get_attr("IFA_FLAGS")
    if flags is None:
        flags = msg["flags"]
    spec = {"family": msg["family"], "prefixlen": msg["prefixlen"], "scope": msg["scope"],
            "flags": flags}
    for attr, key in (("IFA_ADDRESS", "address"), ("IFA_LOCAL", "local"),
                      ("IFA_BROADCAST", "broadcast"), ("IFA_LABEL", "label"),
                      ("IFA_RT_PRIORITY", "rt_priority")):
        v = msg.get_attr(attr)
        if v is not None:
            spec[key] = v
    return spec


def _carried(spec):
    """Addresses the spec says move with the device: permanent, global scope."""
    return bool(spec["flags"] & IFA_F_PERMANENT) and spec["scope"] == RT_SCOPE_UNIVERSE


def _restorable(spec):
    """Addresses to put back on a device that returns to the host: the permanent ones,
    but not IPv6 link-local addresses (the kernel makes them again when the link is up)."""
    if not spec["flags"] & IFA_F_PERMANENT:
        return False
    return not (spec["family"] == 10 and spec.get("address", "").lower().startswith("fe80:"))


def _add_addr(ipr, index, spec, old_name, new_name):
    kw = {k: v for k, v in spec.items() if k not in ("flags", "label")}
    label = spec.get("label")
    if label is not None and old_name != new_name:
        # An IPv4 label is the device name, or "<name>:<alias>": follow the rename.
        if label == old_name:
            label = None
        elif label.startswith(old_name + ":"):
            label = new_name + label[len(old_name):]
    if label is not None and len(label.encode()) < IFNAMSIZ:
        kw["label"] = label
    flags = spec["flags"] & _SETTABLE_ADDR_FLAGS
    if flags:
        kw["IFA_FLAGS"] = flags
    ipr.addr("add", index=index, **kw)


def _link_indexes(ipr):
    return {link["index"]: link for link in ipr.get_links()}


def _find_arrival(ipr, before, mac):
    """The link that appeared in ``ipr``'s namespace since ``before`` (index -> link)."""
    new = [link for i, link in _link_indexes(ipr).items() if i not in before]
    if len(new) > 1:
        new = [link for link in new if link.get_attr("IFLA_ADDRESS") == mac] or new
    return new[0] if new else None


def _show_addr(spec):
    return f"{spec.get('local') or spec.get('address')}/{spec['prefixlen']}"


# --- create -----------------------------------------------------------------------------


class Moved:
    """Devices moved into a container's network namespace; ``undo()`` puts them back."""

    def __init__(self, devs, ns_fd):
        import weakref

        self.devs = devs
        self.ns_fd = ns_fd
        self._closer = weakref.finalize(self, os.close, ns_fd)

    def close(self):
        self._closer()

    def undo(self):
        """Move every device back to the runtime's network namespace, as it was there.
        Never raises: problems are logged as warnings."""
        from pyrunc import log

        try:
            for problem in _move_back(self.devs, self.ns_fd):
                log.warning(f"linux.netDevices: {problem}")
        except Exception as e:  # noqa: BLE001 - undo runs while create fails already
            log.warning(f"linux.netDevices: moving devices back: {_strerror(e)}")
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

    host = _iproute_in()
    try:
        cont = _iproute_in(ns_fd)
    except BaseException as e:
        host.close()
        if isinstance(e, OSError):
            raise _err(f"entering the container's network namespace: {_strerror(e)}") from None
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
            devs.append(_Dev(host_name, target, link, host.get_addr(index=found[0])))
        for d in devs:
            before = _link_indexes(cont)
            try:
                host.link("set", index=d.host_index, net_ns_fd=ns_fd, ifname=d.target)
            except NetlinkError as e:
                # The kernel may have moved the device and then failed to rename it.
                arrived = _find_arrival(cont, before, d.mac)
                if arrived is not None:
                    d.cont_index = arrived["index"]
                    d.cont_name = arrived.get_attr("IFLA_IFNAME")
                    moved.append(d)
                raise _err(f"moving {d.host_name} into the container's network namespace as "
                           f"{d.target}: {_strerror(e)}") from None
            arrived = _find_arrival(cont, before, d.mac)
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
            problems = [_strerror(e2)]
        if not isinstance(e, Exception):
            raise
        what = str(e).removeprefix("linux.netDevices: ") if isinstance(e, PyruncError) \
            else f"moving devices into the container's network namespace: {_strerror(e)}"
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
        raise _err(f"{where}: restoring MTU/MAC: {_strerror(e)}") from None
    for spec in d.addrs:
        if not _carried(spec):
            continue
        try:
            _add_addr(cont, d.cont_index, spec, d.host_name, d.cont_name)
        except Exception as e:  # noqa: BLE001
            if _errno(e) != 17:  # EEXIST: already there
                raise _err(f"{where}: adding address {_show_addr(spec)}: {_strerror(e)}") from None
    try:
        cont.link("set", index=d.cont_index, state="up")
    except Exception as e:  # noqa: BLE001
        raise _err(f"{where}: setting it up: {_strerror(e)}") from None


def _move_back(devs, ns_fd, host=None, cont=None):
    """Put moved devices back in the runtime's namespace as they were; returns the
    problems met (one string each), doing as much as it can."""
    own_host = host is None
    if own_host:
        host = _iproute_in()
        cont = _iproute_in(ns_fd)
    problems = []
    own_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        for d in reversed(devs):
            if d.cont_index is None:
                continue
            before = _link_indexes(host)
            try:
                cont.link("set", index=d.cont_index, net_ns_fd=own_fd, ifname=d.host_name)
            except Exception as e:  # noqa: BLE001
                problems.append(f"{d.cont_name} stays in the container's namespace: "
                                f"{_strerror(e)}")
                continue
            back = _find_arrival(host, before, d.mac)
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
            if _errno(e) != 17:
                problems.append(f"{d.host_name}: {what}: {_strerror(e)}")

    if d.mtu is not None and link.get_attr("IFLA_MTU") != d.mtu:
        attempt("restoring MTU", lambda: host.link("set", index=idx, mtu=d.mtu))
    if d.mac is not None and link.get_attr("IFLA_ADDRESS") != d.mac:
        attempt("restoring MAC", lambda: host.link("set", index=idx, address=d.mac))
    if d.master:
        attempt("restoring its master", lambda: host.link("set", index=idx, master=d.master))
    for spec in d.addrs:
        if _restorable(spec):
            attempt(f"restoring address {_show_addr(spec)}",
                    lambda spec=spec: _add_addr(host, idx, spec, d.host_name, d.host_name))
    if d.flags & IFF_UP:
        attempt("setting it up", lambda: host.link("set", index=idx, state="up"))
    return problems


# --- events --stats ---------------------------------------------------------------------


def interface_stats(pid):
    """Counters of every interface in the network namespace of ``pid``, for
    ``events --stats`` (``network_interfaces``); None if the namespace is gone."""
    try:
        ns_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        ipr = _iproute_in(ns_fd)
    except OSError:
        return None  # the container exited meanwhile
    finally:
        os.close(ns_fd)
    try:
        out = []
        for link in ipr.get_links():
            st = link.get_attr("IFLA_STATS64") or link.get_attr("IFLA_STATS") or {}
            entry = {"Name": link.get_attr("IFLA_IFNAME")}
            for key, field in STATS_KEYS:
                entry[key] = int(st.get(field, 0) or 0)
            out.append(entry)
        return out
    finally:
        ipr.close()
