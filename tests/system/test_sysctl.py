"""linux.sysctl: values set inside the container's namespaces, refused where they would
change the host (runc's namespace rules)."""
import os

import pytest

from pyrunc.linux import sysctl


@pytest.mark.unit
def test_check_rules():
    new = {"ipc": None, "network": None, "uts": None}
    sysctl.check({"kernel.shmmax": "1", "kernel.msgmnb": "1", "kernel.sem": "1 2 3 4",
                  "fs.mqueue.msg_max": "1", "net.ipv4.ip_forward": "1",
                  "net/ipv4/conf/all/forwarding": "1", "kernel.domainname": "x"}, new)
    refused = [
        ({"kernel.shmmax": "1"}, {"network": None}, "IPC namespace"),
        ({"fs.mqueue.queues_max": "1"}, {}, "IPC namespace"),
        ({"net.core.somaxconn": "1"}, {"ipc": None}, "network namespace"),
        ({"kernel.domainname": "x"}, {}, "UTS namespace"),
        ({"kernel.hostname": "x"}, new, '"hostname" field'),
        ({"vm.swappiness": "1"}, new, "not namespaced"),
        ({"kernel.pid_max": "1"}, new, "not namespaced"),
    ]
    for sysctls, nsmap, words in refused:
        with pytest.raises(sysctl.SysctlError) as e:
            sysctl.check(sysctls, nsmap)
        assert words in str(e.value) and next(iter(sysctls)).replace("/", ".") in str(e.value)


@pytest.mark.unit
def test_joined_namespace_of_the_runtime_is_the_host(tmp_path):
    own = {"network": "/proc/self/ns/net"}
    sysctl.check({"net.ipv4.ip_forward": "1"}, own)  # the init cannot tell: allowed there
    with pytest.raises(sysctl.SysctlError):
        sysctl.validate({"linux": {"namespaces": [{"type": "network", "path": "/proc/self/ns/net"}],
                                   "sysctl": {"net.ipv4.ip_forward": "1"}}})


@pytest.mark.unit
def test_slash_form():
    assert sysctl.normalize("net/ipv4/conf/eth0.100/forwarding") == "net.ipv4.conf.eth0/100.forwarding"
    assert sysctl.proc_path("net/ipv4/conf/eth0.100/forwarding") == "/proc/sys/net/ipv4/conf/eth0.100/forwarding"
    assert sysctl.proc_path("net.ipv4.ip_forward") == "/proc/sys/net/ipv4/ip_forward"


def test_sysctl_values_set_in_the_container(rt, runc_rt):
    def edit(c):
        c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "net/ipv4/conf/lo/forwarding": "1",
                                "kernel.shmmax": "4242424242", "fs.mqueue.msg_max": "42",
                                "kernel.domainname": "pyrunc.test"}
    args = ["sh", "-c", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/lo/forwarding "
            "/proc/sys/kernel/shmmax /proc/sys/fs/mqueue/msg_max /proc/sys/kernel/domainname"]
    out = rt.output_of(args, edit=edit)
    assert out.split() == ["1", "1", "4242424242", "42", "pyrunc.test"]
    assert out == runc_rt.output_of(args, edit=edit)
    with open("/proc/sys/kernel/domainname") as f:
        assert f.read().strip() != "pyrunc.test"  # the host kept its own


@pytest.mark.parametrize("key,drop", [("net.ipv4.ip_forward", "network"), ("kernel.shmmax", "ipc"),
                                      ("vm.swappiness", None)])
def test_sysctl_refused(rt, runc_rt, key, drop):
    def edit(c):
        c["linux"]["sysctl"] = {key: "1"}
        if drop:
            c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != drop]
    for r in (runc_rt, rt):
        cid = f"c-sysctl-{drop}"
        p = r.run(cid, r.bundle(["true"], edit=edit), check=False)
        assert p.returncode != 0, r.binary
    assert key in p.stderr and len(p.stderr.splitlines()) == 1
    assert not os.path.exists(os.path.join(rt.root, cid))


