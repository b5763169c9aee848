from pyrunc.cli.flags import Flag

USAGE = "[command options] <container-id>"
NARGS = 1
FLAGS = [Flag("force,f", help="Forcibly deletes the container if it is still running (uses SIGKILL)")]


def run(ctx, opts, args):
    from pyrunc.api import Container

    Container(args[0], root=ctx.root).delete(force=opts["force"])
    return 0
