import gc

from pyrunc.cli.create import FLAGS as CREATE_FLAGS, create_options
from pyrunc.cli.flags import Flag
from pyrunc.process.spawn import ChildSubreaper
from pyrunc.api import Container, load_config
from pyrunc.native import constants as C

USAGE = "[command options] <container-id>"
NARGS = 1
FLAGS = CREATE_FLAGS + [
    Flag("detach,d", help="detach from the container's process"),
    Flag("keep", help="do not delete the container after it exits"),
    Flag("no-subreaper", help="disable the use of the subreaper used to reap reparented processes"),
]


def run(ctx, opts, args):
    # runc's run is a child subreaper until it exits: a process the container's leave
    # behind (no pid namespace) is re-parented to it, and reaped. (--no-subreaper: only
    # while create needs it, until the init is ready: see _ready.)
    if opts["no_subreaper"]:
        return _run(ctx, opts, args)
    with ChildSubreaper():
        return _run(ctx, opts, args)


def _run(ctx, opts, args):
    cid = args[0]
    config = load_config(opts["bundle"] or ".")
    options = create_options(ctx, opts, config=config)
    proxy = None
    if (config.get("process") or {}).get("terminal") and not options.console_socket \
            and not opts["detach"]:
        from pyrunc.linux.console import Proxy

        proxy = Proxy()
        options.console_socket = proxy.theirs
    on_ready = lambda: _ready(opts)  # noqa: E731
    if proxy is None:
        c = Container.run(cid, options, root=ctx.root, on_ready=on_ready)
    else:
        c = Container.create(cid, options, root=ctx.root, on_ready=on_ready)
        try:
            proxy.receive()
            proxy.start()
            c.start()
        except BaseException:
            c.delete(force=True)
            proxy.finish()
            raise
    if opts["detach"]:
        return 0
    gc.enable()  # from here on it may run for days (see pyrunc/cli/__init__.py)
    try:
        code = c.wait(forward_signals=True, on_winch=proxy.resize if proxy else None)
    finally:
        if proxy is not None:
            proxy.finish()
    if not opts["keep"]:
        c.delete(force=True)
    return code


def _ready(opts):
    """Once the init is ready (it is the runtime's child by now), before it may exec the
    process: the signals to forward are blocked, and the runtime is a child subreaper,
    as runc's run, so that it reaps what is orphaned in a container without a PID
    namespace; with --no-subreaper it is not, and those go to the host's reaper."""
    if opts["no_subreaper"] or not opts["detach"]:
        from pyrunc.native import syscalls as sc

        sc.prctl(C.PR_SET_CHILD_SUBREAPER, 0 if opts["no_subreaper"] else 1)
    if not opts["detach"]:
        from pyrunc.process import supervise

        supervise.block_all()
