"""State store under --root: one directory per container holding state.json
(written atomically), exec.fifo and create.json; an flock on the directory serialises
commands that change a container (create holds it until it is done). Container: a
stored container and its status (what `state` and `list` need, without the lifecycle
operations: start.py, kill.py, delete.py, pause.py, update.py beside it).

create.json, the early record, is written by create before it makes anything else
(cgroups, processes) and never changed: the container's bundle and the cgroup
directories it is about to make. When state.json is missing (create was interrupted)
or corrupt, it is what finds the container's cgroups, and through them its processes.
"""
import errno
import os

from pyrunc.errors import ContainerNotFound, CorruptState, OptionError, PyruncError  # noqa: F401 (CorruptState: was defined here)
from pyrunc.util.jsonutil import dumps, loads

OCI_VERSION = "1.3.0"
STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"
EARLY_FILE = "create.json"
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+.-")


def _valid_id(cid):
    return 0 < len(cid) <= 1024 and cid not in (".", "..") and _ID_CHARS.issuperset(cid)


def validate_id(cid):
    """Ids as runc: [A-Za-z0-9_+.-]+, never '.' or '..', so an id never names a path outside root."""
    if not _valid_id(cid):
        raise PyruncError(f"invalid container id {cid!r}: must match [A-Za-z0-9_+.-]+ "
                          "(at most 1024 characters) and not be '.' or '..'")
    return cid


def _dirfd_lock(path):
    import fcntl

    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


