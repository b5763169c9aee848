"""The container side of create: stage-1 (namespaces) and the init (pid 1).

Both run in processes forked from the runtime; they never return into the CLI: every
failure is sent to the runtime as an "error" message over the init pipe, then _exit.
"""
import errno
import os
import sys

from pyrunc import log

from pyrunc.linux import namespaces

from pyrunc.process import attributes, channel
from pyrunc.errors import HookError, PyruncError, one_line
from pyrunc.native import constants as C, syscalls as sc


class InitSpec:
    """Everything the container side needs; built by the runtime before fork. The only
    state that crosses the fork: nothing of one container is kept in module globals."""

    def __init__(self, config, bundle, *, no_pivot=False, no_new_keyring=False,
                 console_sock=None, fifo_fd=None, preserve_fds=0, container_id="",
                 listen_fds=0):
        self.config = config
        self.bundle = bundle
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.console_sock = console_sock
        self.fifo_fd = fifo_fd
        self.preserve_fds = preserve_fds  # fds after stdio passed on (listen_fds first)
        self.listen_fds = listen_fds
        self.container_id = container_id
        self.linux = config.get("linux") or {}
        self.process = config.get("process") or {}
        self.nsmap = namespaces.config_namespaces(config)
        self.preimported = False  # set by the runtime if it ran preimport() itself
        self.placement = None  # cgroups.placement.Placement: the container side joins by it
        self.rootfs_ctx = None  # rootfs.RootfsContext, made by preimport()
        self.seccomp = None  # seccomp.Filter of linux.seccomp, made by preimport()
        # idmapped.PreparedMounts: trees the runtime made (idmapped binds, and bind
        # sources with a user namespace), attached by the init
        self.prepared_mounts = None
        self.debug = log.is_debug()  # else debug notes are not sent over the init pipe


def spawn(child_main, close_in_child=(), placement=None, clone_flags=0):
    """Fork the container side with an init pipe: returns (pid, runtime's end). The
    caller is a child subreaper (process.spawn.forking), so that it can reap (and on
    failure kill) the process the child forks in turn. child_main(sock) never returns. With a
    cgroups.placement.Placement, the child may be born in a v2 cgroup; with
    clone_flags, in new namespaces (OSError if clone3 refuses them)."""
    ours, theirs = channel.pair()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        if placement is not None:
            pid = placement.fork(clone_flags)
        else:
            pid = sc.clone_fork(clone_flags) if clone_flags else os.fork()
    except BaseException:
        ours.close()
        theirs.close()
        raise
    if pid == 0:
        ours.close()
        for fd in close_in_child:
            os.close(fd)  # e.g. the container's lock: the init must not hold it
        child_main(theirs)  # never returns
    theirs.close()
    return pid, ours


def report_failure(sock, err):
    """Container side: send the error to the runtime (or, if the pipe is gone, write it
    to stderr), then exit. Imports nothing: this runs after pivot_root too."""
    kind = "hook" if isinstance(err, HookError) else ""
    if isinstance(err, PyruncError):
        msg = str(err)
    elif isinstance(err, OSError):
        msg = str(err.strerror if not err.args[1:] else err.args[1])
        if err.filename is not None:  # an os.* call: name its file at least
            msg = f"{msg}: {err.filename}"
    else:
        msg = f"internal error: {type(err).__name__}: {err}"
    try:
        channel.send(sock, channel.ERROR, msg=msg, kind=kind)
    except Exception:  # noqa: BLE001 - the runtime is gone: last resort
        try:
            os.write(2, f"pyrunc: container init: {one_line(msg)}\n".encode())
        except OSError:
            pass
    os._exit(1)


def stage1(spec, sock):
    """Join/unshare namespaces, fork the init, report its pid, exit.

    Imports (and a seccomp filter's compilation) happen while the runtime sets the
    cgroup limits; after "go" this process joins its cgroups, then unshares, so the
    cgroup namespace is rooted at the container's cgroups."""
    try:
        attributes.leave_runtime_environment(spec.process.get("env"))
        if not spec.preimported:
            # Here, not in the runtime: this overlaps the runtime's cgroup placement.
            preimport(spec, warn=lambda m: channel.send(sock, channel.WARN, msg=m))
        join_fds = namespaces.open_paths(spec.nsmap)
        namespaces.join(join_fds)
        nsmap = spec.nsmap
        if "user" in nsmap and nsmap["user"] is None:
            sc.unshare(C.CLONE_NEWUSER)
            channel.send(sock, channel.USERNS)
            channel.recv(sock, channel.OK)
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        channel.recv(sock, channel.GO)
        if spec.placement is not None:
            spec.placement.join_self()
        namespaces.unshare_new(nsmap, exclude=("user",))
        if nsmap.get("time", 1) is None and spec.linux.get("timeOffsets"):
            namespaces.write_time_offsets(spec.linux["timeOffsets"])
        # CVE-2019-5736 class: until it execs, the init runs the host's Python, its
        # /proc/PID/exe. Non-dumpable, no container process (e.g. an exec into the
        # created container) can open it, nor the init's host descriptors.
        sc.prctl(C.PR_SET_DUMPABLE, 0)
        pid = os.fork()
        if pid == 0:
            init_main(spec, sock)  # never returns
        channel.send(sock, channel.PID, pid=pid)
        os._exit(0)
    except BaseException as e:  # noqa: BLE001 - reported to the runtime, never raised
        report_failure(sock, e)


