"""Netlink through pyroute2 for linux.netDevices (netdevices.py) and events --stats: an
IPRoute inside a network namespace, interface and address records, the flags user space
may set, errors as one line; the per-interface counters of ``events --stats``.

Imported only by netdevices.py and events (pyroute2, ~200 ms, inside the functions).
"""
import os

from pyrunc.native.constants import (CLONE_NEWNET, IFA_F_HOMEADDRESS, IFA_F_MANAGETEMPADDR,
                                     IFA_F_MCAUTOJOIN, IFA_F_NODAD, IFA_F_NOPREFIXROUTE,
                                     IFA_F_OPTIMISTIC, IFA_F_PERMANENT, IFNAMSIZ,
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


def iproute_in(ns_fd=None):
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


def strerror(e):
    code = getattr(e, "code", None) or (e.args[0] if e.args and isinstance(e.args[0], int) else None)
    if isinstance(code, int) and code > 0:
        return os.strerror(code)
    return str(e)


def errno_of(e):
    code = getattr(e, "code", None)
    if code is None and e.args and isinstance(e.args[0], int):
        code = e.args[0]
    return code


class Dev:
    """A device to move: what it was on the host, where it went in the container."""

    def __init__(self, host_name, target, link, addrs):
        self.host_name = host_name
        self.target = target
        self.host_index = link["index"]
        self.flags = link["flags"]
        self.mtu = link.get_attr("IFLA_MTU")
        self.mac = link.get_attr("IFLA_ADDRESS")
        self.master = link.get_attr("IFLA_MASTER")
        self.addrs = [addr_spec(a) for a in addrs]
        self.cont_index = None  # set once the device is in the container's namespace
        self.cont_name = None


def addr_spec(msg):
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


def carried(spec):
    """Addresses the spec says move with the device: permanent, global scope."""
    return bool(spec["flags"] & IFA_F_PERMANENT) and spec["scope"] == RT_SCOPE_UNIVERSE


def restorable(spec):
    """Addresses to put back on a device that returns to the host: the permanent ones,
    but not IPv6 link-local addresses (the kernel makes them again when the link is up)."""
    if not spec["flags"] & IFA_F_PERMANENT:
        return False
    return not (spec["family"] == 10 and spec.get("address", "").lower().startswith("fe80:"))


def add_addr(ipr, index, spec, old_name, new_name):
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


def link_indexes(ipr):
    return {link["index"]: link for link in ipr.get_links()}


def find_arrival(ipr, before, mac):
    """The link that appeared in ``ipr``'s namespace since ``before`` (index -> link)."""
    new = [link for i, link in link_indexes(ipr).items() if i not in before]
    if len(new) > 1:
        new = [link for link in new if link.get_attr("IFLA_ADDRESS") == mac] or new
    return new[0] if new else None


def show_addr(spec):
    return f"{spec.get('local') or spec.get('address')}/{spec['prefixlen']}"


def interface_stats(pid):
    """Counters of every interface in the network namespace of ``pid``, for
    ``events --stats`` (``network_interfaces``); None if the namespace is gone."""
    try:
        ns_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        ipr = iproute_in(ns_fd)
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