class Store:
    def __init__(self, root):
        if not root:
            raise OptionError("root", "{option} must not be empty")
        self.root = os.path.abspath(root)

    def dir(self, cid):
        return os.path.join(self.root, validate_id(cid))

    def ensure_root(self):
        try:
            os.makedirs(self.root, 0o700, exist_ok=True)
        except OSError as e:
            raise PyruncError(f"cannot create state root {self.root}: {e.strerror}") from None

    def create_dir(self, cid):
        """Make the container's state dir; error if the id is taken."""
        self.ensure_root()
        d = self.dir(cid)
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            raise PyruncError(f"container with id exists: {cid}") from None
        except OSError as e:
            raise PyruncError(f"cannot create state dir {d}: {e.strerror}") from None
        return d

    def exists(self, cid):
        return os.path.isdir(self.dir(cid))

    def lock(self, cid):
        """Exclusive flock on the container dir; returns the fd (close it to unlock)."""
        try:
            return _dirfd_lock(self.dir(cid))
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotFound(cid) from None
        except OSError as e:
            raise PyruncError(f"locking the state of container {cid}: {self.dir(cid)}: {e.strerror}") from None

    def busy(self, cid):
        """Whether another command holds the container's lock (e.g. create, until done)."""
        import fcntl

        try:
            fd = os.open(self.dir(cid), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def load(self, cid):
        path = os.path.join(self.dir(cid), STATE_FILE)
        try:
            data = read_bytes(path)
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotFound(cid) from None
        except OSError as e:
            raise PyruncError(f"reading the state of container {cid}: {path}: {e.strerror}") from None
        rec = _parse(data)
        if not _is_record(rec):
            # e.g. another runtime's container in a shared root (Docker 20.10 keeps every
            # runtime's state in one directory), or a damaged file
            raise CorruptState(f"corrupt state file {path}" + ("" if data else " (empty)") +
                               " (not a pyrunc state file: another runtime's container, or a damaged one)")
        return rec

    def save_early(self, cid, record):
        """Write create.json (once, before create makes anything it records)."""
        path = os.path.join(self.dir(cid), EARLY_FILE)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, dumps(record).encode())  # one write: a kill leaves it empty or whole
            finally:
                os.close(fd)
        except OSError as e:
            raise PyruncError(f"writing {path}: {e.strerror}") from None

    def load_early(self, cid):
        """create.json: None if absent, {} if empty (create stopped before it wrote it,
        so before it made anything), else the record; CorruptState if unreadable."""
        path = os.path.join(self.dir(cid), EARLY_FILE)
        try:
            data = read_bytes(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not data:
            return {}
        rec = _parse(data)
        if not isinstance(rec, dict) or not isinstance(rec.get("cgroup"), (dict, type(None))):
            raise CorruptState(f"corrupt record {path}")
        return rec

    def save(self, cid, state):
        d = self.dir(cid)
        path = os.path.join(d, STATE_FILE)
        tmp = os.path.join(d, f".{STATE_FILE}.tmp{os.getpid()}")
        data = dumps(state).encode()
        step = f"creating {tmp}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                # Atomic (rename), not durable: no fsync, as runc. A state that outlived a
                # crash of the machine would describe processes that are gone anyway, and
                # an fsync costs ~0.5 ms of every create on a disk-backed --root.
                step = f"writing {tmp}"
                if os.write(fd, data) != len(data):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            finally:
                os.close(fd)
            step = f"renaming {tmp} to {path}"
            os.rename(tmp, path)
        except OSError as e:
            if not step.startswith("creating"):
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            raise PyruncError(f"saving the state of container {cid}: {step}: {e.strerror}") from None

    def remove(self, cid):
        """Remove the container's dir; never follows a symlink planted in its place."""
        d = self.dir(cid)
        try:
            fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                os.unlink(d)  # not a directory of ours: remove the entry itself
                return
            raise
        try:
            for n in os.listdir(fd):
                try:
                    os.unlink(n, dir_fd=fd)
                except FileNotFoundError:
                    pass
        finally:
            os.close(fd)
        try:
            os.rmdir(d)
        except FileNotFoundError:
            pass

    def ids(self):
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        except OSError as e:
            raise PyruncError(f"listing the containers in {self.root}: {e.strerror}") from None
        return sorted(n for n in names if _valid_id(n))


def _parse(data):
    """The JSON document, or None: whatever keeps a state file from parsing makes it
    corrupt (the decoder has raised SystemError on truncated input)."""
    try:
        return loads(data)
    except Exception:  # noqa: BLE001
        return None


def _is_record(r):
    """The shape of what create saves, as far as state, list and the rest rely on it."""
    return (isinstance(r, dict) and isinstance(r.get("config"), dict)
            and type(r.get("init_pid")) is int and isinstance(r.get("bundle"), str)
            and isinstance(r.get("rootfs"), str) and isinstance(r.get("created"), str))


def read_bytes(path):
    """A small file's contents with plain syscalls (no io objects: `list` reads three
    files per container)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def process_start_time(pid):
    """Field 22 of /proc/PID/stat (clock ticks since boot), or None if gone or a zombie."""
    try:
        data = read_bytes(f"/proc/{pid}/stat")
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ESRCH):
            return None
        raise
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


class Container:
    """A container in the state store (state.json is its record). A partial one (see
    partial_container) has a record made from create.json, and problem says why."""

    def __init__(self, store, cid, record, problem=None):
        self.store = store
        self.id = cid
        self.record = record
        self.problem = problem  # ContainerNotFound (no state.json) or CorruptState
        self.start_fd = None  # see create(to_start=True)

    @property
    def config(self):
        return self.record["config"]

    @property
    def dir(self):
        return self.store.dir(self.id)

    def cgroup_manager(self):
        saved = self.record.get("cgroup")
        if not saved:
            return None
        from pyrunc.cgroups import load_manager

        return load_manager(saved)

    def init_alive(self):
        pid = self.record.get("init_pid") or 0
        start = self.record.get("init_start")
        return pid > 0 and start is not None and process_start_time(pid) == start

    def status(self):
        if self.problem is not None:
            return self._partial_status()
        if not self.init_alive():
            return "stopped"
        saved = self.record.get("cgroup")
        if saved:
            from pyrunc.cgroups import frozen_from_state

            if frozen_from_state(saved):
                return "paused"
        if os.path.exists(os.path.join(self.dir, EXEC_FIFO)):
            return "created"
        return "running"

    def _partial_status(self):
        """runtime.md "State": "creating" while create runs or its processes are left;
        for a corrupt state.json, "unknown" (a runtime-defined status for a state that
        none of the spec's describes) while processes are left; else "stopped"."""
        if self.record.get("cgroup") is None and isinstance(self.problem, CorruptState):
            return "unknown"  # no record of its cgroups: cannot tell
        mgr = self.cgroup_manager()
        alive = mgr is not None and bool(mgr.all_pids())
        if isinstance(self.problem, CorruptState):
            return "unknown" if alive else "stopped"
        return "creating" if alive or self.store.busy(self.id) else "stopped"

    def oci_state(self, status=None):
        """The state document (runtime.md "State") plus runc's rootfs/created/owner."""
        status = status or self.status()
        st = {
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "pid": self.record["init_pid"] if status != "stopped" else 0,
            "status": status,
            "bundle": self.record["bundle"],
            "rootfs": self.record["rootfs"],
            "created": self.record["created"],
            "owner": self.record.get("owner", ""),
        }
        ann = self.config.get("annotations")
        if ann:
            st["annotations"] = ann
        return st

    def has_hooks(self, kind):
        return bool((self.config.get("hooks") or {}).get(kind))

    def hook_state(self, status):
        from pyrunc.process.hooks import hook_state

        pid = self.record["init_pid"] if status != "stopped" else 0
        return hook_state(self.id, status, pid, self.record["bundle"], self.config)


def open_container(root, cid, partial=False):
    """The container; with partial, one whose state.json is missing or corrupt too,
    when its create.json tells what it was (partial_container)."""
    return load_container(Store(root), cid, partial)


def load_container(store, cid, partial=False):
    try:
        return Container(store, cid, store.load(cid))
    except (ContainerNotFound, CorruptState) as e:
        c = partial_container(store, cid, e) if partial else None
        if c is None:
            raise
        return c


def partial_container(store, cid, problem):
    """A Container for a state dir without a readable state.json (problem: the error),
    from its create.json; None when there is no create.json at all. A create.json that
    cannot be read gives a record without cgroups."""
    try:
        early = store.load_early(cid)
    except CorruptState:
        early = {}
        problem = problem if isinstance(problem, CorruptState) else CorruptState(
            f"corrupt record {os.path.join(store.dir(cid), EARLY_FILE)}")
    if early is None:
        return None
    record = {
        "id": cid,
        "bundle": str(early.get("bundle") or ""),
        "rootfs": str(early.get("rootfs") or ""),
        "created": str(early.get("created") or ""),
        "owner": "",
        "init_pid": 0,
        "init_start": None,
        "config": {},
        "cgroup": early.get("cgroup"),
    }
    return Container(store, cid, record, problem)


def state(root, cid):
    return open_container(root, cid).oci_state()


def manager_or_error(c, what):
    mgr = c.cgroup_manager()
    if mgr is None:
        raise PyruncError(f"cannot {what} container {c.id}: it has no cgroups")
    return mgr
