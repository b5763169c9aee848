"""config-linux.md / runtime-linux.md: namespaces, devices, /dev symlinks, masked and
read-only paths, cgroupsPath."""
from __future__ import annotations

import os

from conformance.bundle import exe_of, expect, ns_id, read_proc_cgroup
from conformance.cases import case


def running(ctx, b):
    """create + start a long-running bundle; returns the container once its program runs."""
    c = ctx.create(b)
    ctx.start(c.id)
    ctx.wait_for(lambda: exe_of(c.pid).endswith("/bin/busybox"), "the program to be executed")
    return c


@case("pid-namespace", "config-linux.md#namespaces")
def pid_namespace(ctx):
    """In a new pid namespace the container process sees itself as pid 1 and no host processes.

    config-linux.md#namespaces: pid "processes inside the container will only be able to see
    other processes inside the same container"; "If path is not specified, the runtime MUST
    create a new container namespace of type type."
    """
    b = ctx.bundle(["sh", "-c", "echo $$ > /out/pid; ls /proc | grep -c '^[0-9]' > /out/nproc"])
    ctx.run(b)
    pid = (b.read_out("pid") or "").strip()
    expect(pid == "1", f"the container process sees itself as pid {pid!r}, not 1")
    n = int((b.read_out("nproc") or "999").strip() or 999)
    expect(n <= 3, f"{n} processes visible in /proc of the new pid namespace")


@case("namespaces-new-and-inherited", "config-linux.md#namespaces")
def namespaces_new(ctx):
    """Listed namespaces (pid, network, ipc, uts, mount) are new; unlisted ones (cgroup, user, time) are the runtime's.

    config-linux.md#namespaces: "If path is not specified, the runtime MUST create a new
    container namespace of type type." and "If a namespace type is not specified in the
    namespaces array, the container MUST inherit the runtime namespace of that type."
    """
    b = ctx.bundle(["sleep", "1000"])
    c = running(ctx, b)
    same = [k for k in ("pid", "net", "ipc", "uts", "mnt") if ns_id(c.pid, k) == ns_id("self", k)]
    expect(not same, f"namespaces not new: {same}")
    inherited = [k for k in ("cgroup", "user", "time") if os.path.exists(f"/proc/self/ns/{k}")]
    differ = [k for k in inherited if ns_id(c.pid, k) != ns_id("self", k)]
    expect(not differ, f"unlisted namespaces not inherited: {differ}")


@case("namespaces-duplicate", "config-linux.md#namespaces")
def namespaces_duplicate(ctx):
    """Two namespaces entries of the same type make create fail.

    config-linux.md#namespaces: "If a namespaces field contains duplicated namespaces with
    same type, the runtime MUST generate an error."
    """
    b = ctx.bundle(["true"])
    b.linux["namespaces"].append({"type": "uts"})
    c = ctx.create(b, ok=False)
    expect(not c.result.ok, "create accepted two 'uts' namespaces entries")


@case("namespaces-path-join", "config-linux.md#namespaces")
def namespaces_path(ctx):
    """A namespace given by path is joined: a second container shares the first one's network, ipc and uts namespaces.

    config-linux.md#namespaces: path "The runtime MUST place the container process in the
    namespace associated with that path."
    """
    a = ctx.bundle(["sleep", "1000"])
    a.config["hostname"] = "ns-owner"
    ca = running(ctx, a)
    b = ctx.bundle(["sh", "-c", "hostname > /out/hostname; exec sleep 1000"])
    nss = b.linux["namespaces"]
    for ns in nss:
        kind = {"network": "net", "ipc": "ipc", "uts": "uts"}.get(ns["type"])
        if kind:
            ns["path"] = f"/proc/{ca.pid}/ns/{kind}"
    cb = running(ctx, b)
    differ = [k for k in ("net", "ipc", "uts") if ns_id(cb.pid, k) != ns_id(ca.pid, k)]
    expect(not differ, f"namespaces not joined by path: {differ}")
    expect(ns_id(cb.pid, "mnt") != ns_id(ca.pid, "mnt"), "the mount namespace was shared too")
    got = ctx.wait_out(b, "hostname").strip()
    expect(got == "ns-owner", f"hostname in the joined uts namespace is {got!r}, expected 'ns-owner'")


