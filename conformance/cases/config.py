"""config.md: root, mounts, hostname, umask."""
from __future__ import annotations

import socket

from conformance.bundle import expect
from conformance.cases import case


def _mountinfo_opts(text: str) -> dict[str, str]:
    """mount point -> per-mount options (field 6) of a mountinfo dump (last mount wins)."""
    out = {}
    for line in (text or "").splitlines():
        f = line.split()
        if len(f) > 5:
            out[f[4]] = f[5]
    return out


@case("hostname", "config.md#hostname")
def hostname(ctx):
    """hostname is set in the container's UTS namespace and the host's hostname is unchanged.

    config.md#hostname: "hostname (string, OPTIONAL) specifies the container's hostname as
    seen by processes running inside the container. On Linux, for example, this will change
    the hostname in the container UTS namespace."
    """
    before = socket.gethostname()
    b = ctx.bundle(["sh", "-c", "hostname > /out/hostname; cat /proc/sys/kernel/hostname >> /out/hostname"])
    b.config["hostname"] = "conformance-host"
    ctx.run(b)
    got = (b.read_out("hostname") or "").split()
    expect(got == ["conformance-host"] * 2, f"hostname inside is {got}, expected 'conformance-host'")
    expect(socket.gethostname() == before, f"the host's hostname changed to {socket.gethostname()!r}")


@case("root-readonly", "config.md#root")
def root_readonly(ctx):
    """root.readonly makes / read-only inside the container (writes fail, / is mounted ro).

    config.md#root: "readonly (bool, OPTIONAL) If true then the root filesystem MUST be
    read-only inside the container, defaults to false."
    """
    b = ctx.bundle(["sh", "-c", "if touch /rofile 2>/dev/null; then echo writable; else echo readonly; fi; "
                                "cat /proc/self/mountinfo"])
    b.config["root"]["readonly"] = True
    c = ctx.run(b)
    out = c.result.out  # the container's stdout is create's stdout: a file of the case
    lines = out.splitlines()
    expect(lines and lines[0] == "readonly", f"writing to / inside the container: {lines[:1]}")
    expect(not (b.rootfs / "rofile").exists(), "a file was created in the read-only rootfs")
    opts = _mountinfo_opts("\n".join(lines[1:])).get("/", "")
    expect("ro" in opts.split(","), f"/ is mounted with {opts!r}, not ro")


@case("root-writable-default", "config.md#root")
def root_writable(ctx):
    """Without readonly the root filesystem is writable (readonly defaults to false).

    config.md#root: readonly "defaults to false".
    """
    b = ctx.bundle(["sh", "-c", "echo hello > /written"])
    b.config["root"].pop("readonly", None)
    ctx.run(b)
    expect((b.rootfs / "written").is_file(), "the program could not write to /")


@case("root-path-absolute", "config.md#root")
def root_path_absolute(ctx):
    """root.path may be an absolute path to the root filesystem (not only relative to the bundle).

    config.md#root: "On POSIX platforms, path is either an absolute path or a relative path to
    the bundle."
    """
    b = ctx.bundle(["sh", "-c", "echo abs > /out/abs"])
    b.config["root"]["path"] = str(b.rootfs)
    ctx.run(b)
    expect(b.read_out("abs") == "abs\n", "the program did not run in the absolute root path")


