"""`exec`: a new process inside a running container.

The runtime forks a helper that joins the container's cgroups (cgroups.placement),
becomes non-dumpable (CVE-2019-5736: /proc/PID/exe of a process that joined the
container is the runtime's interpreter), joins the init's namespaces (user first,
mount last), and forks the process itself, so that new pid/time namespaces apply.
That process applies its attributes and execs; its init-pipe end is close-on-exec, so
the runtime sees EOF on success or an "error" message on failure.
"""
import os

from pyrunc.process import attributes, channel
from pyrunc.errors import OptionError, PyruncError
from pyrunc.process.spawn import forking
from pyrunc.linux import namespaces
from pyrunc.native import constants as C, syscalls as sc
from pyrunc.process.init import preimport_process, report_failure, seccomp_needs_runtime, spawn
from pyrunc.linux.capabilities import warn_ignored
from pyrunc.cgroups.placement import Placement
from pyrunc.util.jsonutil import deep_copy


def build_process(config_process, opts):
    """The process of an exec (opts: an ExecOptions), as runc's: opts.process replaces
    the container's process; otherwise the container's process with opts.args. The
    changes (env, cwd, ids ...) apply to either."""
    if opts.process is not None:
        proc = deep_copy(opts.process)
        if proc.get("capabilities") is None:
            # runc: the container's, not the runtime's (every one) nor none
            proc["capabilities"] = deep_copy((config_process or {}).get("capabilities") or {})
    else:
        proc = deep_copy(config_process or {})
        proc["args"] = list(opts.args or ())
        proc["terminal"] = bool(opts.tty)
        proc.pop("consoleSize", None)
    # The changes are checked here; the rest was checked at create (or, for
    # opts.process, by the caller: the checks of config.json's process).
    if opts.cwd:
        if not opts.cwd.startswith("/"):
            raise OptionError("cwd", "invalid {option} {cwd}: must be an absolute path", cwd=opts.cwd)
        proc["cwd"] = opts.cwd
    if opts.env:
        for e in opts.env:
            if not e.partition("=")[0] or "=" not in e:
                raise OptionError("env", "invalid {option} {e}: not of the form NAME=value", e=e)
        proc["env"] = list(proc.get("env") or ()) + list(opts.env)
    if opts.uid is not None:
        proc.setdefault("user", {})["uid"] = check_id("uid", opts.uid)
    if opts.gid is not None:
        proc.setdefault("user", {})["gid"] = check_id("gid", opts.gid)
    if opts.additional_gids:
        proc.setdefault("user", {})["additionalGids"] = [
            check_id("additional_gids", g) for g in opts.additional_gids]
    if opts.capabilities:
        caps = proc.setdefault("capabilities", {})
        for kind in ("bounding", "effective", "permitted", "ambient"):
            have = caps.setdefault(kind, [])
            have.extend(c for c in opts.capabilities if c not in have)
    if opts.no_new_privileges:
        proc["noNewPrivileges"] = True
    if opts.apparmor_profile:
        proc["apparmorProfile"] = opts.apparmor_profile
    if opts.selinux_label:
        proc["selinuxLabel"] = opts.selinux_label
    if not proc.get("args"):
        raise PyruncError("exec: process.args must not be empty")
    return proc


def check_id(option, n):
    """A uid/gid: (uid_t)-1 means "no change" to the kernel (runc: "uids and gids must
    be in range")."""
    if type(n) is not int or not 0 <= n < 0xFFFFFFFF:
        raise OptionError(option, "invalid {option} {n!r}: uids and gids must be in range "
                          "0-4294967294", n=n)
    return n


def _join_namespaces(init_pid, types):
    """setns into the init's namespaces that differ from ours (setns into our own user
    namespace fails with EINVAL)."""
    fds = []
    for t in namespaces.JOIN_ORDER:
        if t not in types:
            continue
        name = namespaces.TYPES[t][1]
        target = f"/proc/{init_pid}/ns/{name}"
        if t == "time":
            target = f"/proc/{init_pid}/ns/time_for_children"
        try:
            if os.stat(target).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                continue
            fds.append((t, os.open(target, os.O_RDONLY | os.O_CLOEXEC)))
        except OSError as e:
            raise PyruncError(f"exec: opening {t} namespace of the container: {e.strerror}") from None
    namespaces.join(fds)


