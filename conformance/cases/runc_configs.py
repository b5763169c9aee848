"""Configurations runc runs and what runc's command line does with them: no namespaces at
all, a bind on the container's /, a config without /proc, bind sources a user-namespaced
init cannot reach; the environment of hooks without env, exec's process group, an
unopenable --log, list and state in a --root shared with other runtimes. Refs of the form
"runc:..." are runc behaviours the spec does not cover (a drop-in must match them)."""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from conformance.bundle import expect, fail, failed_create_leftovers, make_rootfs, skip
from conformance.cases import case

CLONE_NEWNS = 0x00020000


class MountNamespace:
    """A private mount namespace (held by `unshare -m sleep`) the runtime's commands run
    in (preexec_fn setns): what a runtime mounts in its own namespace stays in there."""

    def __init__(self):
        if not shutil.which("unshare"):
            skip("needs unshare(1) (util-linux)")
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                                      "sleep", "120"])
        own = os.readlink("/proc/self/ns/mnt")
        deadline = time.monotonic() + 5
        while True:
            try:
                if os.readlink(f"/proc/{self.proc.pid}/ns/mnt") != own:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.close()
                fail("unshare did not make a mount namespace")
            time.sleep(0.01)
        self.path = f"/proc/{self.proc.pid}/ns/mnt"
        self.id = os.readlink(self.path)

    def enter(self):  # preexec_fn: in the forked child, before exec
        fd = os.open(self.path, os.O_RDONLY)
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNS) != 0:
            os._exit(127)
        os.close(fd)

    def mounts_under(self, path) -> int:
        text = Path(f"/proc/{self.proc.pid}/mountinfo").read_text()
        return sum(1 for ln in text.splitlines() if ln.split()[4].startswith(str(path)))

    def close(self):
        try:
            self.proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def _no_namespaces(b):
    b.linux["namespaces"] = []
    b.linux.pop("maskedPaths", None)
    b.linux.pop("readonlyPaths", None)


def _run_in(ctx, ns, b):
    """create + start + wait + delete, every command in mount namespace ns."""
    cid = ctx.new_id()
    b.save()
    ctx.ids.append(cid)
    res = ctx.rt("create", "--bundle", str(b.path), cid, preexec_fn=ns.enter)
    if not res.ok:
        fail(f"create failed: {res.reason()}")
    res = ctx.rt("start", cid, preexec_fn=ns.enter)
    if not res.ok:
        fail(f"start failed: {res.reason()}")
    ctx.wait_for(lambda: b.read_out("done") is not None, "the program to run")
    running = ns.mounts_under(b.rootfs)
    res = ctx.rt("delete", "--force", cid, preexec_fn=ns.enter)
    expect(res.ok, f"delete failed: {res.reason()}")
    return running


NO_NS_PROG = ["sh", "-c", "readlink /proc/self/ns/mnt > /out/mnt; readlink /proc/self/ns/pid "
              "> /out/pid; ls /dev > /out/dev; touch /out/done"]


@case("no-namespaces-runs", "config-linux.md#namespaces")
def no_namespaces_runs(ctx):
    """A config with an empty namespaces list (every namespace the runtime's) creates and starts; the program sees its mounts.

    config-linux.md#namespaces: "If a namespace type is not specified in the namespaces
    array, the container MUST inherit the runtime namespace of that type."
    """
    ns = MountNamespace()
    try:
        b = ctx.bundle(NO_NS_PROG)
        _no_namespaces(b)
        _run_in(ctx, ns, b)
        expect(b.read_out("mnt", "").strip() == ns.id,
               f"mount namespace {b.read_out('mnt', '').strip()}, not the runtime's {ns.id}")
        expect(b.read_out("pid", "").strip() == os.readlink("/proc/self/ns/pid"),
               "the container is not in the runtime's pid namespace")
        expect("null" in b.read_out("dev", "").split(), "the config's /dev is not there")
    finally:
        ns.close()


@case("no-namespaces-delete-unmounts", "runtime.md#delete",
      runc_deviation="runc 1.1.5 leaves the mounts it made in the runtime's mount namespace "
                     "for a container without its own")
def no_namespaces_delete_unmounts(ctx):
    """Without a mount namespace, delete removes the mounts create made in the runtime's.

    runtime.md#delete: "Deleting a container MUST delete the resources that were created
    during the create step."
    """
    ns = MountNamespace()
    try:
        b = ctx.bundle(NO_NS_PROG)
        _no_namespaces(b)
        running = _run_in(ctx, ns, b)
        expect(running > 0, "no mounts under the rootfs while the container ran")
        left = ns.mounts_under(b.rootfs)
        expect(left == 0, f"{left} mount(s) under the rootfs after delete")
    finally:
        ns.close()


@case("bind-mount-on-root", "config.md#mounts")
def bind_mount_on_root(ctx):
    """A bind mount on "/" listed first becomes the container's root; later mounts go on top of it.

    config.md#mounts: "The runtime MUST mount entries in the listed order."
    """
    alt = make_rootfs(ctx.tmp / "altroot")
    (alt / "marker").write_text("alt\n")
    b = ctx.bundle(["sh", "-c", "cat /marker > /out/m; ls /proc/self/fd > /dev/null && echo ok > /out/proc"])
    b.config["mounts"].insert(0, {"destination": "/", "type": "bind", "source": str(alt),
                                  "options": ["rbind"]})
    b.out = alt / "out"  # /out is the bound root's
    ctx.run(b)
    expect(b.read_out("m", "").strip() == "alt", "the container's root is not the bind mount")
    expect(b.read_out("proc", "").strip() == "ok", "the config's /proc is not on top of it")