@case("mounts-order", "config.md#mounts")
def mounts_order(ctx):
    """Mounts are made in the listed order: a bind inside an earlier tmpfs is visible, a later mount on the same path is on top.

    config.md#mounts: "The runtime MUST mount entries in the listed order."
    """
    srcs = {}
    for name in ("nested", "first", "second"):
        srcs[name] = ctx.tmp / f"src-{name}"
        srcs[name].mkdir()
        (srcs[name] / "marker").write_text(f"{name}\n")
    b = ctx.bundle(["sh", "-c", "cat /mnt/a/b/marker > /out/nested; cat /mnt/c/marker > /out/stacked; "
                                "cat /proc/self/mountinfo > /out/mountinfo"])
    b.config["mounts"] += [
        {"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]},
        {"destination": "/mnt/a/b", "type": "bind", "source": str(srcs["nested"]), "options": ["rbind", "ro"]},
        {"destination": "/mnt/c", "type": "bind", "source": str(srcs["first"]), "options": ["rbind"]},
        {"destination": "/mnt/c", "type": "bind", "source": str(srcs["second"]), "options": ["rbind"]},
    ]
    ctx.run(b)
    expect(b.read_out("nested") == "nested\n",
           "the bind mount listed after the tmpfs on /mnt/a is not visible at /mnt/a/b")
    top = (b.read_out("stacked") or "").strip()
    expect(top == "second", f"/mnt/c shows the {top or 'no'} bind mount: the one listed last is not on top")
    order = [line.split()[4] for line in (b.read_out("mountinfo") or "").splitlines()
             if line.split()[4] in ("/mnt/a", "/mnt/a/b", "/mnt/c")]
    expect(order == ["/mnt/a", "/mnt/a/b", "/mnt/c", "/mnt/c"],
           f"mount table order {order}, expected /mnt/a, /mnt/a/b, /mnt/c, /mnt/c")


@case("mounts-options", "config.md#linux-mount-options")
def mounts_options(ctx):
    """Mount options are applied: ro bind, nosuid/nodev/noexec, tmpfs mode and size.

    config.md#linux-mount-options: `bind`, `rbind`, `ro`, `nosuid`, `nodev`, `noexec` are
    MUST options; filesystem-specific ones (mode=, size=) go to the filesystem.
    """
    src = ctx.tmp / "bindsrc"
    src.mkdir()
    (src / "data").write_text("data\n")
    b = ctx.bundle(["sh", "-c",
                    "cat /mnt/ro/data > /out/data; if echo x > /mnt/ro/new 2>/dev/null; then echo rw; "
                    "else echo ro; fi > /out/write; stat -c %a /mnt/t > /out/mode; "
                    "cat /proc/self/mountinfo > /out/mountinfo; df -k /mnt/t | tail -n 1 > /out/df"])
    b.config["mounts"] += [
        {"destination": "/mnt/ro", "type": "bind", "source": str(src), "options": ["bind", "ro"]},
        {"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "noexec", "mode=710", "size=2048k"]},
    ]
    ctx.run(b)
    expect(b.read_out("data") == "data\n", "the bind mount source is not visible")
    expect((b.read_out("write") or "").strip() == "ro", "the ro bind mount is writable")
    expect(not (src / "new").exists(), "a file was written through the ro bind mount")
    opts = _mountinfo_opts(b.read_out("mountinfo"))
    expect("ro" in opts.get("/mnt/ro", "").split(","), f"/mnt/ro options {opts.get('/mnt/ro')!r} lack ro")
    t = opts.get("/mnt/t", "").split(",")
    missing = [o for o in ("nosuid", "nodev", "noexec") if o not in t]
    expect(not missing, f"/mnt/t options {opts.get('/mnt/t')!r} lack {missing}")
    mode = (b.read_out("mode") or "").strip()
    expect(mode == "710", f"tmpfs mode is {mode!r}, expected 710")
    df = (b.read_out("df") or "").split()
    expect(len(df) > 1 and df[1] == "2048", f"tmpfs size is {df[1:2]} KiB, expected 2048")


@case("mounts-relative-paths", "config.md#mounts")
def mounts_relative(ctx):
    """A relative bind source is taken relative to the bundle, a relative destination relative to /.

    config.md#mounts: source "Path values for bind mounts are either absolute or relative to
    the bundle"; destination "MAY be a relative path, in which case it MUST be interpreted as
    relative to '/'".
    """
    b = ctx.bundle(["sh", "-c", "cat /mnt/rel/marker > /out/marker"])
    (b.path / "relsrc").mkdir()
    (b.path / "relsrc" / "marker").write_text("relative\n")
    b.config["mounts"].append({"destination": "mnt/rel", "type": "bind", "source": "relsrc",
                               "options": ["rbind"]})
    ctx.run(b)
    expect(b.read_out("marker") == "relative\n",
           "bundle-relative source / /-relative destination not mounted at /mnt/rel")


@case("process-umask", "config.md#posix-platform-user")
def process_umask(ctx):
    """user.umask is applied to the process.

    config.md#posix-platform-user: "umask (int, OPTIONAL) specifies the umask of the user."
    """
    b = ctx.bundle(["sh", "-c", "umask > /out/umask"])
    b.process["user"]["umask"] = 0o027
    ctx.run(b)
    got = (b.read_out("umask") or "").strip()
    expect(got.lstrip("0") == "27", f"umask is {got!r}, expected 0027")
