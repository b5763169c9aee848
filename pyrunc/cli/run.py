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
    from pyrunc import container, signals
    from pyrunc.cli.create import preserved_fds

    cid = args[0]
    c = container.create(ctx.root, cid, opts["bundle"] or ".", pid_file=opts["pid_file"] or None,
                         console_socket=opts["console_socket"] or None,
                         no_pivot=opts["no_pivot"], no_new_keyring=opts["no_new_keyring"],
                         preserve_fds=preserved_fds(opts))
    if not opts["detach"]:
        signals.block_all()
    try:
        container.start(ctx.root, cid)
    except BaseException:
        if not opts["detach"]:
            container.delete(ctx.root, cid, force=True)
        raise
    if opts["detach"]:
        return 0
    code = signals.supervise(c.record["init_pid"])
    if not opts["keep"]:
        container.delete(ctx.root, cid, force=True)
    return code
