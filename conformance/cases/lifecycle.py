"""runtime.md: lifecycle and state."""
from __future__ import annotations

import json
import os
import time

from conformance.bundle import check_state_doc, exe_of, expect, fail, pid_alive
from conformance.cases import case

# Writes /out/ran (one line per run) then waits for /out/go (or forever).
WAITER = ["sh", "-c", "echo ran >> /out/ran; while [ ! -e /out/go ]; do sleep 0.02; done"]


def waiter(ctx, **kw):
    return ctx.bundle(WAITER, **kw)


@case("create-state-created", "runtime.md#create")
def create_state_created(ctx):
    """After create the state is `created`, with the container's pid (== --pid-file), id and bundle.

    runtime.md#create: "This operation MUST create a new container." and "process.args
    MUST NOT be applied until triggered by the start operation."
    runtime.md#state: status `created` = "the runtime has finished the create operation ...
    and the container process has neither exited nor executed the user-specified program";
    `pid` is REQUIRED when created; `bundle` is the absolute path to the bundle.
    """
    b = waiter(ctx)
    c = ctx.create(b)
    expect(c.pid, "--pid-file was not written with a pid")
    st = ctx.state(c.id)
    check_state_doc(st, cid=c.id, bundle=b.path)
    expect(st["status"] == "created", f"status after create is {st['status']!r}, expected 'created'")
    expect(st.get("pid") == c.pid, f"state pid {st.get('pid')} != pid file {c.pid}")
    expect(pid_alive(c.pid), f"container process {c.pid} is not alive after create")
    time.sleep(0.1)
    expect(b.read_out("ran") is None, "process.args ran during create (before start)")
    expect("busybox" not in exe_of(c.pid), "the container process already executed the program")


@case("state-schema", "runtime.md#state")
def state_schema(ctx):
    """The state document has ociVersion, id, status, pid and bundle of the right types, in every status.

    runtime.md#state: ociVersion (string, REQUIRED), id (REQUIRED), status (REQUIRED, one of
    creating/created/running/stopped), pid (int, REQUIRED when created or running on Linux),
    bundle (string, REQUIRED, absolute path); "When serialized in JSON, the format MUST adhere
    to the JSON Schema schema/state-schema.json".
    """
    b = waiter(ctx)
    c = ctx.create(b)
    check_state_doc(ctx.state(c.id), cid=c.id, bundle=b.path)
    ctx.start(c.id)
    check_state_doc(ctx.state(c.id), cid=c.id, bundle=b.path)
    (b.out / "go").touch()
    st = ctx.wait_stopped(c)
    check_state_doc(st, cid=c.id, bundle=b.path)


@case("state-bundle-absolute", "runtime.md#state")
def state_bundle_absolute(ctx):
    """`bundle` in the state is an absolute path even when create was given a relative one.

    runtime.md#state: "bundle (string, REQUIRED) is the absolute path to the container's
    bundle directory."
    """
    b = waiter(ctx)
    c = ctx.create(b, bundle_arg=os.path.relpath(b.path, ctx.tmp), cwd=ctx.tmp)
    st = ctx.state(c.id)
    expect(os.path.isabs(st.get("bundle", "")), f"bundle {st.get('bundle')!r} is not absolute")
    expect(os.path.realpath(st["bundle"]) == os.path.realpath(b.path),
           f"bundle {st['bundle']!r} is not {str(b.path)!r}")


@case("start-running", "runtime.md#start")
def start_running(ctx):
    """start runs the user program: state becomes `running` with the same pid, and the program runs.

    runtime.md#start: "This operation MUST run the user-specified program as specified by
    process." runtime.md#state: `running` = "the container process has executed the
    user-specified program but has not exited".
    """
    b = waiter(ctx)
    c = ctx.create(b)
    ctx.start(c.id)
    ctx.wait_out(b, "ran")
    st = ctx.state(c.id)
    expect(st["status"] == "running", f"status after start is {st['status']!r}, expected 'running'")
    expect(st.get("pid") == c.pid, f"pid changed from {c.pid} to {st.get('pid')} by start")
    expect(exe_of(c.pid).endswith("/bin/busybox"),
           f"container process executes {exe_of(c.pid)!r}, not the program")