def _notify_state(c):
    """The container's state for a seccomp notify listener (only seccomp needs it)."""
    return c.hook_state("running") if (c.config.get("linux") or {}).get("seccomp") else None


def _helper(sock, c, proc, console_sock, preserve_fds, listen_fds, preimported, placement,
            seccomp_filter):
    try:
        attributes.leave_runtime_environment(proc.get("env"))
        if not preimported:
            # Here, not in the runtime: this overlaps the runtime's cgroup placement.
            seccomp_filter = preimport_process(proc, c.config.get("linux"), _notify_state(c),
                                               warn=lambda m: channel.send(sock, channel.WARN, msg=m))
        channel.recv(sock, channel.GO)
        if placement is not None:
            placement.join_self()
        sc.prctl(C.PR_SET_DUMPABLE, 0)
        types = {ns["type"] for ns in (c.config.get("linux") or {}).get("namespaces") or ()}
        _join_namespaces(c.record["init_pid"], types)
        pid = os.fork()
        if pid == 0:
            try:
                # Its own session and process group, as runc's exec (a new one, since
                # the runtime's would be 0 as seen from the container's pid namespace).
                os.setsid()
                if proc.get("terminal"):
                    from pyrunc.linux import console

                    console.setup_in_container(console_sock, proc.get("consoleSize"))
                prepared = attributes.prepare(proc, c.config.get("linux") or {}, listen_fds,
                                           seccomp_filter=seccomp_filter)
                attributes.execute(prepared, preserve_fds)
            except BaseException as e:  # noqa: BLE001 - reported to the runtime
                report_failure(sock, e)
        channel.send(sock, channel.PID, pid=pid)
        os._exit(0)
    except BaseException as e:  # noqa: BLE001
        report_failure(sock, e)


@forking
def exec_in(c, proc, *, console_socket=None, pid_file=None, preserve_fds=0, listen_fds=0,
            sub_cgroups=None):
    """Start proc in container c; returns the new process's host pid once it has exec'd.
    sub_cgroups: {controller or "": path}, existing sub-cgroups of the container's to
    run it in (cgroups.subcgroup)."""
    mgr = c.cgroup_manager()
    if sub_cgroups:
        if mgr is None:
            raise PyruncError("cgroup: the container has no cgroup to run the process in a sub-cgroup of")
        from pyrunc.cgroups.subcgroup import SubCgroups

        mgr = SubCgroups(mgr, sub_cgroups)

    if proc.get("capabilities"):
        warn_ignored(proc["capabilities"], userns=any(ns.get("type") == "user" for ns in
                                                     (c.config.get("linux") or {}).get("namespaces") or ()))
    preimported = seccomp_needs_runtime(c.config.get("linux"))
    seccomp_filter = None  # made here or by the helper; it crosses fork as an argument
    if preimported:
        seccomp_filter = preimport_process(proc, c.config.get("linux"), _notify_state(c))
    if proc.get("terminal") and not console_socket:
        raise OptionError("console_socket", "cannot allocate tty if pyrunc will detach without "
                          "setting console socket (pass {option})")
    con = None
    if console_socket:
        from pyrunc.linux.console import connect_socket

        con = connect_socket(console_socket)
    placement = None
    if mgr is not None:
        placement = Placement(mgr).open()
    try:
        helper, parent = spawn(lambda sock: _helper(sock, c, proc, con, preserve_fds, listen_fds,
                                                    preimported, placement, seccomp_filter),
                               placement=placement)
    finally:
        if placement is not None:
            placement.close()
    if con is not None:
        con.close()
    pid = None
    try:
        try:
            if placement is not None:
                placement.apply_rest(helper)
            channel.send(parent, channel.GO)
        except (OSError, PyruncError):
            channel.raise_pending_error(parent)  # the helper's own error, if it failed
            raise
        pid = channel.recv_logged(parent, channel.PID)["pid"]
        os.waitpid(helper, 0)
        helper = None
        channel.recv_eof(parent)  # EOF: the process has exec'd
        if pid_file:
            from pyrunc.util.pidfile import write_pid_file

            write_pid_file(pid_file, pid)
    except BaseException:  # after the fork: what it started goes too (as runc's exec)
        for p in (helper, pid):
            if p:
                try:
                    os.kill(p, 9)
                    os.waitpid(p, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass
        raise
    finally:
        parent.close()
    return pid
