from pyrunc.cli.flags import Flag

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
    from pyrunc import signals
    from pyrunc.cli.create import preserved_fds
    from pyrunc.container import open_container
    from pyrunc.errors import PyruncError, UsageError
    from pyrunc.exec_process import exec_in

    c = open_container(ctx.root, args[0])
    status = c.status()
    if status == "stopped":
        raise PyruncError("cannot exec in a stopped container")
    if status == "paused" and not opts["ignore_paused"]:
        raise PyruncError("cannot exec in a paused container (use --ignore-paused to override)")
    if not opts["process"] and len(args) < 2:
        raise UsageError('pyrunc: "exec" requires a minimum of 2 arguments')
    opts["args"] = args[1:]
    try:
        proc = _process(c, opts)
        sub_cgroups = _sub_cgroups(opts["cgroup"])
    except PyruncError as e:
        raise _exec_failed(e) from None
    if not opts["detach"]:
        signals.block_all()
    total, listen = preserved_fds(opts)
    try:
        pid = exec_in(c, proc, console_socket=opts["console_socket"] or None,
                      pid_file=opts["pid_file"] or None, preserve_fds=total, listen_fds=listen,
                      sub_cgroups=sub_cgroups)
    except PyruncError as e:
        raise _exec_failed(e) from None
    if opts["detach"]:
        return 0
    return signals.supervise(pid)


def _exec_failed(e):
    """runc's wording and exit code for a process that could not be started."""
    from pyrunc.errors import PyruncError

    err = PyruncError(f"exec failed: {e}")
    err.exit_code = 255
    return err


def _process(c, opts):
    """The process to run: --process FILE, which passes the checks of config.json's
    process at create (runc too refuses what its JSON decoding cannot take, such as
    "uid": -1 or true), or the container's, checked at create, with the command line's
    changes (build_process checks those)."""
    from pyrunc.exec_process import build_process

    if opts["process"]:
        from pyrunc.spec.config import load_json_object
        from pyrunc.spec.validate import check

        path = opts["process"]
        opts["process"] = check(load_json_object(path), "process", source=path)
    return build_process(c.config.get("process"), opts)


def _sub_cgroups(args):
    """runc's getSubCgroupPaths: {controller: path} of the --cgroup values
    ("[<controller>[,<controller>...]:]<path>"); "" for a path without a controller,
    allowed alone only (one path for every controller; on cgroup v2, the only form).
    An empty or repeated controller is refused, as current runc does (1.1.5 took ":p"
    as "p", and the last of repeated controllers)."""
    from pyrunc.errors import PyruncError

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
