from pyrunc.api import Container

USAGE = "<container-id>"
NARGS = 1
FLAGS = []


def run(ctx, opts, args):
    Container(args[0], root=ctx.root).start()
    return 0