def direct_clone_flags(spec):
    """The clone flags for an init forked straight from the runtime into its new
    namespaces, or None when the two stages are needed: a user namespace (its id
    mappings come first), a namespace joined by path (setns before the others), a new
    time namespace (its offsets are written before a process enters it). The cgroup
    namespace is unshared by the init itself, once it has joined its cgroups."""
    nsmap = spec.nsmap
    if "user" in nsmap or "time" in nsmap or any(p is not None for p in nsmap.values()):
        return None
    return namespaces.unshare_flags(nsmap, exclude=("cgroup",))


def direct_init(spec, sock):
    """The init forked straight into its namespaces (direct_clone_flags): what stage-1
    does, minus the namespaces and the second fork."""
    try:
        attributes.leave_runtime_environment(spec.process.get("env"))
        if not spec.preimported:
            preimport(spec, warn=lambda m: channel.send(sock, channel.WARN, msg=m))
        channel.recv(sock, channel.GO)
        if spec.placement is not None:
            spec.placement.join_self()
        # The others were made by clone3 (direct_clone_flags); this one after joining.
        namespaces.unshare_new(spec.nsmap, exclude=tuple(t for t in spec.nsmap if t != "cgroup"))
        sc.prctl(C.PR_SET_DUMPABLE, 0)  # as stage1: CVE-2019-5736
    except BaseException as e:  # noqa: BLE001 - reported to the runtime, never raised
        report_failure(sock, e)
    init_main(spec, sock)


def init_main(spec, sock):
    try:
        _init(spec, sock)
    except BaseException as e:  # noqa: BLE001
        report_failure(sock, e)
    os._exit(1)


def seccomp_needs_runtime(linux):
    """A seccomp notify listener needs the runtime process (its forwarder thread lives
    there); any other filter can be compiled by the container side before it changes."""
    sec = (linux or {}).get("seccomp") or {}
    return bool(sec.get("listenerPath")) or sec.get("defaultAction") == "SCMP_ACT_NOTIFY" or any(
        isinstance(s, dict) and s.get("action") == "SCMP_ACT_NOTIFY" for s in sec.get("syscalls") or ())


def preimport_process(proc, linux=None, state=None, warn=None):
    """Import, before the container side changes root or user, what applying a process
    needs (in the runtime before fork, or first thing in stage-1/exec's helper): after
    pivot_root (or as a user-namespaced root that cannot read the host's Python library)
    the container side cannot import anything.

    With linux (the config's linux section), linux.seccomp is compiled here, where
    libseccomp can still be loaded: the seccomp.Filter is returned (None without one),
    for process.prepare; state (the container's runtime.md state) goes to a seccomp
    notify listener. A config whose seccomp was not prepared here fails in the container
    process (fail closed). AppArmor/SELinux settings are checked on the host."""
    import fcntl  # noqa: F401
    import _signal  # noqa: F401

    from pyrunc.linux import capabilities  # noqa: F401

    from pyrunc.process import attributes  # noqa: F401
    from pyrunc.native import syscalls  # noqa: F401

    if proc.get("terminal"):
        import socket  # noqa: F401
        import struct  # noqa: F401

        from pyrunc.linux import console  # noqa: F401
    if proc.get("apparmorProfile"):
        from pyrunc.linux.lsm import apparmor

        apparmor.check(proc["apparmorProfile"])
    if proc.get("selinuxLabel"):
        from pyrunc.linux.lsm import selinux

        selinux.check(proc["selinuxLabel"])
    if (linux or {}).get("seccomp"):
        from pyrunc import log
        from pyrunc.linux import seccomp

        return seccomp.prepare(linux["seccomp"], state, warn=warn or log.warning)
    return None


