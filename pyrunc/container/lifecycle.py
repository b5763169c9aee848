"""The library: a container's lifecycle seen from the runtime (runtime.md "Operations").

    from pyrunc.container.lifecycle import create, start, state, kill, delete

create lives in pyrunc.container.create, imported only when asked for (start, kill, delete and
the rest do not load it).
"""
import os

# _signal, not signal: the signal module builds enums (enum costs ~7 ms to import).
import _signal as signal

from pyrunc.errors import ContainerNotFound, ContainerNotRunning, HookError, PyruncError
from pyrunc.container.state import (OCI_VERSION, Container, CorruptState, EXEC_FIFO,  # noqa: F401 (API)
                          Store, open_container, partial_container)


def forking(fn):
    """For library calls that fork the container side (create, exec): during the call
    the caller is a child subreaper (supervise.ChildSubreaper: what the forked side leaves
    behind is re-parented to it) and the cyclic GC is off; both as they were after.

    The GC: a collection walks the heap and writes to every object it visits, and each
    page written after fork is a copy-on-write fault, in the runtime and in the
    container side (measured: ~250 fewer faults and ~1 ms less for `run`). The
    container side inherits "off" and execs soon."""
    import gc

    from pyrunc.process.supervise import ChildSubreaper

    def wrapper(*args, **kwargs):
        enabled = gc.isenabled()
        gc.disable()
        try:
            with ChildSubreaper():
                return fn(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()
    # functools.wraps, without importing functools: inspect.signature follows __wrapped__
    for attr in ("__module__", "__name__", "__qualname__", "__doc__", "__wrapped__"):
        setattr(wrapper, attr, getattr(fn, attr, fn))
    return wrapper


def load_bundle(bundle):
    """Read and validate <bundle>/config.json; raises ConfigError naming the problem.

    A config that fails the strict checks gets runc's reading of it (config/compat.py, each
    change a debug note) and is checked again: create refuses only what runc refuses
    (the pipeline: config/validate.py)."""
    from pyrunc.config.validate import load_bundle_config

    return load_bundle_config(bundle)


# --- create -------------------------------------------------------------------------


# --- start / state / kill / delete -----------------------------------------------------


def start(root, cid, container=None):
    """Start a created container. container: the one create(to_start=True) returned."""
    c = container if container is not None else open_container(root, cid)
    fifo_fd, c.start_fd = c.start_fd, None
    try:
        lockfd = c.store.lock(cid)
    except BaseException:
        if fifo_fd is not None:
            os.close(fifo_fd)
        raise
    try:
        # With run's fifo, create has just returned: its init may already have exec'd
        # and exited (a zombie counts as stopped); the fifo tells whether it started.
        status = c.status() if fifo_fd is None else "created"
        if status != "created":
            if status == "stopped":
                raise PyruncError("cannot start a container that has stopped")
            raise PyruncError(f"cannot start an already {status} container")
        try:
            fd, fifo_fd = fifo_fd, None  # _open_exec_fifo owns (and closes) it from here
            _open_exec_fifo(c, fd)
            if _has_hooks(c.config, "poststart"):
                from pyrunc.container.hooks import run_hooks

                run_hooks(c.config, "poststart", c.hook_state("running"))
        except HookError:
            # runtime.md "Lifecycle" steps 7 and 9: a failing startContainer or poststart
            # hook stops the container, which is then destroyed (steps 12, 13).
            _kill_all(c, signal.SIGKILL)
            _wait_gone(c)
            destroy(c)
            raise
    finally:
        os.close(lockfd)
        if fifo_fd is not None:
            os.close(fifo_fd)
    return c


def _open_exec_fifo(c, fd=None):
    """Open exec.fifo for reading (fd: already open, and now owned here): the init,
    blocked opening it for writing, writes a byte and execs the user process. A pidfd
    catches an init that died meanwhile."""
    import select

    path = os.path.join(c.dir, EXEC_FIFO)
    # The pidfd first: once the fifo is open the process may exec, exit and be reaped
    # by a subreaper (conmon, containerd's shim) at once.
    try:
        pidfd = os.pidfd_open(c.record["init_pid"])
    except ProcessLookupError:
        if fd is not None:
            os.close(fd)
        raise PyruncError("cannot start a container that has stopped") from None
    try:
        if fd is None:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        os.close(pidfd)
        raise
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        p.register(pidfd, select.POLLIN)
        while True:
            events = dict(p.poll())
            if fd not in events and pidfd not in events:
                continue
            # Read the fifo even if the init has exited: a byte there means it started.
            # (No POLLHUP before the init opens its end: Linux reports HUP only after
            # a writer came and went.)
            try:
                data = os.read(fd, 1)
            except BlockingIOError:
                data = b""
            if data == b"0":
                os.unlink(path)
                return
            if data == b"E":
                msg = b""
                while chunk := _read_when_ready(fd):
                    msg += chunk
                raise HookError(msg.decode(errors="replace") or "startContainer hook failed")
            if data or pidfd in events or events.get(fd, 0) & select.POLLHUP:
                raise PyruncError("container init exited before start")
    finally:
        os.close(pidfd)
        os.close(fd)


def _read_when_ready(fd, timeout=5.0):
    import select

    if not select.select([fd], [], [], timeout)[0]:
        return b""
    return os.read(fd, 4096)


def state(root, cid):
    return open_container(root, cid).oci_state()


SIGNALS = {name: getattr(signal, name) for name in dir(signal)
           if name.startswith("SIG") and not name.startswith("SIG_")
           and isinstance(getattr(signal, name), int)}


def parse_signal(text):
    t = str(text).strip()
    if t.isdigit():
        n = int(t)
        if 0 <= n < signal.NSIG:  # 0: runc accepts it (a liveness check)
            return n
    else:
        name = t.upper()
        if not name.startswith("SIG"):
            name = "SIG" + name
        if name in SIGNALS:
            return SIGNALS[name]
        for base, sign in (("SIGRTMIN+", 1), ("SIGRTMAX-", -1)):  # as runc (moby's parser)
            if name.startswith(base) and name[len(base):].isdigit():
                n = SIGNALS[base[:-1]] + sign * int(name[len(base):])
                if signal.SIGRTMIN <= n <= signal.SIGRTMAX:
                    return n
    raise PyruncError(f'unknown signal "{text}"')


def _kill_all(c, sig):
    mgr = c.cgroup_manager()
    if sig == signal.SIGKILL and mgr is not None and mgr.kill_all():
        # cgroup v2's cgroup.kill: every process of the subtree at once, none escapes by
        # forking meanwhile (runc 1.2 uses it; 1.1 freezes the cgroup while it signals)
        if c.init_alive():  # (an init a rootless runtime could not place)
            try:
                os.kill(c.record["init_pid"], sig)
            except ProcessLookupError:
                pass
        if mgr.frozen():
            mgr.thaw()
        return
    pids = set(mgr.pids()) if mgr is not None else set()
    if c.init_alive():
        pids.add(c.record["init_pid"])
    frozen = mgr is not None and sig == signal.SIGKILL and mgr.frozen()
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    if frozen:
        mgr.thaw()


def kill(root, cid, sig=signal.SIGTERM, all_processes=False):
    c = open_container(root, cid)
    status = c.status()
    if status == "stopped":
        if all_processes:
            return  # runc: kill --all of a stopped container is no error (engines rely on it)
        raise ContainerNotRunning(cid)
    if all_processes:
        _kill_all(c, sig)
        return
    try:
        os.kill(c.record["init_pid"], sig)
    except ProcessLookupError:
        raise ContainerNotRunning(cid) from None


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
            _kill_all(c, signal.SIGKILL)
            _wait_gone(c)
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
    import time

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


def _wait_gone(c, timeout=10.0):
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
    if _has_hooks(c.config, "poststop"):
        from pyrunc.container.hooks import run_hooks

        run_hooks(c.config, "poststop", c.hook_state("stopped"), warn_only=True)


def _has_hooks(config, kind):
    return bool((config.get("hooks") or {}).get(kind))


# --- pause / resume / update ---------------------------------------------------------


def _manager_or_error(c, what):
    mgr = c.cgroup_manager()
    if mgr is None:
        raise PyruncError(f"cannot {what} container {c.id}: it has no cgroups")
    return mgr


def pause(root, cid):
    c = open_container(root, cid)
    lockfd = c.store.lock(cid)
    try:
        if c.status() not in ("running", "created"):
            raise ContainerNotRunning(cid)
        _manager_or_error(c, "pause").freeze()
    finally:
        os.close(lockfd)


def resume(root, cid):
    c = open_container(root, cid)
    lockfd = c.store.lock(cid)
    try:
        if c.status() != "paused":
            raise PyruncError("container not paused")
        _manager_or_error(c, "resume").thaw()
    finally:
        os.close(lockfd)


def update(root, cid, resources):
    """Change the limits of a live container; the new values are stored in its state."""
    store = Store(root)
    lockfd = store.lock(cid)
    try:
        c = open_container(root, cid)
        if c.status() == "stopped":
            raise PyruncError(f"cannot update a stopped container {cid}")
        linux = c.config.setdefault("linux", {})
        merged = _merge(linux.get("resources") or {}, resources)
        _manager_or_error(c, "update").set(merged, linux_devices=linux.get("devices"))
        linux["resources"] = merged
        store.save(cid, c.record)
    finally:
        os.close(lockfd)


def _merge(old, new):
    out = dict(old)
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def __getattr__(name):
    if name == "create":
        from pyrunc.container.create import create

        return create
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
