"""pyrunc.util.procfs: the one parser of mountinfo and /proc/PID/cgroup, and the cgroup
managers' views of them (cgroups/fs.py)."""
import pytest

from pyrunc.cgroups import fs
from pyrunc.util import procfs

pytestmark = pytest.mark.unit

MOUNTINFO = (
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "35 24 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:11 - cgroup cgroup rw,cpu,cpuacct\n"
    "36 24 0:31 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate\n"
    "37 22 0:32 /a\\040b /mnt/with\\040space rw - tmpfs tmpfs rw\n"
    "not a mount line\n")
CGROUP = "12:cpu,cpuacct:/user.slice\n1:name=systemd:/init.scope\n0::/init.scope\nbad\n"


def test_mountinfo_fields_and_escapes():
    got = procfs.parse_mountinfo(MOUNTINFO)
    assert [m["mountpoint"] for m in got] == ["/", "/sys/fs/cgroup/cpu,cpuacct",
                                              "/sys/fs/cgroup/unified", "/mnt/with space"]
    assert got[3] == {"id": "37", "root": "/a b", "mountpoint": "/mnt/with space",
                      "fstype": "tmpfs", "source": "tmpfs", "super": "rw"}
    assert [m["id"] for m in procfs.parse_mountinfo(MOUNTINFO, ("cgroup",))] == ["35"]


def test_cgroup_managers_view_of_mountinfo():
    assert fs.parse_mountinfo(MOUNTINFO) == [
        ("/sys/fs/cgroup/cpu,cpuacct", "/", "cgroup", ["rw", "cpu", "cpuacct"]),
        ("/sys/fs/cgroup/unified", "/", "cgroup2", ["rw", "nsdelegate"])]
    assert fs.v1_mounts(MOUNTINFO) == {"cpu": ("/sys/fs/cgroup/cpu,cpuacct", "/"),
                                       "cpuacct": ("/sys/fs/cgroup/cpu,cpuacct", "/"),
                                       "": ("/sys/fs/cgroup/unified", "/")}


def test_cgroup_file_both_views():
    assert procfs.parse_cgroup(CGROUP) == [(("cpu", "cpuacct"), "/user.slice"),
                                           (("name=systemd",), "/init.scope"), ((), "/init.scope")]
    assert fs.own_cgroups(CGROUP) == {"cpu": "/user.slice", "cpuacct": "/user.slice",
                                      "name=systemd": "/init.scope", "": "/init.scope"}
