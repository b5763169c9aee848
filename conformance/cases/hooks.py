"""config.md#posix-platform-hooks and runtime.md#lifecycle: when hooks run, where, with
what on stdin, and what a failing hook does.

Every hook is the same recorder script (run by the host's /bin/sh, or by the container's
busybox sh for startContainer whose path must resolve in the container): it saves its stdin
(the state) as OUT/NAME.json, appends NAME to OUT/order, and writes OUT/NAME.info with its
argc, an env var, its mount and pid namespaces, whether the user program had run yet, and
(mode exe) what the container process executes. OUT is the rootfs's /out, seen from the
host for runtime-namespace hooks; the user program appends "program" to the same order file.
"""
from __future__ import annotations

import json
import os
import time

from conformance.bundle import (check_state_doc, expect, fail, ns_id, pid_alive,
                                skip)
from conformance.cases import case

REC = r"""#!/bin/sh
# conformance hook recorder: NAME OUTDIR [ok|fail|sleep|exe]
name=$1 out=$2 mode=${3:-ok}
cat > "$out/$name.json"
echo "$name" >> "$out/order"
pid=$(sed -n 's/.*"pid"[^0-9]*\([0-9][0-9]*\).*/\1/p' "$out/$name.json" | head -n 1)
{
  echo "argc=$#"
  echo "var=$HOOK_VAR"
  echo "mntns=$(readlink /proc/self/ns/mnt)"
  echo "pidns=$(readlink /proc/self/ns/pid)"
  if [ -e "$out/program" ]; then echo program=yes; else echo program=no; fi
  echo "procmounts=$(grep -c ' - proc ' /proc/self/mountinfo)"
  if [ "$mode" = exe ] && [ -n "$pid" ]; then echo "exe=$(readlink /proc/$pid/exe)"; fi
  if [ -f "$out/cgdirs" ]; then
    left=""
    while read -r d; do [ -d "$d" ] && left="$left $d"; done < "$out/cgdirs"
    echo "cgleft=$left"
  fi
} > "$out/$name.info"
case "$mode" in
  fail) exit 1 ;;
  sleep) echo $$ > "$out/$name.sleeper"; exec sleep 60 ;;
esac
exit 0
"""

HOOK_ENV = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOOK_VAR=value with space"]
PROGRAM = ["sh", "-c", "echo program >> /out/order; echo ran > /out/program; exec sleep 1000"]
CREATE_PHASE = ("prestart", "createRuntime", "createContainer")
CONTAINER_NS = ("createContainer", "startContainer")
# status the state on stdin must have, from runtime.md#state's definitions: the
# create-phase hooks run at lifecycle steps 3-5, after step 2 ("creating"), so "created"
# (checked by hooks-create-phase-status, which runc fails: it says "creating")
STATUS = {"prestart": "created", "createRuntime": "created", "createContainer": "created",
          "startContainer": "created", "poststart": "running", "poststop": "stopped"}


def hook_bundle(ctx, args=PROGRAM):
    b = ctx.bundle(args)
    b.add_file("/hooks/rec.sh", REC, 0o755)
    host = ctx.tmp / "hook-rec.sh"
    if not host.exists():
        host.write_text(REC)
        os.chmod(host, 0o755)
    b.host_hook = host
    return b


def add_rec(b, kind: str, name: str | None = None, mode: str = "ok", timeout=None):
    """Add the recorder as a `kind` hook recording under `name`."""
    name = name or kind
    if kind == "startContainer":  # path resolves in the container
        path, out = "/hooks/rec.sh", "/out"
    else:
        path, out = str(b.host_hook), str(b.out)
    args = ["rec.sh", name, out] + ([mode] if mode != "ok" else [])
    b.add_hook(kind, path, args, HOOK_ENV, timeout)


def order(b) -> list[str]:
    return (b.read_out("order") or "").split()


