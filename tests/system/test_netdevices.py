"""linux.netDevices: devices moved into the container's network namespace, the checks
before anything moves, the rollback, events --stats network_interfaces, and pyroute2
imported only when needed.

Never touches the host's interfaces: every test makes its own network namespace
(``ip netns add pyrunc-t-<rand>``), its veths and bridges there, and runs the runtime in
it with ``nsenter --net`` (not ``ip netns exec``, which remounts /sys in a new mount
namespace and so hides /sys/fs/cgroup from the runtime). The namespace is deleted at the
end, also on failure.
"""
import json
import re
import subprocess
import tempfile
import time
import uuid

import pytest
from support.host import busybox_path, imported_modules
from support.checks import one_line_error
from support.runtime import run_cmd


# --- helpers ----------------------------------------------------------------------------


class NetNS:
    """A test network namespace with its own veths; nothing outside it is touched."""

    def __init__(self):
        self.name = f"pyrunc-t-{uuid.uuid4().hex[:8]}"
        self.path = f"/run/netns/{self.name}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)

    def ip(self, *args, check=True):
        p = subprocess.run(["ip", "-n", self.name, *args], capture_output=True, text=True)
        if check and p.returncode != 0:
            raise AssertionError(f"ip -n {self.name} {' '.join(args)}: {p.stderr}")
        return p

    def veth(self, name, peer, *, mtu=None, v4=(), v6=(), up=True):
        self.ip("link", "add", name, "type", "veth", "peer", "name", peer)
        for a in v4:
            self.ip("addr", "add", a, "dev", name)
        for a in v6:
            self.ip("addr", "add", a, "dev", name, "nodad")
        if mtu:
            self.ip("link", "set", name, "mtu", str(mtu))
        self.ip("link", "set", peer, "up")
        if up:
            self.ip("link", "set", name, "up")

    def links(self):
        return {link["ifname"]: link for link in json.loads(self.ip("-j", "link", "show").stdout)}

    def snapshot(self):
        """Where and how every device of the namespace is: index, name, MTU, MAC, up,
        master, and its addresses other than IPv6 link-local ones."""
        out = {}
        for link in json.loads(self.ip("-j", "addr", "show").stdout):
            addrs = sorted((a["family"], a["local"], a["prefixlen"]) for a in link.get("addr_info", ())
                           if not (a["family"] == "inet6" and a.get("scope") == "link"))
            out[link["ifname"]] = (link["ifindex"], link["mtu"], link.get("address"),
                                   "UP" in link["flags"], link.get("master"), addrs)
        return out

    def monitor(self):
        """Start `ip monitor link` in the namespace; stop() returns what it saw."""
        out = tempfile.TemporaryFile("w+")
        proc = subprocess.Popen(["ip", "-n", self.name, "monitor", "link"], stdout=out,
                                stderr=subprocess.DEVNULL, text=True)
        time.sleep(0.2)  # let it subscribe

        def stop():
            time.sleep(0.2)
            proc.terminate()
            proc.wait()
            out.seek(0)
            text = out.read()
            out.close()
            return text
        return stop

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name], check=False)


@pytest.fixture
def netns():
    ns = NetNS()
    try:
        yield ns
    finally:
        ns.delete()


def nscmd(rt, ns, *args, check=True, timeout=60):
    """rt.cmd, with the runtime run in the test's network namespace."""
    argv = ["nsenter", f"--net={ns.path}", rt.binary, "--root", rt.root, *map(str, args)]
    return run_cmd(argv, timeout=timeout, check=check)


def ns_create(rt, ns, cid, bundle, check=True):
    rt.ids.add(cid)
    return nscmd(rt, ns, "create", "--bundle", bundle, cid, check=check)


def ns_run(rt, ns, cid, bundle, check=True):
    rt.ids.add(cid)
    return nscmd(rt, ns, "run", "--bundle", bundle, cid, check=check)


def with_devices(devices, args=None):
    def edit(c):
        c["linux"]["netDevices"] = devices
        if args:
            c["process"]["args"] = args
    return edit


def busybox_links(text):
    """busybox `ip addr` output -> {name: {"mtu", "flags", "mac", "addrs"}}."""
    out, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"\d+: ([^:@]+)(?:@\S+)?: <([^>]*)> mtu (\d+)", line)
        if m:
            cur = out[m.group(1)] = {"flags": m.group(2).split(","), "mtu": int(m.group(3)),
                                     "mac": None, "addrs": []}
            continue
        m = re.match(r"\s+link/\S+ ([0-9a-f:]+)", line)
        if m and cur is not None:
            cur["mac"] = m.group(1)
            continue
        m = re.match(r"\s+(inet6?) (\S+) .*scope (\w+)", line)
        if m and cur is not None:
            cur["addrs"].append((m.group(1), m.group(2), m.group(3)))
    return out


# --- the device moves -------------------------------------------------------------------