@case("namespaces-path-wrong-type", "config-linux.md#namespaces")
def namespaces_wrong_type(ctx):
    """A namespace path of another type (a uts ns given as network) makes create fail.

    config-linux.md#namespaces: "The runtime MUST generate an error if path is not associated
    with a namespace of type type."
    """
    a = ctx.bundle(["sleep", "1000"])
    ca = running(ctx, a)
    b = ctx.bundle(["true"])
    for ns in b.linux["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = f"/proc/{ca.pid}/ns/uts"
    c = ctx.create(b, ok=False)
    expect(not c.result.ok, "create accepted a uts namespace as the network namespace")


DEV_SCRIPT = r"""
for d in null zero full random urandom tty; do
  if [ -c /dev/$d ]; then stat -L -c "$d %t:%T" /dev/$d; else echo "$d missing"; fi
done > /out/devs
[ "$(stat -L -c '%d:%i' /dev/ptmx)" = "$(stat -c '%d:%i' /dev/pts/ptmx)" ] && echo same > /out/ptmx
head -c 5 /dev/zero | wc -c > /out/zero
head -c 4 /dev/urandom | wc -c > /out/urandom
if echo x > /dev/null; then echo ok; else echo fail; fi > /out/null
if echo x > /dev/full 2>/dev/null; then echo ok; else echo fail; fi > /out/full
"""


@case("default-devices", "config-linux.md#default-devices")
def default_devices(ctx):
    """/dev/null, zero, full, random, urandom, tty exist with the right numbers and work; /dev/ptmx is /dev/pts/ptmx.

    config-linux.md#default-devices: "the runtime MUST also supply: /dev/null, /dev/zero,
    /dev/full, /dev/random, /dev/urandom, /dev/tty, ... /dev/ptmx. A bind-mount or symlink of
    the container's /dev/pts/ptmx."
    """
    b = ctx.bundle(["sh", "-c", DEV_SCRIPT])
    ctx.run(b)
    want = {"null": "1:3", "zero": "1:5", "full": "1:7", "random": "1:8", "urandom": "1:9", "tty": "5:0"}
    got = {}
    for line in (b.read_out("devs") or "").splitlines():
        name, num = line.split(None, 1)
        if num != "missing":
            ma, mi = num.split(":")
            num = f"{int(ma, 16)}:{int(mi, 16)}"
        got[name] = num
    bad = {k: got.get(k) for k in want if got.get(k) != want[k]}
    expect(not bad, f"default devices wrong or missing: {bad} (want {want})")
    expect(b.read_out("ptmx") == "same\n", "/dev/ptmx is not the container's /dev/pts/ptmx")
    expect((b.read_out("zero") or "").strip() == "5", "reading /dev/zero failed")
    expect((b.read_out("urandom") or "").strip() == "4", "reading /dev/urandom failed")
    expect((b.read_out("null") or "").strip() == "ok", "writing /dev/null failed")
    expect((b.read_out("full") or "").strip() == "fail", "writing /dev/full succeeded")


@case("dev-symlinks", "runtime-linux.md#dev-symbolic-links")
def dev_symlinks(ctx):
    """/dev/fd, /dev/stdin, /dev/stdout, /dev/stderr are symlinks to /proc/self/fd[/0,1,2].

    runtime-linux.md#dev-symbolic-links: "runtimes MUST create the following symlinks if the
    source file exists after processing mounts".
    """
    b = ctx.bundle(["sh", "-c", 'for l in fd stdin stdout stderr; do echo "$l $(readlink /dev/$l)"; done > /out/links'])
    ctx.run(b)
    got = dict(line.split(None, 1) if " " in line else (line, "")
               for line in (b.read_out("links") or "").splitlines())
    want = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
            "stderr": "/proc/self/fd/2"}
    bad = {k: got.get(k) for k in want if got.get(k) != want[k]}
    expect(not bad, f"/dev symlinks wrong: {bad}")