def info(b, name) -> dict[str, str]:
    text = b.read_out(f"{name}.info")
    if text is None:
        fail(f"the {name} hook did not run")
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def hook_state(b, name) -> dict:
    text = b.read_out(f"{name}.json")
    if text is None:
        fail(f"the {name} hook did not run")
    try:
        st = json.loads(text)
    except ValueError:
        fail(f"the {name} hook got no JSON state on stdin: {text[:80]!r}")
    if not isinstance(st, dict):
        fail(f"the {name} hook got no JSON object on stdin: {text[:80]!r}")
    return st


def host_proc_mounts() -> int:
    with open("/proc/self/mountinfo") as f:
        return sum(" - proc " in line for line in f)


def check_hook(b, name, kind, *, cid, pid=None, program_ran=False, nargs=2):
    """Check what hook `name` of type `kind` recorded: state on stdin, namespaces, timing."""
    st = hook_state(b, name)
    try:
        check_state_doc(st, cid=cid, bundle=b.path)
    except AssertionError as e:
        fail(f"{name} hook's stdin state: {e}")
    if kind not in CREATE_PHASE:  # hooks-create-phase-status checks those
        expect(st["status"] == STATUS[kind],
               f"{name} hook got status {st['status']!r}, expected {STATUS[kind]!r}")
    inf = info(b, name)
    in_container = kind in CONTAINER_NS
    if kind != "poststop":
        want_pid = 1 if in_container else pid
        if want_pid is not None:
            expect(st.get("pid") == want_pid,
                   f"{name} hook got pid {st.get('pid')}, expected {want_pid} "
                   f"(as seen from the {'container' if in_container else 'runtime'} namespace)")
    expect(inf.get("argc") == str(nargs), f"{name} hook got {inf.get('argc')} args, expected {nargs}")
    expect(inf.get("var") == "value with space", f"{name} hook env HOOK_VAR={inf.get('var')!r}")
    ran = inf.get("program") == "yes"
    if program_ran is not None:
        expect(ran == program_ran, f"the user program had {'' if ran else 'not '}run when the {name} hook ran")
    if in_container:
        expect(pid is not None, "no container pid to compare namespaces with")
        for k in ("mnt", "pid"):
            expect(inf.get(f"{k}ns") == ns_id(pid, k),
                   f"{name} hook ran in {k} ns {inf.get(f'{k}ns')}, not the container's {ns_id(pid, k)}")
    else:
        for k in ("mnt", "pid"):
            expect(inf.get(f"{k}ns") == ns_id("self", k),
                   f"{name} hook ran in {k} ns {inf.get(f'{k}ns')}, not the runtime's {ns_id('self', k)}")
    return st, inf


def wait_gone(ctx, pid, what):
    if pid:
        ctx.wait_for(lambda: not pid_alive(pid), f"{what} (pid {pid}) to be gone", timeout=5)


# --------------------------------------------------------------------------- timing + stdin

@case("hooks-prestart", "config.md#prestart")
def hooks_prestart(ctx):
    """prestart hooks run during create, before createRuntime, in the runtime namespace, with the state on stdin.

    config.md#prestart: "MUST be called as part of the create operation after the runtime
    environment has been created ... but before the pivot_root"; "MUST be called before the
    createRuntime hooks"; "MUST be executed in the runtime namespace".
    config.md#posix-platform-hooks: "The state of the container MUST be passed to hooks over
    stdin". runtime.md#state: pid "For hooks executed in the runtime namespace, it is the pid
    as seen by the runtime".
    """
    b = hook_bundle(ctx)
    add_rec(b, "prestart")
    add_rec(b, "createRuntime")
    c = ctx.create(b)
    expect(order(b) == ["prestart", "createRuntime"],
           f"hooks run by create: {order(b)}, expected ['prestart', 'createRuntime']")
    check_hook(b, "prestart", "prestart", cid=c.id, pid=c.pid)
    ctx.start(c.id)
    ctx.wait_out(b, "program")
    expect(order(b).count("prestart") == 1, f"prestart ran again: {order(b)}")


