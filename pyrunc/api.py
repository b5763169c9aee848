"""The library's public API: a container and its operations (runtime.md "Operations",
and runc's commands beyond it), with typed options and no command-line vocabulary.

    from pyrunc import Container, CreateOptions, ExecOptions

    c = Container.create("web", CreateOptions("/path/to/bundle"), root="/run/pyrunc")
    c.start()
    code = c.wait()
    c.delete()

Errors are pyrunc.errors.PyruncError and its subclasses (the message is one line naming
what is wrong and where). The `pyrunc` command is a thin layer over this class.

Each operation imports the module that does it when it runs: `state` needs none of
`create`'s (pyrunc.container.create) or `exec`'s (pyrunc.process.exec) imports.
"""
import os

from pyrunc.errors import CorruptState, OptionError, PyruncError
from pyrunc.container.state import Store, load_container
from pyrunc.util.jsonutil import deep_copy

DEFAULT_ROOT = "/run/pyrunc"


def load_config(bundle: str) -> dict:
    """<bundle>/config.json, checked as create() checks it (ConfigError naming the
    problem); CreateOptions(config=...) takes it."""
    from pyrunc.config.validate import load_bundle_config

    return load_bundle_config(os.path.abspath(bundle))


class Container:
    """A container in the state store ``root`` (the CLI's --root), by id.

    Container(id, root=...) names one; create() and run() make one. Each operation reads
    the container's state afresh (another process may have changed it meanwhile)."""

    __slots__ = ("id", "root", "_store", "_made")

    def __init__(self, id: str, *, root: str = DEFAULT_ROOT):
        self.id = id
        self.root = root
        self._store = Store(root)
        self._store.dir(id)  # validates the id
        # What create() returned (its record; run's exec.fifo until start): start, wait
        # and delete of the same object need not read the state again.
        self._made = None

    def __repr__(self):
        return f"Container({self.id!r}, root={self.root!r})"

    # --- making one ------------------------------------------------------------------

    @classmethod
    def create(cls, id: str, options: "CreateOptions", *, root: str = DEFAULT_ROOT,  # noqa: F821
               on_ready=None) -> "Container":
        """Create the container (runtime.md "create"): returns once its init waits for
        start(); on failure nothing is left behind. on_ready: called once the init is
        ready, before its process may run (the CLI blocks the signals it forwards)."""
        return cls._create(id, options, root, on_ready, to_start=False)

    @classmethod
    def run(cls, id: str, options: "CreateOptions", *, root: str = DEFAULT_ROOT,  # noqa: F821
            on_ready=None) -> "Container":
        """create() then start() (runc's `run --detach`): returns the running container;
        wait() for its exit code. On failure nothing is left behind."""
        from pyrunc.container.delete import delete
        from pyrunc.container.start import start

        c = cls._create(id, options, root, on_ready, to_start=True)
        try:
            start(root, id, container=c._made)
        except BaseException:
            made, c._made = c._made, None
            delete(root, id, force=True, container=made)
            raise
        return c

    @classmethod
    def _create(cls, id, options, root, on_ready, to_start):
        from pyrunc.container.create import create

        c = cls(id, root=root)
        o = options
        c._made = create(root, id, o.bundle, pid_file=o.pid_file, console_socket=o.console_socket,
                         no_pivot=o.no_pivot, no_new_keyring=o.no_new_keyring,
                         preserve_fds=o.preserve_fds, listen_fds=o.listen_fds, config=o.config,
                         to_start=to_start, on_ready=on_ready, systemd_cgroup=o.systemd_cgroup,
                         rootless_cgroups=o.rootless_cgroups)
        return c

    @classmethod
    def list(cls, *, root: str = DEFAULT_ROOT) -> "list[Container]":
        """The containers in ``root``, by id."""
        store = Store(root)
        out = []
        for cid in store.ids():  # valid ids only
            c = cls.__new__(cls)
            c.id, c.root, c._store, c._made = cid, root, store, None
            out.append(c)
        return out

    # --- what it is ------------------------------------------------------------------

    def _load(self, partial=False):
        return load_container(self._store, self.id, partial)

    def state(self, *, allow_corrupt: bool = False) -> dict:
        """The state document (runtime.md "State"), with runc's rootfs, created and
        owner. A container whose create was interrupted is "creating" (or "stopped");
        one whose state file is corrupt raises CorruptState (delete(force=True)
        removes it), or with allow_corrupt is "unknown" while processes are left."""
        c = self._load(partial=True)
        if isinstance(c.problem, CorruptState) and not allow_corrupt:
            e = CorruptState(f"container {c.id}: {c.problem} (status {c.status()})")
            e.container = c.id
            raise e
        return c.oci_state()

    def status(self) -> str:
        """creating, created, running, paused or stopped."""
        return self._load(partial=True).status()

    @property
    def pid(self) -> int:
        """The init's pid (as the host sees it); 0 once stopped."""
        return self.state()["pid"]

    @property
    def bundle(self) -> str:
        return self._load(partial=True).record["bundle"]

    @property
    def config(self) -> dict:
        """The configuration it was created with (with update()'s resources)."""
        return self._load().config

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Run the user's process (runtime.md "start")."""
        from pyrunc.container.start import start

        start(self.root, self.id, container=self._made)

    def kill(self, signal: "int | str" = 15, *, all_processes: bool = False) -> None:
        """Send a signal (a number, or a name: "KILL", "SIGTERM", "RTMIN+1") to the init,
        or with all_processes to every process in the container's cgroup."""
        from pyrunc.container.kill import kill, parse_signal

        kill(self.root, self.id, signal if type(signal) is int else parse_signal(signal),
             all_processes=all_processes)

    def delete(self, *, force: bool = False) -> None:
        """Remove a stopped container (runtime.md "delete"); force: kill it first if
        it is not stopped, and no error if it is gone already."""
        from pyrunc.container.delete import delete

        made, self._made = self._made, None
        delete(self.root, self.id, force=force, container=made)

    def pause(self) -> None:
        """Freeze every process of the container (its cgroup freezer)."""
        from pyrunc.container.pause import pause

        pause(self.root, self.id)

    def resume(self) -> None:
        from pyrunc.container.pause import resume

        resume(self.root, self.id)

    def update(self, resources: dict) -> None:
        """Change the limits of a live container: ``resources`` as config.json's
        linux.resources, merged into the current ones."""
        from pyrunc.container.update import update
        from pyrunc.config.validate import check

        # As config.json's linux.resources (with runc's reading of it: on a copy)
        update(self.root, self.id, check(deep_copy(resources), "resources", source="resources"))

    # --- processes -------------------------------------------------------------------

    def exec(self, options: "ExecOptions") -> int:  # noqa: F821
        """Start a process in the running container; returns its pid (a child of the
        caller: wait(pid) for its exit code) once it has exec'd."""
        from pyrunc.process.exec import build_process, exec_in

        c = self._load()
        status = c.status()
        if status == "stopped":
            raise PyruncError("cannot exec in a stopped container")
        if status == "paused" and not options.ignore_paused:
            raise OptionError("ignore_paused",
                              "cannot exec in a paused container (use {option} to override)")
        if options.process is not None:
            from pyrunc.config.validate import check

            # As config.json's process at create (with runc's reading of it: on a copy)
            options = options.replace(process=check(deep_copy(options.process), "process",
                                                    source="ExecOptions.process"))
        proc = build_process(c.config.get("process"), options)
        return exec_in(c, proc, console_socket=options.console_socket,
                       pid_file=options.pid_file, preserve_fds=options.preserve_fds,
                       listen_fds=options.listen_fds, sub_cgroups=options.sub_cgroups)

    def wait(self, pid: "int | None" = None, *, forward_signals: bool = False,
             on_winch=None) -> "int | None":
        """Wait until the init (or pid, a process exec() returned) exits; its exit code
        as a shell's: the status, or 128+N if signal N killed it. A process that is not
        the caller's child (a container another process created) has no status for the
        caller: wait() returns None once it is gone.

        forward_signals (the CLI's foreground mode): every signal the caller receives
        is sent on to the process, and every child the caller has is reaped. Signals
        must be blocked (pyrunc.process.supervise.block_all) before the process may exit:
        on_ready of create()/run(), or before exec(). on_winch: called on SIGWINCH."""
        if pid is None:
            c = self._made or self._load()
            pid = c.record["init_pid"]
            if pid <= 0:
                return None
            if not forward_signals and not c.init_alive():
                return self._reap(pid, wait=False)  # exited: a zombie child, or gone
        if forward_signals:
            from pyrunc.process.supervise import supervise

            return supervise(pid, on_winch=on_winch)
        return self._reap(pid)

    @staticmethod
    def _reap(pid, wait=True):
        from pyrunc.process.supervise import status_code

        try:
            wpid, status = os.waitpid(pid, 0 if wait else os.WNOHANG)
        except ChildProcessError:
            if wait:
                _wait_gone(pid)
            return None
        return status_code(status) if wpid else None

    def ps(self) -> "list[int]":
        """The pids (as the host sees them) of the container's processes, sorted."""
        c = self._load()
        mgr = c.cgroup_manager()
        return sorted(mgr.pids()) if mgr is not None and c.status() != "stopped" else []

    def stats(self) -> dict:
        """runc's `events --stats` data: cgroup statistics (and, with its own network
        namespace, the counters of its interfaces)."""
        from pyrunc.events import stats

        return stats(self._running("stats"))

    def events(self, interval: float = 5.0):
        """Iterate over events until the container stops: {"type": "stats", "id",
        "data": stats()} every ``interval`` seconds and {"type": "oom", "id"} for each
        OOM kill in the container's cgroup."""
        from pyrunc.events import events

        if not interval > 0:
            raise OptionError("interval", "{option} must be greater than 0")
        return events(self._running("events"), interval)

    def _running(self, what):
        c = self._load()
        if c.status() == "stopped":
            raise PyruncError(f"container with id {self.id} is not running")
        if c.cgroup_manager() is None:
            raise PyruncError(f"container {self.id} has no cgroups")
        return c


def _wait_gone(pid):
    """Block until pid has exited (a process that is not the caller's child)."""
    import select

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([fd], [], [])
    finally:
        os.close(fd)
