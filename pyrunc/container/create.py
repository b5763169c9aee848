"""Creating a container (runtime.md "create"): from a bundle to an init that waits on
exec.fifo, with everything it made undone if any step fails.

    from pyrunc.container.create import create
"""
import os
import time

# _signal, not signal: the signal module builds enums (enum costs ~7 ms to import).
import _signal as signal

from pyrunc.config.validate import load_bundle_config
from pyrunc.process.spawn import forking
from pyrunc.errors import HookError, OptionError, PyruncError
from pyrunc.util.pidfile import write_pid_file
from pyrunc.container.state import Container, EXEC_FIFO, Store, process_start_time
from pyrunc.process import channel
from pyrunc.process.init import (InitSpec, direct_clone_flags, direct_init, preimport,
                                 seccomp_needs_runtime, spawn, stage1)
from pyrunc.linux.capabilities import warn_ignored
from pyrunc.cgroups import new_manager
from pyrunc.cgroups.placement import Placement
from pyrunc.linux.namespaces import give_stdio_to_container, write_id_mappings
from pyrunc.rootfs.mounts import has_idmapped_mounts


def _now_rfc3339nano():
    t = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 1_000_000_000)) + \
        f".{t % 1_000_000_000:09d}Z"


class _Creation:
    """Everything create made, so that a failure undoes all of it."""

    def __init__(self, store, cid):
        self.store, self.cid = store, cid
        self.state_dir = None
        self.cgroup = None
        self.pids = []  # stage-1 and init, to kill on failure
        self.rollbacks = []  # undo() callables (e.g. netdevices), run first, newest first
        self.start_fd = None  # exec.fifo's read end when create(to_start=True)
        self.host_rootfs = None  # (rootfs, its mount's id) without a mount namespace
        self.prepared_mounts = None  # idmapped.PreparedMounts (the init's trees)

    def undo(self):
        self._close_prepared_mounts()
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
        if self.host_rootfs is not None:
            from pyrunc.rootfs import hostmounts

            try:
                hostmounts.detach(self.host_rootfs[0], hostmounts.stacked_ids(*self.host_rootfs))
            except OSError:
                pass
        if self.cgroup is not None:
            try:
                self.cgroup.destroy()
            except (PyruncError, OSError):
                pass
        if self.state_dir:
            self.store.remove(self.cid)

    def _close_prepared_mounts(self):
        if self.prepared_mounts is not None:
            self.prepared_mounts.close()


