"""The library: a container's lifecycle seen from the runtime (runtime.md "Operations").

    from pyrunc.container import create, start, state, kill, delete
"""
import os
import time

# _signal, not signal: the signal module builds enums (enum costs ~7 ms to import).
import _signal as signal

from pyrunc.errors import ContainerNotRunning, HookError, PyruncError
from pyrunc.state import (OCI_VERSION, Container, EXEC_FIFO, Store,  # noqa: F401 (library API)
                          open_container, process_start_time, write_pid_file)


def without_gc(fn):
    """Run fn with the cyclic GC off (then as it was). fn forks: a collection walks the
    heap and writes to every object it visits, and each page written after fork is a
    copy-on-write fault, in the runtime and in the container side (measured: ~250 fewer
    faults and ~1 ms less for `run`). The container side inherits "off" and execs soon."""
    import gc

    def wrapper(*args, **kwargs):
        enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()
    wrapper.__name__, wrapper.__qualname__, wrapper.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
    return wrapper


def _now_rfc3339nano():
    t = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 1_000_000_000)) + \
        f".{t % 1_000_000_000:09d}Z"


def load_bundle(bundle, *, full_validation=False):
    """Read and validate <bundle>/config.json; raises ConfigError naming the problem."""
    from pyrunc.errors import ConfigError
    from pyrunc.spec.config import load_config
    from pyrunc.spec import validate as v

    config = load_config(bundle)
    from pyrunc.spec.compat import runc_compat

    for note in runc_compat(config):
        from pyrunc import log

        log.debug(note)
    if full_validation or not v.is_valid_fast(config):
        problems = v.schema_problems(config)
    else:
        problems = []
    if not problems:
        problems = v.semantic_problems(config, bundle)
    if problems:
        more = f" (and {len(problems) - 1} more problems: run 'pyrunc validate')" if len(problems) > 1 else ""
        raise ConfigError(f"{os.path.join(bundle, 'config.json')}: {problems[0]}{more}")
    return config


# --- create -------------------------------------------------------------------------


class _Creation:
    """Everything create made, so that a failure undoes all of it."""

    def __init__(self, store, cid):
        self.store, self.cid = store, cid
        self.state_dir = None
        self.cgroup = None
        self.pids = []  # stage-1 and init, to kill on failure
        self.rollbacks = []  # undo() callables (e.g. netdevices), run first, newest first
        self.start_fd = None  # exec.fifo's read end when create(to_start=True)

    def undo(self):
        _close_idmapped_mounts()
        if self.start_fd is not None:
            os.close(self.start_fd)
            self.start_fd = None
        for rollback in reversed(self.rollbacks):
            rollback()
        for pid in reversed(self.pids):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        if self.cgroup is not None:
            try:
                self.cgroup.destroy()
            except (PyruncError, OSError):
                pass
        if self.state_dir:
            self.store.remove(self.cid)


