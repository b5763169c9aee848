from pyrunc.cli.create import FLAGS as CREATE_FLAGS
from pyrunc.cli.flags import Flag

USAGE = "[command options] <container-id>"
NARGS = 1
FLAGS = CREATE_FLAGS + [
    Flag("detach,d", help="detach from the container's process"),
    Flag("keep", help="do not delete the container after it exits"),
    Flag("no-subreaper", help="disable the use of the subreaper used to reap reparented processes"),
]


def run(ctx, opts, args):
    from pyrunc import signals

    # runc's run is a child subreaper until it exits: a process the container's leave
    # behind (no pid namespace) is re-parented to it, and reaped. (--no-subreaper: only
    # while create needs it, until the init is ready: see _ready.)
    if opts["no_subreaper"]:
        return _run(ctx, opts, args)
    with signals.ChildSubreaper():
        return _run(ctx, opts, args)


def _run(ctx, opts, args):
    from pyrunc import container, signals
    from pyrunc.cli.create import preserved_fds

    import os

    cid = args[0]
    bundle = opts["bundle"] or "."
    config = container.load_bundle(os.path.abspath(bundle))
    console = opts["console_socket"] or None
    proxy = None
    if (config.get("process") or {}).get("terminal") and not console and not opts["detach"]:
        from pyrunc.console import Proxy

        proxy = Proxy()
        console = proxy.theirs
    total, listen = preserved_fds(opts)
    c = container.create(ctx.root, cid, bundle, pid_file=opts["pid_file"] or None,
                         console_socket=console, no_pivot=opts["no_pivot"],
                         no_new_keyring=opts["no_new_keyring"], preserve_fds=total,
                         listen_fds=listen, config=config, to_start=proxy is None,
                         systemd_cgroup=ctx.systemd_cgroup,
                         rootless_cgroups=ctx.rootless_cgroups(),
                         on_ready=lambda: _ready(opts))
    try:
        if proxy is not None:
            proxy.receive()
            proxy.start()
        container.start(ctx.root, cid, container=c)
    except BaseException:
        if not opts["detach"]:
            container.delete(ctx.root, cid, force=True, container=c)
        if proxy is not None:
            proxy.finish()
        raise
    if opts["detach"]:
        return 0
    try:
        code = signals.supervise(c.record["init_pid"], on_winch=proxy.resize if proxy else None)
    finally:
        if proxy is not None:
            proxy.finish()
    if not opts["keep"]:
        container.delete(ctx.root, cid, force=True, container=c)
    return code


def _ready(opts):
    """Once the init is ready (it is the runtime's child by now), before it may exec the
    process: the signals to forward are blocked, and the runtime is a child subreaper,
    as runc's run, so that it reaps what is orphaned in a container without a PID
    namespace; with --no-subreaper it is not, and those go to the host's reaper."""
    if opts["no_subreaper"] or not opts["detach"]:
        from pyrunc import syscalls as sc

        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 0 if opts["no_subreaper"] else 1)
    if not opts["detach"]:
        from pyrunc import signals

        signals.block_all()