@case("no-proc-fails-at-create", "runtime.md#create")
def no_proc(ctx):
    """A config without a /proc mount either runs, or fails at create leaving nothing; never a create that succeeds for a dead init.

    runtime.md#create: "This operation MUST generate an error if it is not provided a path to
    the bundle..." and runtime.md#errors: "If the runtime is unable to complete the operation
    ... generating an error MUST leave the state of the environment as if the operation were
    never attempted."
    """
    b = ctx.bundle(["sh", "-c", "echo ran > /out/ran"])
    b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/proc"]
    c = ctx.create(b, ok=False)
    if not c.result.ok:
        left = failed_create_leftovers(ctx, c)
        expect(not left, f"failed create left: {'; '.join(left)}")
        expect(len(c.result.err.strip().splitlines()) >= 1, "no error message")
        return
    st = ctx.state(c.id)
    expect(st.get("status") == "created" and st.get("pid"), f"state after create: {st}")
    ctx.start(c.id)
    ctx.wait_for(lambda: b.read_out("ran") is not None, "the program to run")


@case("bind-source-beyond-userns", "config.md#mounts")
def bind_source_beyond_userns(ctx):
    """With a user namespace, a bind source the container's root cannot reach (0700 parent) is still mounted.

    config.md#mounts: source "For bind mounts ... a path on the host"; the runtime, not the
    container's user, resolves it (runc opens it before the user namespace is entered).
    """
    ctx.tmp.chmod(0o755)
    secret = ctx.tmp / "secret"
    (secret / "inner").mkdir(parents=True)
    secret.chmod(0o700)
    (secret / "inner/f").write_text("reached\n")
    b = ctx.bundle(["sh", "-c", "cat /mnt/f > /out/f"])
    os.chmod(b.path, 0o755)
    b.linux["namespaces"].append({"type": "user"})
    b.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.config["mounts"].append({"destination": "/mnt", "type": "bind",
                               "source": str(secret / "inner"), "options": ["rbind", "ro"]})
    ctx.run(b)
    expect(b.read_out("f", "").strip() == "reached", f"/mnt/f: {b.read_out('f')!r}")


HOOK_ENV = '#!/bin/sh\nenv > "$1"\n'


@case("hooks-env-inherited", "runc:hooks")
def hooks_env_inherited(ctx):
    """A hook without env gets the runtime's environment (runc: Go's exec with a nil Env); one with env gets exactly that.

    config.md#posix-platform-hooks: env "with the same semantics as IEEE Std 1003.1-2008's
    environ". runc leaves an absent env to Go, which passes the runtime's.
    """
    hook = ctx.tmp / "env.sh"
    hook.write_text(HOOK_ENV)
    hook.chmod(0o755)
    b = ctx.bundle(["true"])
    b.add_hook("prestart", str(hook), ["env", str(b.out / "prestart")])
    b.add_hook("createRuntime", str(hook), ["env", str(b.out / "given")], env=["ONLY=this"])
    token = f"inherited-{ctx.token}"
    os.environ["CONFORMANCE_HOOK_VAR"] = token
    try:
        ctx.create(b)
    finally:
        del os.environ["CONFORMANCE_HOOK_VAR"]
    pre = b.read_out("prestart", "")
    expect(f"CONFORMANCE_HOOK_VAR={token}" in pre.splitlines(),
           "the prestart hook without env did not get the runtime's environment")
    given = b.read_out("given", "").splitlines()
    expect("ONLY=this" in given and not any(ln.startswith("CONFORMANCE_HOOK_VAR=") for ln in given),
           f"the hook with env got {given}")


@case("exec-process-group", "runc:exec")
def exec_process_group(ctx):
    """A process started by exec leads its own session and process group (getpgrp() is its pid, not 0)."""
    b = ctx.bundle(["sleep", "1000"])
    c = ctx.create(b)
    ctx.start(c.id)
    res = ctx.rt("exec", c.id, "cat", "/proc/self/stat")
    expect(res.ok, f"exec failed: {res.reason()}")
    f = res.out.split()
    expect(len(f) > 5 and f[0] == f[4] == f[5] and f[4] != "0",
           f"pid, pgrp, session of the exec'd process: {f[0:1] + f[4:6]}")


@case("log-unopenable-fails", "runc:--log")
def log_unopenable(ctx):
    """--log naming a file that cannot be opened fails any command at once, even one that logs nothing (list)."""
    bad = ctx.tmp / "no-such-dir" / "log"
    res = ctx.rt("list", global_args=("--log", str(bad)))
    expect(not res.ok, "list succeeded with an unopenable --log")
    expect(res.out == "", f"list printed {res.out[:60]!r}")


@case("list-shared-root", "runc:list")
def list_shared_root(ctx):
    """list in a --root that also holds other runtimes' and corrupt state dirs exits 0 and lists its own; state of such an id fails."""
    b = ctx.bundle(["sleep", "1000"])
    c = ctx.create(b)
    for name, text in (("foreign", '{"id": "foreign", "init_process_pid": 1, "config": null}'),
                       ("corrupt", "{bad json")):
        (ctx.root / name).mkdir()
        (ctx.root / name / "state.json").write_text(text)
    res = ctx.rt("list", "--quiet")
    expect(res.ok, f"list failed: {res.reason()}")
    expect(res.out.split() == [c.id], f"list printed {res.out.split()}, expected [{c.id!r}]")
    for name in ("foreign", "corrupt"):
        res = ctx.rt("state", name)
        expect(not res.ok, f"state {name} succeeded")
        expect("internal error" not in res.err and "Traceback" not in res.err,
               f"state {name}: {res.reason()}")