@case("hooks-createruntime", "config.md#createruntime-hooks")
def hooks_create_runtime(ctx):
    """createRuntime hooks run during create in the listed order, in the runtime namespace, with the state on stdin.

    config.md#createruntime-hooks: "MUST be called as part of the create operation ...
    before the pivot_root"; "MUST be executed in the runtime namespace".
    config.md#posix-platform-hooks: "Hooks MUST be called in the listed order."
    """
    b = hook_bundle(ctx)
    add_rec(b, "createRuntime", "cr1")
    add_rec(b, "createRuntime", "cr2")
    c = ctx.create(b)
    expect(order(b) == ["cr1", "cr2"], f"hooks run by create: {order(b)}, expected ['cr1', 'cr2']")
    for name in ("cr1", "cr2"):
        check_hook(b, name, "createRuntime", cid=c.id, pid=c.pid)


@case("hooks-createcontainer", "config.md#createcontainer-hooks")
def hooks_create_container(ctx):
    """createContainer hooks run during create after createRuntime, in the container's namespaces, after the mounts.

    config.md#createcontainer-hooks: "MUST be called as part of the create operation after the
    runtime environment has been created ... but before the pivot_root"; "MUST be called after
    the createRuntime hooks"; path "MUST resolve in the runtime namespace"; "MUST be executed
    in the container namespace". runtime.md#state: pid "For hooks executed in the container
    namespace, it is the pid as seen by the container" (1 in a new pid namespace).
    """
    b = hook_bundle(ctx)
    add_rec(b, "createRuntime")
    add_rec(b, "createContainer")
    c = ctx.create(b)
    expect(order(b) == ["createRuntime", "createContainer"],
           f"hooks run by create: {order(b)}, expected ['createRuntime', 'createContainer']")
    _, inf = check_hook(b, "createContainer", "createContainer", cid=c.id, pid=c.pid)
    expect(int(inf.get("procmounts") or 0) > host_proc_mounts(),
           "the container's mounts (its /proc) were not set up when createContainer ran")


@case("hooks-startcontainer", "config.md#startcontainer-hooks")
def hooks_start_container(ctx):
    """startContainer hooks run during start, before the program, in the container (path resolved there).

    config.md#startcontainer-hooks: "MUST be called before the user-specified process is
    executed as part of the start operation"; path "MUST resolve in the container namespace";
    "MUST be executed in the container namespace".
    """
    if os.path.exists("/hooks/rec.sh"):
        skip("/hooks/rec.sh exists on the host: cannot tell where the path resolves")
    b = hook_bundle(ctx)
    add_rec(b, "startContainer")
    c = ctx.create(b)
    expect(order(b) == [], f"hooks run by create: {order(b)}, expected none")
    ctx.start(c.id)
    ctx.wait_out(b, "program")
    expect(order(b)[:2] == ["startContainer", "program"],
           f"order {order(b)}, expected startContainer then the program")
    check_hook(b, "startContainer", "startContainer", cid=c.id, pid=c.pid)


POSTSTART_DEVIATION = ("runc < 1.2 runs poststart hooks in `runc create`, before the user program "
                       "is executed (opencontainers/runc#1710, fixed by runc#5186)")


@case("hooks-poststart", "config.md#poststart", runc_deviation=POSTSTART_DEVIATION)
def hooks_poststart(ctx):
    """poststart hooks run during start, after the user program is executed, before start returns.

    config.md#poststart: "MUST be called after the user-specified process is executed but
    before the start operation returns"; "MUST be executed in the runtime namespace".
    """
    b = hook_bundle(ctx)
    add_rec(b, "poststart", mode="exe")
    c = ctx.create(b)
    expect("poststart" not in order(b), "the poststart hook ran during create")
    ctx.start(c.id)
    expect("poststart" in order(b), "the poststart hook had not run when start returned")
    _, inf = check_hook(b, "poststart", "poststart", cid=c.id, pid=c.pid, nargs=3, program_ran=None)
    expect(inf.get("exe", "").endswith("/bin/busybox"),
           f"when poststart ran the container process executed {inf.get('exe')!r}, not the program")


