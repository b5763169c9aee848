"""The systemd cgroup driver where any host can check it: its D-Bus client against a real
message bus (a private dbus-daemon), its import cost kept off the other paths, and
`--systemd-cgroup` where systemd is not the init, compared with runc. Against a real
systemd: tests/system/test_systemd_cgroup.py (in the systemd guest)."""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from support.checks import one_line_error
from support.host import imported_modules, pyrunc_binary
from pyrunc.cgroups.systemd import dbus
from pyrunc.cgroups.systemd.driver import running_systemd


@pytest.fixture
def bus(tmp_path):
    """A private dbus-daemon (session configuration) on a socket in tmp_path."""
    daemon = shutil.which("dbus-daemon")
    if not daemon:
        pytest.skip("dbus-daemon is not installed (apt-get install dbus-daemon)")
    sock = tmp_path / "bus"
    p = subprocess.Popen([daemon, "--session", "--nofork", "--nopidfile", f"--address=unix:path={sock}"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if sock.exists():
                break
            time.sleep(0.02)
        assert sock.exists(), "dbus-daemon did not make its socket"
        yield str(sock)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)


BUS = ("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus")


@pytest.mark.unit
def test_dbus_client_talks_to_a_message_bus(bus):
    with dbus.Connection(bus) as c:
        assert c.unique_name.startswith(":1.")
        (names,) = c.call(*BUS, "ListNames")
        assert c.unique_name in names and "org.freedesktop.DBus" in names
        (props,) = c.call(BUS[0], BUS[1], "org.freedesktop.DBus.Properties", "GetAll", "s", (BUS[2],))
        assert isinstance(props, dict) and isinstance(props.get("Features"), list)
        with pytest.raises(dbus.DBusError) as e:
            c.call(*BUS, "GetNameOwner", "s", ("org.example.NoSuchName",))
        assert e.value.name == "org.freedesktop.DBus.Error.NameHasNoOwner"
        assert "org.example.NoSuchName" in e.value.message


@pytest.mark.unit
def test_dbus_client_marshals_what_systemd_is_sent(bus):
    """A StartTransientUnit-shaped body (every type the driver sends) goes through
    dbus-daemon, which checks each message's wire format, to a second client, which
    decodes it to the same values."""
    props = [("Description", ("s", "libcontainer container x")), ("Slice", ("s", "system.slice")),
             ("PIDs", ("au", [1, 4294967295])), ("Delegate", ("b", True)),
             ("DefaultDependencies", ("b", False)), ("MemoryMax", ("t", (1 << 64) - 1)),
             ("CPUWeight", ("t", 100)), ("AllowedCPUs", ("ay", b"\x05\x01")),
             ("DeviceAllow", ("a(ss)", [])),
             ("DeviceAllow", ("a(ss)", [("char-*", "m"), ("/dev/char/1:3", "rwm")])),
             ("Wants", ("as", ["a.slice", "b.slice"])), ("Nice", ("i", -5)), ("X", ("d", 0.25)),
             ("Y", ("y", 255)), ("Z", ("n", -2)), ("Q", ("q", 7)), ("L", ("x", -(1 << 63)))]
    aux = [("x.scope", [("Description", ("s", "ü"))])]
    with dbus.Connection(bus) as sender, dbus.Connection(bus) as receiver:
        receiver.call(*BUS, "AddMatch", "s", ("type='signal',interface='org.example.T'",))
        sender.serial += 1
        sender.sock.sendall(dbus.encode_message(
            4, sender.serial, [(1, "o", "/org/example"), (2, "s", "org.example.T"), (3, "s", "Start")],
            "ssa(sv)a(sa(sv))", ("x.scope", "replace", props, aux)))
        # the sender is still connected: the bus accepted the message
        sender.call(*BUS, "GetId")
        msg = receiver.wait_signal(lambda m: m.member == "Start", timeout=10)
    name, mode, got, got_aux = msg.body
    assert (name, mode) == ("x.scope", "replace")
    assert got == [(n, v) for n, (_, v) in props]
    assert got_aux == [("x.scope", [("Description", "ü")])]


@pytest.mark.unit
def test_dbus_client_errors_are_dbus_errors(tmp_path):
    with pytest.raises(dbus.DBusError) as e:
        dbus.Connection(str(tmp_path / "nothing-here"))
    assert "nothing-here" in str(e.value)


# --- import cost --------------------------------------------------------------------


def test_dbus_client_only_for_the_systemd_driver(rt, tmp_path):
    """create/start/state/exec/kill/delete of a cgroupfs container import neither the
    D-Bus client nor the driver (python -X importtime of each command; the create's log
    has its container side's imports too)."""
    b = rt.bundle(["sleep", "100"])
    seen = set()
    rt.ids.add("imp")
    for argv in (["create", "--bundle", b, "imp"], ["start", "imp"], ["state", "imp"],
                 ["exec", "imp", "true"], ["kill", "imp", "KILL"], ["delete", "--force", "imp"]):
        mods = imported_modules(["--root", rt.root, *argv])
        assert "pyrunc.cli" in mods  # the log is there
        seen |= mods
    assert "pyrunc.cgroups" in seen
    assert not {"pyrunc.cgroups.systemd.dbus", "pyrunc.cgroups.systemd.driver", "pyrunc.cgroups.systemd.props"} & seen


# --- without systemd ----------------------------------------------------------------


@pytest.fixture
def both(rt, runc_rt):
    return {"pyrunc": rt, "runc": runc_rt}


@pytest.mark.skipif(running_systemd(), reason="systemd is the init here: see test_systemd_cgroup.py")
def test_systemd_cgroup_without_systemd_is_runc_error(both):
    """Where systemd is not the init, create with --systemd-cgroup fails as runc's does,
    and leaves nothing (no state, no cgroup); the flag changes nothing for a container
    of the cgroupfs driver (runc too)."""
    for name, r in both.items():
        b = r.bundle(["sleep", "100"], edit=lambda c: c["linux"].update(cgroupsPath=""))
        line = one_line_error(r.cmd("--systemd-cgroup", "create", "--bundle", b, "sd1", check=False), 1)
        assert "systemd not running on this host, cannot use systemd cgroups manager" in line, name
        assert r.cmd("list", "--quiet").stdout.strip() == "", name
        for d in ("/sys/fs/cgroup/systemd/system.slice/runc-sd1.scope",
                  "/sys/fs/cgroup/unified/system.slice/runc-sd1.scope"):
            assert not os.path.exists(d)
        r.create("sd2", r.bundle(["sleep", "100"]))
        st = json.loads(r.cmd("--systemd-cgroup", "state", "sd2").stdout)
        assert st["status"] == "created"
        r.cmd("--systemd-cgroup", "delete", "--force", "sd2")


def test_systemd_cgroup_path_format_is_runc_error(both):
    """A cgroupsPath not of the form "slice:prefix:name" is refused first, as runc does."""
    for name, r in both.items():
        b = r.bundle(["true"], edit=lambda c: c["linux"].update(cgroupsPath="/not/a/systemd/path"))
        line = one_line_error(r.cmd("--systemd-cgroup", "create", "--bundle", b, "sd3", check=False), 1)
        assert ('expected cgroupsPath to be of format \\"slice:prefix:name\\" for systemd cgroups, '
                'got \\"/not/a/systemd/path\\" instead') in line, (name, line)
        assert r.cmd("list", "--quiet").stdout.strip() == "", name


def test_systemd_annotations_errors_as_runc(both):
    """org.systemd.property.* annotations are checked before anything is made, with
    runc's messages."""
    for name, r in both.items():
        for ann, want in (({"org.systemd.property.Foo1": "1"},
                           "annotation org.systemd.property.Foo1 name incorrect: contains "
                           "non-alphabetic character"),
                          ({"org.systemd.property.Foo": "@@@"},
                           "annotation org.systemd.property.Foo=@@@ value parse error")):
            b = r.bundle(["true"], edit=lambda c: c.update(annotations=ann))
            line = one_line_error(r.cmd("--systemd-cgroup", "create", "--bundle", b, "sd4", check=False), 1)
            assert want in line, (name, line)
            assert r.cmd("list", "--quiet").stdout.strip() == "", name


def test_systemd_cgroup_help():
    p = subprocess.run([pyrunc_binary(), "--help"], capture_output=True, text=True, timeout=60)
    assert "--systemd-cgroup" in p.stdout and "slice:prefix:name" in p.stdout