def test_moved_renamed_with_addresses_mtu_mac_and_up(rt, netns):
    netns.veth("hv0", "hv0p", mtu=1400, v4=["10.77.0.2/24"], v6=["fd77::2/64"])
    netns.veth("hv1", "hv1p", v4=["10.78.0.2/16"], up=False)
    before = netns.links()
    b = rt.bundle(["sleep", "30"], edit=with_devices({"hv0": {"name": "ceth0"}, "hv1": {}}))
    ns_create(rt, netns, "nd1", b)
    # Outside: gone from the namespace the runtime ran in; the peers stay.
    links = netns.links()
    assert "hv0" not in links and "hv1" not in links
    assert "hv0p" in links and "hv1p" in links
    # Inside, through the container's own busybox.
    inside = busybox_links(nscmd(rt, netns, "exec", "nd1", "ip", "addr", "show").stdout)
    assert "ceth0" in inside and "hv1" in inside and "hv0" not in inside
    c0 = inside["ceth0"]
    assert c0["mtu"] == 1400
    assert c0["mac"] == before["hv0"]["address"]
    assert "UP" in c0["flags"] and "LOWER_UP" in c0["flags"]
    assert ("inet", "10.77.0.2/24", "global") in c0["addrs"]
    assert ("inet6", "fd77::2/64", "global") in c0["addrs"]
    h1 = inside["hv1"]
    assert "UP" in h1["flags"]  # set up even though it was down on the host
    assert ("inet", "10.78.0.2/16", "global") in h1["addrs"]
    assert h1["mac"] == before["hv1"]["address"] and h1["mtu"] == before["hv1"]["mtu"]
    # busybox `ip link` agrees; the link works: the test namespace pings the container.
    out = nscmd(rt, netns, "exec", "nd1", "ip", "link", "show", "ceth0").stdout
    assert "ceth0" in out and "mtu 1400" in out
    netns.ip("addr", "add", "10.77.0.1/24", "dev", "hv0p")
    subprocess.run(["nsenter", f"--net={netns.path}", busybox_path(), "ping", "-c", "1", "-W", "5",
                    "10.77.0.2"],
                   check=True, capture_output=True)
    # events --stats: per-interface counters of the container's namespace.
    ev = json.loads(nscmd(rt, netns, "events", "--stats", "nd1").stdout)
    ifaces = {i["Name"]: i for i in ev["data"]["network_interfaces"]}
    assert set(ifaces) == {"lo", "ceth0", "hv1"}
    for key in ("RxBytes", "RxPackets", "RxErrors", "RxDropped",
                "TxBytes", "TxPackets", "TxErrors", "TxDropped"):
        assert isinstance(ifaces["ceth0"][key], int)
    assert ifaces["ceth0"]["TxPackets"] >= 1 and ifaces["ceth0"]["RxBytes"] > 0
    # The runtime does not move devices back: virtual ones die with the namespace.
    nscmd(rt, netns, "delete", "--force", "nd1")
    assert "hv0" not in netns.links()


def test_percent_d_template_gets_kernel_chosen_names(rt, netns):
    netns.veth("tp0", "tp0p", v4=["10.79.0.2/24"])
    netns.veth("tp1", "tp1p", v6=["fd79::2/64"])
    b = rt.bundle(["ip", "addr", "show"],
                  edit=with_devices({"tp0": {"name": "net%d"}, "tp1": {"name": "net%d"}}))
    inside = busybox_links(ns_run(rt, netns, "nd2", b).stdout)
    assert {"net0", "net1"} <= set(inside), inside
    addrs = [a for n in ("net0", "net1") for a in inside[n]["addrs"]]
    assert ("inet", "10.79.0.2/24", "global") in addrs
    assert ("inet6", "fd79::2/64", "global") in addrs
    assert all("UP" in inside[n]["flags"] for n in ("net0", "net1"))


def test_into_a_user_namespaced_container(rt, netns):
    netns.veth("us0", "us0p", v4=["10.80.0.2/24"])

    def edit(c):
        with_devices({"us0": {"name": "eth0"}}, ["ip", "addr", "show", "eth0"])(c)
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    out = ns_run(rt, netns, "nd3", rt.bundle(edit=edit)).stdout
    assert "eth0" in out and "10.80.0.2/24" in out


# --- checks before anything moves; nothing half-done ---------------------------------------


def two_devices(netns):
    netns.veth("ck0", "ck0p", mtu=1300, v4=["10.81.0.2/24", "10.81.0.3/24"], v6=["fd81::2/64"])
    netns.veth("ck1", "ck1p", v4=["10.82.0.2/24"], up=False)
    return netns.snapshot()


def failing_create(rt, netns, devices, snap, cid, expect, edit=None):
    def full(c):
        with_devices(devices)(c)
        if edit:
            edit(c)
    p = ns_create(rt, netns, cid, rt.bundle(["true"], edit=full), check=False)
    err = one_line_error(p)
    assert re.search(expect, err), err
    assert netns.snapshot() == snap
    assert rt.cmd("state", cid, check=False).returncode != 0  # no container left
    return err