def preimport(spec, warn=None):
    """preimport_process, plus what the init's set-up needs."""
    # The state is for a seccomp notify listener only.
    state = _hook_state(spec, "creating") if spec.linux.get("seccomp") else None
    spec.seccomp = preimport_process(spec.process, spec.linux, state, warn)
    from pyrunc.rootfs import prepare

    if spec.linux.get("sysctl"):
        from pyrunc.linux import sysctl  # noqa: F401
    if spec.prepared_mounts is not None:  # idmapped mounts, or binds in a user namespace
        from pyrunc.rootfs import idmapped  # noqa: F401 (the runtime's, that made them)

    hooks_cfg = spec.config.get("hooks") or {}
    if hooks_cfg.get("startContainer") or hooks_cfg.get("createContainer"):
        import subprocess  # noqa: F401

        from pyrunc.process import hooks  # noqa: F401
    # Derived from the config alone: made here, while the runtime sets the cgroup
    # limits, rather than on the init's way to "ready".
    spec.rootfs_ctx = prepare.RootfsContext(
        spec.config, spec.bundle, spec.no_pivot, new_userns=spec.nsmap.get("user", 1) is None,
        new_netns=spec.nsmap.get("network", 1) is None, host_ns="mount" not in spec.nsmap,
        prepared_mounts=spec.prepared_mounts)


def _init(spec, sock):
    from pyrunc.rootfs import finalize, pivot, prepare

    config, linux, proc = spec.config, spec.linux, spec.process
    nsmap = spec.nsmap
    os.setsid()
    sc.prctl(C.PR_SET_PDEATHSIG, 0)
    if nsmap.get("network", 1) is None:
        namespaces.loopback_up()
    if not spec.no_new_keyring:
        try:
            sc.keyctl_join_session_keyring(f"_ses.{spec.container_id}")
        except OSError:
            pass  # keyrings may be unavailable (e.g. a kernel without them): as runc, go on
    ctx = spec.rootfs_ctx  # made by preimport()
    prepare.prepare(ctx)
    if (config.get("hooks") or {}).get("prestart") or (config.get("hooks") or {}).get("createRuntime"):
        channel.send(sock, channel.HOOKS)
        channel.recv(sock, channel.OK)
    if (config.get("hooks") or {}).get("createContainer"):
        from pyrunc.process import hooks  # imported by preimport()

        # "created", as prestart/createRuntime (runtime.md "Lifecycle" step 5). As
        # runc's init, whose environment is the process's by now: a hook without env
        # gets process.env.
        hooks.run_hooks(config, "createContainer", _hook_state(spec, "created"),
                        inherit=list(proc.get("env") or ()))
    pivot.pivot(ctx)
    if proc.get("terminal"):
        from pyrunc.linux import console

        console.setup_in_container(spec.console_sock, proc.get("consoleSize"), bind_console=True)
    if "hostname" in config and nsmap.get("uts", 1) is None:
        sc.sethostname(config["hostname"])
    if "domainname" in config and nsmap.get("uts", 1) is None:
        sc.setdomainname(config["domainname"])
    if linux.get("sysctl"):
        from pyrunc.linux import sysctl  # imported by preimport(), before pivot_root

        sysctl.apply(linux["sysctl"], nsmap, config.get("hostname"))
    finalize.finalize(ctx)
    prepared = attributes.prepare(proc, linux, spec.listen_fds,
                               warn=(lambda m: channel.send(sock, channel.DEBUG, msg=m))
                               if spec.debug else (lambda m: None), seccomp_filter=spec.seccomp)
    fifo = f"/proc/self/fd/{spec.fifo_fd}"
    # After "ready" nothing may fail that create cannot report: reopening exec.fifo
    # needs the container's /proc and a descriptor free under the RLIMIT_NOFILE just
    # set. Both are checked (and the descriptor kept) here; runc's create fails at this
    # point too ("error closing exec fds: open /proc/self/fd: ...").
    try:
        spare = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
    except OSError as e:
        hint = {errno.ENOENT: " (the container has no /proc mount)",
                errno.EMFILE: " (process.rlimits: RLIMIT_NOFILE leaves no descriptor free)"}
        raise PyruncError(f"cannot reopen exec.fifo as {fifo}: {e.strerror}"
                          f"{hint.get(e.errno, '')}") from None
    channel.send(sock, channel.READY)
    sock.close()
    os.close(spare)  # its number is below the limit: the open below gets it or a lower one
    # Block until `start` opens exec.fifo for reading (runc's protocol).
    fd = os.open(fifo, os.O_WRONLY | os.O_CLOEXEC)
    os.close(spec.fifo_fd)
    if (config.get("hooks") or {}).get("startContainer"):
        from pyrunc.process import hooks  # imported by preimport()

        try:
            hooks.run_hooks(config, "startContainer", _hook_state(spec, "created"),
                            inherit=prepared.env)
        except HookError as e:
            # `start` reads this instead of the go byte and fails (runtime.md step 7).
            os.write(fd, b"E" + str(e).encode()[:4000])
            os._exit(1)
    os.write(fd, b"0")  # the fd closes on exec
    attributes.execute(prepared, spec.preserve_fds)


def _hook_state(spec, status):
    from pyrunc.process.hooks import hook_state  # imported before fork (preimport)

    return hook_state(spec.container_id, status, os.getpid(), spec.bundle, spec.config)
