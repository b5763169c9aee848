"""Process attributes and namespaces, observed from inside the container (config.md
"Process", config-linux.md "Namespaces", "User namespace mappings")."""
import os
import subprocess

import pytest
from support.host import open_path_for_userns


def status_field(text, name):
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise KeyError(name)


def test_pid_1_in_new_pid_namespace(rt):
    assert rt.output_of(["sh", "-c", "echo $$"]).strip() == "1"


def test_hostname_and_domainname(rt):
    out = rt.output_of(["sh", "-c", "hostname; cat /proc/sys/kernel/domainname"],
                       edit=lambda c: c.update(hostname="box1", domainname="example.org"))
    assert out.split() == ["box1", "example.org"]


def test_user_groups_umask(rt):
    def edit(c):
        c["process"]["user"] = {"uid": 1234, "gid": 2345, "additionalGids": [3456, 4567], "umask": 0o077}

    out = rt.output_of(["sh", "-c", "id -u; id -g; id -G; umask"], edit=edit).split()
    assert out[0] == "1234" and out[1] == "2345"
    assert set(out[2:-1]) == {"2345", "3456", "4567"} or set(out[2:-1]) == {"3456", "4567"}
    assert out[-1] == "0077"


def test_capabilities(rt):
    caps = ["CAP_CHOWN", "CAP_KILL"]

    def edit(c):
        c["process"]["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps,
                                        "inheritable": [], "ambient": []}

    status = rt.output_of(["cat", "/proc/self/status"], edit=edit)
    expect = (1 << 0) | (1 << 5)
    assert int(status_field(status, "CapBnd"), 16) == expect
    assert int(status_field(status, "CapEff"), 16) == expect
    assert int(status_field(status, "CapPrm"), 16) == expect


def test_effective_beyond_permitted_is_one_clear_error(rt, runc_rt):
    """capset(2) refuses an effective set beyond the permitted one; both runtimes fail
    create (runc: "unable to apply caps: operation not permitted"); pyrunc's one line names
    the field and the call once."""
    def edit(c):
        caps = c["process"]["capabilities"]
        caps["effective"] = caps["effective"] + ["CAP_SYS_ADMIN"]
        caps["permitted"] = [n for n in caps["permitted"] if n != "CAP_SYS_ADMIN"]

    p = runc_rt.run("c-caps", runc_rt.bundle(["true"], edit=edit), check=False)
    assert p.returncode != 0 and "unable to apply caps" in p.stderr
    p = rt.run("c-caps", rt.bundle(["true"], edit=edit), check=False)
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and "process.capabilities: capset:" in p.stderr, p.stderr
    assert p.stderr.count("capset") == 1 and "Operation not permitted" in p.stderr, p.stderr


def test_ambient_capabilities_for_non_root(rt):
    caps = ["CAP_NET_BIND_SERVICE"]

    def edit(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000}
        c["process"]["capabilities"] = {k: caps for k in
                                        ("bounding", "effective", "permitted", "inheritable", "ambient")}

    status = rt.output_of(["cat", "/proc/self/status"], edit=edit)
    assert int(status_field(status, "CapAmb"), 16) == 1 << 10
    assert int(status_field(status, "CapEff"), 16) == 1 << 10


def test_rlimits(rt):
    def edit(c):
        c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
                                   {"type": "RLIMIT_NPROC", "soft": 77, "hard": 88}]

    out = rt.output_of(["sh", "-c", "ulimit -n; ulimit -H -n; ulimit -u"], edit=edit).split()
    assert out == ["123", "456", "77"]


@pytest.mark.parametrize("runtime", ["pyrunc", "runc"])
def test_rlimit_infinity_and_unknown_type(runtime, request):
    """2**64-1 is RLIM_INFINITY (uint64 in the spec, as runc passes it on); an rlimit
    type the runtime does not know fails create with one line naming it."""
    r = request.getfixturevalue("rt" if runtime == "pyrunc" else "runc_rt")

    import resource

    if resource.getrlimit(resource.RLIMIT_CORE)[1] != resource.RLIM_INFINITY:
        pytest.skip("raising a hard limit needs CAP_SYS_RESOURCE; RLIMIT_CORE is not unlimited here")

    def edit(c):
        c["process"]["rlimits"] = [{"type": "RLIMIT_CORE", "soft": 2**64 - 1, "hard": 2**64 - 1},
                                   {"type": "RLIMIT_MEMLOCK", "soft": 65536, "hard": 65536}]

    out = r.output_of(["sh", "-c", "ulimit -c; ulimit -H -c; ulimit -l; ulimit -H -l"], edit=edit).split()
    assert out == ["unlimited", "unlimited", "64", "64"]

    def bad(c):
        c["process"]["rlimits"] = [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]

    p = r.run("badrl", r.bundle(["true"], edit=bad), check=False)
    assert p.returncode != 0 and "RLIMIT_BOGUS" in p.stderr
    if runtime == "pyrunc":
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_no_new_privs_and_oom_score_adj(rt):
    def edit(c):
        c["process"]["noNewPrivileges"] = True
        c["process"]["oomScoreAdj"] = 321

    out = rt.output_of(["sh", "-c", "grep NoNewPrivs /proc/self/status; cat /proc/self/oom_score_adj"],
                       edit=edit).split()
    assert out == ["NoNewPrivs:", "1", "321"]