def test_missing_device(rt, netns):
    snap = two_devices(netns)
    failing_create(rt, netns, {"ck0": {"name": "c0"}, "nope9": {}}, snap, "e1",
                   r"network device nope9 does not exist")


def test_no_new_network_namespace(rt, netns):
    snap = two_devices(netns)

    def host_netns(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]

    def joined(c):
        for n in c["linux"]["namespaces"]:
            if n["type"] == "network":
                n["path"] = netns.path

    failing_create(rt, netns, {"ck0": {}}, snap, "e2", r"network namespace", edit=host_netns)
    failing_create(rt, netns, {"ck0": {}}, snap, "e3", r"joins the network namespace", edit=joined)


def test_name_taken_inside(rt, netns):
    snap = two_devices(netns)
    # "lo" is in every new network namespace; without %d that is an error.
    failing_create(rt, netns, {"ck1": {}, "ck0": {"name": "lo"}}, snap, "e4",
                   r"'lo' already exists in the container's network namespace")


@pytest.mark.parametrize("bad", ["a/b", "sixteen-chars-xx", "a b", ".", ".."])
def test_invalid_names(rt, netns, bad):
    snap = two_devices(netns)
    failing_create(rt, netns, {"ck0": {"name": bad}}, snap, "e5", r"name")


def test_failure_half_way_puts_moved_devices_back(rt, netns):
    """A bridge cannot change namespace: the move of br-x fails after ck0 and ck1 moved;
    both come back with their names, index, addresses, MTU, master and up/down state."""
    snap0 = two_devices(netns)
    netns.ip("link", "add", "brx0", "type", "bridge")
    netns.ip("link", "set", "brx0", "up")
    netns.ip("link", "set", "ck0", "master", "brx0")
    snap = netns.snapshot()
    assert snap["ck0"][4] == "brx0" and snap0
    stop = netns.monitor()
    try:
        failing_create(rt, netns, {"ck0": {"name": "c0"}, "ck1": {"name": "c1"}, "brx0": {}},
                       snap, "e6", r"moving brx0 into the container's network namespace")
    finally:
        seen = stop()
    # They did leave (and came back): the rollback was exercised, not skipped.
    assert re.search(r"Deleted \d+: ck0\b", seen) and re.search(r"Deleted \d+: ck1\b", seen), seen


def test_failure_after_the_move_puts_devices_back(rt, netns):
    """create fails later (the process's binary is missing, found by the init after the
    move): the devices return too, instead of dying with the container's namespace."""
    snap = two_devices(netns)

    def missing_binary(c):
        c["process"]["args"] = ["/no/such/binary"]
    stop = netns.monitor()
    try:
        failing_create(rt, netns, {"ck0": {"name": "c0"}, "ck1": {}}, snap, "e7",
                       r"no/such/binary", edit=missing_binary)
    finally:
        seen = stop()
    assert re.search(r"Deleted \d+: ck0\b", seen), seen


@pytest.mark.unit
def test_library_checks_without_validation():
    """check_config repeats the shape checks: a library caller may pass its own config."""
    from pyrunc.errors import PyruncError
    from pyrunc.linux.netdevices import check_config

    def config(devices, ns=({"type": "network"},)):
        return {"linux": {"namespaces": list(ns), "netDevices": devices}}

    check_config(config({"lo": {"name": "x%d"}}))  # lo exists wherever this runs
    for devices, ns, expect in [
        ({"lo": {"name": "a/b"}}, None, "'a/b' is not a valid interface name"),
        ({"lo": {"name": "x" * 16}}, None, "longer than 15 bytes"),
        ({"lo": {"name": "a\tb"}}, None, "not a valid interface name"),
        ({"lo": {"name": ".."}}, None, "not a valid interface name"),
        ({"lo": {"name": "y"}, "lo2": {"name": "y"}}, None, "would both be named 'y'"),
        ({"nope-dev-x": {}}, None, "network device nope-dev-x does not exist"),
        ({"lo": {}}, (), "share the runtime's network namespace"),
        ({"lo": {}}, ({"type": "network", "path": "/proc/1/ns/net"},), "joins the network namespace"),
    ]:
        with pytest.raises(PyruncError, match=re.escape(expect)):
            check_config(config(devices, *(() if ns is None else (ns,))))


# --- no pyroute2 unless needed ----------------------------------------------------------


def test_pyroute2_imported_only_for_network_work(rt, netns):
    def imported(cid, bundle):
        rt.ids.add(cid)
        return imported_modules(["--root", rt.root, "run", "--bundle", bundle, cid],
                                prefix=["nsenter", f"--net={netns.path}"])

    plain = imported("ni1", rt.bundle(["true"]))
    assert "pyrunc.container.create" in plain  # the log is there
    assert not any(m.startswith("pyroute2") for m in plain)
    assert "pyrunc.linux.netdevices" not in plain
    netns.veth("im0", "im0p")
    with_net = imported("ni2", rt.bundle(["true"], edit=with_devices({"im0": {}})))
    assert "pyroute2" in with_net