@case("hooks-poststop", "config.md#poststop")
def hooks_poststop(ctx):
    """poststop hooks run in delete, in the listed order, after the container is gone, before delete returns.

    config.md#poststop: "MUST be called after the container is deleted but before the delete
    operation returns"; "MUST be executed in the runtime namespace".
    """
    b = hook_bundle(ctx)
    add_rec(b, "poststop", "poststop1")
    add_rec(b, "poststop", "poststop2")
    c = ctx.create(b)
    (b.out / "cgdirs").write_text("".join(f"{d}\n" for d in sorted(ctx.cgroup_dirs)))
    ctx.start(c.id)
    ctx.wait_out(b, "program")
    ctx.kill(c.id, "KILL")
    ctx.wait_stopped(c)
    expect(order(b) == ["program"], f"hooks ran before delete: {order(b)}")
    ctx.delete(c.id)
    expect(order(b) == ["program", "poststop1", "poststop2"],
           f"after delete the order is {order(b)}, expected program, poststop1, poststop2")
    for name in ("poststop1", "poststop2"):
        _, inf = check_hook(b, name, "poststop", cid=c.id, program_ran=True)
        expect(not inf.get("cgleft", "").strip(),
               f"{name} ran while the container's cgroups still existed: {inf.get('cgleft')}")
    wait_gone(ctx, c.pid, "container process")


# --------------------------------------------------------------------------- failures

def _create_hook_failure(ctx, failing: str):
    b = hook_bundle(ctx)
    for kind in CREATE_PHASE:
        add_rec(b, kind, mode="fail" if kind == failing else "ok")
    add_rec(b, "poststop")
    c = ctx.create(b, ok=False)
    expect(not c.result.ok, f"create succeeded although the {failing} hook failed")
    st = hook_state(b, "prestart")
    wait_gone(ctx, st.get("pid"), "the container process")
    upto = list(CREATE_PHASE[:CREATE_PHASE.index(failing) + 1])
    got = order(b)
    expect(got[:len(upto)] == upto and "program" not in got,
           f"hooks/program run: {got}, expected {upto} then poststop")
    res = ctx.state_result(c.id)
    expect(not res.ok, f"the failed create left container {c.id} ({res.out.strip()[:60]})")
    expect(got == upto + ["poststop"], f"poststop hooks not run after the failed create: {got} "
                                       "(lifecycle continues at step 12/13)")
    time.sleep(0.05)
    expect(b.read_out("program") is None, "the user program ran")
    b.config.pop("hooks")  # the id must be free again ("as if never attempted")
    c2 = ctx.create(b, c.id, ok=False)
    expect(c2.result.ok, f"the id of the failed create cannot be reused: {c2.result.reason()}")


@case("hooks-prestart-fail", "runtime.md#lifecycle")
def hooks_prestart_fail(ctx):
    """A failing prestart hook makes create fail, stops the container, runs poststop, leaves no container.

    runtime.md#lifecycle step 3: "If any prestart hook fails, the runtime MUST generate an
    error, stop the container, and continue the lifecycle at step 12." (step 13: poststop
    hooks MUST be invoked). runtime.md#errors: the state is left "as if the operation were
    never attempted".
    """
    _create_hook_failure(ctx, "prestart")


@case("hooks-createruntime-fail", "runtime.md#lifecycle")
def hooks_create_runtime_fail(ctx):
    """A failing createRuntime hook makes create fail, stops the container, runs poststop, leaves no container.

    runtime.md#lifecycle step 4: "If any createRuntime hook fails, the runtime MUST generate
    an error, stop the container, and continue the lifecycle at step 12."
    """
    _create_hook_failure(ctx, "createRuntime")


@case("hooks-createcontainer-fail", "runtime.md#lifecycle")
def hooks_create_container_fail(ctx):
    """A failing createContainer hook makes create fail, stops the container, runs poststop, leaves no container.

    runtime.md#lifecycle step 5: "If any createContainer hook fails, the runtime MUST generate
    an error, stop the container, and continue the lifecycle at step 12."
    """
    _create_hook_failure(ctx, "createContainer")


