import gc

from pyrunc.cli.flags import Flag, flag_name
from pyrunc.api import Container
from pyrunc.cli.create import preserved_fds
from pyrunc.errors import OptionError, PyruncError, UsageError
from pyrunc.options import ExecOptions

USAGE = "[command options] <container-id> <command> [command options]  || -p process.json <container-id>"
NARGS = (1, None)
STOP_AT_POSITIONAL = True
FLAGS = [
    Flag("console-socket", "str", "", "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
    Flag("cwd", "str", "", "current working directory in the container"),
    Flag("env,e", "list", help="set environment variables"),
    Flag("tty,t", help="allocate a pseudo-TTY"),
    Flag("user,u", "str", "", "UID (format: <uid>[:<gid>])"),
    Flag("additional-gids,g", "list", help="additional gids"),
    Flag("process,p", "str", "", "path to the process.json"),
    Flag("detach,d", help="detach from the container's process"),
    Flag("pid-file", "str", "", "specify the file to write the process id to"),
    Flag("process-label", "str", "", "set the asm process label for the process commonly used with selinux"),
    Flag("apparmor", "str", "", "set the apparmor profile for the process"),
    Flag("no-new-privs", help="set the no new privileges value for the process"),
    Flag("cap,c", "list", help="add a capability to the bounding set for the process"),
    Flag("preserve-fds", "int", 0, "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"),
    Flag("cgroup", "list", help="run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>."),
    Flag("ignore-paused", help="allow exec in a paused container"),
]


def run(ctx, opts, args):
    from pyrunc.process import supervise

    c = Container(args[0], root=ctx.root)
    status = c.status()
    if status == "stopped":
        raise PyruncError("cannot exec in a stopped container")
    if status == "paused" and not opts["ignore_paused"]:
        raise PyruncError("cannot exec in a paused container (use --ignore-paused to override)")
    if not opts["process"] and len(args) < 2:
        raise UsageError('pyrunc: "exec" requires a minimum of 2 arguments')
    total, listen = preserved_fds(opts)
    try:
        options = _options(opts, args[1:], total, listen)
        if not opts["detach"]:
            supervise.block_all()
        pid = c.exec(options)
    except OptionError as e:
        raise _exec_failed(e.render(flag_name(e.option))) from None
    except PyruncError as e:
        raise _exec_failed(str(e)) from None
    if opts["detach"]:
        return 0
    gc.enable()  # from here on it may run for days (see pyrunc/cli/__init__.py)
    return c.wait(pid, forward_signals=True)


def _exec_failed(msg):
    """runc's wording and exit code for a process that could not be started."""
    err = PyruncError(f"exec failed: {msg}")
    err.exit_code = 255
    return err


def _options(opts, args, preserve_fds, listen_fds):
    """The flags as ExecOptions. --process FILE passes the checks of config.json's
    process at create (runc too refuses what its JSON decoding cannot take, such as
    "uid": -1 or true)."""
    process = None
    if opts["process"]:
        from pyrunc.config.load import load_json_object
        from pyrunc.config.validate import check

        process = check(load_json_object(opts["process"]), "process", source=opts["process"])
    uid = gid = None
    if opts["user"]:
        u, _, g = opts["user"].partition(":")
        uid = _id(u, f"--user {opts['user']}")
        if g:
            gid = _id(g, f"--user {opts['user']}")
    return ExecOptions(
        args, process=process, env=opts["env"], cwd=opts["cwd"] or None, uid=uid, gid=gid,
        additional_gids=[_id(g, f"--additional-gids {g}") for g in opts["additional_gids"]],
        capabilities=opts["cap"], tty=opts["tty"], no_new_privileges=opts["no_new_privs"],
        apparmor_profile=opts["apparmor"] or None, selinux_label=opts["process_label"] or None,
        console_socket=opts["console_socket"] or None, pid_file=opts["pid_file"] or None,
        preserve_fds=preserve_fds, listen_fds=listen_fds,
        ignore_paused=opts["ignore_paused"], sub_cgroups=_sub_cgroups(opts["cgroup"]))


def _sub_cgroups(args):
    """runc's getSubCgroupPaths: {controller: path} of the --cgroup values
    ("[<controller>[,<controller>...]:]<path>"); "" for a path without a controller,
    allowed alone only (one path for every controller; on cgroup v2, the only form).
    An empty or repeated controller is refused, as current runc does (1.1.5 took ":p"
    as "p", and the last of repeated controllers)."""
    paths = {}
    for a in args or ():
        ctrls, sep, path = a.partition(":")
        if ":" in path:
            raise PyruncError(f"invalid --cgroup argument: {a}")
        if not sep:
            if len(args) != 1:
                raise PyruncError(f"invalid --cgroup argument: {a} (missing <controller>: prefix)")
            paths[""] = a
            continue
        for ctrl in ctrls.split(","):
            if not ctrl:
                raise PyruncError(f"invalid --cgroup argument: {a} (empty <controller> prefix)")
            if ctrl in paths:
                raise PyruncError(f"invalid --cgroup argument(s): controller {ctrl} specified multiple times")
            paths[ctrl] = path
    return paths



def _id(text, what):
    """A uid/gid flag (runc: "uids and gids must be in range")."""
    try:
        n = int(text)
    except ValueError:
        raise PyruncError(f"invalid {what}: expected UID[:GID], numbers") from None
    if not 0 <= n < 0xFFFFFFFF:  # (uid_t)-1 means "no change" to the kernel
        raise PyruncError(f"invalid {what}: uids and gids must be in range 0-4294967294")
    return n
