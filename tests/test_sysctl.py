"""linux.sysctl: values set inside the container's namespaces, refused where they would
change the host (runc's namespace rules)."""
import os

import pytest

from pyrunc import sysctl


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


def test_joined_namespace_of_the_runtime_is_the_host(tmp_path):
    own = {"network": "/proc/self/ns/net"}
    sysctl.check({"net.ipv4.ip_forward": "1"}, own)  # the init cannot tell: allowed there
    with pytest.raises(sysctl.SysctlError):
        sysctl.validate({"linux": {"namespaces": [{"type": "network", "path": "/proc/self/ns/net"}],
                                   "sysctl": {"net.ipv4.ip_forward": "1"}}})


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


def test_apply_checks_in_the_init_too(monkeypatch):
    """The init refuses on its own (a runtime that skipped validation cannot leak)."""
    written = []
    monkeypatch.setattr(os, "open", lambda *a, **k: written.append(a) or -1)
    with pytest.raises(sysctl.SysctlError):
        sysctl.apply({"net.ipv4.ip_forward": "1"}, {"ipc": None})
    assert not written