def _start_hook_failure(ctx, failing: str):
    b = hook_bundle(ctx)
    add_rec(b, "startContainer", mode="fail" if failing == "startContainer" else "ok")
    add_rec(b, "poststart", mode="fail" if failing == "poststart" else "ok")
    add_rec(b, "poststop")
    c = ctx.create(b)
    res = ctx.start(c.id, ok=False)
    expect(not res.ok, f"start succeeded although the {failing} hook failed")
    wait_gone(ctx, c.pid, "the container process")
    if failing == "startContainer":
        time.sleep(0.05)
        expect(b.read_out("program") is None, "the user program ran although startContainer failed")
        expect("poststart" not in order(b), "poststart hooks ran although startContainer failed")
    st = ctx.state_result(c.id)
    if st.ok:  # stopped but not destroyed yet: delete must then destroy it and run poststop
        status = json.loads(st.out).get("status")
        expect(status == "stopped", f"after the failed start the container is {status!r}, not stopped")
        expect("poststop" not in order(b), "poststop ran although the container was not deleted")
        ctx.delete(c.id)
    expect("poststop" in order(b), f"poststop hooks not run: {order(b)}")


@case("hooks-startcontainer-fail", "runtime.md#lifecycle",
      runc_deviation="runc 1.1.5 `start` exits 0 when a startContainer hook fails (the init "
                     "fails after start has returned); the program is not run")
def hooks_start_container_fail(ctx):
    """A failing startContainer hook makes start fail and stops the container without running the program.

    runtime.md#lifecycle step 7: "If any startContainer hook fails, the runtime MUST generate
    an error, stop the container, and continue the lifecycle at step 12."
    """
    _start_hook_failure(ctx, "startContainer")


@case("hooks-poststart-fail", "runtime.md#lifecycle", runc_deviation=POSTSTART_DEVIATION)
def hooks_poststart_fail(ctx):
    """A failing poststart hook makes start fail and stops the container.

    runtime.md#lifecycle step 9: "If any poststart hook fails, the runtime MUST generate an
    error, stop the container, and continue the lifecycle at step 12."
    """
    _start_hook_failure(ctx, "poststart")


@case("hooks-poststop-fail", "runtime.md#lifecycle",
      runc_deviation="runc 1.1.5 stops at the first failing poststop hook: the remaining ones "
                     "are not run (opencontainers/runc#1710)")
def hooks_poststop_fail(ctx):
    """A failing poststop hook only warns: delete succeeds and the remaining poststop hooks run.

    runtime.md#lifecycle step 13: "If any poststop hook fails, the runtime MUST log a warning,
    but the remaining hooks and lifecycle continue as if the hook had succeeded."
    """
    b = hook_bundle(ctx, ["true"])
    add_rec(b, "poststop", "poststop1", mode="fail")
    add_rec(b, "poststop", "poststop2")
    c = ctx.create(b)
    ctx.start(c.id)
    ctx.wait_stopped(c)
    res = ctx.delete(c.id, ok=False)
    expect(res.ok, f"delete failed because a poststop hook failed: {res.reason()}")
    expect(not ctx.state_result(c.id).ok, "the container still exists after delete")
    expect(order(b) == ["poststop1", "poststop2"],
           f"poststop hooks run: {order(b)}, expected poststop1 (failing) then poststop2")


@case("hooks-timeout", "config.md#posix-platform-hooks")
def hooks_timeout(ctx):
    """A hook running past its timeout is aborted: create fails promptly and leaves nothing running.

    config.md#posix-platform-hooks: "timeout (int, OPTIONAL) is the number of seconds before
    aborting the hook." runtime.md#lifecycle step 4: a failed createRuntime hook makes create
    fail and stops the container.
    """
    b = hook_bundle(ctx)
    add_rec(b, "prestart")
    add_rec(b, "createRuntime", mode="sleep", timeout=1)
    t0 = time.monotonic()
    c = ctx.create(b, ok=False)
    took = time.monotonic() - t0
    expect(not c.result.ok, "create succeeded although its createRuntime hook timed out")
    expect(took < 8, f"create took {took:.1f}s with a 1s hook timeout")
    sleeper = int((b.read_out("createRuntime.sleeper") or "0").strip() or 0)
    expect(sleeper, "the createRuntime hook did not run")
    wait_gone(ctx, sleeper, "the timed-out hook")
    wait_gone(ctx, hook_state(b, "prestart").get("pid"), "the container process")
    expect(not ctx.state_result(c.id).ok, "the timed-out create left a container")
