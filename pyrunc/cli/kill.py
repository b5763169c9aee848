from pyrunc.cli.flags import Flag
from pyrunc.api import Container

USAGE = "[command options] <container-id> [signal]"
NARGS = (1, 2)
FLAGS = [Flag("all,a", help="send the specified signal to all processes inside the container")]


def run(ctx, opts, args):
    Container(args[0], root=ctx.root).kill(args[1] if len(args) > 1 else 15,
                                           all_processes=opts["all"])
    return 0