@forking
def create(root, cid, bundle, *, pid_file=None, console_socket=None, no_pivot=False,
           no_new_keyring=False, preserve_fds=0, listen_fds=0, config=None, to_start=False,
           on_ready=None, systemd_cgroup=False, rootless_cgroups=False):
    """Create a container; returns the Container once its init waits on exec.fifo.
    console_socket: a unix socket path (runc's --console-socket), or a connected socket.
    preserve_fds: fds after stdio passed on, of which the first listen_fds are
    socket-activation fds (the process gets LISTEN_FDS/LISTEN_PID).
    to_start (`run`): start(root, cid, container=c) follows at once; exec.fifo is
    opened for reading as soon as the init is ready, so that it goes on to exec while
    the runtime saves the state (runc's `run` is create+start too).
    on_ready: called once the init is ready, before it may exec the process (`run` blocks
    the signals it will forward to the container there).
    systemd_cgroup: the systemd cgroup driver (--systemd-cgroup): a transient scope.
    rootless_cgroups (--rootless): cgroup permission errors are ignored, as runc's
    rootless cgroup manager does (a controller that cannot be joined is skipped; device
    rules that cannot be written are skipped; other limits still fail)."""
    store = Store(root)
    store.dir(cid)  # validates the id
    bundle = os.path.abspath(bundle)
    if config is None:
        config = load_bundle_config(bundle)
    proc = config.get("process")
    if not proc:
        raise PyruncError("config.json: process is required to create a container")
    if proc.get("capabilities") is None:
        # runc: no process.capabilities is every set empty (bounding too), not "keep all"
        proc["capabilities"] = {}
    if proc.get("terminal") and not console_socket:
        raise OptionError("console_socket", "cannot allocate tty if pyrunc will detach without "
                          "setting console socket (process.terminal is true: pass {option})")
    if not proc.get("terminal") and console_socket:
        raise PyruncError("cannot use console socket if pyrunc will not detach or "
                          "allocate tty (process.terminal is false)")
    for fd in range(3, 3 + preserve_fds):
        try:
            os.fstat(fd)
        except OSError:
            raise OptionError("preserve_fds", "{option} {n}: file descriptor {fd} is not open",
                              n=preserve_fds, fd=fd) from None
    if proc.get("capabilities"):
        warn_ignored(proc["capabilities"], userns=any(ns.get("type") == "user" for ns in
                                                     (config.get("linux") or {}).get("namespaces") or ()))
    linux = config.get("linux") or {}
    if linux.get("netDevices"):
        from pyrunc.linux import netdevices

        netdevices.check_config(config)
    host_ns = not any(ns.get("type") == "mount" for ns in linux.get("namespaces") or ())
    if host_ns and (linux.get("maskedPaths") or linux.get("readonlyPaths")):
        # runc's words; those paths would be masked in the host's mount namespace
        raise PyruncError("linux.maskedPaths, linux.readonlyPaths: unable to restrict sys "
                          "entries without a private MNT namespace (add a mount namespace)")
    made = _Creation(store, cid)
    con_sock = None
    parent_sock = None
    lockfd = fifo_fd = None
    try:
        made.state_dir = store.create_dir(cid)
        lockfd = store.lock(cid)

        made.cgroup = new_manager(cid, linux.get("cgroupsPath"), systemd=systemd_cgroup,
                                  rootless=rootless_cgroups, annotations=config.get("annotations"))
        # Before anything it records is made: should this process die (SIGKILL), what
        # it made is found through it (delete --force; see pyrunc.container.state).
        store.save_early(cid, {"bundle": bundle, "rootfs": spec_rootfs(config, bundle),
                               "created": _now_rfc3339nano(),
                               "cgroup": made.cgroup.planned_state()})
        fifo = os.path.join(made.state_dir, EXEC_FIFO)
        try:
            os.mkfifo(fifo, 0o622)
            os.chmod(fifo, 0o622)
            fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
        except OSError as e:
            raise PyruncError(f"creating {fifo}: {e.strerror}") from None
        made.cgroup.create()
        if isinstance(console_socket, str):
            from pyrunc.linux.console import connect_socket

            con_sock = connect_socket(console_socket)
        elif console_socket is not None:
            con_sock = console_socket  # an already connected socket (run's own console)
        spec = InitSpec(config, bundle, no_pivot=no_pivot, no_new_keyring=no_new_keyring,
                        console_sock=con_sock, fifo_fd=fifo_fd, preserve_fds=preserve_fds,
                        listen_fds=listen_fds,
                        container_id=cid)
        idmapped_mounts = has_idmapped_mounts(config)
        userns_binds = "user" in spec.nsmap and bool(config.get("mounts"))
        if idmapped_mounts or userns_binds:
            from pyrunc.rootfs import idmapped

            # Made here, as real root, before the init enters its user namespace; they
            # reach the init in spec (and are in made's, to be closed on failure).
            spec.prepared_mounts = made.prepared_mounts = idmapped.PreparedMounts()
            if idmapped_mounts:
                idmapped.prepare_idmapped_mounts(config, bundle, made.prepared_mounts)
            if userns_binds:  # the same, for plain binds
                idmapped.prepare_bind_sources(config, bundle, made.prepared_mounts)
        if seccomp_needs_runtime(linux):
            preimport(spec)  # else the container side does it while we set the limits
            spec.preimported = True

        if host_ns:
            from pyrunc.rootfs.hostmounts import top_mount_id

            rootfs = spec_rootfs(config, bundle)
            try:
                made.host_rootfs = (os.path.realpath(rootfs), top_mount_id(rootfs))
            except OSError as e:
                raise PyruncError(f"root.path {rootfs}: {e.strerror}") from None
        spec.placement = placement = Placement(made.cgroup).open()
        try:
            pid, parent_sock, direct = _spawn(spec, placement, lockfd)
        finally:
            placement.close()
        made.pids.append(pid)
        made._close_prepared_mounts()
        if con_sock is not None:
            con_sock.close()
        if config_has_new_userns(linux):
            # stage-1 has unshared its user namespace and waits for its id mappings.
            channel.recv_logged(parent_sock, channel.USERNS)

            write_id_mappings(pid, linux)
            channel.send(parent_sock, channel.OK)
        # Limits are in place before the process joins its v1 cgroups (and before any
        # user code runs); meanwhile the container side imports what it needs.
        try:
            made.cgroup.set(linux.get("resources") or {}, linux_devices=linux.get("devices"))
            placement.apply_rest(pid)
            channel.send(parent_sock, channel.GO)
        except (OSError, PyruncError):
            channel.raise_pending_error(parent_sock)  # the container side's own error
            raise
        init_pid = _drive_init(parent_sock, made, config, linux, bundle, cid,
                               init_pid=pid if direct else None)
        if on_ready is not None:
            on_ready()
        # Before the fifo opens: after that the init may exec, exit and be reaped (run).
        init_start = process_start_time(init_pid)
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
            "init_start": init_start,
            "config": config,
            "cgroup": made.cgroup.to_state(),
            "no_pivot": no_pivot,
        }
        if made.host_rootfs is not None:
            from pyrunc.rootfs.hostmounts import stacked_ids

            path = made.host_rootfs[0]
            record["host_mounts"] = {"path": path, "ids": stacked_ids(*made.host_rootfs)}
        store.save(cid, record)
        if init_start is None or (not to_start and process_start_time(init_pid) != init_start):
            # Killed after "ready" (nothing of its own fails after it): never report
            # a created container whose init is dead. (run's may have run already.)
            raise PyruncError("container init exited before create completed")
        if pid_file:
            write_pid_file(pid_file, init_pid)
        c = Container(store, cid, record)
        c.start_fd, made.start_fd = made.start_fd, None
        return c
    except BaseException as e:
        made.undo()
        if isinstance(e, HookError):
            from pyrunc.process.hooks import hook_state, run_hooks

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