@without_gc
def create(root, cid, bundle, *, pid_file=None, console_socket=None, no_pivot=False,
           no_new_keyring=False, preserve_fds=0, listen_fds=0, config=None, to_start=False):
    """Create a container; returns the Container once its init waits on exec.fifo.
    console_socket: a unix socket path (runc's --console-socket), or a connected socket.
    preserve_fds: fds after stdio passed on, of which the first listen_fds are
    socket-activation fds (the process gets LISTEN_FDS/LISTEN_PID).
    to_start (`run`): start(root, cid, container=c) follows at once; exec.fifo is
    opened for reading as soon as the init is ready, so that it goes on to exec while
    the runtime saves the state (runc's `run` is create+start too)."""
    from pyrunc import initpipe
    from pyrunc.init import (InitSpec, direct_clone_flags, direct_init, preimport,
                             seccomp_needs_runtime, spawn, stage1)

    store = Store(root)
    store.dir(cid)  # validates the id
    bundle = os.path.abspath(bundle)
    if config is None:
        config = load_bundle(bundle)
    proc = config.get("process")
    if not proc:
        raise PyruncError("config.json: process is required to create a container")
    if proc.get("terminal") and not console_socket:
        raise PyruncError("cannot allocate tty if pyrunc will detach without setting "
                          "console socket (process.terminal is true: pass --console-socket)")
    if not proc.get("terminal") and console_socket:
        raise PyruncError("cannot use console socket if pyrunc will not detach or "
                          "allocate tty (process.terminal is false)")
    for fd in range(3, 3 + preserve_fds):
        try:
            os.fstat(fd)
        except OSError:
            raise PyruncError(f"--preserve-fds {preserve_fds}: file descriptor {fd} is not open") from None
    linux = config.get("linux") or {}
    if linux.get("netDevices"):
        from pyrunc import netdevices

        netdevices.check_config(config)
    made = _Creation(store, cid)
    con_sock = None
    parent_sock = None
    lockfd = fifo_fd = None
    try:
        made.state_dir = store.create_dir(cid)
        lockfd = store.lock(cid)
        fifo = os.path.join(made.state_dir, EXEC_FIFO)
        os.mkfifo(fifo, 0o622)
        os.chmod(fifo, 0o622)
        fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
        from pyrunc.cgroups import new_manager

        made.cgroup = new_manager(cid, linux.get("cgroupsPath"))
        made.cgroup.create()
        if isinstance(console_socket, str):
            from pyrunc.console import connect_socket

            con_sock = connect_socket(console_socket)
        elif console_socket is not None:
            con_sock = console_socket  # an already connected socket (run's own console)
        spec = InitSpec(config, bundle, no_pivot=no_pivot, no_new_keyring=no_new_keyring,
                        console_sock=con_sock, fifo_fd=fifo_fd, preserve_fds=preserve_fds,
                        listen_fds=listen_fds,
                        container_id=cid)
        if seccomp_needs_runtime(linux):
            preimport(spec)  # else stage-1 does it, while we place it in its cgroups
            spec.preimported = True
        if _has_idmapped_mounts(config):
            from pyrunc import idmapped_mounts

            # Made here, as real root, before the init enters its user namespace.
            idmapped_mounts.prepare_idmapped_mounts(config, bundle)
        from pyrunc.cgroups.placement import Placement

        spec.placement = placement = Placement(made.cgroup).open()
        try:
            direct = direct_clone_flags(spec)
            if direct is not None:
                try:
                    pid, parent_sock = spawn(lambda sock: direct_init(spec, sock),
                                             close_in_child=(lockfd,), placement=placement,
                                             clone_flags=direct)
                except OSError:
                    direct = None  # clone3 refused: stage-1 unshares (and names the error)
            if direct is None:
                pid, parent_sock = spawn(lambda sock: stage1(spec, sock),
                                         close_in_child=(lockfd,), placement=placement)
        finally:
            placement.close()
        made.pids.append(pid)
        _close_idmapped_mounts()
        if con_sock is not None:
            con_sock.close()
        if config_has_new_userns(linux):
            # stage-1 has unshared its user namespace and waits for its id mappings.
            initpipe.recv_logged(parent_sock, "userns")
            from pyrunc.namespaces import write_id_mappings

            write_id_mappings(pid, linux)
            initpipe.send(parent_sock, "ok")
        # Limits are in place before the process joins its v1 cgroups (and before any
        # user code runs); meanwhile stage-1 imports what the container side needs.
        try:
            made.cgroup.set(linux.get("resources") or {}, linux_devices=linux.get("devices"))
            placement.apply_rest(pid)
            initpipe.send(parent_sock, "go")
        except (OSError, PyruncError):
            initpipe.raise_pending_error(parent_sock)  # stage-1's own error, if it failed
            raise
        init_pid = _drive_init(parent_sock, made, config, linux, bundle, cid,
                               init_pid=pid if direct is not None else None)
        if to_start:
            # Only now: the init may exec the process at once, and all the runtime does
            # for the container (hooks, netDevices) is done.
            made.start_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        record = {
            "id": cid,
            "bundle": bundle,
            "rootfs": spec_rootfs(config, bundle),
            "created": _now_rfc3339nano(),
            "owner": "",
            "init_pid": init_pid,
            "init_start": process_start_time(init_pid),
            "config": config,
            "cgroup": made.cgroup.to_state(),
            "no_pivot": no_pivot,
        }
        store.save(cid, record)
        if pid_file:
            write_pid_file(pid_file, init_pid)
        c = Container(store, cid, record)
        c.start_fd, made.start_fd = made.start_fd, None
        return c
    except BaseException as e:
        made.undo()
        if isinstance(e, HookError):
            from pyrunc.hooks import hook_state, run_hooks

            # runtime.md "Lifecycle" steps 3-5: continue at 12 (destroy) and 13 (poststop).
            run_hooks(config, "poststop", hook_state(cid, "stopped", 0, bundle, config),
                      warn_only=True)
        raise
    finally:
        for fd in (fifo_fd, lockfd):
            if fd is not None:
                os.close(fd)
        if parent_sock is not None:
            parent_sock.close()