@case("masked-paths", "config-linux.md#masked-paths")
def masked_paths(ctx):
    """maskedPaths cannot be read: files read empty, directories list empty.

    config-linux.md#masked-paths: "maskedPaths (array of strings, OPTIONAL) will mask over the
    provided paths inside the container so that they cannot be read."
    """
    b = ctx.bundle(["sh", "-c", "cat /masked-file > /out/file; ls -A /masked-dir > /out/dir; "
                                "wc -c < /proc/timer_list > /out/timer_list"])
    b.add_file("/masked-file", "secret\n")
    b.add_file("/masked-dir/secret", "secret\n")
    b.linux["maskedPaths"] = ["/masked-file", "/masked-dir", "/proc/timer_list"]
    ctx.run(b)
    expect(b.read_out("file") == "", f"masked file reads {b.read_out('file')!r}")
    expect(b.read_out("dir") == "", f"masked dir lists {b.read_out('dir')!r}")
    expect((b.read_out("timer_list") or "").strip() == "0", "/proc/timer_list is readable")
    expect((b.rootfs / "masked-dir/secret").read_text() == "secret\n", "the masked file was changed")


@case("readonly-paths", "config-linux.md#readonly-paths")
def readonly_paths(ctx):
    """readonlyPaths are read-only inside the container (writes fail, mounted ro).

    config-linux.md#readonly-paths: "readonlyPaths (array of strings, OPTIONAL) will set the
    provided paths as readonly inside the container."
    """
    b = ctx.bundle(["sh", "-c", "if touch /ro-dir/new 2>/dev/null; then echo rw; else echo ro; fi > /out/write; "
                                "cat /proc/self/mountinfo > /out/mountinfo"])
    b.add_file("/ro-dir/existing", "x\n")
    b.linux["readonlyPaths"] = ["/ro-dir", "/proc/sys"]
    ctx.run(b)
    expect((b.read_out("write") or "").strip() == "ro", "could write into the read-only path /ro-dir")
    opts = {}
    for line in (b.read_out("mountinfo") or "").splitlines():
        f = line.split()
        opts[f[4]] = f[5]
    for p in ("/ro-dir", "/proc/sys"):
        expect("ro" in opts.get(p, "").split(","), f"{p} is mounted {opts.get(p)!r}, not ro")


@case("cgroups-path", "config-linux.md#cgroups-path")
def cgroups_path(ctx):
    """The process is placed in the cgroup named by (relative) cgroupsPath, the same one each time.

    config-linux.md#cgroups-path: relative paths are interpreted "relative to a
    runtime-determined location in the cgroups hierarchy"; "If the value is specified, the
    runtime MUST consistently attach to the same place in the cgroups hierarchy given the
    same value of cgroupsPath."
    """
    seen = []
    rel = None
    for _ in range(2):
        b = ctx.bundle(["sleep", "1000"])
        if rel is None:
            rel = b.linux["cgroupsPath"]
        b.linux["cgroupsPath"] = rel
        c = running(ctx, b)
        cg = read_proc_cgroup(c.pid)
        controllers = {k: v for k, v in cg.items() if k and not k.startswith("name=")}
        outside = {k: v for k, v in controllers.items() if not v.endswith("/" + rel)}
        expect(not outside, f"not in cgroupsPath {rel!r}: {outside}")
        seen.append(cg)
        ctx.kill(c.id, "KILL")
        ctx.wait_stopped(c)
        ctx.delete(c.id)
    expect(seen[0] == seen[1], f"same cgroupsPath, different cgroups: {seen[0]} vs {seen[1]}")
