"""delete (runtime.md "Operations: Delete"): undo create, also of a container whose
create was interrupted (no readable state.json), then the poststop hooks."""
import os

# _signal, not signal: the signal module builds enums (enum costs ~7 ms to import).
import _signal as signal
import time

from pyrunc.container.state import Container, Store, partial_container
from pyrunc.errors import ContainerNotFound, CorruptState, PyruncError


def delete(root, cid, force=False, container=None):
    store = Store(root) if container is None else container.store
    try:
        # Under the lock: a create still running holds it until it is done.
        lockfd = store.lock(cid)
    except ContainerNotFound:
        if force:
            return  # runc: delete --force of a container that is gone exits 0
        raise
    try:
        c = container
        if c is None:
            try:
                c = Container(store, cid, store.load(cid))
            except (ContainerNotFound, CorruptState) as e:
                _delete_partial(store, cid, force, e)
                return
        status = c.status()
        if status != "stopped":
            if not force:
                raise PyruncError(f"cannot delete container {cid} that is not stopped: {status}")
            from pyrunc.container.kill import kill_all

            kill_all(c, signal.SIGKILL)
            wait_gone(c)
        destroy(c)
    finally:
        os.close(lockfd)


def _delete_partial(store, cid, force, problem):
    """Delete a container without a readable state.json (problem says why): create was
    interrupted, or the file is corrupt. create.json names its cgroups, and through
    them its processes; exits 0 only once all of them are gone."""
    if not store.exists(cid):  # a create we waited for failed and removed it
        if force:
            return
        raise ContainerNotFound(cid)
    c = partial_container(store, cid, problem)
    if c is None and isinstance(problem, ContainerNotFound):
        store.remove(cid)  # create stopped before create.json: it made nothing else
        return
    if c is None or (c.record["cgroup"] is None and isinstance(c.problem, CorruptState)):
        raise PyruncError(f"cannot delete container {cid}: {c.problem if c else problem}, and "
                          "nothing records its cgroups to find its processes by; left in "
                          f"place: {store.dir(cid)}")
    mgr = c.cgroup_manager()
    if mgr is not None:
        if not force and mgr.all_pids():
            raise PyruncError(f"cannot delete container {cid} that is not stopped: {c.status()}")
        kill_cgroup_processes(mgr)
        mgr.destroy()
    store.remove(cid)


def kill_cgroup_processes(mgr, timeout=10.0):
    """SIGKILL every process in the container's cgroups until none is left (a process
    may fork meanwhile: stage-1 its init, say); PyruncError naming them after timeout."""
    deadline = time.monotonic() + timeout
    thawed = False
    while pids := mgr.all_pids():
        if time.monotonic() > deadline:
            raise PyruncError(f"cgroup: processes {' '.join(map(str, pids))} are still in "
                              f"{mgr.paths.get('freezer') or next(iter(mgr.paths.values()))} "
                              f"{timeout:g} s after SIGKILL")
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not thawed:
            thawed = True
            if mgr.frozen():
                mgr.thaw()
        time.sleep(0.005)


def wait_gone(c, timeout=10.0):
    pid = c.record["init_pid"]
    try:
        pidfd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return
    import select

    try:
        if c.init_alive():
            select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)


def destroy(c):
    """Undo create (runtime.md lifecycle step 12), then poststop hooks (step 13)."""
    mgr = c.cgroup_manager()
    if mgr is not None:
        # Any process left in the container's cgroup goes too (e.g. without a pid ns).
        pids = mgr.pids()
        if pids:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if mgr.frozen():
                mgr.thaw()
        mgr.destroy()
    hm = c.record.get("host_mounts")
    if hm:  # a container without a mount namespace: its mounts in ours (hostmounts)
        from pyrunc.rootfs import hostmounts

        hostmounts.detach(hm["path"], hm["ids"])
    c.store.remove(c.id)
    if c.has_hooks("poststop"):
        from pyrunc.process.hooks import run_hooks

        run_hooks(c.config, "poststop", c.hook_state("stopped"), warn_only=True)