def _has_idmapped_mounts(config):
    for m in config.get("mounts") or ():
        if m.get("uidMappings") or m.get("gidMappings") or \
                any(o in ("idmap", "ridmap") for o in m.get("options") or ()):
            return True
    return False


def _close_idmapped_mounts():
    import sys

    mod = sys.modules.get("pyrunc.idmapped_mounts")
    if mod is not None:
        mod.close_prepared_mounts()


def config_has_new_userns(linux):
    return any(ns.get("type") == "user" and not ns.get("path") for ns in linux.get("namespaces") or ())


def spec_rootfs(config, bundle):
    return os.path.normpath(os.path.join(bundle, (config.get("root") or {}).get("path", "rootfs")))


def _drive_init(sock, made, config, linux, bundle, cid, init_pid=None):
    """Answer the container side's requests until it says "ready"; returns the init pid
    (given when the runtime forked the init itself, else stage-1 reports it)."""
    from pyrunc import initpipe
    from pyrunc.hooks import run_hooks

    def init_started(pid):
        if linux.get("netDevices"):
            from pyrunc import netdevices

            made.rollbacks.append(netdevices.move_devices(pid, linux["netDevices"]).undo)

    if init_pid is not None:
        init_started(init_pid)
    while True:
        msg = initpipe.recv_logged(sock)
        t = msg["t"]
        if t == "pid" and init_pid is None:
            if config_has_new_userns(linux):
                from pyrunc.namespaces import give_stdio_to_container

                give_stdio_to_container(linux, (config.get("process") or {}).get("user") or {})
            stage1_pid = made.pids[0]
            init_pid = msg["pid"]
            made.pids.append(init_pid)
            os.waitpid(stage1_pid, 0)
            made.pids.remove(stage1_pid)
            init_started(init_pid)
        elif t == "hooks":
            from pyrunc.hooks import hook_state

            st = hook_state(cid, "creating", init_pid, bundle, config)
            run_hooks(config, "prestart", st)
            run_hooks(config, "createRuntime", st)
            initpipe.send(sock, "ok")
        elif t == "ready":
            return init_pid
        else:
            raise PyruncError(f"init pipe: unexpected message {t!r}")


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
            _open_exec_fifo(c, fifo_fd)
            fifo_fd = None
            if _has_hooks(c.config, "poststart"):
                from pyrunc.hooks import run_hooks

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
        c = container if container is not None else open_container(root, cid)
    except PyruncError:
        if force and store.exists(cid) and not os.path.exists(
                os.path.join(store.dir(cid), "state.json")):
            store.remove(cid)  # a create that died before writing state
            return
        if force:
            store.dir(cid)  # still reject bad ids
            return  # runc: delete --force of a container that is gone exits 0
        raise
    lockfd = store.lock(cid)
    try:
        status = c.status()
        if status != "stopped":
            if not force:
                raise PyruncError(f"cannot delete container {cid} that is not stopped: {status}")
            _kill_all(c, signal.SIGKILL)
            _wait_gone(c)
        destroy(c)
    finally:
        os.close(lockfd)


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
    c.store.remove(c.id)
    if _has_hooks(c.config, "poststop"):
        from pyrunc.hooks import run_hooks

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
