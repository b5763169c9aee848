from pyrunc.api import Container

USAGE = "<container-id>"
NARGS = 1
FLAGS = []


def run(ctx, opts, args):
    Container(args[0], root=ctx.root).resume()
    return 0