def _spawn(spec, placement, lockfd):
    """(pid, init pipe, direct): the init cloned straight into its namespaces when it can
    be (direct), else stage-1, which makes them and forks the init."""
    flags = direct_clone_flags(spec)
    if flags is not None:
        try:
            pid, sock = spawn(lambda s: direct_init(spec, s), close_in_child=(lockfd,),
                              placement=placement, clone_flags=flags)
            return pid, sock, True
        except OSError:
            pass  # clone3 refused: stage-1 unshares (and names the error, if there is one)
    pid, sock = spawn(lambda s: stage1(spec, s), close_in_child=(lockfd,), placement=placement)
    return pid, sock, False


def config_has_new_userns(linux):
    return any(ns.get("type") == "user" and not ns.get("path") for ns in linux.get("namespaces") or ())


def spec_rootfs(config, bundle):
    return os.path.normpath(os.path.join(bundle, (config.get("root") or {}).get("path", "rootfs")))


def _drive_init(sock, made, config, linux, bundle, cid, init_pid=None):
    """Answer the container side's requests until it says "ready"; returns the init pid
    (given when the runtime forked the init itself, else stage-1 reports it)."""
    def init_started(pid):
        if linux.get("netDevices"):
            from pyrunc.linux import netdevices

            made.rollbacks.append(netdevices.move_devices(pid, linux["netDevices"]).undo)

    if init_pid is not None:
        init_started(init_pid)
    while True:
        msg = channel.recv_logged(sock)
        t = msg["t"]
        if t == channel.PID and init_pid is None:
            if config_has_new_userns(linux):
                give_stdio_to_container(linux, (config.get("process") or {}).get("user") or {})
            stage1_pid = made.pids[0]
            init_pid = msg["pid"]
            made.pids.append(init_pid)
            os.waitpid(stage1_pid, 0)
            made.pids.remove(stage1_pid)
            init_started(init_pid)
        elif t == channel.HOOKS:
            from pyrunc.process.hooks import hook_state, run_hooks

            # runtime.md "Lifecycle": these run at steps 3-5, after create's step 2
            # ("creating"); the state is "created" (runc says "creating").
            st = hook_state(cid, "created", init_pid, bundle, config)
            run_hooks(config, "prestart", st)
            run_hooks(config, "createRuntime", st)
            channel.send(sock, channel.OK)
        elif t == channel.READY:
            return init_pid
        else:
            raise PyruncError(f"init pipe: unexpected message {t!r}")
