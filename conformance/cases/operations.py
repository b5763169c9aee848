"""runtime.md#operations: what start/kill/delete/create must refuse, and kill's signals."""
from __future__ import annotations

import signal
import time

from conformance.bundle import expect, pid_alive
from conformance.cases import case
from conformance.cases.lifecycle import waiter


@case("start-not-created", "runtime.md#start")
def start_not_created(ctx):
    """start on a running or a stopped container fails and has no effect on it.

    runtime.md#start: "Attempting to start a container that is not created MUST have no
    effect on the container and MUST generate an error."
    """
    b = waiter(ctx)
    c = ctx.create(b)
    ctx.start(c.id)
    ctx.wait_out(b, "ran")
    res = ctx.start(c.id, ok=False)
    expect(not res.ok, "start of a running container succeeded")
    st = ctx.state(c.id)
    expect(st["status"] == "running" and st.get("pid") == c.pid,
           f"after the refused start: {st['status']} pid {st.get('pid')}, expected running pid {c.pid}")
    expect(pid_alive(c.pid), "the refused start stopped the container process")
    (b.out / "go").touch()
    ctx.wait_stopped(c)
    res = ctx.start(c.id, ok=False)
    expect(not res.ok, "start of a stopped container succeeded")
    time.sleep(0.05)
    st = ctx.state(c.id)
    expect(st["status"] == "stopped", f"after the refused start the status is {st['status']!r}")
    expect(b.read_out("ran") == "ran\n", "the program ran again after a refused start")


@case("delete-created-no-force", "runtime.md#delete",
      runc_deviation="runc 1.1.5 `delete` without --force kills and deletes a created "
                     "container (delete.go: `case libcontainer.Created: return killContainer`)")
def delete_created(ctx):
    """delete (without --force) of a created container fails and leaves it created.

    runtime.md#delete: "Attempting to delete a container that is not stopped MUST have no
    effect on the container and MUST generate an error."
    """
    b = waiter(ctx)
    c = ctx.create(b)
    res = ctx.delete(c.id, ok=False)
    still = ctx.state_result(c.id).ok
    expect(not res.ok, "delete of a created container succeeded"
           + ("" if still else " and removed the container"))
    st = ctx.state(c.id)
    expect(st["status"] == "created" and st.get("pid") == c.pid,
           f"after the refused delete: {st['status']} pid {st.get('pid')}, expected created pid {c.pid}")
    ctx.start(c.id)
    ctx.wait_out(b, "ran")


@case("delete-running-no-force", "runtime.md#delete")
def delete_running(ctx):
    """delete (without --force) of a running container fails and leaves it running.

    runtime.md#delete: "Attempting to delete a container that is not stopped MUST have no
    effect on the container and MUST generate an error."
    """
    b = waiter(ctx)
    c = ctx.create(b)
    ctx.start(c.id)
    ctx.wait_out(b, "ran")
    res = ctx.delete(c.id, ok=False)
    expect(not res.ok, "delete of a running container succeeded")
    st = ctx.state(c.id)
    expect(st["status"] == "running" and st.get("pid") == c.pid,
           f"after the refused delete: {st['status']} pid {st.get('pid')}, expected running pid {c.pid}")
    expect(pid_alive(c.pid), "the refused delete stopped the container process")


@case("kill-created", "runtime.md#kill")
def kill_created(ctx):
    """kill KILL on a created container signals its process: it becomes stopped without running the program.

    runtime.md#kill: "Attempting to send a signal to a container that is neither created nor
    running MUST have no effect ..." (so created containers can be signalled) and "This
    operation MUST send the specified signal to the container process."
    """
    b = waiter(ctx)
    c = ctx.create(b)
    ctx.kill(c.id, "KILL")
    ctx.wait_stopped(c)
    expect(b.read_out("ran") is None, "the program ran although the container was killed before start")
    ctx.delete(c.id)


@case("kill-stopped", "runtime.md#kill")
def kill_stopped(ctx):
    """kill on a stopped container fails and has no effect; delete then works.

    runtime.md#kill: "Attempting to send a signal to a container that is neither created nor
    running MUST have no effect on the container and MUST generate an error."
    """
    b = ctx.bundle(["true"])
    c = ctx.create(b)
    ctx.start(c.id)
    ctx.wait_stopped(c)
    for sig in ("TERM", "9"):
        res = ctx.kill(c.id, sig, ok=False)
        expect(not res.ok, f"kill {sig} of a stopped container succeeded")
    st = ctx.state(c.id)
    expect(st["status"] == "stopped", f"after the refused kill the status is {st['status']!r}")
    ctx.delete(c.id)


