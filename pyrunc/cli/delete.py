from pyrunc.cli.flags import Flag
from pyrunc.api import Container

USAGE = "[command options] <container-id>"
NARGS = 1
FLAGS = [Flag("force,f", help="Forcibly deletes the container if it is still running (uses SIGKILL)")]


def run(ctx, opts, args):
    Container(args[0], root=ctx.root).delete(force=opts["force"])
    return 0