def test_env_and_cwd(rt):
    def edit(c):
        c["process"]["env"] = ["PATH=/bin", "FOO=bar baz"]
        c["process"]["cwd"] = "/tmp"

    out = rt.output_of(["sh", "-c", 'echo "$FOO"; pwd; echo $HOME'], edit=edit).splitlines()
    assert out == ["bar baz", "/tmp", "/root"]


def test_user_namespace_mapping(rt):
    def edit(c):
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]

    open_path_for_userns(rt.tmp)
    out = rt.output_of(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u"], edit=edit)
    lines = [l.split() for l in out.strip().splitlines()]
    assert lines[0] == ["0", "100000", "65536"]
    assert lines[1] == ["0", "100000", "65536"]
    assert lines[2] == ["0"]


def test_user_namespace_host_view(rt):
    """From the host, the container's root is the mapped host uid."""
    def edit(c):
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 1000}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 1000}]

    open_path_for_userns(rt.tmp)
    b = rt.bundle(["sleep", "30"], edit=edit)
    rt.create("uns", b)
    pid = rt.state("uns")["pid"]
    uid_line = [l for l in open(f"/proc/{pid}/status") if l.startswith("Uid:")][0]
    assert uid_line.split()[1] == "200000"


def test_join_network_namespace_by_path(rt, tmp_path):
    """A container joins an existing network namespace given by path."""
    # A helper process in a new network namespace that we made (unshare -n), with lo up.
    holder = subprocess.Popen(["unshare", "-n", "sh", "-c", "ip link set lo up 2>/dev/null; "
                               "ip link add vt0 type veth peer name vt1 2>/dev/null; sleep 30"])
    try:
        import time

        path = f"/proc/{holder.pid}/ns/net"
        time.sleep(0.3)
        ino = os.stat(path).st_ino

        def edit(c):
            c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
            c["linux"]["namespaces"].append({"type": "network", "path": path})

        out = rt.output_of(["sh", "-c", "readlink /proc/self/ns/net; ls /sys/class/net"], edit=edit)
        assert f"net:[{ino}]" in out
    finally:
        holder.kill()
        holder.wait()


def test_new_network_namespace_has_loopback_up(rt):
    out = rt.output_of(["cat", "/sys/class/net/lo/operstate", "/sys/class/net/lo/flags"])
    flags = int(out.split()[1], 16)
    assert flags & 1, "IFF_UP"


@pytest.mark.parametrize("ns", ["ipc", "uts", "mount", "cgroup", "time"])
def test_each_namespace_is_new(rt, ns):
    procname = {"mount": "mnt"}.get(ns, ns)

    def edit(c):
        if not any(n["type"] == ns for n in c["linux"]["namespaces"]):
            c["linux"]["namespaces"].append({"type": ns})

    out = rt.output_of(["readlink", f"/proc/self/ns/{procname}"], edit=edit).strip()
    assert out != os.readlink(f"/proc/self/ns/{procname}")