SIG_SCRIPT = """#!/bin/sh
for s in HUP USR1 USR2; do trap "echo $s >> /out/sigs" $s; done
trap 'echo TERM >> /out/sigs; exit 0' TERM
echo ready > /out/ready
while :; do sleep 1 & wait $!; done
"""


@case("kill-signals", "runtime.md#kill")
def kill_signals(ctx):
    """kill delivers the named or numbered signal: SIGHUP, USR1, 12/SIGUSR2 (number), TERM.

    runtime.md#kill: "This operation MUST send the specified signal to the container
    process." (runc accepts `SIGNAME`, `NAME` and the number.)
    """
    b = ctx.bundle(["/sig.sh"])
    b.add_file("/sig.sh", SIG_SCRIPT, 0o755)
    c = ctx.create(b)
    ctx.start(c.id)
    ctx.wait_out(b, "ready")
    sent = []
    for sig, name in (("SIGHUP", "HUP"), ("USR1", "USR1"), (str(int(signal.SIGUSR2)), "USR2"),
                      ("TERM", "TERM")):
        ctx.kill(c.id, sig)
        sent.append(name)
        ctx.wait_for(lambda: (b.read_out("sigs") or "").split() == sent,
                     f"the container to see {name} (sent as {sig!r}); it saw "
                     f"{(b.read_out('sigs') or '').split()}")
    ctx.wait_stopped(c)


@case("create-duplicate-id", "runtime.md#create")
def create_duplicate(ctx):
    """create with the id of an existing container fails and leaves that container untouched.

    runtime.md#create: "If the ID provided is not unique across all containers within the
    scope of the runtime ... the implementation MUST generate an error and a new container
    MUST NOT be created."
    """
    b1 = waiter(ctx)
    c = ctx.create(b1)
    b2 = waiter(ctx)
    c2 = ctx.create(b2, c.id, ok=False)
    expect(not c2.result.ok, "a second create with the same id succeeded")
    st = ctx.state(c.id)
    expect(st["status"] == "created" and st.get("pid") == c.pid,
           f"the first container is now {st['status']} pid {st.get('pid')}, expected created pid {c.pid}")
    expect(st["bundle"] and st["bundle"].rstrip("/").endswith(b1.path.name),
           f"the container's bundle changed to {st['bundle']!r}")
    ctx.start(c.id)
    ctx.wait_out(b1, "ran")
    expect(b2.read_out("ran") is None, "the duplicate's program ran")


@case("create-invalid-id", "runtime.md#create")
def create_invalid_id(ctx):
    """create with an invalid id ('a/b', '../escape', '..', 'with space', '') fails and creates nothing.

    runtime.md#create: "If the ID provided is not unique ... or is not valid in any other way,
    the implementation MUST generate an error and a new container MUST NOT be created."
    """
    b = waiter(ctx)
    accepted = []
    for cid in ("a/b", "../escape", "..", "with space", ""):
        c = ctx.create(b, cid, ok=False)
        if c.result.ok:
            accepted.append(repr(cid))
    expect(not accepted, f"create accepted invalid id(s) {', '.join(accepted)}")
    expect(not (ctx.tmp / "escape").exists(), "create '../escape' wrote outside the --root dir")
    time.sleep(0.05)
    expect(b.read_out("ran") is None, "a program ran")


@case("unknown-id", "runtime.md#operations")
def unknown_id(ctx):
    """state, start, kill and delete of a container that does not exist fail (non-zero exit).

    runtime.md#query-state: "Attempting to query a container that does not exist MUST
    generate an error." start/kill/delete: the container is not created/running/stopped, so
    they MUST generate an error.
    """
    cid = ctx.new_id("nosuch")
    ok = [" ".join(op) for op in (["state"], ["start"], ["kill", "KILL"], ["delete"])
          if ctx.rt(op[0], cid, *op[1:]).ok]
    expect(not ok, f"succeeded on an unknown id: {', '.join(ok)}")


@case("missing-id", "runtime.md#operations")
def missing_id(ctx):
    """create, state, start, kill and delete without a container id fail.

    runtime.md: each operation "MUST generate an error if it is not provided the container
    ID". (create's other argument, the bundle, defaults to the cwd in runc's CLI.)
    """
    b = waiter(ctx)
    b.save()
    ok = []
    for op in (["create", "--bundle", str(b.path)], ["state"], ["start"], ["kill"], ["delete"]):
        if ctx.rt(*op).ok:
            ok.append(op[0])
    expect(not ok, f"succeeded without an id: {', '.join(ok)}")
    time.sleep(0.05)
    expect(b.read_out("ran") is None, "a program ran")