@pytest.mark.unit
def test_apply_checks_in_the_init_too(monkeypatch):
    """The init refuses on its own (a runtime that skipped validation cannot leak)."""
    written = []
    monkeypatch.setattr(os, "open", lambda *a, **k: written.append(a) or -1)
    with pytest.raises(sysctl.SysctlError):
        sysctl.apply({"net.ipv4.ip_forward": "1"}, {"ipc": None})
    assert not written


# Issue 14.1: a key whose path leaves its namespaced subtree ("cr8escape" class). In the
# dotted form "/" stands for a "." of the file name, so "//" is the component "..".
# The value written is the host's own (read first), so even a runtime with the bug
# would change nothing; the create must fail anyway.
_ESCAPES = [
    ("net.//.kernel.printk_ratelimit_burst", "ipc"),
    ("net/../kernel/printk_ratelimit_burst", "ipc"),  # the same in sysctl(8)'s slash form
    ("fs.mqueue.//.//.kernel.printk_ratelimit_burst", "network"),
    ("net.ipv4.conf.all.//", "ipc"),
    ("net/..", "ipc"),
]


@pytest.mark.parametrize("key,drop", _ESCAPES)
def test_sysctl_key_cannot_leave_its_subtree(rt, runc_rt, key, drop):
    with open("/proc/sys/kernel/printk_ratelimit_burst") as f:
        host = f.read().strip()

    def edit(c):
        c["linux"]["sysctl"] = {key: host}
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != drop]
    for r in (runc_rt, rt):
        p = r.run("c-sysctl-esc", r.bundle(["true"], edit=edit), check=False)
        assert p.returncode != 0, (r.binary, p.stdout, p.stderr)
    assert "sysctl" in p.stderr and len(p.stderr.splitlines()) == 1, p.stderr
    assert not os.path.exists(os.path.join(rt.root, "c-sysctl-esc"))
    with open("/proc/sys/kernel/printk_ratelimit_burst") as f:
        assert f.read().strip() == host


@pytest.mark.unit
@pytest.mark.parametrize("key", [k for k, _ in _ESCAPES])
def test_sysctl_key_check_in_the_init_and_validate(key, tmp_path):
    new = {"ipc": None, "network": None, "uts": None}
    with pytest.raises(sysctl.SysctlError):
        sysctl.check({key: "1"}, new)
    with pytest.raises(sysctl.SysctlError):  # the init refuses without the runtime's check
        sysctl.apply({key: "1"}, new)


def test_validate_names_the_bad_sysctl_key(rt):
    def edit(c):
        c["linux"]["sysctl"] = {"net.//.kernel.printk_ratelimit_burst": "1"}
    p = rt.cmd("validate", "--bundle", rt.bundle(["true"], edit=edit), check=False)
    assert p.returncode != 0
    assert "/linux/sysctl/net.~1~1.kernel.printk_ratelimit_burst" in p.stdout + p.stderr, p


@pytest.mark.parametrize("key", ["net.ipv4..ip_forward", "net.ipv4./.ip_forward"])
def test_empty_and_dot_components_name_the_same_file_as_in_runc(rt, runc_rt, key):
    """runc writes /proc/sys/net/ipv4//ip_forward: the kernel's walk drops the empty and "."
    components, so these keys run (a drop-in is never stricter) and the namespace rule
    applies to the file they name."""
    def edit(c):
        c["linux"]["sysctl"] = {key: "1"}
    args = ["cat", "/proc/sys/net/ipv4/ip_forward"]
    assert rt.output_of(args, edit=edit).strip() == runc_rt.output_of(args, edit=edit).strip() == "1"
    with pytest.raises(sysctl.SysctlError):
        sysctl.check({key: "1"}, {"ipc": None})  # still net.*: needs a network namespace
    with pytest.raises(sysctl.SysctlError):
        sysctl.check({"." + key: "1"}, {"network": None})  # runc: not namespaced; so here
    # the linter warns (it runs, as on runc); --strict fails on it
    b = rt.bundle(["true"], edit=edit)
    p = rt.cmd("validate", "--bundle", b)
    assert "/linux/sysctl/" in p.stdout and "warning:" in p.stdout, p.stdout
    assert rt.cmd("validate", "--strict", "--bundle", b, check=False).returncode == 1