def test_time_namespace_offsets(rt):
    def edit(c):
        c["linux"]["namespaces"].append({"type": "time"})
        c["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 365, "nanosecs": 0}}

    up = float(rt.output_of(["cat", "/proc/uptime"], edit=edit).split()[0])
    assert up > 86400 * 365


def test_memory_policy_invalid_mode_is_error(rt):
    def edit(c):
        c["linux"]["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "99"}

    b = rt.bundle(["true"], edit=edit)
    p = rt.run("mp", b, check=False)
    assert p.returncode != 0 and "memoryPolicy" in p.stderr


def test_preserve_fds(rt, tmp_path):
    f = tmp_path / "extra"
    f.write_text("from-the-host\n")
    b = rt.bundle(["sh", "-c", "cat <&3; echo LISTEN_FDS=$LISTEN_FDS; ls /proc/self/fd"])
    rt.ids.add("pfd")
    p = subprocess.run(["sh", "-c", f'exec 3<"{f}"; exec "$0" "$@"', rt.binary, "--root", rt.root,
                        "run", "--preserve-fds", "1", "--bundle", str(b), "pfd"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[:2] == ["from-the-host", "LISTEN_FDS="]  # not socket activation
    assert sorted(p.stdout.split()[2:]) == ["0", "1", "2", "3", "4"]  # 4: ls's own dir fd


def test_socket_activation_fds(rt, tmp_path):
    """$LISTEN_FDS of the runtime (when $LISTEN_PID is the runtime's pid): passed on as
    fds 3.. with LISTEN_FDS=n LISTEN_PID=1 (as runc), before the --preserve-fds ones."""
    (tmp_path / "a").write_text("listen-fd\n")
    (tmp_path / "b").write_text("preserved-fd\n")
    b = rt.bundle(["sh", "-c", "cat <&3; cat <&4; echo $LISTEN_FDS $LISTEN_PID"])
    rt.ids.add("sa")
    p = subprocess.run(["sh", "-c", f'exec 3<"{tmp_path}/a" 4<"{tmp_path}/b"; LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"',
                        rt.binary, "--root", rt.root, "run", "--preserve-fds", "1", "--bundle", str(b), "sa"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["listen-fd", "preserved-fd", "1", "1"]


def test_preserve_fds_not_open_is_error(rt):
    b = rt.bundle(["true"])
    p = rt.run("pfd2", b, "--preserve-fds", "5", check=False)
    assert p.returncode == 1 and "preserve-fds" in p.stderr


def test_no_runtime_fds_leak(rt):
    """Only stdio reach the user process (CVE-2024-21626 class)."""
    out = rt.output_of(["ls", "/proc/self/fd"]).split()
    assert sorted(out) == ["0", "1", "2", "3"]  # 3 is ls's own directory fd


def test_user_namespace_stdio_usable_but_host_devices_untouched(rt):
    """The container's root can reopen its stdout pipe; /dev/null of the host keeps
    its owner (only pipes/sockets the runtime was given are handed over)."""
    def edit(c):
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 300000, "size": 1000}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 300000, "size": 1000}]

    open_path_for_userns(rt.tmp)
    before = os.stat("/dev/null")
    b = rt.bundle(["sh", "-c", "echo via-dev-stdout > /dev/stdout"], edit=edit)
    p = subprocess.run([rt.binary, "--root", rt.root, "run", "--bundle", str(b), "usio"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=30)
    rt.ids.add("usio")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "via-dev-stdout"
    after = os.stat("/dev/null")
    assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid, before.st_mode)


@pytest.mark.cgroups
def test_cgroup_namespace_is_rooted_at_the_container_cgroup(rt):
    """The cgroup ns is unshared after the init joined its cgroups: it sees itself at /."""
    def edit(c):
        if not any(n["type"] == "cgroup" for n in c["linux"]["namespaces"]):  # default on v2
            c["linux"]["namespaces"].append({"type": "cgroup"})

    out = rt.output_of(["cat", "/proc/self/cgroup"], edit=edit)
    paths = {line.split(":", 2)[2] for line in out.strip().splitlines()}
    assert paths == {"/"}, out


def test_oom_score_adj_in_user_namespace(rt):
    """The init is non-dumpable (its /proc files belong to the host's root); writing its
    own oom_score_adj as a user-namespaced root still works."""
    def edit(c):
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 400000, "size": 1000}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 400000, "size": 1000}]
        c["process"]["oomScoreAdj"] = 222

    open_path_for_userns(rt.tmp)
    assert rt.output_of(["cat", "/proc/self/oom_score_adj"], edit=edit).strip() == "222"


def test_scheduler_io_priority_personality_affinity(rt):
    """process.scheduler, process.ioPriority, linux.personality, execCPUAffinity, seen
    from inside (/proc/self/stat policy field, ionice, uname -m, Cpus_allowed_list).
    (runc 1.1.5 predates scheduler/ioPriority/execCPUAffinity: no reference run here.)"""
    def edit(c):
        c["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 5}
        c["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE", "priority": 0}
        c["linux"]["personality"] = {"domain": "LINUX32"}
        c["process"]["execCPUAffinity"] = {"initial": "0", "final": "0"}

    out = rt.output_of(["sh", "-c", "cut -d' ' -f19,41 /proc/self/stat; ionice; uname -m; "
                                    "grep Cpus_allowed_list /proc/self/status"], edit=edit).split()
    # field 19 is nice, 41 the policy (3 = SCHED_BATCH)
    assert out[0:2] == ["5", "3"], out
    assert "idle" in " ".join(out).lower()
    assert "i686" in out or "i386" in out
    assert out[-1] == "0"


def test_exec_cpu_affinity_final_applies(rt):
    def edit(c):
        c["process"]["execCPUAffinity"] = {"final": "0"}

    out = rt.output_of(["grep", "Cpus_allowed_list", "/proc/self/status"], edit=edit)
    assert out.split()[-1] == "0"