@case("exit-stopped", "runtime.md#lifecycle")
def exit_stopped(ctx):
    """When the container process exits the state becomes `stopped`.

    runtime.md#lifecycle step 10 "The container process exits."; runtime.md#state:
    `stopped` = "the container process has exited".
    """
    b = waiter(ctx)
    c = ctx.create(b)
    ctx.start(c.id)
    ctx.wait_out(b, "ran")
    (b.out / "go").touch()
    st = ctx.wait_stopped(c)
    check_state_doc(st, cid=c.id, bundle=b.path)


@case("delete-stopped", "runtime.md#delete")
def delete_stopped(ctx):
    """delete of a stopped container removes it (state then fails) and its cgroups, but nothing it did not create.

    runtime.md#delete: "Deleting a container MUST delete the resources that were created
    during the create step. Note that resources associated with the container, but not
    created by this container, MUST NOT be deleted." runtime.md#query-state: "Attempting to
    query a container that does not exist MUST generate an error."
    """
    shared = ctx.tmp / "shared"
    shared.mkdir()
    (shared / "keep").write_text("keep\n")
    b = ctx.bundle(["sh", "-c", "cat /shared/keep > /out/seen"])
    b.config["mounts"].append({"destination": "/shared", "type": "bind", "source": str(shared),
                               "options": ["rbind", "rw"]})
    c = ctx.create(b)
    cgdirs = set(ctx.cgroup_dirs)
    ctx.start(c.id)
    ctx.wait_stopped(c)
    res = ctx.delete(c.id, ok=False)
    expect(res.ok, f"delete of a stopped container failed: {res.reason()}")
    st = ctx.state_result(c.id)
    expect(not st.ok, "state still succeeds after delete")
    left = [str(d) for d in cgdirs if d.exists()]
    expect(not left, f"delete left the container's cgroups: {', '.join(left)}")
    expect(b.read_out("seen") == "keep\n", "the bind mount was not visible in the container")
    expect((shared / "keep").read_text() == "keep\n", "delete removed the bind mount source's content")
    expect((b.path / "config.json").is_file() and (b.rootfs / "bin/busybox").is_file(),
           "delete removed (part of) the bundle")


@case("state-annotations", "runtime.md#state")
def state_annotations(ctx):
    """Annotations of config.json are returned in the state.

    runtime.md#state: "annotations (map, OPTIONAL) contains the list of annotations
    associated with the container." config.md#annotations.
    """
    ann = {"org.example.conformance": "yes", "org.example.empty": "", "org.example.json": '{"a": [1]}'}
    b = waiter(ctx)
    b.config["annotations"] = ann
    c = ctx.create(b)
    st = ctx.state(c.id)
    expect(st.get("annotations") == ann, f"state annotations {st.get('annotations')!r} != {ann!r}")


@case("config-change-after-create", "runtime.md#lifecycle")
def config_change_after_create(ctx):
    """Changing config.json after create does not affect the container.

    runtime.md#lifecycle step 2: "Any updates to config.json after this step MUST NOT affect
    the container." runtime.md#create: "Any changes made to the config.json file after this
    operation will not have an effect on the container."
    """
    b = ctx.bundle(["sh", "-c", 'echo "orig $VAR" > /out/result'],
                   env=["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "VAR=original"])
    c = ctx.create(b)
    b.process["args"] = ["sh", "-c", 'echo "changed $VAR" > /out/result']
    b.process["env"] = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "VAR=changed"]
    b.save()
    ctx.start(c.id)
    ctx.wait_stopped(c)
    got = (b.read_out("result") or "").strip()
    expect(got == "orig original", f"program saw {got!r} after config.json changed, expected 'orig original'")


@case("state-json-valid-after-start", "runtime.md#query-state")
def state_query(ctx):
    """state returns a JSON document for a running container that matches what was created.

    runtime.md#query-state: "This operation MUST return the state of a container as
    specified in the State section."
    """
    b = waiter(ctx)
    c = ctx.create(b)
    ctx.start(c.id)
    res = ctx.state_result(c.id)
    expect(res.ok, f"state failed: {res.reason()}")
    try:
        st = json.loads(res.out)
    except ValueError:
        fail(f"state printed no JSON: {res.out[:80]!r}")
    check_state_doc(st, cid=c.id, bundle=b.path)
    expect(st["status"] == "running" and st.get("pid") == c.pid,
           f"state says {st['status']} pid {st.get('pid')}, expected running pid {c.pid}")
